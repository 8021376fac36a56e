"""``results.json``: the one place it is built, merged with the harness's tests, read and written.

The schema is Gradescope's (``score``, ``execution_time``, ``output``, ``tests[]`` with ``name``,
``score``, ``max_score``, ``status``, ``output``, ``visibility``, ``tags``; checked against
``gradescope_results.schema.json``), with the kit's bookkeeping under ``extra_data``: the
grading :data:`Status`, the problem and notes, the parts graded and their points and seconds, the
SHA-256 of the submission and of the kit (a batch's resumability rests on these), the grader's
diagnostics (how the student's code was isolated) and the harness's report when it ran.

What students see on Gradescope is ``output`` and the tests (as their ``visibility`` allows); the
diagnostics go only where instructors look: ``extra_data`` and the grader's standard output, whose
``stdout_visibility`` is ``hidden``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autograder.checks.framework import Check
from autograder.files import write_atomically
from autograder.parts import PART_BY_NAME, PARTS
from autograder.reference import ROOT, SOLUTIONS

Failure = Literal["check", "student error", "unstable", "grader error", "not graded"]
"""What failed a check: see :attr:`CheckResult.failure`."""
Status = Literal["graded", "not graded", "grader error"]
"""How grading went: ``graded``; ``not graded`` (nothing to grade: ``problem`` says why); ``grader error``
(the grader itself failed: the submission is graded again by the next batch)."""
GRADED: Status = "graded"
NOT_GRADED: Status = "not graded"
GRADER_ERROR: Status = "grader error"
Visibility = Literal["visible", "after_due_date", "after_published", "hidden"]
"""When Gradescope shows a test to the student: at once, after the due date, after grades are published, never."""
VISIBILITIES: tuple[Visibility, ...] = ("visible", "after_due_date", "after_published", "hidden")
HARNESS_TAG = "harness"
"""The tag of the harness's tests, which a new harness run replaces."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: the points earned and the feedback shown to the student."""

    check: Check
    score: float
    output: str
    seconds: float = 0.0
    failure: Failure | None = None
    """What failed the check (``None`` when it passed): its verdict on the answer (a
    :class:`~autograder.checks.framework.CheckFailed`), an error of the student's code, an answer that changed
    between equal calls, an error of the check itself, or no grading at all."""

    @property
    def passed(self) -> bool:
        return self.score == self.check.points


@dataclass(frozen=True)
class GradeReport:
    """Every check's result for one submission, and what happened while grading it."""

    results: tuple[CheckResult, ...]
    output: str
    execution_time: float
    status: Status = GRADED
    problem: str = ""
    """Why the submission was not graded."""
    notes: tuple[str, ...] = ()
    """What staging the submission skipped or found wrong (see :mod:`autograder.isolation.intake`)."""
    fingerprint: str = ""
    """SHA-256 of the submission as handed in."""
    diagnostics: str = ""
    """How the student's code ran (sandboxed or not, which limits held): for instructors, never in ``output``."""

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    def part_seconds(self) -> dict[str, float]:
        """``part -> seconds`` spent in its checks."""
        seconds = {part.name: 0.0 for part in PARTS}
        for result in self.results:
            seconds[result.check.part] += result.seconds
        return seconds

    def part_scores(self) -> dict[str, tuple[float, float]]:
        """``part -> (points earned, points available)`` in handout order."""
        totals = {part.name: [0.0, 0.0] for part in PARTS}
        for result in self.results:
            totals[result.check.part][0] += result.score
            totals[result.check.part][1] += result.check.points
        return {name: (earned, available) for name, (earned, available) in totals.items()}


def gradescope_test(name: str, score: float, max_score: float, output: str, tag: str) -> dict[str, Any]:
    """One entry of ``tests[]``: passed when it earned all its points."""
    return {
        "name": name,
        "score": score,
        "max_score": max_score,
        "status": "passed" if score == max_score else "failed",
        "output": output,
        "visibility": "visible",
        "tags": [tag],
    }


@functools.cache
def kit_version() -> str:
    """SHA-256 of the grader's code and the reference: a batch regrades when either changed."""
    digest = hashlib.sha256()
    for root in (ROOT / "autograder", SOLUTIONS / "diffusion"):
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def results_json(report: GradeReport) -> dict[str, Any]:
    """The report in Gradescope's schema (see the module)."""
    notes = "".join(f"\nNote: {note}" for note in report.notes)
    return {
        "score": round(report.score, 4),
        "execution_time": round(report.execution_time, 3),
        "output": report.output + notes + "\n\n" + part_table(report),
        "stdout_visibility": "hidden",
        "extra_data": {
            "diagnostics": report.diagnostics,
            "status": report.status,
            "problem": report.problem,
            "parts": sorted({r.check.part for r in report.results}),
            "notes": list(report.notes),
            "part_scores": {part: earned for part, (earned, _) in report.part_scores().items()},
            "part_seconds": {part: round(s, 3) for part, s in report.part_seconds().items()},
            "submission_sha256": report.fingerprint,
            "kit_version": kit_version(),
        },
        "tests": [
            gradescope_test(
                f"Part {PART_BY_NAME[r.check.part].number} ({r.check.part}): {r.check.name}",
                r.score,
                r.check.points,
                r.output,
                r.check.part,
            )
            for r in report.results
        ],
    }


def with_visibility(results: dict[str, Any], visibility: Visibility) -> dict[str, Any]:
    """``results`` with every test, and the default of tests added later, shown to students as ``visibility`` says.

    Raises:
        ValueError: for a visibility Gradescope does not know.
    """
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}; got {visibility!r}")
    tests = [{**test, "visibility": visibility} for test in results.get("tests", [])]
    return {**results, "visibility": visibility, "tests": tests}


def part_table(report: GradeReport) -> str:
    """A per-part table of points and passed checks."""
    lines = [f"{'part':<14}{'points':>14}{'checks passed':>16}"]
    scores = report.part_scores()
    for part in PARTS:
        results = [r for r in report.results if r.check.part == part.name]
        earned, available = scores[part.name]
        passed = sum(r.passed for r in results)
        label = f"{part.number} {part.name}"
        lines.append(f"{label:<14}{earned:>7.1f} / {available:<5.1f}{passed:>9} / {len(results):<5}")
    lines.append(f"{'total':<14}{report.score:>7.1f} / {sum(a for _, a in scores.values()):<5.1f}")
    return "\n".join(lines)


def with_harness(
    earlier: dict[str, Any] | None,
    fingerprint: str,
    tests: list[dict[str, Any]],
    leaderboard: list[dict[str, Any]],
    report: dict[str, Any],
    section: str,
) -> dict[str, Any]:
    """``earlier`` (the ``results.json`` ``grade`` wrote) with the harness's ``tests``, ``leaderboard``,
    ``report`` (under ``extra_data.harness``) and its ``section`` of the output added, replacing those of an
    earlier harness run; a fresh result when ``earlier`` is ``None`` or was written for another submission."""
    results: dict[str, Any] = {"score": 0.0, "output": "", "tests": [], "extra_data": {}}
    if earlier is not None and earlier.get("extra_data", {}).get("submission_sha256") == fingerprint:
        results = earlier
    extra = results.setdefault("extra_data", {})
    output = results.get("output", "")
    previous = extra.get("harness_output")
    if previous and output.endswith(previous):
        output = output.removesuffix(previous).rstrip("\n")
    if "visibility" in results:  # the harness's tests are shown as the grade's are
        tests = [{**test, "visibility": results["visibility"]} for test in tests]
    results["tests"] = [t for t in results.get("tests", []) if HARNESS_TAG not in t.get("tags", [])] + tests
    results["score"] = round(sum(t["score"] for t in results["tests"]), 4)
    results["leaderboard"] = leaderboard
    results["output"] = f"{output}\n\n{section}".lstrip()
    extra.update(harness=report, harness_output=section, submission_sha256=fingerprint)
    return results


def read_results(path: Path) -> dict[str, Any] | None:
    """The ``results.json`` at ``path``, or ``None`` when it is missing or not a JSON object."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` to ``path`` atomically (a reader never sees half of it)."""
    write_atomically(path, json.dumps(results, indent=2, ensure_ascii=False))
