"""Part 3 — the posterior ``q(x_{t−1} | x_t, x0)`` and the eps / x0 / v reparameterisations.

``μ̃_t = β_t √ᾱ_prev / (1 − ᾱ_t) · x0 + (1 − ᾱ_prev) √α_t / (1 − ᾱ_t) · x_t`` and
``β̃_t = β_t (1 − ᾱ_prev) / (1 − ᾱ_t)`` (Ho et al. 2020, eqs. 6–7); ``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) eps`` (eq. 4);
``v = √ᾱ_t eps − √(1 − ᾱ_t) x0`` (Salimans & Ho 2022). Timesteps are 0-based: ``ᾱ_prev`` is
``schedule.alpha_bars_prev[t]``, which is 1 at ``t = 0``. The schedule comes from ``helpers.schedule``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from diffusion.posterior import (
    predict_eps_from_x0,
    predict_v,
    predict_x0_from_eps,
    predict_x0_from_v,
    q_posterior_mean_variance,
)
from diffusion.schedules import NoiseSchedule, extract
from tests.public.helpers import check_close, schedule

PART = "part 3 (posterior)"
T = 50
SHAPES = [(5, 2), (5, 1, 8, 8), (5, 3, 4, 4, 2)]
TIMESTEPS = torch.tensor([0, 49, 1, 24, 48])  # one per sample, unsorted, both ends included
AT_T = f"t = {TIMESTEPS.tolist()}, one per sample"
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: {"rtol": 2e-4, "atol": 2e-5}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
shapes = pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "x".join(map(str, shape)))
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
POSTERIOR = "q_posterior_mean_variance"


def randn(shape, dtype, seed):
    """Standard normal data of ``shape`` in ``dtype`` from a fixed seed."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def assert_dtype(got: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    assert isinstance(got, torch.Tensor) and got.dtype == dtype, (
        f"{PART}: {what}\n  must return the data's dtype {dtype}, got {getattr(got, 'dtype', type(got).__name__)}\n"
        f"  hint: read coefficients with extract(schedule.<field>, t, x), which casts them to the data's dtype"
    )


def assert_broadcastable(got: torch.Tensor, x: torch.Tensor, what: str) -> None:
    assert got.dim() == x.dim() and all(g in (1, n) for g, n in zip(got.shape, x.shape, strict=True)), (
        f"{PART}: {what}\n  must broadcast against data of shape {tuple(x.shape)}, got shape {tuple(got.shape)}\n"
        f"  hint: extract(table, t, x) gives the shape (B, 1, ..., 1)"
    )


def beta_tilde(sched: NoiseSchedule) -> torch.Tensor:
    """The table ``β̃_t = β_t (1 − ᾱ_prev) / (1 − ᾱ_t)`` for t = 0..T−1 (float64)."""
    return sched.betas * (1 - sched.alpha_bars_prev) / (1 - sched.alpha_bars)


def forward(sched: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · eps`` (eq. 4), written out here so part 3 needs nothing from part 2."""
    return extract(sched.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - sched.alpha_bars).sqrt(), t, x0) * eps


# --- q_posterior_mean_variance ------------------------------------------------------------------------------------


@dtypes
@shapes
def test_posterior_mean_matches_eq7(shape, dtype):
    """``μ̃_t = β_t √ᾱ_prev / (1 − ᾱ_t) · x0 + (1 − ᾱ_prev) √α_t / (1 − ᾱ_t) · x_t``, shape and dtype of the data."""
    sched = schedule(T, "linear")
    x0, x_t = randn(shape, dtype, 0), randn(shape, dtype, 1)
    mean, _, _ = q_posterior_mean_variance(sched, x0, x_t, TIMESTEPS)
    assert_dtype(mean, dtype, f"{POSTERIOR} (mean)")
    b, a, ab, ab_prev = (
        extract(table, TIMESTEPS, x0.double())
        for table in (sched.betas, sched.alphas, sched.alpha_bars, sched.alpha_bars_prev)
    )
    check_close(
        mean,
        b * ab_prev.sqrt() / (1 - ab) * x0.double() + (1 - ab_prev) * a.sqrt() / (1 - ab) * x_t.double(),
        part=PART,
        what=f"{POSTERIOR}: μ̃_t = β_t √ᾱ_prev/(1 − ᾱ_t) · x0 + (1 − ᾱ_prev) √α_t/(1 − ᾱ_t) · x_t ({AT_T})",
        hint="x0's coefficient uses √ᾱ_prev (used ᾱ_t where ᾱ_prev belongs?), x_t's uses √α_t (not √ᾱ_t); "
        "both divide by 1 − ᾱ_t; ᾱ_prev is alpha_bars_prev[t] (alpha_bars[t − 1] wraps around at t = 0)",
        **TOL[dtype],
    )


@dtypes
@shapes
def test_posterior_variance_is_beta_tilde(shape, dtype):
    """``β̃_t = β_t (1 − ᾱ_prev) / (1 − ᾱ_t)``, broadcastable to the data, in the data's dtype."""
    sched = schedule(T, "cosine")
    x0, x_t = randn(shape, dtype, 2), randn(shape, dtype, 3)
    _, variance, _ = q_posterior_mean_variance(sched, x0, x_t, TIMESTEPS)
    assert_dtype(variance, dtype, f"{POSTERIOR} (variance)")
    assert_broadcastable(variance, x0, f"{POSTERIOR} (variance)")
    check_close(
        variance.expand(shape),
        extract(beta_tilde(sched), TIMESTEPS, x0.double()).expand(shape),
        part=PART,
        what=f"{POSTERIOR}: variance β̃_t = β_t (1 − ᾱ_prev)/(1 − ᾱ_t) ({AT_T})",
        hint="β̃_t, not β_t (that is the 'fixed_large' choice); ᾱ_prev is schedule.alpha_bars_prev[t] — "
        "alpha_bars[t − 1] wraps around to the last entry at t = 0",
        **TOL[dtype],
    )


def test_posterior_at_t0_has_mean_x0_and_variance_0():
    """At ``t = 0`` (ᾱ_prev = 1, ᾱ_0 = α_0): ``μ̃_0 = x0`` exactly and ``β̃_0 = 0``: x0 is known."""
    sched = schedule(T, "linear")
    x0, x_t = randn((5, 1, 8, 8), torch.float64, 4), randn((5, 1, 8, 8), torch.float64, 5)
    mean, variance, _ = q_posterior_mean_variance(sched, x0, x_t, torch.zeros(5, dtype=torch.long))
    check_close(
        mean,
        x0,
        part=PART,
        what=f"{POSTERIOR} at t = 0: μ̃_0 = β_0·1/(1 − ᾱ_0) · x0 + 0 · x_t = x0",
        hint="alpha_bars_prev must start with 1 (0-based timesteps): use schedule.alpha_bars_prev[t], "
        "not alpha_bars[t − 1]",
    )
    check_close(
        variance.flatten(),
        torch.zeros(5, dtype=torch.float64),
        part=PART,
        what=f"{POSTERIOR} at t = 0: β̃_0 = β_0 (1 − ᾱ_prev)/(1 − ᾱ_0) = 0",
        hint="ᾱ_prev = 1 at t = 0; a nonzero value means the wrong ᾱ (ᾱ_t or alpha_bars[t − 1]) was used",
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_log_variance_clipped_is_finite_and_uses_index_1_at_t0(dtype):
    """``log_variance_clipped = log β̃_t`` for ``t ≥ 1`` and ``log β̃_1`` at ``t = 0`` (where log β̃_0 = −∞)."""
    sched = schedule(T, "linear")
    t = torch.tensor([0, 1, 2, 25, 49])
    x0, x_t = randn((5, 2), dtype, 6), randn((5, 2), dtype, 7)
    _, _, log_variance = q_posterior_mean_variance(sched, x0, x_t, t)
    assert_dtype(log_variance, dtype, f"{POSTERIOR} (log_variance_clipped)")
    assert_broadcastable(log_variance, x0, f"{POSTERIOR} (log_variance_clipped)")
    assert bool(torch.isfinite(log_variance).all()), (
        f"{PART}: {POSTERIOR}: log_variance_clipped must be finite, got {log_variance.flatten().tolist()}\n"
        f"  hint: β̃_0 = 0 and log 0 = −inf: use β̃ at index 1 in place of index 0 before taking the log"
    )
    table = beta_tilde(sched)
    check_close(
        log_variance.flatten(),
        torch.log(torch.cat([table[1:2], table[1:]]))[t],
        part=PART,
        what=f"{POSTERIOR}: log_variance_clipped = log(cat([β̃_1, β̃_1, β̃_2, ..., β̃_(T−1)]))[t]",
        hint="replace index 0 by index 1 (not by a small epsilon, not by β_0), and keep log β̃_t for t ≥ 1",
        **TOL[dtype],
    )


@PROPERTY
@given(kind=st.sampled_from(["linear", "cosine"]), T=st.integers(2, 200), data=st.data())
def test_posterior_is_bayes_consistent(kind, T, data):
    """Marginalising ``q(x_{t−1} | x_t, x0)`` over ``x_t ~ q(x_t | x0)`` gives ``q(x_{t−1} | x0)``.

    μ̃ is linear in ``(x0, x_t)``, so exactly: ``μ̃(x0, √ᾱ_t x0) = √ᾱ_prev x0`` (the means) and
    ``c² (1 − ᾱ_t) + β̃_t = 1 − ᾱ_prev`` with ``c = μ̃(x0 = 0, x_t = 1)``, the coefficient of x_t (the variances).
    """
    sched = schedule(T, kind)
    t = torch.tensor([data.draw(st.integers(0, T - 1), label="t")])
    x0 = torch.tensor([[0.7, -0.3]], dtype=torch.float64)
    ab, ab_prev = sched.alpha_bars[t.item()], sched.alpha_bars_prev[t.item()]
    mean, _, _ = q_posterior_mean_variance(sched, x0, ab.sqrt() * x0, t)
    coef_xt, variance, _ = q_posterior_mean_variance(sched, torch.zeros_like(x0), torch.ones_like(x0), t)
    c, beta_tilde_t = coef_xt[0, 0], variance.flatten()[0]
    what = f"{POSTERIOR} ({kind}, T = {T}, t = {t.item()}): averaging over x_t ~ q(x_t | x0) must give q(x_(t−1) | x0)"
    check_close(
        mean,
        ab_prev.sqrt() * x0,
        part=PART,
        what=what + ": μ̃(x0, √ᾱ_t x0) = √ᾱ_prev · x0",
        hint="x0's coefficient is β_t √ᾱ_prev/(1 − ᾱ_t) and x_t's is (1 − ᾱ_prev) √α_t/(1 − ᾱ_t)",
        rtol=1e-9,
        atol=1e-12,
    )
    check_close(
        c**2 * (1 - ab) + beta_tilde_t,
        1 - ab_prev,
        part=PART,
        what=what + ": c²(1 − ᾱ_t) + β̃_t = 1 − ᾱ_prev",
        hint="β̃_t = β_t (1 − ᾱ_prev)/(1 − ᾱ_t) and x_t's coefficient has √α_t with the square root",
        rtol=1e-9,
        atol=1e-12,
    )


# --- predict_x0_from_eps / predict_eps_from_x0 --------------------------------------------------------------------


@dtypes
@shapes
def test_predict_x0_from_eps_matches_the_formula(shape, dtype):
    """``x0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t``, shape and dtype of ``x_t``."""
    sched = schedule(T, "linear")
    x_t, eps = randn(shape, dtype, 8), randn(shape, dtype, 9)
    got = predict_x0_from_eps(sched, x_t, TIMESTEPS, eps)
    assert_dtype(got, dtype, "predict_x0_from_eps")
    ab = extract(sched.alpha_bars, TIMESTEPS, x_t.double())
    check_close(
        got,
        (x_t.double() - (1 - ab).sqrt() * eps.double()) / ab.sqrt(),
        part=PART,
        what=f"predict_x0_from_eps: x0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t ({AT_T})",
        hint="divide by √ᾱ_t (not multiply, not ᾱ_t); used ᾱ_prev where ᾱ_t belongs?",
        **TOL[dtype],
    )


@dtypes
@shapes
def test_predict_eps_from_x0_matches_the_formula(shape, dtype):
    """``eps = (x_t − √ᾱ_t · x0) / √(1 − ᾱ_t)``, shape and dtype of ``x_t``."""
    sched = schedule(T, "cosine")
    x_t, x0 = randn(shape, dtype, 10), randn(shape, dtype, 11)
    got = predict_eps_from_x0(sched, x_t, TIMESTEPS, x0)
    assert_dtype(got, dtype, "predict_eps_from_x0")
    ab = extract(sched.alpha_bars, TIMESTEPS, x_t.double())
    check_close(
        got,
        (x_t.double() - ab.sqrt() * x0.double()) / (1 - ab).sqrt(),
        part=PART,
        what=f"predict_eps_from_x0: eps = (x_t − √ᾱ_t · x0) / √(1 − ᾱ_t) ({AT_T})",
        hint="divide by √(1 − ᾱ_t), with the square root; used ᾱ_prev where ᾱ_t belongs?",
        **TOL[dtype],
    )


@shapes
def test_predictions_invert_the_forward_process(shape):
    """With ``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) eps``: ``predict_x0_from_eps(x_t, eps) = x0`` and
    ``predict_eps_from_x0(x_t, x0) = eps``."""
    sched = schedule(T, "linear")
    x0, eps = randn(shape, torch.float64, 12).clamp(-1, 1), randn(shape, torch.float64, 13)
    x_t = forward(sched, x0, TIMESTEPS, eps)
    check_close(
        predict_x0_from_eps(sched, x_t, TIMESTEPS, eps),
        x0,
        part=PART,
        what=f"predict_x0_from_eps(x_t, eps) = x0 for x_t = √ᾱ_t x0 + √(1 − ᾱ_t) eps ({AT_T})",
        hint="solve eq. 4 for x0: subtract √(1 − ᾱ_t)·eps, then divide by √ᾱ_t",
        rtol=1e-7,
        atol=1e-8,
    )
    check_close(
        predict_eps_from_x0(sched, x_t, TIMESTEPS, x0),
        eps,
        part=PART,
        what=f"predict_eps_from_x0(x_t, x0) = eps for x_t = √ᾱ_t x0 + √(1 − ᾱ_t) eps ({AT_T})",
        hint="solve eq. 4 for eps: subtract √ᾱ_t·x0, then divide by √(1 − ᾱ_t)",
        rtol=1e-7,
        atol=1e-8,
    )


@PROPERTY
@given(
    kind=st.sampled_from(["linear", "cosine"]),
    T=st.integers(2, 200),
    shape=st.sampled_from(SHAPES),
    seed=st.integers(0, 2**16),
)
def test_eps_to_x0_to_eps_round_trip(kind, T, shape, seed):
    """``predict_eps_from_x0(x_t, t, predict_x0_from_eps(x_t, t, eps)) = eps`` for any ``x_t``, ``eps`` and ``t``."""
    sched = schedule(T, kind)
    t = torch.randint(0, T, (shape[0],), generator=torch.Generator().manual_seed(seed))
    x_t, eps = randn(shape, torch.float64, seed + 1), randn(shape, torch.float64, seed + 2)
    x0 = predict_x0_from_eps(sched, x_t, t, eps)
    check_close(
        predict_eps_from_x0(sched, x_t, t, x0),
        eps,
        part=PART,
        what=f"eps → x0 → eps round trip ({kind}, T = {T}, t = {t.tolist()})",
        hint="the two functions must solve the same equation x_t = √ᾱ_t x0 + √(1 − ᾱ_t) eps, each for one unknown",
        rtol=1e-7,
        atol=1e-8,
    )


# --- predict_v / predict_x0_from_v --------------------------------------------------------------------------------


@dtypes
@shapes
def test_predict_v_matches_the_definition(shape, dtype):
    """``v = √ᾱ_t · eps − √(1 − ᾱ_t) · x0``, shape and dtype of ``x0``."""
    sched = schedule(T, "cosine")
    x0, eps = randn(shape, dtype, 14), randn(shape, dtype, 15)
    got = predict_v(sched, x0, TIMESTEPS, eps)
    assert_dtype(got, dtype, "predict_v")
    ab = extract(sched.alpha_bars, TIMESTEPS, x0.double())
    check_close(
        got,
        ab.sqrt() * eps.double() - (1 - ab).sqrt() * x0.double(),
        part=PART,
        what=f"predict_v: v = √ᾱ_t · eps − √(1 − ᾱ_t) · x0 ({AT_T})",
        hint="√ᾱ_t multiplies eps and √(1 − ᾱ_t) multiplies x0 (not the other way round); mind the sign",
        **TOL[dtype],
    )


@dtypes
@shapes
def test_predict_x0_from_v_matches_the_formula(shape, dtype):
    """``x0 = √ᾱ_t · x_t − √(1 − ᾱ_t) · v``, shape and dtype of ``x_t``."""
    sched = schedule(T, "linear")
    x_t, v = randn(shape, dtype, 16), randn(shape, dtype, 17)
    got = predict_x0_from_v(sched, x_t, TIMESTEPS, v)
    assert_dtype(got, dtype, "predict_x0_from_v")
    ab = extract(sched.alpha_bars, TIMESTEPS, x_t.double())
    check_close(
        got,
        ab.sqrt() * x_t.double() - (1 - ab).sqrt() * v.double(),
        part=PART,
        what=f"predict_x0_from_v: x0 = √ᾱ_t · x_t − √(1 − ᾱ_t) · v ({AT_T})",
        hint="a rotation, no division: √ᾱ_t multiplies x_t and √(1 − ᾱ_t) multiplies v",
        **TOL[dtype],
    )


@PROPERTY
@given(
    kind=st.sampled_from(["linear", "cosine"]),
    shape=st.sampled_from(SHAPES),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_v_round_trip_recovers_x0(kind, shape, dtype, seed):
    """With ``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) eps`` and ``v = predict_v(x0, t, eps)``:
    ``predict_x0_from_v(x_t, t, v) = x0``."""
    sched = schedule(T, kind)
    t = torch.randint(0, T, (shape[0],), generator=torch.Generator().manual_seed(seed))
    x0, eps = randn(shape, torch.float64, seed + 1).clamp(-1, 1), randn(shape, torch.float64, seed + 2)
    x_t = forward(sched, x0, t, eps).to(dtype)
    v = predict_v(sched, x0.to(dtype), t, eps.to(dtype))
    check_close(
        predict_x0_from_v(sched, x_t, t, v),
        x0,
        part=PART,
        what=f"v round trip ({kind}, t = {t.tolist()}, {dtype}): predict_x0_from_v(x_t, t, predict_v(x0, t, eps)) = x0",
        hint="√ᾱ_t x_t − √(1 − ᾱ_t) v = ᾱ_t x0 + (1 − ᾱ_t) x0 = x0 only with both signs and square roots right",
        **TOL[dtype],
    )
