"""Part 4 — training objectives: ``ddpm_loss``, ``normal_kl``, ``vlb_term``.

``L_simple = mean ‖eps − eps_θ(√ᾱ_t x0 + √(1 − ᾱ_t) eps, t)‖²`` (Ho et al. 2020, eq. 14) and the bound's terms
``L_t = KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t))`` for 0-based ``t ≥ 1`` (eq. 5), in nats.

The denoisers here are oracles that know x0 and so return the true noise of ``x_t``. The schedule comes from
``helpers.schedule``. ``ddpm_loss`` uses your part 2 ``q_sample`` and ``vlb_term`` your part 3 posterior and part 6
``p_mean_variance``: if a test here fails inside one of those, fix that part first.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffusion.losses import ddpm_loss, normal_kl, vlb_term
from diffusion.schedules import NoiseSchedule, extract
from tests.public.helpers import AT_T, PROPERTY, TIMESTEPS, T, check_close, diffuse, dtypes, randn, schedule, shapes

PART = "part 4 (losses)"
VLB_TIMESTEPS = torch.tensor([1, 49, 2, 24, 48])  # L_t is a KL only for t ≥ 1
AT_VLB_T = f"t = {VLB_TIMESTEPS.tolist()}, one per sample"
# helpers.TOL, with rtol = 1e-9 (not 1e-10) in float64.
TOL = {torch.float32: {"rtol": 2e-4, "atol": 2e-5}, torch.float64: {"rtol": 1e-9, "atol": 1e-12}}


def uniform(shape, dtype, seed, low=-1.0, high=1.0):
    """Uniform data in ``[low, high]`` (data lives in [−1, 1])."""
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (low + (high - low) * u).to(dtype)


def oracle(sched: NoiseSchedule, x0: torch.Tensor, offset: torch.Tensor | float = 0.0):
    """A denoiser that knows x0: ``eps_θ(x_t, t) = (x_t − √ᾱ_t x0) / √(1 − ᾱ_t) + offset``.

    With ``offset = 0`` it returns exactly the noise in ``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) eps``.
    """

    def model(x_t, t, **model_kwargs):
        ab = extract(sched.alpha_bars, t, x_t)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt() + offset

    return model


def assert_scalar(loss: object, dtype: torch.dtype) -> None:
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.dtype == dtype, (
        f"{PART}: ddpm_loss must return a scalar tensor in the data's dtype {dtype}, got "
        f"{type(loss).__name__} {getattr(loss, 'dtype', '')} of shape {tuple(getattr(loss, 'shape', ()))}\n"
        f"  hint: the mean over every element, ((noise − eps_hat)**2).mean()"
    )


def assert_per_sample(kl: object, dtype: torch.dtype) -> None:
    assert isinstance(kl, torch.Tensor) and kl.shape == (5,) and kl.dtype == dtype, (
        f"{PART}: vlb_term must return one KL per sample, shape (B,) = (5,), in the data's dtype {dtype}; got "
        f"{type(kl).__name__} {getattr(kl, 'dtype', '')} of shape {tuple(getattr(kl, 'shape', ()))}\n"
        f"  hint: average over the non-batch dimensions only, kl.flatten(1).mean(dim=1), not over the batch"
    )


# --- normal_kl ----------------------------------------------------------------------------------------------------


@shapes
def test_normal_kl_is_zero_for_equal_gaussians(shape):
    """``KL(N(μ, σ²) ‖ N(μ, σ²)) = 0`` elementwise, whatever μ and σ."""
    mean, logvar = randn(shape, torch.float64, 0), randn(shape, torch.float64, 1)
    check_close(
        normal_kl(mean, logvar, mean, logvar),
        torch.zeros(shape, dtype=torch.float64),
        part=PART,
        what="normal_kl(μ, log σ², μ, log σ²) = 0 elementwise",
        hint="KL = ½(logvar2 − logvar1 + e^(logvar1 − logvar2) + (μ1 − μ2)² e^(−logvar2) − 1): did you drop the − 1?",
        rtol=0,
        atol=1e-12,
    )


def test_normal_kl_matches_closed_form_examples():
    """``KL(N(μ1, σ1²) ‖ N(μ2, σ2²)) = log(σ2/σ1) + (σ1² + (μ1 − μ2)²)/(2σ2²) − ½`` on four worked examples."""
    mean1 = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    logvar1 = torch.tensor([0.0, 0.0, 2.0, math.log(4.0)], dtype=torch.float64)
    mean2 = torch.tensor([0.0, 0.0, 0.0, -1.0], dtype=torch.float64)
    logvar2 = torch.tensor([0.0, 2.0, 0.0, 0.0], dtype=torch.float64)
    expected = torch.tensor(
        [
            0.5,  # means 1 apart, unit variances: (μ1 − μ2)²/2
            0.5 * (1 + math.exp(-2)),  # σ1² = 1, σ2² = e²: ½(2 + e^(−2) − 1)
            0.5 * (math.exp(2) - 3),  # σ1² = e², σ2² = 1: ½(−2 + e² − 1) — KL is not symmetric
            0.5 * (7 - math.log(4.0)),  # σ1² = 4, σ2² = 1, means 2 apart: ½(−log 4 + 4 + 4 − 1)
        ],
        dtype=torch.float64,
    )
    check_close(
        normal_kl(mean1, logvar1, mean2, logvar2),
        expected,
        part=PART,
        what="normal_kl = ½(logvar2 − logvar1 + e^(logvar1 − logvar2) + (μ1 − μ2)² e^(−logvar2) − 1)",
        hint="the arguments are log-variances (exponentiate, no square); KL(1 ‖ 2) divides by the variance of 2; "
        "swapped the two distributions?",
        rtol=1e-12,
        atol=1e-12,
    )


@dtypes
def test_normal_kl_broadcasts_and_keeps_dtype(dtype):
    """Arguments broadcast: per-sample log-variances ``(B, 1, 1, 1)`` against means ``(B, 1, 8, 8)``."""
    mean1, mean2 = randn((5, 1, 8, 8), dtype, 2), randn((5, 1, 8, 8), dtype, 3)
    logvar1, logvar2 = randn((5, 1, 1, 1), dtype, 4), randn((5, 1, 1, 1), dtype, 5)
    got = normal_kl(mean1, logvar1, mean2, logvar2)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype, (
        f"{PART}: normal_kl must keep the inputs' dtype {dtype}, got {getattr(got, 'dtype', type(got).__name__)}"
    )
    m1, lv1, m2, lv2 = (a.double() for a in (mean1, logvar1, mean2, logvar2))
    check_close(
        got,
        0.5 * (lv2 - lv1) + (lv1.exp() + (m1 - m2) ** 2) / (2 * lv2.exp()) - 0.5,
        part=PART,
        what="normal_kl elementwise with broadcasting: log(σ2/σ1) + (σ1² + (μ1 − μ2)²)/(2σ2²) − ½",
        hint="keep it elementwise: no sum or mean inside normal_kl, and let torch broadcast the arguments",
        **TOL[dtype],
    )


@PROPERTY
@given(
    mean1=st.floats(-5, 5),
    mean2=st.floats(-5, 5),
    logvar1=st.floats(-6, 6),
    logvar2=st.floats(-6, 6),
)
def test_normal_kl_is_nonnegative_and_matches_the_sigma_form(mean1, mean2, logvar1, logvar2):
    """For any two Gaussians: ``KL ≥ 0`` and ``KL = log(σ2/σ1) + (σ1² + (μ1 − μ2)²)/(2σ2²) − ½``."""
    args = [torch.tensor([v], dtype=torch.float64) for v in (mean1, logvar1, mean2, logvar2)]
    got = normal_kl(*args)
    sigma1, sigma2 = math.exp(logvar1 / 2), math.exp(logvar2 / 2)
    expected = math.log(sigma2 / sigma1) + (sigma1**2 + (mean1 - mean2) ** 2) / (2 * sigma2**2) - 0.5
    what = f"normal_kl(μ1={mean1}, logvar1={logvar1}, μ2={mean2}, logvar2={logvar2})"
    check_close(
        got,
        torch.tensor([expected], dtype=torch.float64),
        part=PART,
        what=what + " = log(σ2/σ1) + (σ1² + (μ1 − μ2)²)/(2σ2²) − ½",
        hint="σ² = exp(logvar), σ = exp(logvar / 2); the mean term divides by σ2², not σ1²",
        rtol=1e-9,
        atol=1e-12,
    )
    assert got.item() >= -1e-12, f"{PART}: {what} = {got.item():.6g} < 0, but a KL divergence is never negative"


# --- ddpm_loss ----------------------------------------------------------------------------------------------------


@dtypes
@shapes
def test_ddpm_loss_is_zero_for_the_true_noise(shape, dtype):
    """With explicit ``t`` and ``noise``: a model that returns the noise in ``x_t`` has loss 0, a scalar."""
    sched = schedule(T, "linear")
    x0, noise = uniform(shape, dtype, 6), randn(shape, dtype, 7)
    loss = ddpm_loss(oracle(sched, x0), sched, x0, t=TIMESTEPS, noise=noise)
    assert_scalar(loss, dtype)
    check_close(
        loss,
        torch.tensor(0.0, dtype=torch.float64),
        part=PART,
        what=f"ddpm_loss: mean ‖noise − model(x_t, t)‖² = 0 when the model returns the true noise ({AT_T})",
        hint="the model must see x_t = q_sample(x0, t, noise), the given t, and be compared with the same noise",
        rtol=0,
        atol=1e-8 if dtype == torch.float32 else 1e-20,
    )


@shapes
def test_ddpm_loss_is_the_mean_squared_error(shape):
    """A model off by ``δ`` (elementwise) has loss ``mean(δ²)`` over every element: positive, not a sum."""
    sched = schedule(T, "cosine")
    x0, noise, delta = uniform(shape, torch.float64, 8), randn(shape, torch.float64, 9), randn(shape, torch.float64, 10)
    loss = ddpm_loss(oracle(sched, x0, offset=delta), sched, x0, t=TIMESTEPS, noise=noise)
    check_close(
        loss,
        (delta**2).mean(),
        part=PART,
        what="ddpm_loss = mean over every element of (noise − model(x_t, t))²",
        hint="the mean over all elements (not a sum, not a mean of per-sample sums), squared (not absolute) error",
        rtol=1e-9,
        atol=1e-12,
    )


def test_ddpm_loss_passes_t_and_model_kwargs_to_the_model():
    """``ddpm_loss`` calls ``model(x_t, t, **model_kwargs)`` with the given t and x_t of x0's shape and dtype."""
    sched = schedule(T, "linear")
    x0, noise = uniform((5, 1, 8, 8), torch.float32, 11), randn((5, 1, 8, 8), torch.float32, 12)
    y = torch.tensor([3, 1, 4, 1, 5])
    calls = []

    def model(x_t, t, **model_kwargs):
        calls.append((x_t, t, model_kwargs))
        return torch.zeros_like(x_t)

    ddpm_loss(model, sched, x0, t=TIMESTEPS, noise=noise, y=y)
    assert calls, f"{PART}: ddpm_loss never called the model"
    x_t, t, model_kwargs = calls[-1]
    assert x_t.shape == x0.shape and x_t.dtype == x0.dtype, (
        f"{PART}: ddpm_loss: the model must get x_t of x0's shape {tuple(x0.shape)} and dtype {x0.dtype}, "
        f"got {tuple(x_t.shape)} {x_t.dtype}"
    )
    assert torch.equal(t, TIMESTEPS), f"{PART}: ddpm_loss must pass the given t to the model, got {t}"
    assert set(model_kwargs) == {"y"} and torch.equal(model_kwargs["y"], y), (
        f"{PART}: ddpm_loss must pass **model_kwargs (here y=...) on to the model, got {model_kwargs}\n"
        f"  hint: model(x_t, t, **model_kwargs)"
    )


def test_ddpm_loss_draws_t_uniformly_from_0_to_T_minus_1():
    """Without ``t``: ``t ~ U{0, ..., T−1}``, a long tensor of shape ``(B,)`` — both ends included (0-based)."""
    sched = schedule(4, "linear")
    x0 = uniform((2000, 2), torch.float64, 13)
    seen = []

    def model(x_t, t, **model_kwargs):
        seen.append(t)
        return torch.zeros_like(x_t)

    ddpm_loss(model, sched, x0, generator=torch.Generator().manual_seed(0))
    t = seen[0]
    assert t.dtype == torch.long and t.shape == (2000,), (
        f"{PART}: ddpm_loss: the drawn t must be a long tensor of shape (B,) = (2000,), got {t.dtype} {tuple(t.shape)}"
    )
    assert sorted(set(t.tolist())) == [0, 1, 2, 3], (
        f"{PART}: ddpm_loss with T = 4, B = 2000: t must take every value in {{0, 1, 2, 3}}, "
        f"got {sorted(set(t.tolist()))}\n"
        f"  hint: timesteps are 0-based: torch.randint(0, T, (B,), generator=generator), "
        f"not randint(1, T) or randint(0, T − 1)"
    )


def test_ddpm_loss_draws_standard_normal_noise_from_the_generator():
    """Without ``noise``: ``noise ~ N(0, I)`` from ``generator``, consistent with the ``x_t`` the model sees.

    The oracle's loss is 0; a model returning 0 has loss ``mean(noise²) ≈ 1`` (4 000 draws: within 0.1, over
    4 standard errors); the same seed gives the same loss; the global RNG is left alone.
    """
    sched = schedule(T, "linear")
    x0 = uniform((2000, 2), torch.float64, 14)
    rng_state = torch.get_rng_state()
    oracle_loss = ddpm_loss(oracle(sched, x0), sched, x0, generator=torch.Generator().manual_seed(1))
    zero_loss = ddpm_loss(lambda x_t, t: torch.zeros_like(x_t), sched, x0, generator=torch.Generator().manual_seed(2))
    again = ddpm_loss(lambda x_t, t: torch.zeros_like(x_t), sched, x0, generator=torch.Generator().manual_seed(2))
    assert oracle_loss.item() < 1e-18, (
        f"{PART}: ddpm_loss with drawn t and noise: the oracle's loss is {oracle_loss.item():.3g}, expected 0\n"
        f"  hint: build x_t from the noise you drew and compare the model's output with that same noise and t"
    )
    assert abs(zero_loss.item() - 1.0) < 0.1, (
        f"{PART}: ddpm_loss with a model returning 0: mean(noise²) = {zero_loss.item():.4g}, expected ≈ 1\n"
        f"  hint: the noise is standard normal, torch.randn(x0.shape, generator=generator) (not torch.rand)"
    )
    assert zero_loss.item() == again.item(), (
        f"{PART}: ddpm_loss: two generators with the same seed gave different losses\n"
        f"  hint: draw t and noise from the generator argument (generator=generator), not the global RNG"
    )
    assert torch.equal(torch.get_rng_state(), rng_state), (
        f"{PART}: ddpm_loss(generator=...) changed the global RNG\n"
        f"  hint: pass generator=generator to torch.randint and torch.randn; never call torch.manual_seed"
    )


# --- vlb_term -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [[3, 0, 7], [0, 0, 0]], ids=["one_zero", "all_zero"])
def test_vlb_term_rejects_t_equal_0(t):
    """``L_t`` is a KL only for ``t ≥ 1``; ``vlb_term`` raises ``ValueError`` where any ``t == 0`` (that is L_0)."""
    sched = schedule(T, "linear")
    x0 = uniform((3, 2), torch.float64, 15)
    try:
        vlb_term(sched, oracle(sched, x0), x0, x0, torch.tensor(t))
    except ValueError:
        return
    pytest.fail(
        f"{PART}: vlb_term(..., t={t}) must raise ValueError: t == 0 is the decoder term L_0, not a KL\n"
        f"  hint: if bool((t == 0).any()): raise ValueError(...)"
    )


@dtypes
@shapes
def test_vlb_term_is_zero_for_the_true_eps(shape, dtype):
    """A model returning the true eps predicts x0 exactly (x0 is in [−1, 1], so clipping would change nothing), so
    ``p_θ(x_{t−1} | x_t) = q(x_{t−1} | x_t, x0)`` and ``L_t = 0``; shape ``(B,)``, the data's dtype."""
    sched = schedule(T, "cosine")
    x0, eps = uniform(shape, dtype, 16), randn(shape, dtype, 17)
    x_t = diffuse(sched, x0.double(), VLB_TIMESTEPS, eps.double()).to(dtype)
    got = vlb_term(sched, oracle(sched, x0), x0, x_t, VLB_TIMESTEPS)
    assert_per_sample(got, dtype)
    check_close(
        got,
        torch.zeros(shape[0], dtype=torch.float64),
        part=PART,
        what=f"vlb_term = KL(q(x_(t−1) | x_t, x0) ‖ p_θ(x_(t−1) | x_t)) = 0 for the true eps ({AT_VLB_T})",
        hint="the model's step must use the fixed-small variance β̃_t (log_variance_clipped) like the posterior; "
        "average over the non-batch dimensions only",
        rtol=0,
        atol=1e-6 if dtype == torch.float32 else 1e-12,
    )


@shapes
def test_vlb_term_matches_eq12_for_a_wrong_eps(shape):
    """A model off by ``δ`` moves the mean by ``β_t / (√α_t √(1 − ᾱ_t)) · δ`` (eq. 11); both variances are ``β̃_t``, so
    ``L_t = mean over non-batch dims of β_t² δ² / (2 β̃_t α_t (1 − ᾱ_t))`` in nats (eq. 12's weight).

    δ is kept small enough that the predicted x0 stays in [−1, 1], so clipping would change nothing. Float64 only:
    near t = T − 1 the KL is a difference of nearly equal means, which float32 cannot resolve to a tight tolerance.
    """
    sched = schedule(T, "linear")
    x0, eps = uniform(shape, torch.float64, 18, -0.5, 0.5), randn(shape, torch.float64, 19)
    b, a, ab, ab_prev = (
        extract(table, VLB_TIMESTEPS, x0)
        for table in (sched.betas, sched.alphas, sched.alpha_bars, sched.alpha_bars_prev)
    )
    delta = 0.5 * (ab / (1 - ab)).sqrt() * uniform(shape, torch.float64, 20)  # |√(1−ᾱ)/√ᾱ · δ| ≤ 0.5
    x_t = diffuse(sched, x0, VLB_TIMESTEPS, eps)
    got = vlb_term(sched, oracle(sched, x0, offset=delta), x0, x_t, VLB_TIMESTEPS)
    assert_per_sample(got, torch.float64)
    beta_tilde = b * (1 - ab_prev) / (1 - ab)
    check_close(
        got,
        (b**2 * delta**2 / (2 * beta_tilde * a * (1 - ab))).flatten(1).mean(1),
        part=PART,
        what=f"vlb_term = mean over non-batch dims of β_t² δ² / (2 β̃_t α_t (1 − ᾱ_t)), eps_θ = eps + δ ({AT_VLB_T})",
        hint="KL(true posterior ‖ model step) with normal_kl, then .flatten(1).mean(1): the mean over the non-batch "
        "dimensions (not the sum), in nats (no division by log 2)",
        **TOL[torch.float64],
    )
