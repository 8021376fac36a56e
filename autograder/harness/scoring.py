"""Scores of a harness run and its points.

For the 2-D mixture a run's samples are compared with fresh draws from the true mixture, with the
same labels: the energy distance (:func:`autograder.oracle.energy_distance`; lower is better) and
the class accuracy (the share of samples nearest their own label's component). Every score comes
with two baselines: the floor (a second draw of real data) and the ceiling (standard normal noise).

The points are those of :data:`HARNESS_CHECKS`; their thresholds are in ``thresholds.toml``, next to
the reference's measured values and the margin.
"""

from __future__ import annotations

import importlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autograder.oracle import energy_distance
from autograder.reference import load_reference

REFERENCE = load_reference()
data = importlib.import_module("diffusion.data")
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


def thresholds(profile: str, plan: str) -> dict[str, float]:
    """The thresholds of ``plan`` in ``profile`` (``thresholds.toml``)."""
    table = tomllib.loads(THRESHOLDS.read_text(encoding="utf-8"))
    try:
        return table[profile][plan]
    except KeyError:
        raise KeyError(f"{THRESHOLDS} has no thresholds for [{profile}.{plan}]") from None


def mixture_scores(run: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Per sampler run: energy distance to the true mixture and class accuracy; with the baselines."""
    mixture = data.default_mixture()
    labels = run["labels"]
    n = int(labels.shape[0])

    def truth(offset: int) -> torch.Tensor:
        return mixture.sample(n, generator=torch.Generator().manual_seed(10_000 + seed + offset), y=labels)[0]

    real = truth(0)
    scores: dict[str, Any] = {
        "floor": energy_distance(truth(1), real),
        "ceiling": energy_distance(torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)), real),
        "runs": {},
    }
    for name, result in run["runs"].items():
        entry = {k: v for k, v in result.items() if k != "samples"}
        samples = result.get("samples")
        if samples is not None:
            if bool(torch.isfinite(samples).all()):
                nearest = torch.cdist(samples.double(), mixture.means).argmin(dim=1)
                entry["energy_distance"] = energy_distance(samples, real)
                entry["accuracy"] = float((nearest == labels).double().mean())
            else:
                entry["error"] = "the samples hold NaN or inf"
            entry["seconds_per_sample"] = result["seconds"] / n
        scores["runs"][name] = entry
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
    trained = math.isfinite(last) and last <= limits["loss_ratio"] * first
    verdicts.append(
        Verdict(
            checks["training"],
            trained,
            f"mean loss {first:.4f} over the first steps, {last:.4f} over the last (must fall below "
            f"{limits['loss_ratio']:g}× the first)",
        )
    )
    for check, run_name in (("ddpm_quality", "ddpm"), ("ddim_quality", limits["ddim_run"])):
        entry = runs.get(run_name, {"error": "not run"})
        if "error" in entry:
            verdicts.append(Verdict(checks[check], False, f"{run_name}: {entry['error']}"))
            continue
        distance, limit = entry["energy_distance"], limits[f"{check}_energy"]
        verdicts.append(
            Verdict(
                checks[check],
                distance <= limit,
                f"{run_name}: energy distance to the data {distance:.5f} (must be at most {limit}; real data "
                f"{scores['floor']:.5f}, noise {scores['ceiling']:.3f})",
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
