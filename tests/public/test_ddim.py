"""Part 7 — DDIM: ``ddim_timesteps``, ``ddim_sigma``, ``ddim_step``, ``ddim_sample_loop``, ``ddim_invert``.

Song et al. 2020, eq. 12 (the step), eq. 16 (σ) and §4.2 (sub-sequences). Conventions: 0-based timesteps; a step
may go to ``t_prev = −1``, where ``ᾱ_prev = 1`` (the data itself). The step is

    x̂0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t,
    x_prev = √ᾱ_prev · x̂0 + √(1 − ᾱ_prev − σ²) · eps + σ · noise,
    σ = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev).

Expected values are computed with the provided ``extract`` and plain torch; every test calls only part 7's functions.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffusion.ddim import ddim_invert, ddim_sample_loop, ddim_sigma, ddim_step, ddim_timesteps
from diffusion.schedules import NoiseSchedule, expand_like, extract
from tests.public.helpers import (
    PROPERTY,
    RecordingModel,
    beta_tilde,
    check_close,
    diffuse,
    posterior_mean,
    randn,
    schedule,
    x0_denoiser,
    x0_from_eps,
)

PART = "part 7 (ddim)"
T = 50


# --- denoisers and formulas used by the tests ----------------------------------------------------------------------


def ab(sched: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """``ᾱ_t`` as float64 ``(B,)``, with ``ᾱ_{−1} = 1`` (the data)."""
    return torch.where(t >= 0, sched.alpha_bars[t.clamp(min=0)], torch.ones((), dtype=torch.float64))


def smooth_denoiser(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A made-up but smooth ``eps_hat`` that depends on ``x_t`` and on ``t``."""
    return 0.3 * x_t + 0.01 * expand_like(t.to(torch.float64), x_t)


def gaussian_data_denoiser(sched: NoiseSchedule, std: float):
    """The exact denoiser for data ~ N(0, std² I): ``eps = √(1 − ᾱ_t)/(ᾱ_t std² + 1 − ᾱ_t) · x_t`` (linear in x_t)."""

    def model(x_t: torch.Tensor, t: torch.Tensor, **model_kwargs) -> torch.Tensor:
        a = sched.alpha_bars
        return extract((1 - a).sqrt() / (a * std**2 + 1 - a), t, x_t) * x_t

    return model


def data_in_unit_box(shape, dtype=torch.float64, seed=1) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 1.8 - 0.9


def long(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


# --- ddim_timesteps ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("T_", "n", "spacing", "expected"),
    [
        (10, 5, "uniform", [0, 2, 4, 6, 8]),  # k · (10 // 5)
        (50, 7, "uniform", [0, 7, 14, 21, 28, 35, 42]),  # k · (50 // 7) = 7k
        (10, 4, "uniform", [0, 2, 4, 6]),  # k · (10 // 4) = 2k, integer division
        (10, 1, "uniform", [0]),
        (10, 4, "linspace", [0, 3, 6, 9]),  # linspace(0, 9, 4)
        (20, 4, "linspace", [0, 6, 13, 19]),  # round([0, 6.33, 12.67, 19])
        (50, 5, "trailing", [9, 19, 29, 39, 49]),  # round(50 − 10k) − 1, sorted
        (10, 3, "trailing", [2, 6, 9]),  # round([10, 6.67, 3.33]) − 1 = [9, 6, 2], sorted
        (10, 10, "trailing", list(range(10))),
    ],
)
def test_ddim_timesteps_worked_examples(T_, n, spacing, expected):
    """Worked by hand: ``"uniform"`` ``τ_k = k · (T // n)``; ``"linspace"`` ``round(linspace(0, T − 1, n))``;
    ``"trailing"`` ``round(T − k · T/n) − 1``; each sorted ascending."""
    got = ddim_timesteps(T_, n, spacing)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.long, (
        f"{PART}: ddim_timesteps must return a long tensor, got {getattr(got, 'dtype', type(got).__name__)}\n"
        f"  hint: .long() at the end (timesteps index the schedule)"
    )
    assert got.tolist() == expected, (
        f"{PART}: ddim_timesteps(T={T_}, num_steps={n}, spacing={spacing!r}) = {expected}, got {got.tolist()}\n"
        f"  hint: timesteps must be ascending (sort them); 'uniform' steps by T // num_steps from 0, 'trailing' ends "
        f"at T − 1, 'linspace' includes both 0 and T − 1"
    )


@PROPERTY
@given(
    T_and_n=st.integers(min_value=1, max_value=200).flatmap(lambda T_: st.tuples(st.just(T_), st.integers(1, T_))),
    spacing=st.sampled_from(["uniform", "linspace", "trailing"]),
)
def test_ddim_timesteps_are_ascending_distinct_and_in_range(T_and_n, spacing):
    """For every ``1 ≤ num_steps ≤ T``: ``num_steps`` distinct, strictly ascending indices in ``[0, T)``."""
    T_, n = T_and_n
    got = ddim_timesteps(T_, n, spacing)
    values = got.tolist()
    assert len(values) == n, f"{PART}: ddim_timesteps({T_}, {n}, {spacing!r}) has {len(values)} entries, not {n}"
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), (
        f"{PART}: ddim_timesteps({T_}, {n}, {spacing!r}) = {values} is not strictly ascending\n"
        f"  hint: timesteps must be ascending and distinct; sort them (the samplers walk them backwards)"
    )
    assert values[0] >= 0 and values[-1] < T_, (
        f"{PART}: ddim_timesteps({T_}, {n}, {spacing!r}) = {values} leaves [0, T)\n"
        f"  hint: 0-based timesteps: the largest allowed index is T − 1"
    )


@pytest.mark.parametrize(("T_", "n"), [(10, 0), (10, 11), (10, -1)])
def test_ddim_timesteps_rejects_num_steps_outside_1_to_T(T_, n):
    """``ddim_timesteps(T, num_steps)`` raises ``ValueError`` unless ``1 ≤ num_steps ≤ T``."""
    try:
        ddim_timesteps(T_, n)
    except ValueError:
        return
    pytest.fail(
        f"{PART}: ddim_timesteps(T={T_}, num_steps={n}) must raise ValueError: num_steps must lie in 1..T\n"
        f"  hint: check `if not 1 <= num_steps <= T: raise ValueError(...)` before computing the steps"
    )


# --- ddim_sigma ----------------------------------------------------------------------------------------------------


def test_ddim_sigma_is_zero_at_eta_zero():
    """``η = 0`` is deterministic DDIM: ``σ = 0`` for every pair (t, t_prev), shape ``(B,)``."""
    sched = schedule(T)
    sigma = ddim_sigma(sched, long([49, 30, 10, 0]), long([39, 20, 0, -1]), 0.0)
    check_close(
        sigma,
        torch.zeros(4, dtype=torch.float64),
        part=PART,
        what="ddim_sigma(η = 0) = 0, shape (B,)",
        hint="σ = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev) is proportional to η; a NaN here is "
        "0 · √(negative): ᾱ_prev must be 1 when t_prev = −1",
        atol=0,
    )


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddim_sigma_at_eta_one_on_consecutive_steps_is_sqrt_beta_tilde(kind):
    """``η = 1`` and ``t_prev = t − 1``: ``σ² = β̃_t = β_t (1 − ᾱ_prev)/(1 − ᾱ_t)``, DDPM's posterior variance.
    At ``t = 0`` (``t_prev = −1``, ``ᾱ_prev = 1``) that is 0."""
    sched = schedule(T, kind)
    t = torch.arange(T)
    check_close(
        ddim_sigma(sched, t, t - 1, 1.0),
        beta_tilde(sched).sqrt(),
        part=PART,
        what="ddim_sigma(t, t − 1, η = 1) = √β̃_t (DDIM with η = 1 is DDPM)",
        hint="ᾱ_prev must be 1 when t_prev = −1 (indexing alpha_bars[−1] wraps to the last entry); "
        "missing square root; or ᾱ_t and ᾱ_prev swapped",
        rtol=1e-9,
        atol=1e-12,
    )


def test_ddim_sigma_on_a_subsequence_matches_eq_16():
    """Skipping steps: ``σ = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev)`` with ``ᾱ_{−1} = 1``."""
    sched = schedule(T, "cosine")
    t, t_prev, eta = long([49, 40, 25, 12]), long([39, 20, 5, -1]), 0.6
    a, a_prev = ab(sched, t), ab(sched, t_prev)
    expected = eta * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()
    check_close(
        ddim_sigma(sched, t, t_prev, eta),
        expected,
        part=PART,
        what="ddim_sigma(t, t_prev, η) = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev) (eq. 16)",
        hint="ᾱ_prev is ᾱ at t_prev (not alpha_bars_prev[t], which is only right for consecutive steps); "
        "ᾱ_prev = 1 when t_prev = −1",
        rtol=1e-9,
        atol=1e-12,
    )


# --- ddim_step -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 2), (3, 2, 4, 4)])
def test_ddim_step_eta_zero_with_a_denoiser_that_knows_x0(shape):
    """``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε`` and a denoiser that knows x0: ``η = 0`` gives
    ``x_prev = √ᾱ_prev · x0 + √(1 − ᾱ_prev) · ε`` (the same ε, one level less noisy)."""
    sched = schedule(T)
    x0, noise = data_in_unit_box(shape), randn(shape)
    t, t_prev = long([49, 30, 12]), long([39, 10, 0])
    x_t = diffuse(sched, x0, t, noise)
    got = ddim_step(x0_denoiser(sched, x0), sched, x_t, t, t_prev, eta=0.0)
    a_prev = expand_like(ab(sched, t_prev), x0)
    check_close(
        got,
        a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * noise,
        part=PART,
        what="ddim_step(η = 0) = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev)·eps, with x̂0 = x0 and eps = ε here",
        hint="use ᾱ at t_prev (not alpha_bars_prev[t], which is ᾱ_{t−1}); square roots on both coefficients",
        rtol=1e-8,
        atol=1e-9,
    )


def test_ddim_step_to_t_prev_minus_one_returns_x0():
    """The last DDIM step goes to ``t_prev = −1`` where ``ᾱ_prev = 1``: ``x_prev = x̂0`` (= x0 for this denoiser)."""
    sched = schedule(T)
    x0, noise = data_in_unit_box((4, 3)), randn((4, 3))
    t = long([0, 9, 25, 49])
    x_t = diffuse(sched, x0, t, noise)
    got = ddim_step(x0_denoiser(sched, x0), sched, x_t, t, long([-1, -1, -1, -1]), eta=0.0)
    check_close(
        got,
        x0,
        part=PART,
        what="ddim_step(t → t_prev = −1) = x̂0 (ᾱ_{−1} = 1)",
        hint="ᾱ_prev must be 1 when t_prev = −1: alpha_bars[−1] is the *last* entry of the schedule, not 1",
        rtol=1e-8,
        atol=1e-9,
    )


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches_eq_12(eta):
    """``x_prev = √ᾱ_prev · x̂0 + √(1 − ᾱ_prev − σ²) · eps + σ · noise`` with ``x̂0 = (x_t − √(1 − ᾱ_t) eps)/√ᾱ_t``
    and σ of eq. 16, for a generic denoiser and skipped steps."""
    sched = schedule(T, "cosine")
    x_t, noise = randn((4, 2, 3)), randn((4, 2, 3), seed=1)
    t, t_prev = long([49, 40, 20, 5]), long([44, 20, 3, -1])
    got = ddim_step(smooth_denoiser, sched, x_t, t, t_prev, eta=eta, noise=noise)
    eps = smooth_denoiser(x_t, t)
    a, a_prev = ab(sched, t), ab(sched, t_prev)
    sigma = eta * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()
    x0_hat = (x_t - expand_like((1 - a).sqrt(), x_t) * eps) / expand_like(a.sqrt(), x_t)
    expected = (
        expand_like(a_prev.sqrt(), x_t) * x0_hat
        + expand_like((1 - a_prev - sigma**2).sqrt(), x_t) * eps
        + expand_like(sigma, x_t) * noise
    )
    check_close(
        got,
        expected,
        part=PART,
        what=f"ddim_step(η = {eta}) = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev − σ²)·eps + σ·noise (eq. 12)",
        hint="σ² goes inside the square root of the direction term; σ (not σ²) multiplies the noise; "
        "ᾱ_prev is ᾱ at t_prev (1 when t_prev = −1)",
        rtol=1e-8,
        atol=1e-9,
    )


def test_ddim_step_eta_one_on_consecutive_steps_is_the_ddpm_step():
    """``η = 1``, ``t_prev = t − 1``: ``x_prev = μ̃_t(x̂0, x_t) + √β̃_t · noise`` (DDPM's posterior, Song et al. §4.1)."""
    sched = schedule(T)
    x_t, noise = randn((4, 3)), randn((4, 3), seed=1)
    t = long([49, 20, 3, 1])
    got = ddim_step(smooth_denoiser, sched, x_t, t, t - 1, eta=1.0, noise=noise)
    eps = smooth_denoiser(x_t, t)
    x0_hat = x0_from_eps(sched, x_t, t, eps)
    check_close(
        got,
        posterior_mean(sched, x0_hat, x_t, t) + extract(beta_tilde(sched).sqrt(), t, x_t) * noise,
        part=PART,
        what="ddim_step(t → t − 1, η = 1) = μ̃_t(x̂0, x_t) + √β̃_t·noise (DDIM with η = 1 is DDPM)",
        hint="check σ (eq. 16) and the direction term √(1 − ᾱ_prev − σ²)·eps",
        rtol=1e-8,
        atol=1e-9,
    )


def test_ddim_step_clipping_recomputes_eps_from_the_clamped_x0():
    """``clip_denoised=True``: ``x̂0`` is clamped to [−1, 1] and ``eps`` recomputed from it,
    ``eps' = (x_t − √ᾱ_t · x̂0)/√(1 − ᾱ_t)``; then ``x_prev = √ᾱ_prev · x̂0 + √(1 − ᾱ_prev) · eps'`` (η = 0)."""
    sched = schedule(T)
    x_t = randn((4, 5))
    t, t_prev = long([49, 30, 12, 5]), long([40, 20, 2, -1])

    def wild(x, t):  # its x0 estimate lands far outside [−1, 1]
        return -3.0 * x

    got = ddim_step(wild, sched, x_t, t, t_prev, eta=0.0, clip_denoised=True)
    sa, s1a = extract(sched.alpha_bars.sqrt(), t, x_t), extract((1 - sched.alpha_bars).sqrt(), t, x_t)
    x0_hat = ((x_t - s1a * wild(x_t, t)) / sa).clamp(-1, 1)
    eps = (x_t - sa * x0_hat) / s1a
    a_prev = expand_like(ab(sched, t_prev), x_t)
    check_close(
        got,
        a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps,
        part=PART,
        what="ddim_step(clip_denoised=True): clamp x̂0, recompute eps = (x_t − √ᾱ_t·x̂0)/√(1 − ᾱ_t), then eq. 12",
        hint="after clamping x̂0, the model's eps no longer matches it: recompute eps from the clamped x̂0",
        rtol=1e-8,
        atol=1e-9,
    )


def test_ddim_step_needs_noise_when_eta_is_not_zero():
    """``η ≠ 0`` needs a noise tensor: ``ddim_step(..., eta=0.5, noise=None)`` raises ``ValueError``."""
    sched, x_t = schedule(T), randn((2, 3))
    try:
        ddim_step(smooth_denoiser, sched, x_t, long([20, 20]), long([10, 10]), eta=0.5, noise=None)
    except ValueError:
        return
    pytest.fail(
        f"{PART}: ddim_step(eta=0.5, noise=None) must raise ValueError: a stochastic step (η ≠ 0) needs noise=\n"
        f"  hint: check `if eta != 0 and noise is None: raise ValueError(...)` first; never draw noise yourself"
    )


def test_ddim_step_keeps_shape_and_dtype_and_passes_model_kwargs():
    """Float32 data gives a float32 ``x_prev`` of the same shape; ``model_kwargs`` (e.g. ``y=``) reach the model."""
    sched, x_t = schedule(T), randn((2, 1, 4, 4), dtype=torch.float32)
    model, y = RecordingModel(), long([3, 1])
    got = ddim_step(model, sched, x_t, long([30, 30]), long([10, 10]), y=y)
    assert got.shape == x_t.shape and got.dtype == torch.float32, (
        f"{PART}: ddim_step on float32 data of shape {tuple(x_t.shape)} returned {got.dtype} of shape "
        f"{tuple(got.shape)}\n  hint: cast the float64 coefficients to x_t's dtype (expand_like / extract do)"
    )
    assert len(model.kwargs) == 1 and "y" in model.kwargs[0] and torch.equal(model.kwargs[0]["y"], y), (
        f"{PART}: ddim_step(model, ..., y=y) must call model(x_t, t, y=y) exactly once\n"
        f"  hint: forward **model_kwargs to the model"
    )


# --- ddim_sample_loop ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spacing", "num_steps", "expected"),
    [
        ("uniform", 5, [40, 30, 20, 10, 0]),  # τ = 10k
        ("trailing", 5, [49, 39, 29, 19, 9]),  # τ = 50 − 10k − 1
        ("linspace", 4, [49, 33, 16, 0]),  # τ = round([0, 16.33, 32.67, 49])
    ],
)
def test_ddim_sample_loop_calls_the_model_num_steps_times_going_down(spacing, num_steps, expected):
    """``num_steps`` model calls, walking ``ddim_timesteps(T, num_steps, spacing)`` from the largest down (T = 50)."""
    model = RecordingModel()
    generator = torch.Generator().manual_seed(0)
    out = ddim_sample_loop(model, schedule(T), (3, 2), num_steps=num_steps, spacing=spacing, generator=generator)
    assert out.shape == (3, 2) and out.dtype == torch.float32, (
        f"{PART}: ddim_sample_loop(shape=(3, 2)) must return float32 of shape (3, 2), got {out.dtype} of shape "
        f"{tuple(out.shape)}"
    )
    assert model.steps() == expected, (
        f"{PART}: ddim_sample_loop(T=50, num_steps={num_steps}, spacing={spacing!r}) must call the model at "
        f"t = {expected} in that order, got {model.steps()}\n"
        f"  hint: walk the ascending ddim_timesteps backwards, one model call per step"
    )
    assert all(t.dtype == torch.long and t.shape == (3,) for t in model.ts), (
        f"{PART}: ddim_sample_loop must pass t as a long tensor of shape (B,) = (3,)"
    )


@pytest.mark.parametrize(("num_steps", "eta"), [(10, 0.0), (7, 0.0), (10, 1.0)])
def test_ddim_sample_loop_with_a_denoiser_that_knows_x0_returns_x0(num_steps, eta):
    """With a denoiser that knows x0, every ``x̂0`` is x0 and the last step goes to ``t_prev = −1``
    (``ᾱ = 1``, ``σ = 0``), so the loop returns x0 exactly, for any η."""
    sched = schedule(T)
    x0 = data_in_unit_box((5, 2), dtype=torch.float32)
    out = ddim_sample_loop(
        x0_denoiser(sched, x0), sched, (5, 2), num_steps=num_steps, eta=eta, generator=torch.Generator().manual_seed(0)
    )
    check_close(
        out,
        x0,
        part=PART,
        what=f"ddim_sample_loop(num_steps={num_steps}, η={eta}) with a denoiser that knows x0 returns x0",
        hint="the last step must go from τ_0 to t_prev = −1 where ᾱ_prev = 1 (not to t_prev = 0, and not stop at τ_0)",
        rtol=1e-4,
        atol=1e-4,
    )


def test_ddim_sample_loop_starts_from_noise_and_passes_model_kwargs():
    """``noise=`` is the starting ``x`` at ``τ[-1]`` (the first model input); ``model_kwargs`` reach every call."""
    model, y, start = RecordingModel(), long([1, 0]), randn((2, 3), dtype=torch.float32, seed=4)
    ddim_sample_loop(model, schedule(T), (2, 3), num_steps=4, noise=start, y=y)
    check_close(
        model.xs[0],
        start,
        part=PART,
        what="ddim_sample_loop(noise=x): the first model call sees x",
        hint="start from the given noise; draw from the generator only when noise is None",
    )
    assert len(model.kwargs) == 4 and all("y" in k and torch.equal(k["y"], y) for k in model.kwargs), (
        f"{PART}: ddim_sample_loop(..., y=y) must pass y=y to each of the num_steps model calls\n"
        f"  hint: forward **model_kwargs to ddim_step"
    )


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_sample_loop_same_seed_gives_same_samples(eta):
    """Randomness comes only from ``generator``: the same seed gives the same samples, another seed others."""
    sched = schedule(T)

    def run(seed):
        return ddim_sample_loop(
            smooth_denoiser, sched, (4, 2), num_steps=10, eta=eta, generator=torch.Generator().manual_seed(seed)
        )

    first, again, other = run(3), run(3), run(4)
    assert bool(torch.isfinite(first).all()), (
        f"{PART}: ddim_sample_loop(η={eta}) returned NaN or inf\n"
        f"  hint: usually ᾱ_prev at t_prev = −1 (it must be 1) or the square root of a negative number"
    )
    assert torch.equal(first, again), (
        f"{PART}: ddim_sample_loop(η={eta}) with two generators seeded alike gave different samples\n"
        f"  hint: draw the start (and, for η > 0, each step's noise) with torch.randn(shape, generator=generator)"
    )
    assert not torch.equal(first, other), f"{PART}: ddim_sample_loop gave the same samples for seeds 3 and 4"


# --- ddim_invert ---------------------------------------------------------------------------------------------------


def test_ddim_invert_calls_the_model_num_steps_times_going_up():
    """Inversion walks the same subsequence upwards: ``num_steps`` calls at ``t = τ_0, τ_1, ...`` (T = 50, 5 steps)."""
    model = RecordingModel()
    out = ddim_invert(model, schedule(T), randn((3, 2), dtype=torch.float32), num_steps=5)
    assert out.shape == (3, 2) and out.dtype == torch.float32, (
        f"{PART}: ddim_invert on float32 x0 of shape (3, 2) returned {out.dtype} of shape {tuple(out.shape)}"
    )
    assert model.steps() == [0, 10, 20, 30, 40], (
        f"{PART}: ddim_invert(T=50, num_steps=5) must call the model at t = [0, 10, 20, 30, 40], got {model.steps()}\n"
        f"  hint: walk ddim_timesteps upwards (from the data to noise), evaluating the model at the level you move to"
    )


def test_ddim_invert_two_steps_by_hand():
    """Two steps (T = 50, uniform: τ = [0, 25]). From level s to level t: ``eps = model(x, t)``,
    ``x̂0 = (x − √(1 − ᾱ_s) eps)/√ᾱ_s``, ``x = √ᾱ_t x̂0 + √(1 − ᾱ_t) eps``; the first step starts at s = −1 (ᾱ = 1)."""
    sched, x0 = schedule(T), data_in_unit_box((3, 2))
    got = ddim_invert(smooth_denoiser, sched, x0, num_steps=2)
    a0, a25 = sched.alpha_bars[0], sched.alpha_bars[25]
    eps = smooth_denoiser(x0, long([0, 0, 0]))
    x = a0.sqrt() * x0 + (1 - a0).sqrt() * eps  # from s = −1: x̂0 = x0
    eps = smooth_denoiser(x, long([25, 25, 25]))
    x0_hat = (x - (1 - a0).sqrt() * eps) / a0.sqrt()
    expected = a25.sqrt() * x0_hat + (1 - a25).sqrt() * eps
    check_close(
        got,
        expected,
        part=PART,
        what="ddim_invert(num_steps=2): the η = 0 step run upwards, −1 → 0 → 25",
        hint="the first step starts from the data (ᾱ_{−1} = 1); x̂0 uses ᾱ of the level you leave and the model is "
        "evaluated at the level you move to",
        rtol=1e-8,
        atol=1e-9,
    )


def test_ddim_invert_maps_gaussian_data_to_standard_noise():
    """For data ~ N(0, σ_d² I) (σ_d = 0.5) the exact denoiser is linear,
    ``eps = √(1 − ᾱ_t)/(ᾱ_t σ_d² + 1 − ᾱ_t) · x_t``, and the deterministic flow keeps ``x / std`` fixed:
    ``ddim_invert(x0) ≈ x0 · √(ᾱ σ_d² + 1 − ᾱ)/σ_d`` at ``τ[-1]`` (≈ 2·x0).
    T = 100, 100 steps; tolerance 0.02 (the reference is off by about 0.004)."""
    sched, x0 = schedule(100, "cosine"), data_in_unit_box((6, 2))
    latent = ddim_invert(gaussian_data_denoiser(sched, 0.5), sched, x0, num_steps=100)
    a_end = sched.alpha_bars[99]
    check_close(
        latent,
        x0 * (a_end * 0.25 + 1 - a_end).sqrt() / 0.5,
        part=PART,
        what="ddim_invert(x0) ≈ x0·√(ᾱσ_d² + 1 − ᾱ)/σ_d for Gaussian data (the η = 0 map from data to noise)",
        hint="walk ddim_timesteps upwards from ᾱ = 1 (the data) to τ[-1], with the η = 0 step: "
        "x = √ᾱ_t·x̂0 + √(1 − ᾱ_t)·eps",
        rtol=0,
        atol=2e-2,
    )


def test_ddim_invert_then_sample_reconstructs_x0_for_a_smooth_denoiser():
    """``ddim_sample_loop(noise=ddim_invert(x0))`` ≈ x0 with the smooth linear denoiser of N(0, σ_d² I) data
    (σ_d = 0.5), T = 100, 100 steps. Tolerance: max error 0.05 (the reference is off by about 0.015)."""
    sched, x0 = schedule(100, "cosine"), data_in_unit_box((6, 2))
    model = gaussian_data_denoiser(sched, 0.5)
    latent = ddim_invert(model, sched, x0, num_steps=100)
    out = ddim_sample_loop(model, sched, x0.shape, num_steps=100, noise=latent)
    check_close(
        out,
        x0,
        part=PART,
        what="ddim_sample_loop(noise=ddim_invert(x0)) ≈ x0 (smooth denoiser, 100 steps, tolerance 0.05)",
        hint="inversion must walk the same subsequence upwards with the η = 0 step, starting from ᾱ = 1 at the "
        "data and ending at τ[-1]; the sampler must start at τ[-1] from the given noise",
        rtol=0,
        atol=5e-2,
    )


def test_ddim_invert_then_sample_is_exact_for_a_denoiser_that_knows_x0():
    """With the denoiser that knows x0, inversion followed by sampling returns x0 exactly (10 steps, float64)."""
    sched, x0 = schedule(T), data_in_unit_box((4, 3))
    model = x0_denoiser(sched, x0)
    latent = ddim_invert(model, sched, x0, num_steps=10)
    assert latent.shape == x0.shape and bool(torch.isfinite(latent).all()), (
        f"{PART}: ddim_invert returned shape {tuple(latent.shape)} with non-finite values: {latent}"
    )
    out = ddim_sample_loop(model, sched, x0.shape, num_steps=10, noise=latent)
    check_close(
        out,
        x0,
        part=PART,
        what="ddim_sample_loop(noise=ddim_invert(x0)) = x0 for a denoiser that knows x0",
        hint="the loop's last step goes to t_prev = −1 (ᾱ = 1)",
        rtol=1e-6,
        atol=1e-6,
    )
