"""Scores of a harness run and its points.

A run's samples are scored by :mod:`autograder.scoring`: for the 2-D mixture the energy distance to
true draws and the Bayes classifier's accuracy on the intended labels, for images the Fréchet distance
in the data set's classifier's features and that classifier's accuracy; lower distances are better.
Every score comes with two baselines at the same sample size: the floor (held-out real data) and the
ceiling (noise).

The points are those of :data:`HARNESS_CHECKS`; their thresholds are in ``thresholds.toml``, next to
the reference's measured values and the margin.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autograder.scoring import score_images, score_points

THRESHOLDS = Path(__file__).with_name("thresholds.toml")


@dataclass(frozen=True)
class HarnessCheck:
    """One scored property of a harness run."""

    name: str
    title: str
    points: float


HARNESS_CHECKS: tuple[HarnessCheck, ...] = (
    HarnessCheck("training", "training with your schedule, ddpm_loss and drop_labels lowers the loss", 1),
    HarnessCheck("ddpm_quality", "DDPM samples (your p_sample_loop, all T steps) are close to the data", 2),
    HarnessCheck("ddim_quality", "DDIM samples (your ddim_sample_loop, 50 steps, η = 0) are close to the data", 2),
    HarnessCheck("cfg_accuracy", "classifier-free guidance (your cfg_eps) samples each class; guidance sharpens", 2),
)


NEEDS: dict[str, tuple[str, ...]] = {
    "training": ("schedules", "forward", "losses", "embedding", "guidance"),
    "ddpm_quality": ("posterior", "ddpm"),
    "ddim_quality": ("posterior", "ddim"),
    "cfg_accuracy": ("guidance", "ddim"),
}
"""The parts each check runs (training: the schedule, q_sample in the loss, the UNet's embedding, label dropout)."""


def unfinished(stubs: dict[str, list[str]], check: str) -> str:
    """``" (not implemented yet: part.function, ...)"`` for the stubs among the parts ``check`` needs, else ``""``."""
    names = [f"{part}.{name}" for part in NEEDS[check] for name in stubs.get(part, ())]
    return f" (not implemented yet: {', '.join(names)})" if names else ""


def thresholds(profile: str, plan: str) -> dict[str, float] | None:
    """The thresholds of ``plan`` in ``profile`` (``thresholds.toml``); ``None`` for a plan that is measured
    only (no points)."""
    table = tomllib.loads(THRESHOLDS.read_text(encoding="utf-8"))
    return table.get(profile, {}).get(plan)


def score_run(run: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Per sampler run of ``dataset``: the distance to the data and the class accuracy
    (:func:`autograder.scoring.score_points` for the 2-D mixture, :func:`autograder.scoring.score_images`
    for images), with the baselines at the same sample size and the seconds per sample."""
    score = score_points if dataset == "mixture2d" else functools.partial(score_images, dataset=dataset)
    labels = run["labels"]
    scores: dict[str, Any] = {"runs": {}}
    for name, result in run["runs"].items():
        entry = {k: v for k, v in result.items() if k != "samples"}
        samples = result.get("samples")
        if samples is not None:
            if samples.shape[0] != len(labels):
                entry["error"] = f"{samples.shape[0]} samples for {len(labels)} labels"
            elif bool(torch.isfinite(samples).all()):
                measured = score(samples, labels=labels)
                entry.update(metric=measured.metric, distance=measured.distance, accuracy=measured.accuracy)
                scores.update(floor=measured.floor, ceiling=measured.ceiling, real_accuracy=measured.real_accuracy)
            else:
                entry["error"] = "the samples hold NaN or inf"
            entry["seconds_per_sample"] = result["seconds"] / samples.shape[0]
        scores["runs"][name] = entry
    if "vae" in run:
        vae = run["vae"]
        measured = score(vae["reconstructions"])
        scores["vae"] = {
            "recon_error": vae["recon_error"],
            "distance": measured.distance,
            "floor": measured.floor,
            "scale_factor": vae["scale_factor"],
            "seconds": vae["seconds"],
        }
    return scores


@dataclass(frozen=True)
class Verdict:
    check: HarnessCheck
    passed: bool
    message: str

    @property
    def score(self) -> float:
        return self.check.points if self.passed else 0.0


def judge(
    run: dict[str, Any], scores: dict[str, Any], limits: dict[str, float], stubs: dict[str, list[str]]
) -> list[Verdict]:
    """The points of a run of the 2-D mixture plan against ``limits`` (its thresholds); a failed check names
    the functions it needs that are still stubs (``stubs``: part → function names)."""
    verdicts = _judge(run, scores, limits)
    return [v if v.passed else Verdict(v.check, False, v.message + unfinished(stubs, v.check.name)) for v in verdicts]


def _judge(run: dict[str, Any], scores: dict[str, Any], limits: dict[str, float]) -> list[Verdict]:
    checks = {c.name: c for c in HARNESS_CHECKS}
    runs = scores["runs"]
    verdicts = []
    error = run["train"]["error"]
    losses = run["train"]["losses"]
    if error:
        message = f"training failed: {error}"
        return [Verdict(c, False, message if c.name == "training" else f"not run: {message}") for c in HARNESS_CHECKS]
    first, last = (losses[0], losses[-1]) if losses else (math.nan, math.nan)
    ratio = limits["loss_ratio"]
    trained = math.isfinite(last) and last <= ratio * first
    message = (
        f"mean loss {first:.4f} over the first steps, {last:.4f} over the last (must fall below {ratio:g}× the first)"
    )
    held_out = run["train"].get("held_out")
    if held_out is not None:  # the grader's own measure: the trained model's loss on held-out data
        model, zero = held_out["model"], held_out["zero"]
        trained = trained and math.isfinite(model) and model <= ratio * zero
        message += (
            f"; the trained model's loss on held-out data {model:.4f} (must fall below {ratio:g}× {zero:.4f}, "
            "the loss of predicting no noise)"
        )
    verdicts.append(Verdict(checks["training"], trained, message))
    for check, run_name in (("ddpm_quality", "ddpm"), ("ddim_quality", limits["ddim_run"])):
        entry = runs.get(run_name, {"error": "not run"})
        if "error" in entry:
            verdicts.append(Verdict(checks[check], False, f"{run_name}: {entry['error']}"))
            continue
        distance, limit = entry["distance"], limits[f"{check}_distance"]
        verdicts.append(
            Verdict(
                checks[check],
                distance <= limit,
                f"{run_name}: {entry['metric']} distance to the data {distance:.5g} (must be at most {limit}; "
                f"real data {scores['floor']:.5g}, noise {scores['ceiling']:.4g})",
            )
        )
    plain, sharp = runs.get("cfg_1", {"error": "not run"}), runs.get(limits["cfg_sharp_run"], {"error": "not run"})
    failed = [f"{name}: {entry['error']}" for name, entry in (("cfg_1", plain), ("sharp", sharp)) if "error" in entry]
    if failed:
        verdicts.append(Verdict(checks["cfg_accuracy"], False, "; ".join(failed)))
    else:
        ok = plain["accuracy"] >= limits["cfg_accuracy"] and sharp["accuracy"] >= plain["accuracy"] - 0.005
        verdicts.append(
            Verdict(
                checks["cfg_accuracy"],
                ok,
                f"class accuracy {plain['accuracy']:.1%} at s = 1 (must be at least {limits['cfg_accuracy']:.0%}), "
                f"{sharp['accuracy']:.1%} at {limits['cfg_sharp_run']} (must not be lower)",
            )
        )
    return verdicts
