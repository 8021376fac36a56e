"""Scores of a harness run and its points.

A run's samples are scored by :mod:`autograder.scoring`: for the 2-D mixture the energy distance to
true draws and the Bayes classifier's accuracy on the intended labels, for images the Fréchet distance
in the data set's classifier's features and that classifier's accuracy; lower distances are better.
Every score comes with two baselines at the same sample size: the floor (held-out real data) and the
ceiling (noise).

The points are those of :data:`HARNESS_CHECKS`, times the plan's ``weight``. A check is judged against the
reference solution's scores through the same plan on the same machine (:mod:`autograder.harness.calibration`):
a distance passes within ``factor ×`` the reference's (or the real-data floor, when the reference lies below it:
both are then within sampling noise), a class accuracy within ``cfg_margin`` of the reference's. The factors are
in ``thresholds.toml``, with the runs that chose them.
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
    HarnessCheck("vae_reconstruction", "the VAE trained on your vae_loss reconstructs held-out images", 1),
)
"""Every check a plan may have; a plan without a VAE has no ``vae_reconstruction``."""


NEEDS: dict[str, tuple[str, ...]] = {
    "training": ("schedules", "forward", "losses", "embedding", "guidance"),
    "ddpm_quality": ("posterior", "ddpm"),
    "ddim_quality": ("posterior", "ddim"),
    "cfg_accuracy": ("guidance", "ddim"),
    "vae_reconstruction": ("vae",),
}
"""The parts each check runs (training: the schedule, q_sample in the loss, the UNet's embedding, label dropout)."""


def unfinished(stubs: dict[str, list[str]], check: str) -> str:
    """``" (not implemented yet: part.function, ...)"`` for the stubs among the parts ``check`` needs, else ``""``."""
    names = [f"{part}.{name}" for part in NEEDS[check] for name in stubs.get(part, ())]
    return f" (not implemented yet: {', '.join(names)})" if names else ""


def thresholds(profile: str, plan: str) -> dict[str, Any] | None:
    """The factors and settings of ``plan`` in ``profile`` (``thresholds.toml``); ``None`` for a plan that is
    measured only (no points)."""
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
    weight: float = 1.0

    @property
    def points(self) -> float:
        return self.check.points * self.weight

    @property
    def score(self) -> float:
        return self.points if self.passed else 0.0


def judge(
    run: dict[str, Any],
    scores: dict[str, Any],
    limits: dict[str, Any],
    reference: dict[str, Any],
    stubs: dict[str, list[str]],
) -> list[Verdict]:
    """The points of a plan's run against ``limits`` (its table in ``thresholds.toml``) and ``reference`` (the
    reference's scores of the same plan on this machine, :func:`autograder.harness.calibration.reference_scores`);
    a failed check names the functions it needs that are still stubs (``stubs``: part → function names)."""
    weight = float(limits.get("weight", 1.0))
    verdicts = _judge(run, scores, limits, reference["scores"])
    return [
        Verdict(v.check, v.passed, v.message + ("" if v.passed else unfinished(stubs, v.check.name)), weight)
        for v in verdicts
    ]


def _judge(
    run: dict[str, Any], scores: dict[str, Any], limits: dict[str, Any], reference: dict[str, Any]
) -> list[Verdict]:
    checks = {c.name: c for c in HARNESS_CHECKS if c.name != "vae_reconstruction" or "vae" in reference}
    error = run["train"]["error"]
    if error:
        message = f"training failed: {error}"
        return [Verdict(c, False, message if c.name == "training" else f"not run: {message}") for c in checks.values()]
    verdicts = [_training(checks["training"], run["train"], limits["loss_ratio"])]
    runs, reference_runs = scores["runs"], reference["runs"]
    floor = max(scores.get("floor", 0.0), reference.get("floor", 0.0))
    for check, run_name in (("ddpm_quality", "ddpm"), ("ddim_quality", limits["ddim_run"])):
        verdicts.append(
            _distance(
                checks[check], run_name, runs.get(run_name, {"error": "not run"}), reference_runs[run_name],
                limits[check.replace("quality", "factor")], floor, scores,
            )
        )  # fmt: skip
    verdicts.append(_guidance(checks["cfg_accuracy"], runs, reference_runs, limits))
    if "vae_reconstruction" in checks:
        verdicts.append(_reconstruction(checks["vae_reconstruction"], scores.get("vae"), reference["vae"], limits))
    return verdicts


def _training(check: HarnessCheck, train: dict[str, Any], ratio: float) -> Verdict:
    """The loss fell below ``ratio`` × its start, and the trained model's held-out loss below ``ratio`` × the zero
    predictor's."""
    losses = train["losses"]
    first, last = (losses[0], losses[-1]) if losses else (math.nan, math.nan)
    trained = math.isfinite(last) and last <= ratio * first
    message = (
        f"mean loss {first:.4f} over the first steps, {last:.4f} over the last (must fall below {ratio:g}× the first)"
    )
    held_out = train.get("held_out")
    if held_out is not None:  # the grader's own measure: the trained model's loss on held-out data
        model, zero = held_out["model"], held_out["zero"]
        trained = trained and math.isfinite(model) and model <= ratio * zero
        message += (
            f"; the trained model's loss on held-out data {model:.4f} (must fall below {ratio:g}× {zero:.4f}, "
            "the loss of predicting no noise)"
        )
    return Verdict(check, trained, message)


def _distance(
    check: HarnessCheck,
    run_name: str,
    entry: dict[str, Any],
    reference: dict[str, Any],
    factor: float,
    floor: float,
    scores: dict[str, Any],
) -> Verdict:
    """The run's distance within ``factor`` × the reference's (or × the real-data ``floor`` when higher)."""
    if "error" in entry:
        return Verdict(check, False, f"{run_name}: {entry['error']}")
    distance, yardstick = entry["distance"], max(reference["distance"], floor)
    limit = factor * yardstick
    return Verdict(
        check,
        distance <= limit,
        f"{run_name}: {entry['metric']} distance to the data {distance:.5g} (must be at most {limit:.5g}: {factor:g}× "
        f"the reference's {reference['distance']:.5g} on this machine"
        + (f", or the real data's {floor:.5g} when higher" if floor > reference["distance"] else "")
        + f"; noise {scores['ceiling']:.4g})",
    )


def _guidance(check: HarnessCheck, runs: dict[str, Any], reference: dict[str, Any], limits: dict[str, Any]) -> Verdict:
    """Class accuracy at s = 1 within ``cfg_margin`` of the reference's, and not lower at the sharper scale."""
    sharp_run = limits["cfg_sharp_run"]
    plain, sharp = runs.get("cfg_1", {"error": "not run"}), runs.get(sharp_run, {"error": "not run"})
    failed = [f"{name}: {entry['error']}" for name, entry in (("cfg_1", plain), (sharp_run, sharp)) if "error" in entry]
    if failed:
        return Verdict(check, False, "; ".join(failed))
    least = max(0.0, reference["cfg_1"]["accuracy"] - limits["cfg_margin"])
    ok = plain["accuracy"] >= least and sharp["accuracy"] >= plain["accuracy"] - 0.005
    return Verdict(
        check,
        ok,
        f"class accuracy {plain['accuracy']:.1%} at s = 1 (must be at least {least:.1%}: the reference's "
        f"{reference['cfg_1']['accuracy']:.1%} on this machine less {limits['cfg_margin']:.0%}), "
        f"{sharp['accuracy']:.1%} at {sharp_run} (must not be lower)",
    )


def _reconstruction(
    check: HarnessCheck, vae: dict[str, Any] | None, reference: dict[str, Any], limits: dict[str, Any]
) -> Verdict:
    """The VAE's mean squared reconstruction error within ``vae_factor`` × the reference's."""
    if vae is None:
        return Verdict(check, False, "the VAE was not trained")
    limit = limits["vae_factor"] * reference["recon_error"]
    return Verdict(
        check,
        vae["recon_error"] <= limit,
        f"mean squared reconstruction error of held-out images {vae['recon_error']:.5f} (must be at most "
        f"{limit:.5f}: {limits['vae_factor']:g}× the reference's {reference['recon_error']:.5f} on this machine)",
    )
