"""The bug zoo's validation: the hidden checks must catch every mistake and pass every correct rewrite.

``python -m autograder zoo`` (:mod:`autograder.cli.zoo`) grades the reference (full marks in every part), the generated stubs
(zero), every alternative (full marks) and every mutant (loses points in its part), prints the
validation table with the total time and exits 1 if any expectation fails.

Part isolation makes this cheap: an edit to part P changes only ``diffusion/P.py``, and the
student's module of each other part is then byte-identical to the reference's, which the
reference row shows at full marks. So a mutant is graded on its own part only (stopping at the
first failed check), and an alternative on the parts it edits.
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from autograder.grading import grade
from autograder.reference import ASSIGNMENTS, SOLUTIONS
from autograder.results import CheckResult
from autograder.zoo import ALTERNATIVES, MUTANTS, Alternative, Edit, Mutant


def apply(edits: tuple[Edit, ...], dest: Path) -> Path:
    """Copy the reference package into ``dest`` with ``edits`` applied; return ``dest``.

    Raises:
        ValueError: if an edit's ``find`` does not occur exactly once (the reference changed: update it).
    """
    shutil.copytree(SOLUTIONS / "diffusion", dest / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    for edit in edits:
        path = dest / "diffusion" / f"{edit.part}.py"
        source = path.read_text(encoding="utf-8")
        count = source.count(edit.find)
        if count != 1:
            raise ValueError(
                f"bug zoo edit of {edit.part}.py: its text occurs {count} times, not once: {edit.find!r:.80}"
            )
        path.write_text(source.replace(edit.find, edit.replace), encoding="utf-8")
    return dest


QUOTE_MIN_CHARS = 24
"""The shortest fragment of a solution line (whitespace removed) a hint may not quote: shorter ones are names and
small formulas of the contract itself (``alphas = 1 - betas``), longer ones are the solution's code."""


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@cache
def solution_fragments() -> tuple[tuple[str, str], ...]:
    """``(fragment, line)`` for every statement inside a solution region of ``solutions/diffusion/*.py`` that
    fits on one line: the statement and each of its sub-expressions of at least :data:`QUOTE_MIN_CHARS`
    characters, whitespace removed."""
    fragments = []
    for path in sorted((SOLUTIONS / "diffusion").glob("*.py")):
        inside = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                inside = "BEGIN" in line
                continue
            code = line.split("  #")[0].strip()
            try:
                tree = ast.parse(code) if inside and code else None
            except SyntaxError:  # one line of a statement written over several
                continue
            nodes = [] if tree is None else [tree.body[0], *(n for n in ast.walk(tree) if isinstance(n, ast.expr))]
            for node in nodes:
                fragment = _squeeze(ast.unparse(node))
                if len(fragment) >= QUOTE_MIN_CHARS:
                    fragments.append((fragment, f"{path.name}: {code}"))
    return tuple(dict.fromkeys(fragments))


def quoted_solution_lines(message: str) -> list[str]:
    """The solution lines whose code the hint of a check's ``message`` quotes (whitespace aside): a hint names
    the concept and the usual mistake, never the solution's code."""
    _, _, hint = message.partition("\n  hint: ")
    squeezed = _squeeze(hint.replace("−", "-"))
    return sorted({line for fragment, line in solution_fragments() if fragment in squeezed})


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
    first_failed: CheckResult | None = None
    """A mutant's first failed check, with its feedback."""


def judge_mutant(mutant: Mutant) -> Verdict:
    """Grade a mutant on its own part, stopping at the first failed check: it must lose points there."""
    part = mutant.edit.part
    with tempfile.TemporaryDirectory(prefix="bugzoo-") as tmp:
        report = grade(apply((mutant.edit,), Path(tmp)), parts={part}, fail_fast=True, sandboxed=False)
    earned, available = report.part_scores()[part]
    failed = [r for r in report.results if not r.passed]
    detail = f"caught by {failed[0].check.name}" if failed else "MISSED: no check failed"
    first = failed[0] if failed else None
    return Verdict(mutant.name, part, "loses points", earned, available, bool(failed), detail, first)


def judge_alternative(alternative: Alternative) -> list[Verdict]:
    """Grade an alternative on every part it edits: it must keep full marks in each."""
    parts = {edit.part for edit in alternative.edits}
    with tempfile.TemporaryDirectory(prefix="bugzoo-") as tmp:
        report = grade(apply(alternative.edits, Path(tmp)), parts=parts, sandboxed=False)
    verdicts = []
    for part in sorted(parts):
        earned, available = report.part_scores()[part]
        failed = [r for r in report.results if r.check.part == part and not r.passed]
        detail = f"wrongly failed {failed[0].check.name}: {failed[0].output}" if failed else ""
        verdicts.append(Verdict(alternative.name, part, "full marks", earned, available, not failed, detail))
    return verdicts


def judge_whole(subject: str, root: Path, full: bool) -> list[Verdict]:
    """Grade a whole package: the reference must get full marks in every part, the stubs zero."""
    report = grade(root)
    verdicts = []
    for part, (earned, available) in report.part_scores().items():
        ok = earned == available if full else earned == 0
        verdicts.append(Verdict(subject, part, "full marks" if full else "zero", earned, available, ok))
    return verdicts


def validate(parts: Collection[str] | None = None) -> list[Verdict]:
    """The whole validation (reference, stubs, alternatives, mutants), or only the edits of ``parts``."""
    verdicts = []
    if parts is None:
        verdicts += judge_whole("reference", SOLUTIONS, full=True) + judge_whole("stubs", ASSIGNMENTS, full=False)
    for alternative in ALTERNATIVES:
        if parts is None or {edit.part for edit in alternative.edits} & set(parts):
            verdicts += judge_alternative(alternative)
    verdicts += [judge_mutant(m) for m in MUTANTS if parts is None or m.edit.part in parts]
    return verdicts


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
