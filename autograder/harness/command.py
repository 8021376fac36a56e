"""``python -m autograder harness SUBMISSION --profile {ci,cpu,gpu} --out DIR``.

Trains the provided denoiser with the submission's schedule, loss and label dropout, samples with
its DDPM loop, DDIM at several step counts and η, and classifier-free guidance at several scales
(:mod:`autograder.harness.runner`, sandboxed), scores the samples (:mod:`autograder.harness.scoring`),
draws the figures (:mod:`autograder.harness.plots`) and writes to ``DIR``:

- ``harness.json``: every metric, the baselines, the timings, the verdicts;
- ``samples_<plan>.png``, ``steps_<plan>.png``, ``guidance_<plan>.png``;
- ``results.json``: the harness's tests and points added to the one ``grade`` wrote there for the
  same submission (a new one otherwise), with the metrics under ``leaderboard`` and ``extra_data.harness``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from autograder import intake
from autograder.grading import write_json_atomically
from autograder.harness import plots, runner, scoring
from autograder.harness.profiles import PROFILES, Profile, image_data
from autograder.reference import load_reference
from autograder.submission import StudentError

REFERENCE = load_reference()
HARNESS_TAG = "harness"


def run_profile(submission: Path, profile_name: str, out: Path, threads: int | None = None) -> dict[str, Any]:
    """Run every plan of the profile on ``submission``; write the figures; return the report (see the module)."""
    with runner.overlay(submission, REFERENCE.PARTS) as package:
        return _run_profile(package, PROFILES[profile_name], out, threads)


def _run_profile(package: Path, profile: Profile, out: Path, threads: int | None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    stubs = runner.unfinished_functions(package)
    report: dict[str, Any] = {
        "profile": profile.name,
        "description": profile.description,
        "not_implemented": stubs,
        "plans": {},
    }
    for plan_name, plan in profile.plans.items():
        start = time.perf_counter()
        plan = {"data": image_data(), **plan} if "data" not in plan else dict(plan)
        plan["threads"] = threads or os.cpu_count() or 1
        limits = scoring.thresholds(profile.name, plan_name)
        try:
            run = runner.run_plan(package, plan, profile.limits)
        except StudentError as error:
            run = {"train": {"error": f"{error.error_type}: {error.message}", "losses": []}, "runs": {}}
        if run["train"]["error"] is None:
            scores = scoring.score_run(run, plan["data"])
            figures = [
                *plots.plot_samples(run, out, plan_name),
                plots.plot_steps(scores, out / f"steps_{plan_name}.png"),
                plots.plot_guidance(scores, out / f"guidance_{plan_name}.png"),
            ]
            if "vae" in run:
                figures.append(plots.plot_reconstructions(run, out / f"reconstructions_{plan_name}.png"))
        else:
            scores, figures = {"runs": {}}, []
        verdicts = [] if limits is None else scoring.judge(run, scores, limits, stubs)
        report["plans"][plan_name] = {
            "seconds": time.perf_counter() - start,
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


def merge_results(results_path: Path, report: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """``results.json`` with the harness's tests, points, leaderboard and metrics added (replacing any earlier
    harness entries); a fresh one when the file is missing or was written for another submission."""
    results: dict[str, Any] = {"score": 0.0, "output": "", "tests": [], "extra_data": {}}
    if results_path.is_file():
        earlier = json.loads(results_path.read_text(encoding="utf-8"))
        if earlier.get("extra_data", {}).get("submission_sha256") == fingerprint:
            results = earlier
    results["tests"] = [t for t in results.get("tests", []) if HARNESS_TAG not in t.get("tags", [])]
    leaderboard = []
    for plan_name, plan in report["plans"].items():
        for v in plan["verdicts"]:
            results["tests"].append(
                {
                    "name": f"Harness ({plan_name}): {v['check']}",
                    "score": v["score"],
                    "max_score": v["max_score"],
                    "status": "passed" if v["passed"] else "failed",
                    "output": f"{v['title']}\n{v['message']}",
                    "visibility": "visible",
                    "tags": [HARNESS_TAG],
                }
            )
        for run_name, entry in plan["scores"].get("runs", {}).items():
            if "distance" in entry:
                leaderboard.append(
                    {
                        "name": f"{plan_name} {run_name} {entry['metric']} distance",
                        "value": round(entry["distance"], 6),
                        "order": "asc",
                    }
                )
    results["score"] = round(sum(t["score"] for t in results["tests"]), 4)
    results["leaderboard"] = leaderboard
    results.setdefault("extra_data", {})["harness"] = report
    results["extra_data"]["submission_sha256"] = fingerprint
    results["output"] = (results.get("output", "").split("\n\nharness, profile")[0] + "\n\n" + table(report)).lstrip()
    return results


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harness SUBMISSION --profile P --out DIR``."""
    parser = subparsers.add_parser(
        "harness", help="train briefly with the submission's code, sample with its samplers, score the samples"
    )
    parser.add_argument("submission", type=Path, help="a submission: a directory, a .zip or the .py files' folder")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci", help="how much to train (default: ci)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="directory for results.json and figures")
    parser.add_argument("--threads", type=int, help="CPU threads for training and sampling (default: all cores)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with intake.staged([args.submission]) as staged:
        if staged.package is None:
            print(f"not run: {staged.problem}")
            return 1
        report = run_profile(staged.package, args.profile, args.out, args.threads)
    results = merge_results(args.out / "results.json", report, intake.fingerprint([args.submission]))
    write_json_atomically(args.out / "results.json", _plain(results))
    print(table(report))
    print(f"wrote {args.out / 'results.json'} and the figures in {args.out}/")
    return 0


def _plain(value: Any) -> Any:
    """``value`` with tensors made lists (the labels of a run), for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value
