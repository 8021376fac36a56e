"""Hidden checks of part 2 (forward): ``q(x_t | x_0)`` in closed form and as composed Markov steps.

Tolerances: float32 cases use the framework's defaults; float64 cases must get float64 precision
(the framework's :data:`~autograder.checks.framework.FLOAT64_RTOL` of the size of the terms the answer
is built from), which coefficients taken from a schedule cast to float32 (~1e-7 relative) do not.
"""

from __future__ import annotations

import torch
from hypothesis import example, given

from autograder.checks.framework import GRADING, CheckFailed, check, expect_close, expect_reference_on_cases, rtol_for
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import WIDE_DATA, Case, cases
from autograder.isolation.submission import Submission
from autograder.reference import load_reference

REFERENCE = load_reference()
ref = REFERENCE.forward
extract, expand_like = REFERENCE.schedules.extract, REFERENCE.schedules.expand_like


def expect_two_term_formula(sub: Submission, name: str, tables, *, what: str, hint: str) -> None:
    """Check ``name(schedule, x, t, noise) = table_a[t]·x + table_b[t]·noise`` (``tables(schedule)`` gives the two
    tables) against the reference, on data ``x`` in [−1, 1] (and wider: no clamping) and standard normal noise."""

    def scale(case: Case, schedule, t: torch.Tensor, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``|table_a[t]·x| + |table_b[t]·noise|`` in float64: the size of the answer's terms, for its tolerance."""
        table_a, table_b = tables(schedule)
        x64, noise64 = x.to(torch.float64), noise.to(torch.float64)
        return (extract(table_a, t, x64) * x64).abs() + (extract(table_b, t, noise64) * noise64).abs()

    expect_reference_on_cases(
        sub.function("forward", name),
        getattr(ref, name),
        cases(),
        inputs=lambda case, schedule, t: (case.data(), case.randn()),
        scale=scale,
        what=what,
        hint=hint,
        examples=(WIDE_DATA,),
    )


@check("forward", 2, "q_sample equals √ᾱ_t·x0 + √(1 − ᾱ_t)·noise (Ho et al. eq. 4)")
def q_sample_closed_form(sub: Submission) -> None:
    expect_two_term_formula(
        sub,
        "q_sample",
        lambda schedule: (schedule.alpha_bars.sqrt(), (1 - schedule.alpha_bars).sqrt()),
        what="q_sample(schedule, x0, t, noise) must be √ᾱ_t·x0 + √(1 − ᾱ_t)·noise",
        hint="use ᾱ_t = alpha_bars[t] (not alphas[t] or alpha_bars_prev[t]) and take both square roots; "
        "take the coefficients from the float64 schedule (extract casts them to the data's dtype)",
    )


@check("forward", 1, "q_step equals √α_t·x_prev + √β_t·noise (Ho et al. eq. 2)")
def q_step_formula(sub: Submission) -> None:
    expect_two_term_formula(
        sub,
        "q_step",
        lambda schedule: (schedule.alphas.sqrt(), schedule.betas.sqrt()),
        what="q_step(schedule, x_prev, t, noise) must be √α_t·x_prev + √β_t·noise",
        hint="one step uses α_t and β_t, not the cumulative ᾱ_t; take the square roots; take the "
        "coefficients from the float64 schedule (extract casts them to the data's dtype)",
    )


@check("forward", 3, "composing q_step from x0 to t has exactly the moments of q(x_t | x0)")
def composed_steps_match_closed_form(sub: Submission) -> None:
    """q_step is linear in (x_prev, noise): propagating x0 with zero noise gives the mean, and
    propagating each step's unit noise gives its coefficient; the squares sum to the variance."""
    q_step = sub.function("forward", "q_step")

    @GRADING
    @pinned_seed("composed_steps_match_closed_form")
    @given(cases(dtypes=(torch.float64,)))
    def prop(case: Case) -> None:
        schedule, x0, t = case.schedule, case.data(), case.timesteps()

        def active(s: int) -> torch.Tensor:  # the samples whose t has not been reached yet, (B, 1, ..., 1)
            return expand_like(t, x0) >= s

        def step(s: int) -> torch.Tensor:
            return torch.full_like(t, s)

        zeros, ones = torch.zeros_like(x0), torch.ones_like(x0)
        mean = x0
        variance = torch.zeros_like(x0)
        for s in range(int(t.max()) + 1):
            mean = torch.where(active(s), q_step(schedule, mean, step(s), zeros), mean)
            # Noise injected at step s, then carried through steps s+1..t with no further noise.
            coef = q_step(schedule, zeros, step(s), ones)
            for r in range(s + 1, int(t.max()) + 1):
                coef = torch.where(active(r), q_step(schedule, coef, step(r), zeros), coef)
            variance = variance + torch.where(active(s), coef**2, zeros)
        expected_mean, expected_variance = ref.q_mean_variance(schedule, x0, t)
        what = "x_t built by q_step from x0 through steps 0..t must have mean √ᾱ_t·x0 and variance 1 − ᾱ_t"
        hint = "q_step must use α_t = 1 − β_t and β_t of step t itself; 0-based t: step 0 acts on x0"
        expect_close(mean, expected_mean, what=what + " (mean)", hint=hint, example=repr(case))
        expect_close(
            variance, expected_variance.expand_as(x0), what=what + " (variance)", hint=hint, example=repr(case)
        )

    prop()


@check("forward", 2, "q_mean_variance returns (√ᾱ_t·x0, 1 − ᾱ_t) with the variance broadcastable to x0")
def q_mean_variance_moments(sub: Submission) -> None:
    q_mean_variance = sub.function("forward", "q_mean_variance")

    @GRADING
    @pinned_seed("q_mean_variance_moments")
    @given(cases())
    @example(WIDE_DATA)
    def prop(case: Case) -> None:
        schedule, x0, t = case.schedule, case.data(), case.timesteps()
        mean, variance = q_mean_variance(schedule, x0, t)
        expected_mean, expected_variance = ref.q_mean_variance(schedule, x0, t)
        expect_close(
            mean,
            expected_mean,
            what="q_mean_variance mean must be √ᾱ_t·x0",
            hint="the mean scales x0 by √ᾱ_t, taken from the float64 schedule",
            example=repr(case),
            rtol=rtol_for(case),
        )
        try:
            variance = torch.broadcast_to(variance, x0.shape)
        except (RuntimeError, TypeError) as error:
            raise CheckFailed(
                "q_mean_variance variance must be 1 − ᾱ_t, broadcastable to x0",
                example=repr(case),
                detail=f"the variance does not broadcast to x0's shape {tuple(x0.shape)}: {error}",
                hint="the variance is one value per sample: shaped (B, 1, ..., 1) like the coefficients extract "
                "gives, not a flat (B,) tensor, which broadcasts against x0's last dimension instead of its first",
            ) from None
        expect_close(
            variance,
            expected_variance.expand_as(x0),
            what="q_mean_variance variance must be 1 − ᾱ_t",
            hint="the variance is 1 − ᾱ_t, not its square root, and not β_t; in the data's dtype",
            example=repr(case),
            rtol=rtol_for(case),
        )

    prop()
