"""The feedback of a failed check locates without solving: no solution code in a hint, the inputs of a call that
raised, and "precision" when two values differ only beyond the digits shown."""

from __future__ import annotations

import pytest
import torch

from autograder.checks.framework import PRECISION_HINT, CheckFailed, expect_close
from autograder.zoo import MUTANTS
from autograder.zoo.validation import judge_mutant, quoted_solution_lines


def test_a_hint_that_quotes_a_solution_line_is_found_and_a_concept_is_not():
    quoting = "w\n  hint: drop where torch.rand(y.shape, generator=generator) < p_uncond"
    assert quoted_solution_lines(quoting) == [
        "guidance.py: drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)"
    ]
    spaced = "w\n  hint: alpha_bars  =  torch.cumprod( alphas, dim=0 )"
    assert quoted_solution_lines(spaced) == ["schedules.py: alpha_bars = torch.cumprod(alphas, dim=0)"]
    concept = "w\n  hint: ᾱ_t is the running product of the alphas; drop each label with probability p_uncond"
    assert quoted_solution_lines(concept) == []
    assert quoted_solution_lines("torch.cumprod(alphas, dim=0) in the message but no hint") == []


def test_values_equal_to_the_digits_shown_are_reported_as_precision_in_full():
    expected = torch.tensor([0.1, 0.2], dtype=torch.float64)
    with pytest.raises(CheckFailed) as failed:
        expect_close(expected + 3e-9, expected, what="f must be exact", hint="a formula hint", rtol=1e-10)
    message = str(failed.value)
    assert "precision" in message.splitlines()[0]
    assert "expected 0.10000000000000001, got 0.100000003" in message
    assert "relative difference 3e-08" in message
    assert PRECISION_HINT in message and "a formula hint" not in message


def test_values_that_differ_in_the_digits_shown_keep_the_checks_hint():
    expected = torch.tensor([1.0], dtype=torch.float64)
    with pytest.raises(CheckFailed) as failed:
        expect_close(expected * 1.5, expected, what="f must be exact", hint="a formula hint")
    message = str(failed.value)
    assert "expected 1, got 1.5" in message and "a formula hint" in message and "precision" not in message


def test_an_error_in_the_students_code_shows_the_shapes_and_dtypes_of_the_call():
    mutant = next(m for m in MUTANTS if m.name == "log_variance_breaks_for_T_1")
    output = judge_mutant(mutant).first_failed.output
    assert "raised IndexError" in output
    assert (
        "called with schedule: NoiseSchedule of T = 1; x0: tensor of shape (2, 3), float64; "
        "x_t: tensor of shape (2, 3), float64; t: tensor of shape (2,), int64"
    ) in output
