"""Grade one submission with the hidden checks.

Stages: stage a safe copy of the submission as handed in (:mod:`autograder.isolation.intake`), run
each registered check with the student's code in a sandboxed worker
(:mod:`autograder.isolation.remote`; in this process only for trusted code such as the bug zoo's
edits of the reference), never letting a failure of the student's code or of one check stop the
others. The :class:`~autograder.results.GradeReport` becomes ``results.json`` in
:mod:`autograder.results`; a submission that cannot be graded at all still gets a score-0 report
that says why.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from hypothesis.errors import Flaky

from autograder import checks
from autograder.checks.framework import Check, CheckFailed
from autograder.isolation import intake
from autograder.isolation.errors import GraderError, StudentError, WorkLimit
from autograder.isolation.remote import RemoteSubmission
from autograder.isolation.submission import LocalSubmission, Submission
from autograder.results import GRADER_ERROR, NOT_GRADED, CheckResult, Failure, GradeReport, Status
from autograder.sandbox.limits import Limits


def _first_leaf(error: BaseException) -> BaseException:
    """The first concrete exception inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _counterexample(error: BaseException) -> str:
    notes = [n for n in getattr(error, "__notes__", []) if n.startswith(("Falsifying example", "Falsifying explicit"))]
    return f"\n  {notes[0]}" if notes else ""


def run_check(check: Check, submission: Submission) -> CheckResult:
    """Run one check and time it; every outcome becomes a :class:`CheckResult`, never an exception."""
    start = time.perf_counter()
    score, output, failure = _verdict(check, submission)
    return CheckResult(check, score, output, time.perf_counter() - start, failure)


def _verdict(check: Check, submission: Submission) -> tuple[float, str, Failure | None]:
    """``(points, feedback, what failed the check or None)``."""
    try:
        check.run(submission)
    except BaseException as raised:  # noqa: BLE001 - a check's failure must not stop grading
        if isinstance(raised, KeyboardInterrupt):
            raise
        error = _first_leaf(raised)
        if isinstance(error, GraderError):
            raise error from None  # the grader's failure ends grading: never a check's zero
        failure: Failure
        if isinstance(error, CheckFailed | WorkLimit):  # a denoiser's limit is the check's verdict, as it says
            failure, output = "check", str(error)
        elif isinstance(error, StudentError) and error.changed_in_place:
            failure, output = "student error", f"{error}{_counterexample(error)}"
        elif isinstance(error, StudentError):
            stub = " (this function is still the stub: implement it)" if error.not_implemented else ""
            failure, output = "student error", f"your code raised an error{stub}:\n  {error}{_counterexample(error)}"
        elif isinstance(error, Flaky):
            failure = "unstable"
            output = (
                "your function gave different results for the same inputs; it must depend only on its "
                "arguments (use the given noise= or generator=, never the global random state)"
            )
        else:
            failure = "grader error"
            output = f"the answer could not be checked: {type(error).__name__}: {error}{_counterexample(error)}"
        return 0.0, f"{check.title}\n{output}", failure
    return check.points, check.title, None


def grade(
    root: Path,
    parts: Collection[str] | None = None,
    fail_fast: bool = False,
    sandboxed: bool = True,
    limits: dict[str, Limits] | None = None,
) -> GradeReport:
    """Grade the submission in ``root`` (a ``diffusion/`` package or its ``.py`` files laid flat).

    Args:
        parts: grade only these parts (default: all).
        fail_fast: stop at the first failed check (the bug zoo asks only *whether* a mutant is caught).
        sandboxed: run the student's code in sandboxed workers; ``False`` imports it into this
            process, for trusted code only (the reference and its bug-zoo edits).
        limits: the workers' limits per part name (``"default"`` for the rest).
    """
    start = time.perf_counter()
    selected = _selected(parts)
    try:
        submission = RemoteSubmission(root, limits) if sandboxed else LocalSubmission(root)
    except FileNotFoundError as error:
        return not_graded(str(error), time.perf_counter() - start, parts)
    except GraderError as error:
        return not_graded(str(error), time.perf_counter() - start, parts, status=GRADER_ERROR)
    results = []
    try:
        for check in selected:
            submission.next_check()
            results.append(run_check(check, submission))
            if fail_fast and not results[-1].passed:
                break
    except GraderError as error:
        return not_graded(str(error), time.perf_counter() - start, parts, status=GRADER_ERROR)
    finally:
        if sandboxed:
            submission.close()
    how = submission.protections if sandboxed else "in the grader's process (trusted code only)"
    return GradeReport(tuple(results), "", time.perf_counter() - start, diagnostics=f"Student code ran {how}.")


def _selected(parts: Collection[str] | None) -> list[Check]:
    return [c for c in checks.all_checks() if parts is None or c.part in parts]


def not_graded(
    problem: str, seconds: float = 0.0, parts: Collection[str] | None = None, status: Status = NOT_GRADED
) -> GradeReport:
    """A score-0 report in which every check says why the submission was not graded."""
    failure: Failure = "grader error" if status == GRADER_ERROR else "not graded"
    results = tuple(CheckResult(c, 0.0, f"{c.title}\nnot graded: {problem}", failure=failure) for c in _selected(parts))
    return GradeReport(results, f"Not graded: {problem}", seconds, status=status, problem=problem)


def grade_submission(
    sources: Sequence[Path],
    parts: Collection[str] | None = None,
    sandboxed: bool = True,
    limits: dict[str, Limits] | None = None,
) -> GradeReport:
    """Grade a submission as handed in (a directory, a ``.zip`` or ``.py`` files): stage a safe copy of it
    (:mod:`autograder.isolation.intake`), grade that, and report what staging skipped alongside the scores."""
    start = time.perf_counter()
    with intake.staged(sources) as staged:
        if staged.problem:
            report = not_graded(staged.problem, time.perf_counter() - start, parts)
        else:
            report = grade(staged.package, parts, sandboxed=sandboxed, limits=limits)
    output = f"Submission: {', '.join(Path(s).name for s in sources)}\n{report.output}".rstrip("\n")
    return replace(report, output=output, notes=staged.notes, fingerprint=intake.fingerprint(sources))
