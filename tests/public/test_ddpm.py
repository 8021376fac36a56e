"""Part 6 — DDPM sampling: ``p_mean_variance``, ``p_sample``, ``p_sample_loop`` (Ho et al. 2020, §3.2, Algorithm 2).

Conventions: 0-based timesteps, ``t`` a long tensor ``(B,)``; ``ᾱ_prev[t]`` is ᾱ one step earlier (1 at t = 0).
Useful identities (the expected values below are computed with the provided ``extract`` and plain torch):

- without clipping, the reverse mean is eq. 11: ``μ = (x_t − β_t / √(1 − ᾱ_t) · eps) / √α_t``;
- ``variance="fixed_small"`` is ``β̃_t = β_t (1 − ᾱ_prev) / (1 − ᾱ_t)`` and ``"fixed_large"`` is ``β_t``;
- ``p_sample = μ + √variance · noise``, with no noise where ``t == 0``.

``p_mean_variance`` uses part 3 (the posterior) internally; every test calls only part 6's functions itself.
"""

from __future__ import annotations

import pytest
import torch

from diffusion.ddpm import p_mean_variance, p_sample, p_sample_loop
from diffusion.schedules import NoiseSchedule, extract
from tests.public.helpers import (
    RecordingModel,
    beta_tilde,
    check_close,
    posterior_mean,
    randn,
    schedule,
    x0_denoiser,
    x0_from_eps,
)

PART = "part 6 (ddpm)"
T = 30
SHAPES = [(4, 2), (4, 3, 5, 5)]
TIMESTEPS = torch.tensor([29, 0, 11, 1])  # includes the first and the last 0-based step


# --- denoisers used by the tests -----------------------------------------------------------------------------------


def smooth_denoiser(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A made-up but smooth ``eps_hat``: it depends on ``x_t`` and on ``t``."""
    return 0.5 * x_t + 0.01 * t.to(x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))


def eq11_mean(sched: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Eq. 11 of Ho et al.: ``μ = (x_t − β_t / √(1 − ᾱ_t) · eps) / √α_t``."""
    coef = extract(sched.betas / (1 - sched.alpha_bars).sqrt(), t, x_t)
    return (x_t - coef * eps) / extract(sched.alphas.sqrt(), t, x_t)


def assert_broadcasts_to(value: torch.Tensor, x: torch.Tensor, what: str) -> None:
    """The variance must broadcast against the data: shape ``(B, 1, ..., 1)`` (or the data's own shape)."""
    try:
        ok = torch.broadcast_shapes(value.shape, x.shape) == x.shape
    except RuntimeError:
        ok = False
    assert ok, (
        f"{PART}: {what} must broadcast against x_t of shape {tuple(x.shape)}, got shape {tuple(value.shape)}\n"
        f"  hint: per-timestep coefficients go through extract(a, t, x_t), which gives shape (B, 1, ..., 1)"
    )


# --- p_mean_variance -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_p_mean_variance_mean_is_eq_11_without_clipping(shape):
    """``clip_denoised=False``: ``mean = (x_t − β_t / √(1 − ᾱ_t) · eps) / √α_t`` (eq. 11), for any shape."""
    sched, x_t = schedule(T), randn(shape)
    out = p_mean_variance(smooth_denoiser, sched, x_t, TIMESTEPS, clip_denoised=False)
    assert isinstance(out, dict), f"{PART}: p_mean_variance must return a dict, got {type(out).__name__}"
    check_close(
        out["mean"],
        eq11_mean(sched, x_t, TIMESTEPS, smooth_denoiser(x_t, TIMESTEPS)),
        part=PART,
        what="p_mean_variance(clip_denoised=False)['mean'] = (x_t − β_t/√(1 − ᾱ_t)·eps)/√α_t (eq. 11)",
        hint="the mean is the posterior mean μ̃_t(pred_x0, x_t) with pred_x0 = (x_t − √(1 − ᾱ_t)·eps)/√ᾱ_t; "
        "ᾱ_t where ᾱ_prev belongs (or the reverse) is the usual slip",
        rtol=1e-9,
        atol=1e-10,
    )


def test_p_mean_variance_returns_model_eps_and_pred_x0():
    """``eps`` is the model's output and ``pred_x0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t`` (no clipping)."""
    sched, x_t = schedule(T), randn((4, 3))
    out = p_mean_variance(smooth_denoiser, sched, x_t, TIMESTEPS, clip_denoised=False)
    eps = smooth_denoiser(x_t, TIMESTEPS)
    check_close(
        out["eps"],
        eps,
        part=PART,
        what="p_mean_variance(...)['eps'] = model(x_t, t)",
        hint="return the model's prediction itself under the key 'eps'",
    )
    check_close(
        out["pred_x0"],
        x0_from_eps(sched, x_t, TIMESTEPS, eps),
        part=PART,
        what="p_mean_variance(...)['pred_x0'] = (x_t − √(1 − ᾱ_t)·eps)/√ᾱ_t",
        hint="divide by √ᾱ_t (not ᾱ_t) and use ᾱ_t, not ᾱ_prev",
        rtol=1e-9,
        atol=1e-10,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_p_mean_variance_fixed_small_is_beta_tilde(shape):
    """``variance="fixed_small"``: ``variance = β̃_t = β_t (1 − ᾱ_prev)/(1 − ᾱ_t)``; ``log_variance = log β̃_t``
    for t ≥ 1, and ``log β̃_1`` at t = 0 (where β̃_0 = 0), as ``log_variance_clipped`` of part 3."""
    sched, x_t = schedule(T), randn(shape)
    out = p_mean_variance(smooth_denoiser, sched, x_t, TIMESTEPS, variance="fixed_small")
    assert_broadcasts_to(out["variance"], x_t, "p_mean_variance(...)['variance']")
    bt = beta_tilde(sched)
    check_close(
        torch.broadcast_to(out["variance"], x_t.shape),
        torch.broadcast_to(extract(bt, TIMESTEPS, x_t), x_t.shape),
        part=PART,
        what="p_mean_variance(variance='fixed_small')['variance'] = β̃_t = β_t(1 − ᾱ_prev)/(1 − ᾱ_t)",
        hint="used β instead of β̃ (that is 'fixed_large'), or ᾱ_t and ᾱ_prev swapped",
        rtol=1e-9,
        atol=1e-12,
    )
    log_bt = torch.log(torch.cat([bt[1:2], bt[1:]]))
    check_close(
        torch.broadcast_to(out["log_variance"], x_t.shape),
        torch.broadcast_to(extract(log_bt, TIMESTEPS, x_t), x_t.shape),
        part=PART,
        what="p_mean_variance(variance='fixed_small')['log_variance'] = log β̃_t, with β̃_1 in place of β̃_0 = 0",
        hint="take log_variance_clipped from q_posterior_mean_variance; log(β̃_0) = log 0 = −inf",
        rtol=1e-9,
        atol=1e-9,
    )


def test_p_mean_variance_fixed_large_is_beta():
    """``variance="fixed_large"``: ``variance = β_t`` and ``log_variance = log β_t`` (Ho et al. §3.2)."""
    sched, x_t = schedule(T), randn((4, 1, 3, 3))
    out = p_mean_variance(smooth_denoiser, sched, x_t, TIMESTEPS, variance="fixed_large")
    assert_broadcasts_to(out["variance"], x_t, "p_mean_variance(variance='fixed_large')['variance']")
    check_close(
        torch.broadcast_to(out["variance"], x_t.shape),
        torch.broadcast_to(extract(sched.betas, TIMESTEPS, x_t), x_t.shape),
        part=PART,
        what="p_mean_variance(variance='fixed_large')['variance'] = β_t",
        hint="'fixed_large' is β_t, 'fixed_small' is β̃_t: check which name gets which variance",
        rtol=1e-9,
        atol=1e-12,
    )
    check_close(
        torch.broadcast_to(out["log_variance"], x_t.shape),
        torch.broadcast_to(extract(sched.betas.log(), TIMESTEPS, x_t), x_t.shape),
        part=PART,
        what="p_mean_variance(variance='fixed_large')['log_variance'] = log β_t",
        hint="the log of the variance you return, not of β̃",
        rtol=1e-9,
        atol=1e-9,
    )


def test_p_mean_variance_clips_pred_x0_then_takes_the_posterior_mean():
    """``clip_denoised=True``: ``pred_x0`` is clamped to [−1, 1] *before* the mean
    ``μ̃ = β_t √ᾱ_prev/(1 − ᾱ_t) · pred_x0 + (1 − ᾱ_prev) √α_t/(1 − ᾱ_t) · x_t`` is formed."""
    sched, x_t = schedule(T), randn((4, 6))

    def wild(x, t):  # a denoiser whose x0 estimate lands far outside [−1, 1]
        return -3.0 * x

    out = p_mean_variance(wild, sched, x_t, TIMESTEPS, clip_denoised=True)
    raw_x0 = x0_from_eps(sched, x_t, TIMESTEPS, wild(x_t, TIMESTEPS))
    assert raw_x0.abs().max() > 1.5  # the test is only meaningful when clipping changes something
    clipped = raw_x0.clamp(-1, 1)
    check_close(
        out["pred_x0"],
        clipped,
        part=PART,
        what="p_mean_variance(clip_denoised=True)['pred_x0'] = clamp((x_t − √(1 − ᾱ_t)·eps)/√ᾱ_t, −1, 1)",
        hint="clamp pred_x0 to [−1, 1] when clip_denoised is True",
        rtol=1e-9,
        atol=1e-10,
    )
    check_close(
        out["mean"],
        posterior_mean(sched, clipped, x_t, TIMESTEPS),
        part=PART,
        what="p_mean_variance(clip_denoised=True)['mean'] = μ̃_t(clamped pred_x0, x_t)",
        hint="form the mean from the clamped pred_x0 (do not clamp the mean itself, and do not use eq. 11 "
        "with the raw eps, which ignores the clipping)",
        rtol=1e-9,
        atol=1e-10,
    )


def test_p_mean_variance_passes_model_kwargs_and_keeps_dtype():
    """``model_kwargs`` (e.g. class labels ``y=``) reach the model; float32 data gives float32 results."""
    sched, x_t = schedule(T), randn((4, 2), dtype=torch.float32)
    model, y = RecordingModel(), torch.tensor([1, 0, 2, 1])
    out = p_mean_variance(model, sched, x_t, TIMESTEPS, y=y)
    assert len(model.kwargs) == 1 and "y" in model.kwargs[0] and torch.equal(model.kwargs[0]["y"], y), (
        f"{PART}: p_mean_variance(model, ..., y=y) must call model(x_t, t, y=y) once; "
        f"the model saw {len(model.kwargs)} call(s) with keyword arguments {[sorted(k) for k in model.kwargs]}\n"
        f"  hint: forward **model_kwargs to the model"
    )
    for key in ("mean", "pred_x0", "eps"):
        assert out[key].dtype == torch.float32, (
            f"{PART}: p_mean_variance on float32 data: '{key}' has dtype {out[key].dtype}, expected float32\n"
            f"  hint: results keep the data's dtype; extract(a, t, x_t) casts the float64 schedule to x_t's dtype"
        )


# --- p_sample ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_p_sample_is_mean_plus_sqrt_variance_times_noise(variance):
    """For ``t > 0``: ``x_{t−1} = μ + √variance · noise`` with μ from eq. 11 (no clipping here)."""
    sched, x_t, noise = schedule(T), randn((4, 3, 2, 2)), randn((4, 3, 2, 2), seed=1)
    t = torch.tensor([29, 5, 1, 17])
    got = p_sample(smooth_denoiser, sched, x_t, t, noise, clip_denoised=False, variance=variance)
    var = beta_tilde(sched) if variance == "fixed_small" else sched.betas
    expected = eq11_mean(sched, x_t, t, smooth_denoiser(x_t, t)) + extract(var.sqrt(), t, x_t) * noise
    check_close(
        got,
        expected,
        part=PART,
        what=f"p_sample(variance='{variance}') = mean + √variance · noise for t > 0",
        hint="missing square root: the noise is scaled by the standard deviation √variance, not the variance",
        rtol=1e-9,
        atol=1e-10,
    )


def test_p_sample_adds_no_noise_at_t_zero():
    """Where ``t == 0`` the step returns the mean (Algorithm 2: z = 0 at the last step), per sample in a batch.

    With ``variance="fixed_large"`` the variance at t = 0 is β_0 > 0, so the noise must be masked out."""
    sched, x_t, noise = schedule(T), randn((4, 3)), randn((4, 3), seed=1)
    t = torch.tensor([0, 7, 0, 29])
    got = p_sample(smooth_denoiser, sched, x_t, t, noise, clip_denoised=False, variance="fixed_large")
    mean = eq11_mean(sched, x_t, t, smooth_denoiser(x_t, t))
    nonzero = (t != 0).to(x_t.dtype).reshape(-1, 1)
    check_close(
        got,
        mean + nonzero * extract(sched.betas.sqrt(), t, x_t) * noise,
        part=PART,
        what="p_sample: x_{t−1} = mean where t == 0, mean + √β_t·noise elsewhere (t = [0, 7, 0, 29])",
        hint="noise added at t = 0: mask it per sample with (t != 0), not with a single `if t[0] == 0`",
        rtol=1e-9,
        atol=1e-10,
    )


def test_p_sample_keeps_shape_and_dtype():
    """``p_sample`` returns a tensor of the shape and dtype of ``x_t`` (float32 here)."""
    sched = schedule(T)
    x_t, noise = randn((4, 1, 4, 4), dtype=torch.float32), randn((4, 1, 4, 4), dtype=torch.float32, seed=1)
    got = p_sample(smooth_denoiser, sched, x_t, TIMESTEPS, noise)
    assert got.shape == x_t.shape and got.dtype == torch.float32, (
        f"{PART}: p_sample on float32 data of shape {tuple(x_t.shape)} returned {got.dtype} of shape "
        f"{tuple(got.shape)}\n  hint: build coefficients with extract(a, t, x_t) so they broadcast and take x_t's dtype"
    )


# --- p_sample_loop -------------------------------------------------------------------------------------------------


def test_p_sample_loop_returns_samples_of_the_requested_shape():
    """``p_sample_loop(model, schedule, shape)`` returns a float32 tensor of shape ``shape`` on the CPU."""
    out = p_sample_loop(smooth_denoiser, schedule(T), (3, 2), generator=torch.Generator().manual_seed(0), device="cpu")
    assert isinstance(out, torch.Tensor) and out.shape == (3, 2) and out.dtype == torch.float32, (
        f"{PART}: p_sample_loop(..., shape=(3, 2)) must return a float32 tensor of shape (3, 2), got "
        f"{getattr(out, 'dtype', type(out).__name__)} of shape {tuple(getattr(out, 'shape', ()))}\n"
        f"  hint: start from torch.randn(shape, generator=generator) and return only the final x"
    )
    assert out.device.type == "cpu" and bool(torch.isfinite(out).all()), f"{PART}: p_sample_loop gave {out}"


def test_p_sample_loop_calls_the_model_for_t_from_T_minus_1_down_to_0():
    """Algorithm 2 with 0-based steps: T model calls, with ``t = T−1, T−2, ..., 0``, each ``t`` a long ``(B,)``."""
    model, T_small = RecordingModel(), 20
    p_sample_loop(model, schedule(T_small), (3, 2), generator=torch.Generator().manual_seed(0))
    assert len(model.ts) == T_small, (
        f"{PART}: p_sample_loop with T = {T_small} must call the model {T_small} times, got {len(model.ts)}\n"
        f"  hint: one p_sample per timestep t = T−1, ..., 0: range(T − 1, −1, −1)"
    )
    for t in model.ts:
        assert t.dtype == torch.long and t.shape == (3,), (
            f"{PART}: p_sample_loop must pass t as a long tensor of shape (B,) = (3,), got {t.dtype} of shape "
            f"{tuple(t.shape)}\n  hint: torch.full((B,), step, dtype=torch.long)"
        )
    seen = model.steps()
    assert seen == list(range(T_small - 1, -1, -1)), (
        f"{PART}: p_sample_loop must visit t = {T_small - 1}, ..., 0 in that order, got {seen}\n"
        f"  hint: timesteps are 0-based (the first is T − 1, not T; the last is 0, not 1) and go downwards"
    )


def test_p_sample_loop_passes_model_kwargs_and_starts_from_noise():
    """``model_kwargs`` reach every model call, and ``noise=`` is the starting ``x_{T−1}`` (the first model input)."""
    model, T_small = RecordingModel(), 5
    y, start = torch.tensor([2, 0]), randn((2, 3), dtype=torch.float32, seed=3)
    p_sample_loop(model, schedule(T_small), (2, 3), generator=torch.Generator().manual_seed(0), noise=start, y=y)
    assert model.kwargs and all("y" in k and torch.equal(k["y"], y) for k in model.kwargs), (
        f"{PART}: p_sample_loop(..., y=y) must pass y=y to every model call\n"
        f"  hint: forward **model_kwargs to p_sample (and from there to the model)"
    )
    check_close(
        model.xs[0],
        start,
        part=PART,
        what="p_sample_loop(noise=x): the first model call sees x_{T−1} = noise",
        hint="use the given noise as the starting point; draw it from the generator only when noise is None",
    )


def test_p_sample_loop_same_seed_gives_same_samples():
    """Randomness comes only from ``generator``: the same seed gives the same samples, another seed others."""
    sched = schedule(T)

    def run(seed):
        return p_sample_loop(smooth_denoiser, sched, (4, 2), generator=torch.Generator().manual_seed(seed))

    first, again, other = run(7), run(7), run(8)
    assert bool(torch.isfinite(first).all()), (
        f"{PART}: p_sample_loop returned NaN or inf\n"
        f"  hint: usually the square root or log of a negative number, or a division by 1 − ᾱ = 0"
    )
    assert torch.equal(first, again), (
        f"{PART}: p_sample_loop with two generators seeded alike gave different samples\n"
        f"  hint: draw every random number from `generator` (torch.randn(shape, generator=generator)); "
        f"never from the global RNG"
    )
    assert not torch.equal(first, other), f"{PART}: p_sample_loop gave the same samples for seeds 7 and 8"


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_p_sample_loop_with_a_denoiser_that_knows_x0_returns_x0(variance):
    """With ``eps = (x_t − √ᾱ_t x0)/√(1 − ᾱ_t)`` every ``pred_x0`` is x0, and the last step (t = 0, no noise,
    ``μ̃_0 = x0``) lands exactly on x0, whatever the noise drawn before."""
    sched = schedule(20)
    x0 = torch.rand((5, 2), generator=torch.Generator().manual_seed(1)) * 1.8 - 0.9
    model, generator = x0_denoiser(sched, x0), torch.Generator().manual_seed(0)
    out = p_sample_loop(model, sched, (5, 2), generator=generator, variance=variance)
    check_close(
        out,
        x0,
        part=PART,
        what=f"p_sample_loop(variance='{variance}') with a denoiser that knows x0 returns x0",
        hint="the last step must be t = 0 with no noise (timesteps run T−1, ..., 0); noise added at t = 0 "
        "or a loop that stops at t = 1 misses x0",
        rtol=1e-4,
        atol=1e-4,
    )


def test_p_sample_loop_return_trajectory():
    """``return_trajectory=True`` returns ``(x, states)``: T + 1 states from the starting noise to the sample."""
    sched, start = schedule(8), randn((2, 2), dtype=torch.float32, seed=5)
    result = p_sample_loop(
        smooth_denoiser, sched, (2, 2), generator=torch.Generator().manual_seed(0), noise=start, return_trajectory=True
    )
    assert isinstance(result, tuple) and len(result) == 2, (
        f"{PART}: p_sample_loop(return_trajectory=True) must return a pair (samples, trajectory), "
        f"got {type(result).__name__}"
    )
    x, states = result
    assert len(states) == sched.T + 1, (
        f"{PART}: p_sample_loop(return_trajectory=True) with T = {sched.T}: the trajectory holds the start and one "
        f"state per step, T + 1 = {sched.T + 1} tensors, got {len(states)}"
    )
    check_close(states[0], start, part=PART, what="trajectory[0] is the starting noise", hint="append x first")
    check_close(states[-1], x, part=PART, what="trajectory[-1] is the returned sample", hint="append every new x")
