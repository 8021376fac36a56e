"""Thresholds that travel with the harness: the reference solution's scores on the machine that grades.

A harness check passes when the submission's score is within a calibrated factor of the reference's, measured
through the same plan (same seeds, same device, same torch) on the same machine (:mod:`autograder.harness.judging`;
the factors and how they were chosen are in ``thresholds.toml``). The reference's scores are measured once per
key, the kit's version (:func:`autograder.results.kit_version`), the profile, the device's name and the torch
version, and cached as one JSON file per key in :func:`cache_root` with the reference's figures beside it:
``python -m autograder harness calibrate --profile P`` measures them explicitly, and the first ``harness`` run
that finds no cache for its key measures them before grading; every later run (a class, one submission after
another) reuses them, and runs that find none at the same time wait for the one measuring (a lock file beside
the cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autograder.files import write_atomically
from autograder.isolation.errors import GraderError
from autograder.reference import reference_module
from autograder.results import kit_version

image_files = reference_module("image_files")


def cache_root() -> Path:
    """``$DIFFUSION_CACHE/calibration``, else ``~/.cache/diffusion-course/calibration``: the kit's cache of data sets
    and scoring classifiers (:func:`diffusion.image_files.cache_dir`)."""
    return image_files.cache_dir() / "calibration"


def device_name(device: torch.device) -> str:
    """What the reference's scores depend on of ``device``: the GPU's name, or the CPU's model and architecture."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")  # fmt: skip
    return f"{device.type}: {model or platform.processor() or 'unknown'} ({platform.machine()})"


def key(profile: str, device: torch.device) -> dict[str, str]:
    """The calibration's key: kit version, profile, device name, torch version."""
    return {"kit": kit_version(), "profile": profile, "device": device_name(device), "torch": torch.__version__}


def cache_path(calibration_key: dict[str, str], root: Path) -> Path:
    """The JSON file of ``calibration_key`` in ``root``: ``<profile>-<digest of the key>.json``."""
    digest = hashlib.sha256(json.dumps(calibration_key, sort_keys=True).encode()).hexdigest()[:16]
    return root / f"{calibration_key['profile']}-{digest}.json"


def cached(calibration_key: dict[str, str], path: Path) -> dict[str, Any] | None:
    """The reference scores of ``calibration_key`` cached at ``path`` (``{"key", "plans"}``, see :func:`cache_path`),
    or ``None`` when there are none (or the file is unreadable or for another key)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) and stored.get("key") == calibration_key else None


def reference_scores(report: dict[str, Any]) -> dict[str, Any]:
    """Per plan of a harness ``report`` on the reference: its scores and training figures, as the cache keeps them.

    Raises:
        GraderError: the reference did not train or sample in a plan (the machine cannot calibrate this profile).
    """
    if "grader_error" in report:
        raise GraderError(f"the reference solution could not be calibrated: {report['grader_error']}")
    plans = {}
    for name, plan in report["plans"].items():
        failed = [f"{run}: {entry['error']}" for run, entry in plan["scores"]["runs"].items() if "error" in entry]
        if plan["train"]["error"] or failed:
            raise GraderError(
                f"the reference solution failed in plan {name} on this machine, so nothing can be judged against "
                f"it: {plan['train']['error'] or '; '.join(failed)}"
            )
        plans[name] = {"scores": plan["scores"], "held_out": plan["train"].get("held_out"), "seconds": plan["seconds"]}
    return plans


@dataclass(frozen=True)
class Calibration:
    """The reference's scores for a key (``{"key", "plans"}``), the JSON file that caches them and whether they came
    from it (``reused``) or were measured now."""

    stored: dict[str, Any]
    path: Path
    reused: bool


def calibration(
    profile: str,
    device: torch.device,
    root: Path,
    measure: Callable[[Path], dict[str, Any]],
    force: bool = False,
) -> Calibration:
    """The reference's scores for ``profile`` on ``device``: the cached ones, else (or with ``force``)
    ``measure(figures)`` (the harness report of the reference, figures written to ``figures``) reduced by
    :func:`reference_scores` and cached atomically.

    Raises:
        GraderError: the reference could not be measured (see :func:`reference_scores`).
    """
    calibration_key = key(profile, device)
    path = cache_path(calibration_key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_suffix(".lock")):  # another grader measuring it now: this one waits, then reuses it
        stored = None if force else cached(calibration_key, path)
        if stored is not None:
            return Calibration(stored, path, reused=True)
        stored = {"key": calibration_key, "plans": reference_scores(measure(path.with_suffix("")))}
        write_atomically(path, json.dumps(stored, indent=1, sort_keys=True))
    return Calibration(stored, path, reused=False)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made if missing), waiting for it: the graders of a batch that
    find no calibration on one host measure it once, the others wait and reuse it."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
