"""Grade one submission with the hidden checks and report in Gradescope's ``results.json`` schema.

Stages: stage a safe copy of the submission as handed in (:mod:`autograder.intake`), run each
registered check with the student's code in a sandboxed worker (:mod:`autograder.remote`; in this
process only for trusted code such as the bug zoo's edits of the reference), never letting a
failure of the student's code or of one check stop the others; total the points per part, write
``results.json`` atomically and print the per-part table. A submission that cannot be graded at
all still gets a valid score-0 ``results.json`` that says why.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from hypothesis.errors import Flaky

from autograder import checks, intake
from autograder.checks.framework import Check, CheckFailed
from autograder.parts import PARTS
from autograder.reference import ROOT, SOLUTIONS
from autograder.remote import RemoteSubmission
from autograder.sandbox import Limits, isolation
from autograder.submission import LocalSubmission, StudentError, Submission


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: the points earned and the feedback shown to the student."""

    check: Check
    score: float
    output: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.score == self.check.points


def _first_leaf(error: BaseException) -> BaseException:
    """The first concrete exception inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _counterexample(error: BaseException) -> str:
    notes = [n for n in getattr(error, "__notes__", []) if n.startswith("Falsifying example")]
    return f"\n  {notes[0]}" if notes else ""


def run_check(check: Check, submission: Submission) -> CheckResult:
    """Run one check and time it; every outcome becomes a :class:`CheckResult`, never an exception."""
    start = time.perf_counter()
    score, output = _verdict(check, submission)
    return CheckResult(check, score, output, time.perf_counter() - start)


def _verdict(check: Check, submission: Submission) -> tuple[float, str]:
    try:
        check.run(submission)
    except BaseException as raised:  # noqa: BLE001 - a check's failure must not stop grading
        if isinstance(raised, KeyboardInterrupt):
            raise
        error = _first_leaf(raised)
        if isinstance(error, CheckFailed):
            output = str(error)
        elif isinstance(error, StudentError):
            stub = " (this function is still the stub: implement it)" if error.not_implemented else ""
            output = f"your code raised an error{stub}:\n  {error}{_counterexample(error)}"
        elif isinstance(error, Flaky):
            output = (
                "your function gave different results for the same inputs; it must depend only on its "
                "arguments (use the given noise= or generator=, never the global random state)"
            )
        else:
            output = f"the answer could not be checked: {type(error).__name__}: {error}{_counterexample(error)}"
        return 0.0, f"{check.title}\n{output}"
    return check.points, check.title


@dataclass(frozen=True)
class GradeReport:
    """Every check's result for one submission, and what happened while grading it."""

    results: tuple[CheckResult, ...]
    output: str
    execution_time: float
    status: str = "graded"
    """``graded``, or ``not graded`` when there was nothing to grade (``problem`` says why)."""
    problem: str = ""
    """Why the submission was not graded."""
    notes: tuple[str, ...] = ()
    """What staging the submission skipped or found wrong (see :mod:`autograder.intake`)."""
    fingerprint: str = ""
    """SHA-256 of the submission as handed in."""

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
    results = []
    try:
        for check in selected:
            submission.next_check()
            results.append(run_check(check, submission))
            if fail_fast and not results[-1].passed:
                break
    finally:
        if sandboxed:
            submission.close()
    how = isolation().description if sandboxed else "in the grader's process (trusted code only)"
    return GradeReport(tuple(results), f"Student code ran {how}.", time.perf_counter() - start)


def _selected(parts: Collection[str] | None) -> list[Check]:
    return [c for c in checks.all_checks() if parts is None or c.part in parts]


def not_graded(
    problem: str, seconds: float = 0.0, parts: Collection[str] | None = None, status: str = "not graded"
) -> GradeReport:
    """A score-0 report in which every check says why the submission was not graded."""
    results = tuple(CheckResult(c, 0.0, f"{c.title}\nnot graded: {problem}") for c in _selected(parts))
    return GradeReport(results, f"Not graded: {problem}", seconds, status=status, problem=problem)


def grade_submission(
    sources: Sequence[Path],
    parts: Collection[str] | None = None,
    sandboxed: bool = True,
    limits: dict[str, Limits] | None = None,
) -> GradeReport:
    """Grade a submission as handed in (a directory, a ``.zip`` or ``.py`` files): stage a safe copy of it
    (:mod:`autograder.intake`), grade that, and report what staging skipped alongside the scores."""
    start = time.perf_counter()
    with intake.staged(sources) as staged:
        if staged.problem:
            report = not_graded(staged.problem, time.perf_counter() - start, parts)
        else:
            report = grade(staged.package, parts, sandboxed=sandboxed, limits=limits)
    output = f"Submission: {', '.join(Path(s).name for s in sources)}\n{report.output}"
    return replace(report, output=output, notes=staged.notes, fingerprint=intake.fingerprint(sources))


@functools.cache
def kit_version() -> str:
    """SHA-256 of the grader's code and the reference: a batch regrades when either changed."""
    digest = hashlib.sha256()
    for root in (ROOT / "autograder", SOLUTIONS / "diffusion"):
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def results_json(report: GradeReport) -> dict:
    """The report in Gradescope's schema: ``score``, ``execution_time``, ``output`` and ``tests[]``."""
    number = {part.name: part.number for part in PARTS}
    notes = "".join(f"\nNote: {note}" for note in report.notes)
    return {
        "score": round(report.score, 4),
        "execution_time": round(report.execution_time, 3),
        "output": report.output + notes + "\n\n" + part_table(report),
        "extra_data": {
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
            {
                "name": f"Part {number[r.check.part]} ({r.check.part}): {r.check.name}",
                "score": r.score,
                "max_score": r.check.points,
                "status": "passed" if r.passed else "failed",
                "output": r.output,
                "visibility": "visible",
                "tags": [r.check.part],
            }
            for r in report.results
        ],
    }


def part_table(report: GradeReport) -> str:
    """A per-part table of points and passed checks."""
    lines = [f"{'part':<14}{'points':>14}{'checks passed':>16}"]
    for part in PARTS:
        results = [r for r in report.results if r.check.part == part.name]
        earned, available = report.part_scores()[part.name]
        passed = sum(r.passed for r in results)
        label = f"{part.number} {part.name}"
        lines.append(f"{label:<14}{earned:>7.1f} / {available:<5.1f}{passed:>9} / {len(results):<5}")
    lines.append(f"{'total':<14}{report.score:>7.1f} / {sum(a for _, a in report.part_scores().values()):<5.1f}")
    return "\n".join(lines)


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` so a reader never sees half a file (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
        json.dump(payload, tmp, indent=2, ensure_ascii=False)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``grade SUBMISSION --out DIR``."""
    parser = subparsers.add_parser(
        "grade",
        help="grade one submission with the hidden checks",
        description="Grade SUBMISSION (a directory or .zip holding diffusion/ or its .py files laid flat, or the "
        ".py files themselves) and write DIR/results.json in Gradescope's schema. Exit code 0 whenever grading "
        "ran, whatever the score; a submission that cannot be graded gets a score-0 results.json saying why.",
    )
    parser.add_argument(
        "submission", type=Path, nargs="+", help="the submission: a directory, a .zip, or its .py files"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for results.json")
    parser.add_argument(
        "--limits",
        type=Path,
        help="TOML file of worker limits: a [default] table and one per part, with keys "
        + ", ".join(f.name for f in fields(Limits)),
    )
    add_parts_option(parser)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="import the submission into the grader's process, without a sandbox: for trusted code only",
    )
    parser.set_defaults(run=run)


def add_parts_option(parser: argparse.ArgumentParser) -> None:
    """``--parts NAME ...``: grade only these parts (a regrade of one part, a quick trial run)."""
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=[part.name for part in PARTS],
        metavar="PART",
        help="grade only these parts: " + ", ".join(part.name for part in PARTS) + " (default: all)",
    )


def read_limits(path: Path) -> dict[str, Limits]:
    """Per-part limits from a TOML file (``[default]`` and ``[<part>]`` tables).

    Raises:
        ValueError: naming the table or key that is not a part or not a limit.
    """
    tables = tomllib.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Limits)}
    limits = {}
    for table, values in tables.items():
        if table != "default" and table not in {part.name for part in PARTS}:
            raise ValueError(f"{path}: [{table}] is neither [default] nor a part ({', '.join(p.name for p in PARTS)})")
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"{path}: [{table}] has unknown limits {sorted(unknown)}; known: {sorted(known)}")
        limits[table] = replace(Limits(), **values)
    return limits


def run(args: argparse.Namespace) -> int:
    """Grade, write ``results.json``, print the per-part table; 0 whenever grading ran."""
    missing = [str(path) for path in args.submission if not path.exists()]
    if missing:
        print(f"error: {', '.join(missing)} does not exist; pass one submission (a directory, a .zip or .py files)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        limits = read_limits(args.limits) if args.limits else None
    except (OSError, ValueError, tomllib.TOMLDecodeError) as error:
        print(f"error: cannot read the limits: {error}", file=sys.stderr)
        return 2
    report = grade_submission(args.submission, args.parts, sandboxed=not args.in_process, limits=limits)
    path = args.out / "results.json"
    write_json_atomically(path, results_json(report))
    print(report.output)
    for note in report.notes:
        print(f"Note: {note}")
    print(part_table(report))
    print(f"wrote {path} ({report.execution_time:.1f} s)")
    return 0
