"""The bug zoo's validation: the hidden checks must catch every mistake and pass every correct rewrite.

Each :class:`~autograder.mutants.Edit` is a small change to one module of the reference: ``find`` must occur exactly
once in ``solutions/diffusion/<part>.py`` and becomes ``replace``. A *mutant* (``correct=False``)
is a mistake students make and must lose points in its part; a *variant* (``correct=True``) is
a correct implementation written differently and must keep full marks. Part isolation means an
edit to part P can only change part P's score, so each edit is graded on its own part only.

``python -m autograder zoo`` grades the reference (full marks), the stubs (zero), every variant
and every mutant, prints the validation table and exits 1 if any expectation fails.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder.grading import grade
from autograder.mutants import EDITS, Edit
from autograder.parts import PARTS
from autograder.reference import SOLUTIONS

ASSIGNMENTS = SOLUTIONS.parent / "assignments"


def apply(edit: Edit, dest: Path) -> Path:
    """Copy the reference package into ``dest`` with ``edit`` applied; return ``dest``.

    Raises:
        ValueError: if ``edit.find`` does not occur exactly once (the reference changed: update the edit).
    """
    shutil.copytree(SOLUTIONS / "diffusion", dest / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    path = dest / "diffusion" / f"{edit.part}.py"
    source = path.read_text(encoding="utf-8")
    count = source.count(edit.find)
    if count != 1:
        raise ValueError(f"bug zoo entry {edit.name!r}: its text occurs {count} times in {edit.part}.py, not once")
    path.write_text(source.replace(edit.find, edit.replace), encoding="utf-8")
    return dest


@dataclass(frozen=True)
class Verdict:
    """One row of the validation table."""

    subject: str
    part: str
    expected: str
    earned: float
    available: float
    ok: bool
    detail: str = ""


def judge_edit(edit: Edit) -> Verdict:
    """Grade ``edit`` on its own part: a mutant must lose points there, a variant must keep them all."""
    with tempfile.TemporaryDirectory(prefix="bugzoo-") as tmp:
        report = grade(apply(edit, Path(tmp)), parts={edit.part}, fail_fast=not edit.correct)
    earned, available = report.part_scores()[edit.part]
    failed = [r for r in report.results if not r.passed]
    if edit.correct:
        detail = "" if not failed else f"wrongly failed: {failed[0].check.name}: {failed[0].output.splitlines()[-1]}"
        return Verdict(edit.name, edit.part, "full marks", earned, available, not failed, detail)
    detail = f"caught by {failed[0].check.name}" if failed else "MISSED: no check failed"
    return Verdict(edit.name, edit.part, "loses points", earned, available, bool(failed), detail)


def judge_whole(subject: str, root: Path, full: bool) -> list[Verdict]:
    """Grade a whole package: the reference must get full marks in every part, the stubs zero."""
    report = grade(root)
    verdicts = []
    for part, (earned, available) in report.part_scores().items():
        ok = earned == available if full else earned == 0
        verdicts.append(Verdict(subject, part, "full marks" if full else "zero", earned, available, ok))
    return verdicts


def validate(edits: tuple[Edit, ...] = EDITS) -> list[Verdict]:
    """The whole validation: reference, stubs, then every edit."""
    verdicts = judge_whole("reference", SOLUTIONS, full=True) + judge_whole("stubs", ASSIGNMENTS, full=False)
    return verdicts + [judge_edit(edit) for edit in edits]


def table(verdicts: list[Verdict]) -> str:
    """The validation table, one row per subject and part."""
    lines = [f"{'subject':<34}{'part':<11}{'expected':<14}{'points':>13}  verdict"]
    for v in verdicts:
        points = f"{v.earned:.1f} / {v.available:.1f}"
        lines.append(f"{v.subject:<34}{v.part:<11}{v.expected:<14}{points:>13}  {'ok' if v.ok else 'FAIL'} {v.detail}")
    mutants = [v for v in verdicts if v.expected == "loses points"]
    lines.append(
        f"{sum(v.ok for v in mutants)} of {len(mutants)} mutants caught; "
        f"{sum(not v.ok for v in verdicts)} expectation(s) failed"
    )
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``zoo [--part PART]``."""
    parser = subparsers.add_parser(
        "zoo",
        help="check the hidden checks: reference full marks, stubs zero, every mutant caught, every variant passes",
    )
    parser.add_argument("--part", choices=[p.name for p in PARTS], help="only the edits of this part")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    edits = tuple(e for e in EDITS if args.part in (None, e.part))
    verdicts = [judge_edit(e) for e in edits] if args.part else validate(edits)
    print(table(verdicts))
    return 0 if all(v.ok for v in verdicts) else 1
