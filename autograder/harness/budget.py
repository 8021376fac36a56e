"""What the harness may use of the machine: how many CPU threads, and how long one call of the student's code may run.

Threads: an explicit ``--threads``, else ``OMP_NUM_THREADS`` when set, else the cores this process may run on
(its CPU affinity and its control group's CPU quota) less those other processes keep busy now (the load average
and the runnable tasks), at least one. torch's default, every core, oversubscribes a busy machine: its OpenMP
threads then wait on each other and a 10-second plan takes minutes.

Wall time, sized from the plan: a call's limit is the model rows its largest sampler call evaluates (samples ×
model calls) times the measured cost of a row of the plan's denoiser, times :data:`MARGIN` for a loaded machine,
and at least :data:`FLOOR_SECONDS` (:func:`plan_limits`); the whole plan's, its training and every sampler run
likewise, with the calls' round trips, times :data:`PLAN_MARGIN` (:func:`plan_seconds`). A correct solution that
still runs out of either was slowed by the machine: the harness reports that as a grader error
(:mod:`autograder.harness.experiment`), not as the student's failure; a call that stops using the model, or uses it
more than planned, until its limit is the student's (an infinite loop).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from autograder.sandbox.limits import Limits

SECONDS_PER_ROW = {"points": 4e-6, "images": 3e-3}
"""Seconds per model row, channel round trip included, of the plan's denoiser on one thread. Measured on an idle
2-core machine (2026-12-05): the ci plan's DDPM (MLP width 64, 600 points × 100 steps) took 0.22 s, 3.7 µs a row;
the UNet of width 16 on 28×28 images 2.7 ms a row. Scaled by ``(width / 64)²`` for points, ``(width / 16)²`` for
images."""
MARGIN = 10
"""How much slower than idle a loaded machine may be before a correct solution runs out of time."""
CALL_SECONDS = 0.01
"""Seconds of channel round trips per call of the student's code and per model call it makes (about 2 ms idle)."""
PLAN_MARGIN = 30
"""How much slower than idle a loaded machine may run a whole plan (its calls each within their own limit)."""
FLOOR_SECONDS = 60.0
"""No call's limit is shorter (starting a worker and importing torch take seconds on a busy machine)."""


def choose_threads(requested: int | None = None) -> int:
    """CPU threads for the harness (see the module): ``requested``, else ``OMP_NUM_THREADS``, else the idle cores.

    Raises:
        ValueError: ``requested`` or ``OMP_NUM_THREADS`` is not a positive integer.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be a positive number of CPU threads; got {requested}")
        return requested
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(
                f"OMP_NUM_THREADS={configured!r} is not a positive integer: set it to a thread count or unset it"
            )
        return int(configured)
    return max(1, available_cores() - busy_cores())


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by its control group's CPU quota (cgroup v2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    return cores if quota == "max" else max(1, min(cores, math.floor(int(quota) / int(period))))


def busy_cores() -> int:
    """Cores other processes keep busy now: the larger of the 1-minute load average and the runnable tasks other
    than this one (``/proc/loadavg``); 0 where that is not known."""
    try:
        fields = Path("/proc/loadavg").read_text().split()
        load, running = float(fields[0]), int(fields[3].split("/")[0]) - 1
    except (OSError, ValueError, IndexError):
        return 0
    return max(math.floor(load), running, 0)


def largest_call_rows(plan: dict[str, Any]) -> int:
    """Model rows the plan's largest sampler call evaluates: samples × the most model calls of one run (DDPM's
    ``T``, DDIM's steps, guidance's steps twice: conditional and unconditional)."""
    calls = [int(plan.get("T", 1000)) if plan.get("ddpm", True) else 0]
    calls += [int(steps) for steps, _ in plan.get("ddim", ())]
    if plan.get("guidance_scales"):
        calls.append(2 * int(plan.get("guidance_steps", 50)))
    return int(plan.get("n_samples", 1000)) * max(calls)


def row_seconds(plan: dict[str, Any]) -> float:
    """Seconds per model row of the plan's denoiser on one idle thread (:data:`SECONDS_PER_ROW`, scaled by width)."""
    if plan.get("data", "mixture2d") == "mixture2d":
        return SECONDS_PER_ROW["points"] * max(1.0, (plan.get("width", 128) / 64) ** 2)
    return SECONDS_PER_ROW["images"] * max(1.0, (plan.get("width", 16) / 16) ** 2)


def plan_seconds(plan: dict[str, Any]) -> float:
    """The time a whole grader-owned plan may take: its training (forward and backward, about three model passes
    per row; the VAE's too in a latent plan, 64 images a step) and every sampler run, at :func:`row_seconds` a row
    and :data:`CALL_SECONDS` a call, times :data:`PLAN_MARGIN`, at least :data:`FLOOR_SECONDS`."""
    train_steps = int(plan.get("train_steps", 2000)) + (int(plan.get("vae_steps", 600)) if plan.get("latent") else 0)
    sampler_calls = [int(plan.get("T", 1000))] if plan.get("ddpm", True) else []
    sampler_calls += [int(steps) for steps, _ in plan.get("ddim", ())]
    sampler_calls += [2 * int(plan.get("guidance_steps", 50))] * len(plan.get("guidance_scales", ()))
    rows = 3 * train_steps * int(plan.get("batch_size", 128)) + int(plan.get("n_samples", 1000)) * sum(sampler_calls)
    seconds = rows * row_seconds(plan) + (train_steps + sum(sampler_calls)) * CALL_SECONDS
    return max(FLOOR_SECONDS, PLAN_MARGIN * seconds)


def plan_limits(limits: Limits, plan: dict[str, Any]) -> Limits:
    """``limits`` with the wall time of a call sized from ``plan`` (see the module)."""
    seconds = max(FLOOR_SECONDS, MARGIN * largest_call_rows(plan) * row_seconds(plan))
    return dataclasses.replace(
        limits, wall_seconds=round(seconds), cpu_seconds=max(limits.cpu_seconds, round(3 * seconds))
    )
