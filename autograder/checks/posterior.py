"""Hidden checks of part 3 (posterior): ``q(x_{t−1} | x_t, x0)`` and the eps / x0 / v reparameterisations.

Tolerances. A correct float32 answer may be arranged in many ways: coefficients computed in
float64 and cast (the reference); or ``ᾱ_t`` cast to float32 first and ``1 − ᾱ_t`` formed there,
which loses ``2⁻²⁴ / (1 − ᾱ_t)`` of relative precision near ``t = 0`` when ``β_0`` is tiny; or
improved-diffusion's ``√(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·eps``, whose two terms are ~1/√ᾱ_t times larger
than their difference at the last step of a cosine schedule. So every comparison passes as
``scale`` the size of the terms the answer is built from, times
:func:`~autograder.checks.numerics.float32_slack` for the
``1 − ᾱ`` it divides by. Float64 cases are tighter than the framework's default (its ``FLOAT64_RTOL``, through
:func:`rtol_for`): float64 data must get float64 precision, which a schedule cast to float32 (~1e-7 relative) breaks.
They are the cases that tell the usual mistakes apart.
"""

from __future__ import annotations

import torch
from hypothesis import example, given

from autograder.checks.framework import (
    GRADING,
    CheckFailed,
    check,
    expect_close,
    expect_reference_on_cases,
    expect_tensor,
    rtol_for,
)
from autograder.checks.numerics import coefficient, float32_slack
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import WIDE_DATA, Case, ScheduleSpec, cases
from autograder.isolation.submission import Submission
from autograder.reference import load_reference

REFERENCE = load_reference()
ref = REFERENCE.posterior

LAST_COSINE_STEP = Case(ScheduleSpec("cosine", 1000), (2, 3), torch.float32, (999, 0), 1)
"""√ᾱ_t ≈ 5e-5 at t = 999: the x0 predictions divide by it."""


def sqrt_alpha_bars(schedule, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(√ᾱ_t, √(1 − ᾱ_t))`` in float64, shaped like ``x``'s batch."""
    return coefficient(schedule.alpha_bars.sqrt(), t, x), coefficient((1 - schedule.alpha_bars).sqrt(), t, x)


def posterior_outputs(result: object, x0: torch.Tensor, what: str, where: str) -> tuple[torch.Tensor, ...]:
    """The student's ``(mean, variance, log_variance_clipped)``, the last two broadcast to ``x0``'s shape."""
    if not (isinstance(result, tuple | list) and len(result) == 3):
        raise CheckFailed(
            what,
            example=where,
            expected="a tuple (mean, variance, log_variance_clipped)",
            got=f"{type(result).__name__}{f' of length {len(result)}' if isinstance(result, tuple | list) else ''}",
            hint="the posterior q(x_{t−1} | x_t, x0) is returned as its three tensors, in this order",
        )
    mean, variance, log_variance = result
    broadcast = []
    for name, value in (("variance", variance), ("log_variance_clipped", log_variance)):
        if not isinstance(value, torch.Tensor):
            raise CheckFailed(
                what,
                example=where,
                detail=f"{name}: expected a torch.Tensor, got {type(value)}",
                hint="the variance and its log are per-sample tensors taken from the float64 schedule, not Python "
                "floats",
            )
        try:
            broadcast.append(torch.broadcast_to(value, x0.shape))
        except RuntimeError as error:
            raise CheckFailed(
                what,
                example=where,
                detail=f"{name} of shape {tuple(value.shape)} does not broadcast to the data's shape "
                f"{tuple(x0.shape)}: {error}",
                hint="shape it (B, 1, ..., 1) with extract",
            ) from None
    return mean, *broadcast


MEAN_COEF_X0 = "β_t·√ᾱ_prev/(1 − ᾱ_t)"
MEAN_COEF_XT = "(1 − ᾱ_prev)·√α_t/(1 − ᾱ_t)"


@check("posterior", 3, f"posterior mean μ̃_t = {MEAN_COEF_X0}·x0 + {MEAN_COEF_XT}·x_t (Ho et al. eq. 7)")
def posterior_mean_formula(sub: Submission) -> None:
    """Linear in (x0, x_t): each coefficient is judged on its own first, for a precise hint."""
    q_posterior = sub.function("posterior", "q_posterior_mean_variance")

    @GRADING
    @pinned_seed("posterior_mean_formula")
    @given(cases(min_T=2))
    @example(WIDE_DATA)
    def prop(case: Case) -> None:
        schedule, x0, x_t, t = case.schedule, case.data(), case.randn(), case.timesteps()
        what = "q_posterior_mean_variance(schedule, x0, x_t, t)[0] must be the posterior mean μ̃_t"
        s = schedule
        coef_x0 = coefficient(s.betas * s.alpha_bars_prev.sqrt() / (1 - s.alpha_bars), t, x0)
        coef_xt = coefficient((1 - s.alpha_bars_prev) * s.alphas.sqrt() / (1 - s.alpha_bars), t, x0)
        zeros = torch.zeros_like(x0)
        slack = float32_slack(case, schedule, (t - 1).clamp(min=0), x0)  # divides by 1 − ᾱ_prev and 1 − ᾱ_t
        expected = ref.q_posterior_mean_variance(schedule, x0, zeros, t)[0]
        got = posterior_outputs(q_posterior(schedule, x0, zeros, t), x0, what, repr(case))[0]
        expect_close(
            got,
            expected,
            what=f"{what}: with x_t = 0 it must be {MEAN_COEF_X0}·x0",
            hint="the x0 coefficient uses ᾱ_prev = alpha_bars_prev[t] under the square root (not ᾱ_t) and β_t; "
            "at t = 0 it is 1 (ᾱ_prev = 1, 1 − ᾱ_0 = β_0)",
            example=repr(case) + " (x_t replaced by zeros)",
            rtol=rtol_for(case),
            scale=(coef_x0 * x0).abs() * slack,
        )
        expected = ref.q_posterior_mean_variance(schedule, zeros, x_t, t)[0]
        got = posterior_outputs(q_posterior(schedule, zeros, x_t, t), x0, what, repr(case))[0]
        expect_close(
            got,
            expected,
            what=f"{what}: with x0 = 0 it must be {MEAN_COEF_XT}·x_t",
            hint="the x_t coefficient uses 1 − ᾱ_prev (ᾱ_prev = alpha_bars_prev[t]) and √α_t of the single step "
            "(alphas[t], with its square root), over 1 − ᾱ_t; it is 0 at t = 0",
            example=repr(case) + " (x0 replaced by zeros)",
            rtol=rtol_for(case),
            scale=(coef_xt * x_t).abs() * slack,
        )
        expect_close(
            posterior_outputs(q_posterior(schedule, x0, x_t, t), x0, what, repr(case))[0],
            ref.q_posterior_mean_variance(schedule, x0, x_t, t)[0],
            what=what,
            hint="the mean is the sum of the two terms, each coefficient taken at the sample's own t",
            example=repr(case),
            rtol=rtol_for(case),
            scale=((coef_x0 * x0).abs() + (coef_xt * x_t).abs()) * slack,
        )

    prop()


@check("posterior", 1, "posterior variance is β̃_t = β_t·(1 − ᾱ_prev)/(1 − ᾱ_t), which is 0 at t = 0")
def posterior_variance_formula(sub: Submission) -> None:
    q_posterior = sub.function("posterior", "q_posterior_mean_variance")

    @GRADING
    @given(cases(min_T=2))
    def prop(case: Case) -> None:
        schedule, x0, x_t, t = case.schedule, case.data(), case.randn(), case.timesteps()
        what = "q_posterior_mean_variance(schedule, x0, x_t, t)[1] must be the posterior variance β̃_t"
        variance = posterior_outputs(q_posterior(schedule, x0, x_t, t), x0, what, repr(case))[1]
        expected = ref.q_posterior_mean_variance(schedule, x0, x_t, t)[1].expand_as(x0)
        expect_close(
            variance,
            expected,
            what=what,
            hint="β̃_t = β_t·(1 − ᾱ_prev)/(1 − ᾱ_t) with ᾱ_prev = alpha_bars_prev[t]: not β_t itself (that is the "
            "'fixed large' choice), and 0 at t = 0 where ᾱ_prev = 1",
            example=repr(case),
            rtol=rtol_for(case),
            scale=expected.abs() * float32_slack(case, schedule, (t - 1).clamp(min=0), x0),
        )

    prop()


@check("posterior", 1, "log_variance_clipped is finite: log β̃_t, with log β̃_1 in place of log β̃_0 = −∞ at t = 0")
def posterior_log_variance_clipped(sub: Submission) -> None:
    q_posterior = sub.function("posterior", "q_posterior_mean_variance")

    @GRADING
    @pinned_seed("posterior_log_variance_clipped")
    @given(cases(min_T=2))
    @example(Case(ScheduleSpec("linear", 1), (2, 3), torch.float64, (0, 0), 0))  # no index 1: β_0 there
    def prop(case: Case) -> None:
        schedule, x0, x_t, t = case.schedule, case.data(), case.randn(), case.timesteps()
        what = "q_posterior_mean_variance(schedule, x0, x_t, t)[2] must be log β̃_t, and log β̃_1 at t = 0"
        log_variance = posterior_outputs(q_posterior(schedule, x0, x_t, t), x0, what, repr(case))[2]
        hint = (
            "log_variance_clipped = log(cat([β̃[1:2], β̃[1:]])) indexed at t: β̃_0 = 0 has log −∞, so index 0 "
            "takes β̃ of index 1 (not β_0, not a small constant); elsewhere it is log β̃_t, not log β_t"
        )
        if not bool(torch.isfinite(log_variance).all()):
            bad = int(t[~torch.isfinite(log_variance).reshape(len(t), -1).all(1)][0])
            raise CheckFailed(what, example=repr(case), detail=f"not finite at t = {bad}", hint=hint)
        expect_close(
            log_variance,
            ref.q_posterior_mean_variance(schedule, x0, x_t, t)[2].expand_as(x0),
            what=what,
            hint=hint,
            example=repr(case),
            rtol=rtol_for(case),
            # log β̃ is off by β̃'s relative error: an absolute tolerance of rtol·slack.
            scale=float32_slack(case, schedule, (t - 1).clamp(min=0), x0),
        )

    prop()


@check(
    "posterior",
    2,
    "Bayes consistency: x_t ~ q(x_t|x0) then x_{t−1} ~ q(x_{t−1}|x_t, x0) has the moments of q(x_{t−1}|x0)",
)
def posterior_bayes_consistency(sub: Submission) -> None:
    """Exact, by linearity: the posterior mean is ``c0·x0 + c1·x_t`` (c0, c1 read off with zeros and ones), and
    with ``x_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·ε``, ``x_{t−1}`` has mean ``(c0 + c1·√ᾱ_t)·x0`` and variance
    ``c1²·(1 − ᾱ_t) + β̃_t``; they must be ``√ᾱ_prev·x0`` and ``1 − ᾱ_prev`` (``x_{−1} = x0`` at t = 0)."""
    q_posterior = sub.function("posterior", "q_posterior_mean_variance")

    @GRADING
    @given(cases(min_T=2, dtypes=(torch.float64,)))
    def prop(case: Case) -> None:
        schedule, x0, x_t, t = case.schedule, case.data(), case.randn(), case.timesteps()
        what = "q_posterior_mean_variance"
        zeros, ones = torch.zeros_like(x0), torch.ones_like(x0)
        c0 = posterior_outputs(q_posterior(schedule, ones, zeros, t), x0, what, repr(case))[0]
        c1 = posterior_outputs(q_posterior(schedule, zeros, ones, t), x0, what, repr(case))[0]
        mean, variance, _ = posterior_outputs(q_posterior(schedule, x0, x_t, t), x0, what, repr(case))
        expect_close(
            mean,
            c0 * x0 + c1 * x_t,
            what="the posterior mean must be linear in (x0, x_t): mean(x0, x_t) = mean(1, 0)·x0 + mean(0, 1)·x_t",
            hint="no constant terms; each coefficient multiplies its own argument",
            example=repr(case),
            rtol=rtol_for(case),
            scale=(c0 * x0).abs() + (c1 * x_t).abs(),
        )
        sqrt_ab, sqrt_one_minus_ab = sqrt_alpha_bars(schedule, t, x0)
        alpha_bar_prev = coefficient(schedule.alpha_bars_prev, t, x0).expand_as(x0)
        expect_close(
            c0 + c1 * sqrt_ab,
            alpha_bar_prev.sqrt(),
            what="E[x_{t−1}] = (coef_x0 + coef_xt·√ᾱ_t)·x0 must equal √ᾱ_prev·x0, the mean of q(x_{t−1} | x0)",
            hint="with ᾱ_prev = alpha_bars_prev[t]: coef_x0 = β_t√ᾱ_prev/(1 − ᾱ_t) and "
            "coef_xt = (1 − ᾱ_prev)√α_t/(1 − ᾱ_t) (ᾱ_prev, not ᾱ_t; √α_t, not α_t); at t = 0 it is x0 itself",
            example=repr(case),
            rtol=rtol_for(case),
        )
        expect_close(
            c1**2 * sqrt_one_minus_ab**2 + variance,
            1 - alpha_bar_prev,
            what="Var[x_{t−1}] = coef_xt²·(1 − ᾱ_t) + β̃_t must equal 1 − ᾱ_prev, the variance of q(x_{t−1} | x0)",
            hint="the variance is β̃_t = β_t(1 − ᾱ_prev)/(1 − ᾱ_t) (not β_t, not its square root), and 0 at t = 0",
            example=repr(case),
            rtol=rtol_for(case),
        )

    prop()


def expect_conversion(sub: Submission, name: str, inputs, size, *, what: str, hint: str) -> None:
    """Check the conversion ``name(schedule, a, t, b)`` against the reference, on drawn cases and the last step
    of a long cosine schedule. ``inputs(case, schedule, t)`` gives ``(a, b)``; ``size(a, b, √ᾱ_t, √(1 − ᾱ_t))``
    the size of the answer's terms, which the tolerance scales with (times :func:`float32_slack`)."""

    def scale(case: Case, schedule, t: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sqrt_ab, sqrt_one_minus_ab = sqrt_alpha_bars(schedule, t, a)
        return size(a, b, sqrt_ab, sqrt_one_minus_ab) * float32_slack(case, schedule, t, a)

    expect_reference_on_cases(
        sub.function("posterior", name),
        getattr(ref, name),
        cases(),
        inputs=inputs,
        scale=scale,
        what=what,
        hint=hint,
        examples=(LAST_COSINE_STEP, WIDE_DATA),
    )


def noisy_data_and_noise(case: Case, schedule, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_t, eps)`` with ``x_t = q_sample(x0, t, eps)``: the answer ≈ x0 is small where its terms are ~1/√ᾱ_t
    (cancellation)."""
    eps = case.randn()
    return REFERENCE.forward.q_sample(schedule, case.data(), t, eps), eps


@check("posterior", 1, "predict_x0_from_eps inverts q_sample: x0 = (x_t − √(1 − ᾱ_t)·eps)/√ᾱ_t")
def predict_x0_from_eps_formula(sub: Submission) -> None:
    expect_conversion(
        sub,
        "predict_x0_from_eps",
        noisy_data_and_noise,
        lambda x_t, eps, sqrt_ab, sqrt_one_minus_ab: (x_t.abs() + sqrt_one_minus_ab * eps.abs()) / sqrt_ab,
        what="predict_x0_from_eps(schedule, x_t, t, eps) must be (x_t − √(1 − ᾱ_t)·eps)/√ᾱ_t",
        hint="ᾱ_t = alpha_bars[t] (not alphas[t] or alpha_bars_prev[t]); both square roots; divide by √ᾱ_t; "
        "take the coefficients from the float64 schedule (extract casts them to x_t's dtype)",
    )


@check("posterior", 1, "predict_eps_from_x0 inverts q_sample: eps = (x_t − √ᾱ_t·x0)/√(1 − ᾱ_t)")
def predict_eps_from_x0_formula(sub: Submission) -> None:
    expect_conversion(
        sub,
        "predict_eps_from_x0",
        lambda case, schedule, t: (case.randn(), case.data()),
        lambda x_t, x0, sqrt_ab, sqrt_one_minus_ab: (x_t.abs() + sqrt_ab * x0.abs()) / sqrt_one_minus_ab,
        what="predict_eps_from_x0(schedule, x_t, t, x0) must be (x_t − √ᾱ_t·x0)/√(1 − ᾱ_t)",
        hint="ᾱ_t = alpha_bars[t] (not alpha_bars_prev[t]); both square roots; divide by √(1 − ᾱ_t); "
        "take the coefficients from the float64 schedule (extract casts them to x_t's dtype)",
    )


@check("posterior", 1, "predict_v is the velocity v = √ᾱ_t·eps − √(1 − ᾱ_t)·x0 (Salimans & Ho)")
def predict_v_formula(sub: Submission) -> None:
    expect_conversion(
        sub,
        "predict_v",
        lambda case, schedule, t: (case.data(), case.randn()),
        lambda x0, eps, sqrt_ab, sqrt_one_minus_ab: sqrt_ab * eps.abs() + sqrt_one_minus_ab * x0.abs(),
        what="predict_v(schedule, x0, t, eps) must be √ᾱ_t·eps − √(1 − ᾱ_t)·x0",
        hint="√ᾱ_t multiplies eps and √(1 − ᾱ_t) multiplies x0 (not the other way round), with a minus sign",
    )


@check("posterior", 1, "predict_x0_from_v recovers the data: x0 = √ᾱ_t·x_t − √(1 − ᾱ_t)·v")
def predict_x0_from_v_formula(sub: Submission) -> None:
    expect_conversion(
        sub,
        "predict_x0_from_v",
        lambda case, schedule, t: (case.randn(0), case.randn(1)),
        lambda x_t, v, sqrt_ab, sqrt_one_minus_ab: sqrt_ab * x_t.abs() + sqrt_one_minus_ab * v.abs(),
        what="predict_x0_from_v(schedule, x_t, t, v) must be √ᾱ_t·x_t − √(1 − ᾱ_t)·v",
        hint="√ᾱ_t multiplies x_t and √(1 − ᾱ_t) multiplies v, minus sign; no division is needed",
    )


@check("posterior", 1, "round trips at the same t: eps → x0 → eps, and x0 → v → x0 with x_t = q_sample(x0, eps)")
def reparameterisation_round_trips(sub: Submission) -> None:
    predict_x0_from_eps = sub.function("posterior", "predict_x0_from_eps")
    predict_eps_from_x0 = sub.function("posterior", "predict_eps_from_x0")
    predict_v = sub.function("posterior", "predict_v")
    predict_x0_from_v = sub.function("posterior", "predict_x0_from_v")

    @GRADING
    @given(cases())
    @example(LAST_COSINE_STEP)
    def prop(case: Case) -> None:
        schedule, x0, eps, t = case.schedule, case.data(), case.randn(), case.timesteps()
        x_t = REFERENCE.forward.q_sample(schedule, x0, t, eps)
        sqrt_ab, sqrt_one_minus_ab = sqrt_alpha_bars(schedule, t, x0)
        slack = float32_slack(case, schedule, t, x0)
        expect_close(
            predict_eps_from_x0(schedule, x_t, t, predict_x0_from_eps(schedule, x_t, t, eps)),
            eps,
            what="predict_eps_from_x0(x_t, t, predict_x0_from_eps(x_t, t, eps)) must give back eps",
            hint="the two functions must invert each other: the same ᾱ_t = alpha_bars[t] and square roots in both",
            example=repr(case),
            rtol=rtol_for(case),
            scale=(x_t.abs() / sqrt_one_minus_ab + eps.abs()) * slack,
        )
        v = expect_tensor(
            predict_v(schedule, x0, t, eps), like=x0, what="predict_v(schedule, x0, t, eps)", example=repr(case)
        )
        expect_close(
            predict_x0_from_v(schedule, x_t, t, v),
            x0,
            what="predict_x0_from_v(q_sample(x0, t, eps), t, predict_v(x0, t, eps)) must give back x0",
            hint="v = √ᾱ_t·eps − √(1 − ᾱ_t)·x0 and x0 = √ᾱ_t·x_t − √(1 − ᾱ_t)·v: the signs and coefficients must "
            "match, since √ᾱ_t² + √(1 − ᾱ_t)² = 1 is what makes them inverse",
            example=repr(case),
            rtol=rtol_for(case),
            scale=(sqrt_ab * x_t.abs() + sqrt_one_minus_ab * ref.predict_v(schedule, x0, t, eps).abs() + x0.abs())
            * slack,
        )

    prop()
