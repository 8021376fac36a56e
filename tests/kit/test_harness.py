"""The harness: the reference trains and samples to full harness points in the ci profile, sampler
mistakes of the bug zoo lose points there, stubs are reported part by part, and the harness's points
join the ones ``grade`` wrote."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autograder.harness.pipeline import harness_results
from autograder.results import HARNESS_TAG, read_results
from autograder.zoo import MUTANTS
from autograder.zoo.validation import apply
from tests.plugin import ROOT

SAMPLER_MUTANTS = {"p_sample_variance_not_std": "ddpm_quality", "step_alpha_bar_prev_from_t_minus_1": "ddim_quality"}
"""Sampler mistakes of the bug zoo and the harness check each must fail (thresholds.toml has their figures)."""


def harness(submission, out) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "harness", str(submission), "--profile", "ci", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "results.json").read_text())


def verdicts(results: dict) -> dict[str, dict]:
    return {t["name"].split(": ")[1]: t for t in results["tests"] if HARNESS_TAG in t["tags"]}


def test_the_reference_gets_full_harness_points_with_figures(tmp_path):
    results = harness(ROOT / "solutions", tmp_path)
    tests = verdicts(results)
    assert set(tests) == {"training", "ddpm_quality", "ddim_quality", "cfg_accuracy"}
    assert all(t["status"] == "passed" for t in tests.values()), [t["output"] for t in tests.values()]
    assert results["score"] == sum(t["max_score"] for t in tests.values())
    for figure in ("samples", "steps", "guidance"):
        assert (tmp_path / f"{figure}_mixture2d.png").stat().st_size > 10_000
    names = {entry["name"] for entry in results["leaderboard"]}
    assert {"mixture2d ddpm energy distance", "mixture2d ddim_50_0 energy distance"} <= names
    scores = results["extra_data"]["harness"]["plans"]["mixture2d"]["scores"]
    assert scores["floor"] < scores["ceiling"] / 10 and scores["runs"]["ddpm"]["distance"] < scores["ceiling"] / 10


@pytest.mark.parametrize("name", sorted(SAMPLER_MUTANTS))
def test_a_subtly_wrong_sampler_loses_harness_points(tmp_path, name):
    mutant = next(m for m in MUTANTS if m.name == name)
    results = harness(apply((mutant.edit,), tmp_path / "submission"), tmp_path / "out")
    tests = verdicts(results)
    assert tests[SAMPLER_MUTANTS[name]]["status"] == "failed", tests[SAMPLER_MUTANTS[name]]["output"]
    assert tests["training"]["status"] == "passed"


def test_stubs_are_reported_part_by_part(tmp_path):
    results = harness(ROOT / "assignments", tmp_path)
    tests = verdicts(results)
    assert results["score"] == 0
    assert "training failed: NotImplementedError" in tests["training"]["output"]
    assert "schedules.linear_betas" in tests["training"]["output"] and "losses.ddpm_loss" in tests["training"]["output"]
    assert "ddpm.p_sample_loop" in tests["ddpm_quality"]["output"]
    assert "ddim.ddim_sample_loop" in tests["ddim_quality"]["output"]
    assert "guidance.cfg_eps" in tests["cfg_accuracy"]["output"]


def test_harness_points_join_the_grade_results_of_the_same_submission(tmp_path):
    grade = {
        "score": 100.0,
        "output": "graded",
        "tests": [{"name": "Part 1 (schedules): x", "score": 100.0, "max_score": 100.0, "tags": ["schedules"]}],
        "extra_data": {"submission_sha256": "abc"},
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(grade))
    report = {
        "profile": "ci",
        "description": "test",
        "plans": {
            "p": {
                "scores": {"runs": {"ddpm": {"metric": "energy", "distance": 0.001}}},
                "verdicts": [
                    {"check": "c", "title": "t", "score": 2.0, "max_score": 2.0, "passed": True, "message": "m"}
                ],
            }
        },
    }
    merged = harness_results(read_results(path), report, "abc")
    assert merged["score"] == 102.0 and len(merged["tests"]) == 2
    assert merged["leaderboard"] == [{"name": "p ddpm energy distance", "value": 0.001, "order": "asc"}]
    assert merged["output"].startswith("graded\n\nharness, profile ci: test")
    path.write_text(json.dumps(merged))
    again = harness_results(read_results(path), report, "abc")  # a second harness run replaces the first
    assert again["score"] == 102.0 and again["output"] == merged["output"]
    assert harness_results(read_results(path), report, "another submission")["score"] == 2.0
