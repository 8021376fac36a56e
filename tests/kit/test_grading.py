"""The grader's entry point: Gradescope's schema, both submission layouts, clear failures, determinism."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from autograder.grading import grade
from autograder.parts import PARTS
from autograder.results import results_json
from autograder.zoo import MUTANTS
from autograder.zoo.validation import apply
from tests.plugin import ROOT

TEST_KEYS = {"name", "score", "max_score", "status", "output", "visibility", "tags"}


def run_grade(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder", "grade", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_points_add_up_to_100_and_match_the_parts():
    """Each part's checks are worth exactly the part's points, and the parts 100 in all."""
    from autograder.checks import all_checks

    assert sum(part.points for part in PARTS) == 100
    for part in PARTS:
        points = sum(c.points for c in all_checks() if c.part == part.name)
        assert points == part.points, f"the checks of {part.name} are worth {points}, the part {part.points}"


def test_part_names_are_the_packages():
    """The grader's parts are the student package's modules, in the same order."""
    import diffusion

    assert tuple(part.name for part in PARTS) == diffusion.PARTS


def test_flat_files_are_graded_like_a_package(tmp_path):
    """Gradescope lays the .py files flat: same scores as the package layout."""
    for source in (ROOT / "solutions" / "diffusion").glob("*.py"):
        shutil.copy(source, tmp_path / source.name)
    flat = grade(tmp_path, parts={"forward", "embedding"})
    assert flat.score == sum(p.points for p in PARTS if p.name in {"forward", "embedding"})


def test_cli_writes_gradescope_results_and_exits_0(tmp_path):
    """`grade` writes results.json in Gradescope's schema and prints the per-part table, exit 0 even at score 0."""
    submission = tmp_path / "submission"
    shutil.copytree(ROOT / "assignments" / "diffusion", submission / "diffusion")
    done = run_grade(str(submission), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["score"] == 0
    assert {"score", "execution_time", "output", "tests"} <= results.keys()
    assert results["tests"], "no tests in results.json"
    for test in results["tests"]:
        assert test.keys() == TEST_KEYS, test.keys()
        assert test["status"] == "failed" and test["score"] == 0
        assert test["tags"][0] in {part.name for part in PARTS}
        assert "still the stub" in test["output"], test["output"]
    for part in PARTS:
        assert f"{part.number} {part.name}" in done.stdout


def test_missing_submission_is_a_clear_error(tmp_path):
    done = run_grade(str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr


def test_submission_without_code_scores_zero_with_a_reason(tmp_path):
    """A directory with no part module still gets a valid score-0 results.json that says why."""
    (tmp_path / "README.txt").write_text("nothing here")
    results = results_json(grade(tmp_path))
    assert results["score"] == 0
    assert "no part of the assignment found" in results["output"]
    assert all("no part of the assignment found" in test["output"] for test in results["tests"])


@pytest.mark.parametrize("mutant", MUTANTS[:1], ids=lambda m: m.name)
def test_grading_twice_gives_identical_scores_and_feedback(tmp_path, mutant):
    """Same submission, same verdict: Hypothesis is derandomized and no state is kept between runs."""
    root = apply((mutant.edit,), tmp_path)
    first, second = (results_json(grade(root, parts={mutant.edit.part})) for _ in range(2))
    for results in (first, second):  # wall-clock figures differ between runs; the verdicts must not
        results.pop("execution_time")
        results["extra_data"].pop("part_seconds")
    assert first == second
    assert first["score"] < sum(p.points for p in PARTS if p.name == mutant.edit.part)


def test_limits_file_sets_limits_per_part_and_rejects_unknown_names(tmp_path):
    from autograder.cli.options import read_limits

    path = tmp_path / "limits.toml"
    path.write_text("[default]\nwall_seconds = 30\n[ddpm]\nwall_seconds = 300\ncpu_seconds = 900\n")
    limits = read_limits(path)
    assert limits["default"].wall_seconds == 30 and limits["ddpm"].cpu_seconds == 900
    path.write_text("[dpm]\nwall_seconds = 3\n")
    with pytest.raises(ValueError, match=r"\[dpm\] is neither"):
        read_limits(path)
    path.write_text("[ddpm]\nwall = 3\n")
    with pytest.raises(ValueError, match="unknown limits"):
        read_limits(path)
    done = run_grade(str(ROOT / "solutions"), "--out", str(tmp_path / "out"), "--limits", str(path))
    assert done.returncode == 2 and "unknown limits" in done.stderr
