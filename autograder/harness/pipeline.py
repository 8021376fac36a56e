"""The harness's pipeline for one submission (``python -m autograder harness``, :mod:`autograder.cli.harness`).

Trains the provided denoiser with the submission's schedule, loss and label dropout, samples with
its DDPM loop, DDIM at several step counts and η, and classifier-free guidance at several scales
(:mod:`autograder.harness.experiment`: the grader holds the data, model, optimiser and clock, the
student's functions run sandboxed), in every plan of the profile: the 2-D mixture, and in pixel and latent space
for images. It scores the samples (:mod:`autograder.harness.judging`), judges them against the reference
solution's scores through the same plans on this machine (:mod:`autograder.harness.calibration`, measured first
when not cached), draws the figures (:mod:`autograder.harness.plots`) and writes to ``DIR``:

- ``harness.json``: every metric, the baselines, the timings, the verdicts;
- ``samples_<plan>.png``, ``steps_<plan>.png``, ``guidance_<plan>.png``, ``reconstructions_<plan>.png``;
- ``results.json``: the harness's tests and points added to the one ``grade`` wrote there for the
  same submission (a new one otherwise), with the metrics under ``leaderboard`` and every metric under
  ``extra_data.harness``.

Each plan's calls get a wall-time limit sized from the plan (:mod:`autograder.harness.budget`). When the grader
cannot run a plan (its sandbox does not start, or a correct solution ran out of time on a slow machine), or the
reference cannot be calibrated, the report holds ``grader_error`` and no verdicts: the student's points are not
judged on it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from autograder.harness import budget, calibration, experiment, judging, plots, runner
from autograder.harness.profiles import PROFILES, Profile, image_data, installed
from autograder.isolation.errors import GraderError, StudentError
from autograder.reference import SOLUTIONS
from autograder.results import HARNESS_TAG, gradescope_test, with_harness


def harness(
    submission: Path, profile: str, out: Path, threads: int, device: torch.device, recalibrate: bool = False
) -> dict[str, Any]:
    """The report of ``profile`` on ``submission`` (:func:`run_profile`) with its verdicts against the reference's
    scores on ``device`` (cached in :func:`~autograder.harness.calibration.cache_root`; measured first when missing
    or with ``recalibrate``); ``report["calibration"]`` says which."""
    try:
        measured = calibrate(profile, threads, device, recalibrate)
    except GraderError as error:
        return {"profile": profile, "grader_error": str(error), "plans": {}}
    reference = measured.stored
    report = run_profile(submission, profile, out, threads, device)
    report["calibration"] = {"cache": str(measured.path), "reused": measured.reused, **reference["key"]}
    uncalibrated = sorted(set(report["plans"]) - set(reference["plans"]))
    if uncalibrated and "grader_error" not in report:  # e.g. a data set installed since the calibration
        report["grader_error"] = (
            f"the calibration has no plan {', '.join(uncalibrated)}: run `python -m autograder harness calibrate "
            f"--profile {profile}` again"
        )
    if "grader_error" not in report:
        for plan_name, plan in report["plans"].items():
            limits = judging.thresholds(profile, plan_name)
            if limits is not None:
                stubs = report["not_implemented"]
                verdicts = judging.judge(plan["run"], plan["scores"], limits, reference["plans"][plan_name], stubs)
                plan["verdicts"] = [_verdict(v) for v in verdicts]
    for plan in report["plans"].values():
        plan.pop("run", None)
    return report


def _verdict(verdict: judging.Verdict) -> dict[str, Any]:
    return {
        "check": verdict.check.name,
        "title": verdict.check.title,
        "score": verdict.score,
        "max_score": verdict.points,
        "passed": verdict.passed,
        "message": verdict.message,
    }


def calibrate(profile: str, threads: int, device: torch.device, force: bool = False) -> calibration.Calibration:
    """The reference's scores for ``profile`` on ``device`` (:func:`autograder.harness.calibration.calibration`),
    measured by running the profile on the reference solution (its figures kept beside the cache) when not cached
    or with ``force``."""

    def measure(figures: Path) -> dict[str, Any]:
        print(f"harness: calibrating profile {profile} on {device} with the reference solution", flush=True)
        return run_profile(SOLUTIONS, profile, figures, threads, device)

    measured = calibration.calibration(profile, device, calibration.cache_root(), measure, force)
    print(f"harness: {'reusing the' if measured.reused else 'measured the'} calibration {measured.path}", flush=True)
    return measured


def run_profile(
    submission: Path,
    profile_name: str,
    out: Path,
    threads: int,
    device: torch.device,
    only: Sequence[str] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Run every plan of the profile (or the plans named in ``only``, with the seed ``seed`` instead of theirs: for
    ``benchmarks/harness_calibration.py``) on ``submission`` on ``device`` with ``threads`` CPU threads; write the
    figures; return the report (see the module), each plan with its ``run`` (the samples) and ``scores``, no
    verdicts."""
    profile = PROFILES[profile_name]
    plans = {name: plan for name, plan in profile.plans.items() if only is None or name in only}
    if seed is not None:
        plans = {name: {**plan, "seed": seed} for name, plan in plans.items()}
    with runner.overlay(submission) as package:
        return _run_profile(package, replace(profile, plans=plans), out, threads, device)


def _run_profile(package: Path, profile: Profile, out: Path, threads: int, device: torch.device) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    stubs = runner.unfinished_functions(package)
    report: dict[str, Any] = {
        "profile": profile.name,
        "description": profile.description,
        "threads": threads,
        "not_implemented": stubs,
        "plans": {},
        "skipped": {},
    }
    for plan_name, plan in profile.plans.items():
        start = time.perf_counter()
        plan = {"data": image_data(), **plan} if "data" not in plan else dict(plan)
        if plan.pop("optional", False) and not installed(plan["data"]):
            report["skipped"][plan_name] = f"{plan['data']} is not installed here"
            continue
        plan.update(threads=threads, device=str(device))
        call_limits = budget.plan_limits(profile.limits, plan)
        print(
            f"harness: plan {plan_name} on {device}, {threads} CPU thread(s), at most "
            f"{call_limits.wall_seconds:g} s a call",
            flush=True,
        )
        try:
            run = experiment.run_plan(package, plan, call_limits)
        except StudentError as error:
            run = {"train": {"error": f"{error.error_type}: {error.message}", "losses": []}, "runs": {}}
        except GraderError as error:
            report["grader_error"] = f"plan {plan_name}: {error}"
            return report
        if run["train"]["error"] is None:
            scores = judging.score_run(run, plan["data"])
            figures = [
                *plots.plot_samples(run, out, plan_name),
                plots.plot_steps(scores, out / f"steps_{plan_name}.png"),
                plots.plot_guidance(scores, out / f"guidance_{plan_name}.png"),
            ]
            if "vae" in run:
                figures.append(plots.plot_reconstructions(run, out / f"reconstructions_{plan_name}.png"))
        else:
            scores, figures = {"runs": {}}, []
        report["plans"][plan_name] = {
            "seconds": time.perf_counter() - start,
            "device": run.get("device"),
            "plan": run.get("plan"),
            "run": run,
            "train": run["train"],
            "scores": scores,
            "figures": [str(f) for f in figures],
            "verdicts": [],
        }
    return report


def table(report: dict[str, Any]) -> str:
    """The harness's verdicts, one line each, and the total."""
    lines = [f"harness, profile {report['profile']}: {report['description']}"]
    earned = available = 0.0
    for plan_name, plan in report["plans"].items():
        for v in plan["verdicts"]:
            earned, available = earned + v["score"], available + v["max_score"]
            mark = "ok  " if v["passed"] else "FAIL"
            lines.append(f"  {mark} {plan_name}/{v['check']:<14}{v['score']:>4g} / {v['max_score']:<3g} {v['message']}")
    lines.append(f"harness total {earned:g} / {available:g}")
    return "\n".join(lines)


def harness_results(earlier: dict[str, Any] | None, report: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """``results.json`` with the harness's tests, points, leaderboard and metrics added to ``earlier`` (the one
    ``grade`` wrote; see :func:`autograder.results.with_harness`), as plain JSON values."""
    tests, leaderboard = [], []
    for plan_name, plan in report["plans"].items():
        tests += [
            gradescope_test(
                f"Harness ({plan_name}): {v['check']}",
                v["score"],
                v["max_score"],
                f"{v['title']}\n{v['message']}",
                HARNESS_TAG,
            )
            for v in plan["verdicts"]
        ]
        leaderboard += [
            {
                "name": f"{plan_name} {run_name} {entry['metric']} distance",
                "value": round(entry["distance"], 6),
                "order": "asc",
            }
            for run_name, entry in plan["scores"].get("runs", {}).items()
            if "distance" in entry
        ]
    return _plain(with_harness(earlier, fingerprint, tests, leaderboard, report, table(report)))


def _plain(value: Any) -> Any:
    """``value`` with tensors made lists (the labels of a run), for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value
