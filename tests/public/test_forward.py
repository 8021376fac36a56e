"""Part 2 — the forward (noising) process: ``q_sample``, ``q_step``, ``q_mean_variance``.

``q(x_t | x_0) = N(√ᾱ_t · x0, (1 − ᾱ_t) I)`` (Ho et al. 2020, eq. 4) and
``q(x_t | x_{t−1}) = N(√α_t · x_{t−1}, β_t I)`` (eq. 2), with 0-based timesteps.
The schedule comes from ``helpers.schedule``, so these tests need nothing from part 1.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffusion.forward import q_mean_variance, q_sample, q_step
from diffusion.schedules import extract
from tests.public.helpers import (
    AT_T,
    DTYPES,
    PROPERTY,
    SHAPES,
    TIMESTEPS,
    TOL,
    T,
    assert_dtype,
    check_close,
    dtypes,
    randn,
    schedule,
    shapes,
)

PART = "part 2 (forward)"


# --- q_sample and q_step: x_t = a_t · x + b_t · noise ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "coefficients", "what", "hint"),
    [
        pytest.param(
            q_sample,
            lambda sched: (sched.alpha_bars.sqrt(), (1 - sched.alpha_bars).sqrt()),
            "q_sample: x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise",
            "used ᾱ_prev where ᾱ_t belongs, α_t instead of ᾱ_t, or forgot a square root",
            id="q_sample",
        ),
        pytest.param(
            q_step,
            lambda sched: (sched.alphas.sqrt(), sched.betas.sqrt()),
            "q_step: x_t = √α_t · x_(t−1) + √β_t · noise",
            "one step uses α_t and β_t (not ᾱ_t, which is for jumping from x0); forgot a square root",
            id="q_step",
        ),
    ],
)
@dtypes
@shapes
def test_q_sample_and_q_step_match_their_formulas(function, coefficients, what, hint, shape, dtype):
    """``q_sample = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise`` jumps from the data (eq. 4); ``q_step = √α_t · x_prev +
    √β_t · noise`` is one Markov step (eq. 2; at t = 0 its input is the data x0). Each sample has its own t;
    the result has the shape and dtype of the input."""
    sched = schedule(T, "linear")
    x, noise = randn(shape, dtype, 0), randn(shape, dtype, 1)
    got = function(sched, x, TIMESTEPS, noise)
    assert_dtype(got, dtype, part=PART, what=function.__name__)
    signal, noise_scale = coefficients(sched)
    check_close(
        got,
        extract(signal, TIMESTEPS, x.double()) * x.double()
        + extract(noise_scale, TIMESTEPS, x.double()) * noise.double(),
        part=PART,
        what=f"{what} ({AT_T})",
        hint=hint,
        **TOL[dtype],
    )


# --- q_sample -----------------------------------------------------------------------------------------------------


def test_q_sample_with_zero_noise_is_scaled_x0():
    """With ``noise = 0``: ``x_t = √ᾱ_t · x0``, the mean of ``q(x_t | x0)``."""
    sched = schedule(T, "cosine")
    x0 = randn((5, 1, 8, 8), torch.float64, 2)
    got = q_sample(sched, x0, TIMESTEPS, torch.zeros_like(x0))
    check_close(
        got,
        extract(sched.alpha_bars.sqrt(), TIMESTEPS, x0) * x0,
        part=PART,
        what=f"q_sample(x0, t, noise=0) = √ᾱ_t · x0 ({AT_T})",
        hint="the signal coefficient is √ᾱ_t (alpha_bars, not alphas or alpha_bars_prev; with the square root)",
        **TOL[torch.float64],
    )


def test_q_sample_of_zero_data_is_scaled_noise():
    """With ``x0 = 0``: ``x_t = √(1 − ᾱ_t) · noise``, so ``x_t`` has variance ``1 − ᾱ_t``."""
    sched = schedule(T, "cosine")
    noise = randn((5, 3, 4, 4, 2), torch.float64, 3)
    got = q_sample(sched, torch.zeros_like(noise), TIMESTEPS, noise)
    check_close(
        got,
        extract((1 - sched.alpha_bars).sqrt(), TIMESTEPS, noise) * noise,
        part=PART,
        what=f"q_sample(x0=0, t, noise) = √(1 − ᾱ_t) · noise ({AT_T})",
        hint="the noise coefficient is √(1 − ᾱ_t): forgot the square root, or used β_t or 1 − α_t",
        **TOL[torch.float64],
    )


@PROPERTY
@given(
    kind=st.sampled_from(["linear", "cosine"]),
    T=st.integers(1, 200),
    shape=st.sampled_from(SHAPES),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_q_sample_closed_form_for_any_schedule_and_timesteps(kind, T, shape, dtype, seed):
    """For any schedule length, random 0-based ``t`` in ``[0, T)``: ``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) noise``."""
    sched = schedule(T, kind)
    t = torch.randint(0, T, (shape[0],), generator=torch.Generator().manual_seed(seed))
    x0, noise = randn(shape, dtype, seed + 1), randn(shape, dtype, seed + 2)
    got = q_sample(sched, x0, t, noise)
    ab = extract(sched.alpha_bars, t, x0.double())
    check_close(
        got,
        ab.sqrt() * x0.double() + (1 - ab).sqrt() * noise.double(),
        part=PART,
        what=f"q_sample ({kind} schedule, T = {T}, t = {t.tolist()}): x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise",
        hint="index the schedule with t directly (0-based: no t − 1), one coefficient per sample",
        **TOL[dtype],
    )


# --- q_step -------------------------------------------------------------------------------------------------------


@shapes
def test_composed_q_steps_have_the_mean_of_q_sample(shape):
    """Without noise, steps ``0..t`` multiply x0 by ``∏ √α_s = √ᾱ_t``: the mean of ``q(x_t | x0)``."""
    sched = schedule(T, "cosine")
    x0 = randn(shape, torch.float64, 6)
    x = x0
    for s in range(T):
        x = q_step(sched, x, torch.full((shape[0],), s), torch.zeros_like(x0))
        check_close(
            x,
            sched.alpha_bars[s].sqrt() * x0,
            part=PART,
            what=f"q_step applied for steps 0..{s} with zero noise = √ᾱ_{s} · x0",
            hint="each step multiplies by √α_t (with the square root), so the product is √ᾱ_t",
            **TOL[torch.float64],
        )


def test_composed_q_steps_have_the_variance_of_q_sample():
    """By linearity the noise of step ``s`` reaches ``x_t`` scaled by ``c_s = √β_s ∏_{s<r≤t} √α_r``, and
    ``Σ_{s ≤ t} c_s² = 1 − ᾱ_t``: composed steps have the variance of ``q(x_t | x0)``.

    Sample ``j`` of the batch gets a unit noise at step ``j`` only, so after step ``t`` its value is ``c_j``.
    """
    sched = schedule(T, "linear")
    x = torch.zeros(T, 2, dtype=torch.float64)
    for s in range(T):
        noise = torch.zeros(T, 2, dtype=torch.float64)
        noise[s] = 1.0
        x = q_step(sched, x, torch.full((T,), s), noise)
        check_close(
            (x[:, 0] ** 2).sum(),
            1 - sched.alpha_bars[s],
            part=PART,
            what=f"q_step applied for steps 0..{s}: the noise variances add up to 1 − ᾱ_{s}",
            hint="the noise coefficient of one step is √β_t (not β_t, not √(1 − ᾱ_t)); the signal one √α_t",
            **TOL[torch.float64],
        )


def test_composed_q_steps_match_q_sample_in_distribution():
    """Monte Carlo: 40 000 chains of 11 ``q_step`` calls from a fixed x0 have mean ``√ᾱ_10 · x0`` and
    variance ``1 − ᾱ_10`` per coordinate, within 0.03 (more than 5 standard errors at this sample size).
    """
    sched = schedule(T, "linear")
    generator = torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.5, -0.8], dtype=torch.float64).expand(40_000, 2)
    x = x0
    for s in range(11):
        x = q_step(sched, x, torch.full((40_000,), s), torch.randn(40_000, 2, generator=generator, dtype=torch.float64))
    ab = sched.alpha_bars[10]
    what = "q_step applied for steps 0..10 must sample q(x_10 | x0) = N(√ᾱ_10 · x0, 1 − ᾱ_10)"
    hint = "used ᾱ_t in a single step, or β_t as the standard deviation instead of the variance"
    check_close(x.mean(0), ab.sqrt() * x0[0], part=PART, what=what + " (sample mean)", hint=hint, rtol=0, atol=0.03)
    check_close(x.var(0), (1 - ab).expand(2), part=PART, what=what + " (sample variance)", hint=hint, rtol=0, atol=0.03)


# --- q_mean_variance ----------------------------------------------------------------------------------------------


@dtypes
@shapes
def test_q_mean_variance_matches_the_closed_form(shape, dtype):
    """``q(x_t | x0) = N(√ᾱ_t · x0, (1 − ᾱ_t) I)``: mean of x0's shape, variance broadcastable to it."""
    sched = schedule(T, "cosine")
    x0 = randn(shape, dtype, 7)
    mean, variance = q_mean_variance(sched, x0, TIMESTEPS)
    assert_dtype(mean, dtype, part=PART, what="q_mean_variance (mean)")
    assert_dtype(variance, dtype, part=PART, what="q_mean_variance (variance)")
    check_close(
        mean,
        extract(sched.alpha_bars.sqrt(), TIMESTEPS, x0.double()) * x0.double(),
        part=PART,
        what=f"q_mean_variance: mean = √ᾱ_t · x0 ({AT_T})",
        hint="used ᾱ_prev where ᾱ_t belongs, or forgot the square root",
        **TOL[dtype],
    )
    assert variance.dim() == x0.dim() and all(v in (1, n) for v, n in zip(variance.shape, x0.shape, strict=True)), (
        f"{PART}: q_mean_variance: the variance must broadcast against x0 of shape {tuple(x0.shape)}, "
        f"got shape {tuple(variance.shape)}\n  hint: extract(1 − alpha_bars, t, x0) has shape (B, 1, ..., 1)"
    )
    check_close(
        variance.expand(shape),
        extract(1 - sched.alpha_bars, TIMESTEPS, x0.double()).expand(shape),
        part=PART,
        what=f"q_mean_variance: variance = 1 − ᾱ_t, a variance, not a standard deviation ({AT_T})",
        hint="the variance is 1 − ᾱ_t, without a square root; per sample, from its own t",
        **TOL[dtype],
    )


@PROPERTY
@given(kind=st.sampled_from(["linear", "cosine"]), shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**16))
def test_q_sample_draws_from_q_mean_variance(kind, shape, seed):
    """``q_sample(x0, t, noise) = mean + √variance · noise`` with ``(mean, variance) = q_mean_variance(x0, t)``."""
    sched = schedule(T, kind)
    t = torch.randint(0, T, (shape[0],), generator=torch.Generator().manual_seed(seed))
    x0, noise = randn(shape, torch.float64, seed + 1), randn(shape, torch.float64, seed + 2)
    mean, variance = q_mean_variance(sched, x0, t)
    check_close(
        q_sample(sched, x0, t, noise),
        mean + variance.sqrt() * noise,
        part=PART,
        what=f"q_sample = mean + √variance · noise with (mean, variance) = q_mean_variance (t = {t.tolist()})",
        hint="q_sample and q_mean_variance describe the same Gaussian N(√ᾱ_t · x0, (1 − ᾱ_t) I)",
        **TOL[torch.float64],
    )
