"""Part 1 — noise schedules: ``linear_betas``, ``cosine_betas``, ``scaled_linear_betas``, ``make_schedule``, ``snr``.

Conventions: timesteps are 0-based (index ``t`` is the paper's step ``t + 1``), schedules are float64,
``α_t = 1 − β_t``, ``ᾱ_t = ∏_{s ≤ t} α_s`` and ``ᾱ_prev = [1, ᾱ_0, ..., ᾱ_{T−2}]``.
The first test checks the provided ``extract``; every other test calls only part 1's functions.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffusion.schedules import (
    NoiseSchedule,
    cosine_betas,
    extract,
    linear_betas,
    make_schedule,
    scaled_linear_betas,
    snr,
)
from tests.public.helpers import PROPERTY, check_close, schedule, shapes

PART = "part 1 (schedules)"


def assert_float64_of_length(betas: object, T: int, what: str) -> None:
    """A schedule is a float64 tensor of shape ``(T,)``."""
    assert isinstance(betas, torch.Tensor), f"{PART}: {what}\n  expected a torch.Tensor, got {type(betas).__name__}"
    assert betas.shape == (T,), (
        f"{PART}: {what}\n  expected shape ({T},), got {tuple(betas.shape)}\n"
        f"  hint: one beta per 0-based timestep t = 0..T−1 (a linspace with T+1 points gives T+1)"
    )
    assert betas.dtype == torch.float64, (
        f"{PART}: {what}\n  expected dtype torch.float64, got {betas.dtype}\n"
        f"  hint: pass dtype=torch.float64 to torch.linspace / torch.arange (schedules are built in float64)"
    )


def cosine_f(u: torch.Tensor, T: int, s: float = 0.008) -> torch.Tensor:
    """``f(u) = cos²(((u/T) + s)/(1 + s) · π/2)``, the cosine schedule's ᾱ at continuous time u."""
    return torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2


# --- provided code: extract ---------------------------------------------------------------------------------------


@shapes
def test_extract_gives_a_t_broadcastable_in_the_data_dtype(shape):
    """Provided ``extract(a, t, x)`` = ``a[t]`` with shape ``(B, 1, ..., 1)`` and ``x``'s dtype (float64 → float32)."""
    a = torch.arange(10, dtype=torch.float64) / 10
    t = torch.tensor([0, 3, 9, 3, 1])
    out = extract(a, t, torch.zeros(shape, dtype=torch.float32))
    assert out.shape == (5,) + (1,) * (len(shape) - 1), f"extract returned shape {tuple(out.shape)}"
    assert out.dtype == torch.float32, f"extract returned {out.dtype} for float32 data"
    check_close(out.flatten(), a[t], part="provided extract", what="extract(a, t, x) = a[t]", hint="(provided code)")


# --- linear_betas -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1000, 10])
def test_linear_betas_shape_and_dtype(T):
    """``linear_betas(T)`` is a float64 tensor of shape ``(T,)``."""
    assert_float64_of_length(linear_betas(T), T, f"linear_betas({T})")


@pytest.mark.parametrize(("T", "start", "end"), [(1000, 1e-4, 0.02), (10, 0.001, 0.3)])
def test_linear_betas_endpoints(T, start, end):
    """``β_0 = beta_start`` and ``β_{T−1} = beta_end`` (0-based: the last index is T − 1)."""
    betas = linear_betas(T, beta_start=start, beta_end=end)
    got = torch.stack([betas[0], betas[-1]])
    check_close(
        got,
        torch.tensor([start, end], dtype=torch.float64),
        part=PART,
        what=f"linear_betas({T}, {start}, {end}): [β_0, β_(T−1)] = [beta_start, beta_end]",
        hint="linspace with T+1 points, or an arange that stops one step short of beta_end",
        rtol=1e-12,
        atol=1e-15,
    )


def test_linear_betas_are_evenly_spaced():
    """``β_t = beta_start + t · (beta_end − beta_start)/(T − 1)``, i.e. ``linspace(beta_start, beta_end, T)``."""
    T, start, end = 20, 0.001, 0.2
    expected = start + torch.arange(T, dtype=torch.float64) * (end - start) / (T - 1)
    check_close(
        linear_betas(T, beta_start=start, beta_end=end),
        expected,
        part=PART,
        what="linear_betas: β_t = beta_start + t·(beta_end − beta_start)/(T − 1)",
        hint="the step is (beta_end − beta_start)/(T − 1), not /T; use torch.linspace(beta_start, beta_end, T)",
        rtol=1e-12,
        atol=1e-15,
    )


# --- cosine_betas -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1000, 50])
def test_cosine_betas_match_the_formula(T):
    """``β_t = min(1 − f(t+1)/f(t), 0.999)`` with ``f(u) = cos²(((u/T) + s)/(1 + s) · π/2)``, s = 0.008."""
    betas = cosine_betas(T)
    assert_float64_of_length(betas, T, f"cosine_betas({T})")
    f = cosine_f(torch.arange(T + 1, dtype=torch.float64), T)
    check_close(
        betas,
        (1 - f[1:] / f[:-1]).clamp(max=0.999),
        part=PART,
        what=f"cosine_betas({T}): β_t = min(1 − f(t+1)/f(t), max_beta), f(u) = cos²(((u/T) + s)/(1 + s)·π/2)",
        hint="f is evaluated at the T+1 points u = 0..T (u/T, not u/(T−1)); the cosine is squared; "
        "β_t uses f(t+1)/f(t), not f(t)/f(t−1)",
        rtol=1e-10,
        atol=1e-12,
    )


def test_cosine_alpha_bars_telescope_to_f_ratio():
    """``ᾱ_t = ∏_{s ≤ t} (1 − β_s) = f(t+1)/f(0)`` wherever no beta was clipped (Nichol & Dhariwal, eq. 17)."""
    T = 100
    alpha_bars = torch.cumprod(1 - cosine_betas(T), dim=0)
    f = cosine_f(torch.arange(T + 1, dtype=torch.float64), T)
    check_close(
        alpha_bars[:-1],
        f[1:-1] / f[0],
        part=PART,
        what="cosine_betas: ᾱ_t = cumprod(1 − β)_t = f(t+1)/f(0) for t < T − 1",
        hint="an index off by one (f(t)/f(t−1)), or f not normalised by 1 + s",
        rtol=1e-9,
        atol=1e-12,
    )


def test_cosine_alpha_bars_start_near_one_and_decrease():
    """The cosine schedule's ``ᾱ_0`` is close to 1 and ``ᾱ_t`` strictly decreases; every ``β_t`` is in (0, 0.999]."""
    betas = cosine_betas(1000)
    alpha_bars = torch.cumprod(1 - betas, dim=0)
    assert alpha_bars[0] > 0.999, (
        f"{PART}: cosine_betas(1000): ᾱ_0 = 1 − β_0 should be close to 1, got {alpha_bars[0].item():.6g}\n"
        f"  hint: β_0 = 1 − f(1)/f(0); the offset s = 0.008 enters as ((u/T) + s)/(1 + s)"
    )
    assert bool((alpha_bars[1:] < alpha_bars[:-1]).all()), (
        f"{PART}: cosine_betas: ᾱ_t must strictly decrease in t\n"
        f"  hint: every β_t must be positive: β_t = 1 − f(t+1)/f(t) with f decreasing"
    )
    assert bool((betas > 0).all() & (betas <= 0.999).all()), (
        f"{PART}: cosine_betas: every β_t must lie in (0, max_beta], got min {betas.min().item():.4g}, "
        f"max {betas.max().item():.4g}\n  hint: clip with min(·, max_beta), e.g. torch.clamp(·, max=max_beta)"
    )


@pytest.mark.parametrize("max_beta", [0.999, 0.5])
def test_cosine_betas_are_clipped_at_max_beta(max_beta):
    """``β_{T−1} = min(1 − f(T)/f(T−1), max_beta) = max_beta``: f(T) = cos²(π/2) ≈ 0, so the last beta is clipped."""
    betas = cosine_betas(50, max_beta=max_beta)
    assert betas.max().item() <= max_beta, (
        f"{PART}: cosine_betas(50, max_beta={max_beta}): the largest beta is {betas.max().item():.6g} > max_beta\n"
        f"  hint: β_t = min(1 − f(t+1)/f(t), max_beta): clamp(max=max_beta), not clamp(min=max_beta)"
    )
    assert math.isclose(betas[-1].item(), max_beta, rel_tol=1e-12), (
        f"{PART}: cosine_betas(50, max_beta={max_beta}): β_(T−1) should be clipped to {max_beta}, "
        f"got {betas[-1].item():.6g}\n  hint: f must be evaluated up to u = T (T+1 points), where f(T) ≈ 0"
    )


# --- scaled_linear_betas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("T", "start", "end"), [(1000, 0.00085, 0.012), (10, 0.01, 0.25)])
def test_scaled_linear_betas_are_squares_of_a_linspace(T, start, end):
    """``β_t = linspace(√beta_start, √beta_end, T)[t]²``: endpoints beta_start and beta_end, √β evenly spaced."""
    betas = scaled_linear_betas(T, beta_start=start, beta_end=end)
    assert_float64_of_length(betas, T, f"scaled_linear_betas({T})")
    expected = math.sqrt(start) + torch.arange(T, dtype=torch.float64) * (math.sqrt(end) - math.sqrt(start)) / (T - 1)
    check_close(
        betas,
        expected**2,
        part=PART,
        what=f"scaled_linear_betas({T}, {start}, {end}): β_t = linspace(√beta_start, √beta_end, T)[t]²",
        hint="forgot the square root of the endpoints, or forgot to square the linspace",
        rtol=1e-12,
        atol=1e-15,
    )


# --- make_schedule ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_make_schedule_derives_alphas_and_alpha_bars(kind):
    """``α_t = 1 − β_t`` and ``ᾱ_t = ∏_{s ≤ t} α_s`` (a cumulative product)."""
    betas = schedule(50, kind).betas
    sched = make_schedule(betas.clone())
    assert isinstance(sched, NoiseSchedule), f"{PART}: make_schedule must return a NoiseSchedule"
    check_close(sched.betas, betas, part=PART, what="make_schedule(betas).betas = betas", hint="keep the betas")
    check_close(sched.alphas, 1 - betas, part=PART, what="make_schedule: α_t = 1 − β_t", hint="alphas are 1 − betas")
    check_close(
        sched.alpha_bars,
        torch.cumprod(1 - betas, dim=0),
        part=PART,
        what="make_schedule: ᾱ_t = ∏_{s ≤ t} α_s",
        hint="cumsum instead of cumprod, or the product of the betas instead of the alphas",
        rtol=1e-10,
        atol=1e-14,
    )


def test_make_schedule_alpha_bars_prev_starts_with_one():
    """``ᾱ_prev = [1, ᾱ_0, ..., ᾱ_{T−2}]``: the ᾱ of one step earlier, 1 before the first step."""
    sched = make_schedule(schedule(50, "linear").betas.clone())
    assert sched.alpha_bars_prev[0].item() == 1.0, (
        f"{PART}: make_schedule: ᾱ_prev[0] must be 1, got {sched.alpha_bars_prev[0].item():.6g}\n"
        f"  hint: alpha_bars_prev must start with 1 (0-based timesteps): cat([1], alpha_bars[:-1])"
    )
    check_close(
        sched.alpha_bars_prev[1:],
        sched.alpha_bars[:-1],
        part=PART,
        what="make_schedule: ᾱ_prev[t] = ᾱ_{t−1} for t = 1..T−1 (your own alpha_bars shifted right by one)",
        hint="cat([1], alpha_bars[:-1]): shift right, not left (alpha_bars[1:]), and keep length T",
        rtol=1e-12,
        atol=0,
    )


def test_make_schedule_is_float64_even_for_float32_betas():
    """Every field of the schedule is a float64 tensor of shape ``(T,)``, whatever the betas' dtype."""
    betas = torch.linspace(1e-3, 0.05, 30, dtype=torch.float32)
    sched = make_schedule(betas)
    for name in ("betas", "alphas", "alpha_bars", "alpha_bars_prev"):
        field = getattr(sched, name)
        assert field.dtype == torch.float64 and field.shape == (30,), (
            f"{PART}: make_schedule(float32 betas).{name} must be float64 of shape (30,), "
            f"got {field.dtype} of shape {tuple(field.shape)}\n"
            f"  hint: convert first, betas = torch.as_tensor(betas, dtype=torch.float64); "
            f"ᾱ_prev has length T, not T+1"
        )


@pytest.mark.parametrize(
    "bad", [[0.1, 0.0, 0.2], [0.1, 1.0, 0.2], [-0.01, 0.1, 0.2], [0.1, 0.2, 1.5]], ids=["zero", "one", "neg", "gt1"]
)
def test_make_schedule_rejects_betas_outside_the_open_interval(bad):
    """``make_schedule`` raises ``ValueError`` when any beta is ≤ 0 or ≥ 1 (0 < β_t < 1 is required)."""
    try:
        make_schedule(torch.tensor(bad, dtype=torch.float64))
    except ValueError:
        return
    pytest.fail(
        f"{PART}: make_schedule({bad}) must raise ValueError: every beta must lie in the open interval (0, 1)\n"
        f"  hint: check ((betas > 0) & (betas < 1)).all() and raise ValueError otherwise (both ends excluded)"
    )


@PROPERTY
@given(betas=st.lists(st.floats(min_value=1e-6, max_value=0.999), min_size=1, max_size=60))
def test_make_schedule_recursion_holds_for_any_betas(betas):
    """For any betas in (0, 1): ``ᾱ_t = ᾱ_prev[t] · α_t`` and ``ᾱ_prev[0] = 1``."""
    sched = make_schedule(torch.tensor(betas, dtype=torch.float64))
    check_close(
        sched.alpha_bars,
        sched.alpha_bars_prev * sched.alphas,
        part=PART,
        what=f"make_schedule (T = {len(betas)}): ᾱ_t = ᾱ_prev[t] · α_t",
        hint="ᾱ is a cumulative *product* of the alphas, and ᾱ_prev is ᾱ shifted right by one with a leading 1",
        rtol=1e-10,
        atol=1e-300,
    )
    assert sched.alpha_bars_prev[0].item() == 1.0, f"{PART}: make_schedule: ᾱ_prev[0] must be 1"


# --- snr ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_snr_is_alpha_bar_over_one_minus_alpha_bar(kind):
    """``SNR(t) = ᾱ_t / (1 − ᾱ_t)``, float64 of shape ``(B,)``, for 0-based t in any order."""
    sched = schedule(50, kind)
    t = torch.tensor([49, 0, 17, 1, 30])
    got = snr(sched, t)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64, (
        f"{PART}: snr must return a float64 tensor (from the float64 schedule), got {getattr(got, 'dtype', got)}"
    )
    ab = sched.alpha_bars[t]
    check_close(
        got,
        ab / (1 - ab),
        part=PART,
        what="snr(schedule, t) = ᾱ_t / (1 − ᾱ_t)",
        hint="used ᾱ_prev where ᾱ_t belongs, inverted the ratio, or took a square root (SNR is a variance ratio)",
        rtol=1e-10,
        atol=1e-14,
    )


def test_snr_decreases_in_t():
    """``SNR(t)`` strictly decreases: every step adds noise."""
    sched = schedule(50, "linear")
    values = snr(sched, torch.arange(50))
    assert bool((values[1:] < values[:-1]).all()), (
        f"{PART}: snr(schedule, t) must strictly decrease in t\n  hint: SNR = ᾱ_t/(1 − ᾱ_t), not (1 − ᾱ_t)/ᾱ_t"
    )
