"""The harness's pipeline for one submission (``python -m autograder harness``, :mod:`autograder.cli.harness`).

Trains the provided denoiser with the submission's schedule, loss and label dropout, samples with
its DDPM loop, DDIM at several step counts and η, and classifier-free guidance at several scales
(:mod:`autograder.harness.experiment`: the grader holds the data, model, optimiser and clock, the
student's functions run sandboxed; a latent plan still runs whole in the sandbox,
:mod:`autograder.harness.runner`, measured only), scores and judges the samples (:mod:`autograder.harness.judging`),
draws the figures (:mod:`autograder.harness.plots`) and writes to ``DIR``:

- ``harness.json``: every metric, the baselines, the timings, the verdicts;
- ``samples_<plan>.png``, ``steps_<plan>.png``, ``guidance_<plan>.png``;
- ``results.json``: the harness's tests and points added to the one ``grade`` wrote there for the
  same submission (a new one otherwise), with the metrics of the grader-owned plans under ``leaderboard``
  and every metric under ``extra_data.harness``.

Each plan's calls get a wall-time limit sized from the plan (:mod:`autograder.harness.budget`). When the grader
cannot run a plan (its sandbox does not start, or a correct solution ran out of time on a slow machine), the report
holds ``grader_error`` and no verdicts of that plan or the next: the student's points are not judged on it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from autograder.harness import budget, experiment, judging, plots, runner
from autograder.harness.profiles import PROFILES, Profile, image_data
from autograder.isolation.errors import GraderError, StudentError
from autograder.results import HARNESS_TAG, gradescope_test, with_harness


def run_profile(submission: Path, profile_name: str, out: Path, threads: int) -> dict[str, Any]:
    """Run every plan of the profile on ``submission`` with ``threads`` CPU threads; write the figures; return the
    report (see the module)."""
    with runner.overlay(submission) as package:
        return _run_profile(package, PROFILES[profile_name], out, threads)


def _run_profile(package: Path, profile: Profile, out: Path, threads: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    stubs = runner.unfinished_functions(package)
    report: dict[str, Any] = {
        "profile": profile.name,
        "description": profile.description,
        "threads": threads,
        "not_implemented": stubs,
        "plans": {},
    }
    for plan_name, plan in profile.plans.items():
        start = time.perf_counter()
        plan = {"data": image_data(), **plan} if "data" not in plan else dict(plan)
        plan["threads"] = threads
        limits = judging.thresholds(profile.name, plan_name)
        owned = not plan.get("latent")  # a latent plan runs whole in the sandbox: its figures are the worker's word
        # The latent plan is one call that runs the whole plan in the sandbox: the profile's own limit.
        call_limits = budget.plan_limits(profile.limits, plan) if owned else profile.limits
        print(
            f"harness: plan {plan_name} on {threads} CPU thread(s), at most {call_limits.wall_seconds:g} s a call",
            flush=True,
        )
        try:
            run = (experiment if owned else runner).run_plan(package, plan, call_limits)
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
        verdicts = [] if limits is None else judging.judge(run, scores, limits, stubs)
        report["plans"][plan_name] = {
            "seconds": time.perf_counter() - start,
            "grader_owned": owned,
            "device": run.get("device"),
            "train": run["train"],
            "scores": scores,
            "figures": [str(f) for f in figures],
            "verdicts": [
                {
                    "check": v.check.name,
                    "title": v.check.title,
                    "score": v.score,
                    "max_score": v.check.points,
                    "passed": v.passed,
                    "message": v.message,
                }
                for v in verdicts
            ],
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
            {"name": f"{plan_name} {run_name} {entry['metric']} distance", "value": round(entry["distance"], 6),
             "order": "asc"}
            for run_name, entry in plan["scores"].get("runs", {}).items()
            if "distance" in entry and plan["grader_owned"]  # never the worker's word
        ]  # fmt: skip
    return _plain(with_harness(earlier, fingerprint, tests, leaderboard, report, table(report)))


def _plain(value: Any) -> Any:
    """``value`` with tensors made lists (the labels of a run), for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value
