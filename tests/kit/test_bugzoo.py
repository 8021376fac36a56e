"""The bug zoo's validation in CI: the hidden checks catch every mutant and pass every alternative, and the
feedback of every failure a mutant provokes locates the mistake without quoting the solution.

The reference's full marks are the hidden checks' own items of this run (``--impl solutions`` runs every check on the
reference) and the stubs' zero is checked in ``test_grading.py``; here each
mutant is graded on its own part and each alternative on the parts it edits, one test each, so
a regression names the mistake the checks stopped catching.
"""

from __future__ import annotations

import pytest

from autograder.parts import PARTS
from autograder.zoo import ALTERNATIVES, MUTANTS
from autograder.zoo.validation import judge_alternative, judge_mutant, quoted_solution_lines

MIN_MUTANTS, MIN_ALTERNATIVES = 270, 55


def test_the_zoo_is_large_and_covers_every_part():
    assert len(MUTANTS) >= MIN_MUTANTS, f"{len(MUTANTS)} mutants; the zoo promises at least {MIN_MUTANTS}"
    assert len(ALTERNATIVES) >= MIN_ALTERNATIVES, f"{len(ALTERNATIVES)} alternatives; at least {MIN_ALTERNATIVES}"
    uncovered = {p.name for p in PARTS} - {m.edit.part for m in MUTANTS}
    assert not uncovered, f"parts without a mutant: {sorted(uncovered)}"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_loses_points_in_its_part(mutant):
    verdict = judge_mutant(mutant)
    assert verdict.ok, f"{mutant.name} ({mutant.description}) is not caught by the {mutant.edit.part} checks"
    assert verdict.earned < verdict.available
    failed = verdict.first_failed
    quoted = quoted_solution_lines(failed.output)
    assert not quoted, f"{mutant.name}: the hint of {failed.check.name} quotes the solution {quoted}:\n{failed.output}"
    if failed.failure == "check":  # a check's verdict; an error the mutant raised is shown as that error instead
        assert "\n  example: " in failed.output and "\n  hint: " in failed.output, (
            f"{mutant.name}: the feedback of {failed.check.name} needs an example and a hint:\n{failed.output}"
        )


@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=lambda a: a.name)
def test_alternative_keeps_full_marks(alternative):
    verdicts = judge_alternative(alternative)
    assert all(v.ok for v in verdicts), "\n".join(v.detail for v in verdicts if not v.ok)
