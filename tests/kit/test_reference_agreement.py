"""The reference agrees with independent implementations, not only with itself.

Two outside references, on the same inputs:

1. **diffusers** (``DDPMScheduler``, ``DDIMScheduler``, ``get_timestep_embedding``), run offline.
2. **improved-diffusion** (openai/improved-diffusion, ``improved_diffusion/gaussian_diffusion.py``,
   commit 6051920c0865d53146db7841bfba43c3e67edef6). It is not installable, so its
   ``GaussianDiffusion`` coefficients and methods are written out below as numpy float64 formulas
   (our own expressions of its definitions, each citing the attribute or method it mirrors).

Tolerances (``TOL = 1e-6``):

- float64 data (``add_noise``, the DDPM and DDIM steps, the improved-diffusion formulas):
  ``|ours − theirs| ≤ 1e-6 · max(1, |theirs|)``, i.e. **absolute** 1e-6 where a value is at most 1
  in size and **relative** 1e-6 where it is larger (``pred_x0`` reaches ~2·10⁴ at the last step of
  the cosine schedule, where ``√ᾱ ≈ 5·10⁻⁵``). Observed: round-off, at most 2e-12 on that scale.
- schedule tables (betas, ``alphas_cumprod``, all in (0, 1)): **relative** 1e-6 when diffusers
  builds them in float64 (see :func:`diffusers_float64`; observed ≤ 1e-13). Stock diffusers
  *stores* them in float32, so those are compared at what float32 allows: betas relative 1e-6
  (observed ≤ 2.5e-7) and ``alphas_cumprod`` absolute 1e-6 (a float32 cumprod of 1000 factors;
  observed ≤ 5e-7; relatively it is off by up to 1.3e-5 where the cosine ``ᾱ`` is ~1e-9).
- the timestep embedding is float32 by contract and diffusers computes it in float32 with the
  same operations: absolute 1e-6 (it is in fact bit-identical).

``ddim_timesteps`` equals diffusers' ``set_timesteps`` exactly, including where the exact value is
a half-integer that the binary float lands on either side of (e.g. ``T = 1000``, 27 linspace steps:
999/2 → 499): the reference rounds numpy's float as diffusers does.
"""

from __future__ import annotations

import math
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffusion.ddim import ddim_sample_loop, ddim_step, ddim_timesteps
from diffusion.ddpm import p_mean_variance, p_sample
from diffusion.embedding import timestep_embedding
from diffusion.forward import q_sample
from diffusion.posterior import predict_x0_from_eps, q_posterior_mean_variance
from diffusion.schedules import NoiseSchedule, cosine_betas, linear_betas, make_schedule, scaled_linear_betas

diffusers = pytest.importorskip("diffusers")
embeddings = pytest.importorskip("diffusers.models.embeddings")
torch_utils = pytest.importorskip("diffusers.utils.torch_utils")

TOL = 1e-6
F64 = torch.float64

# diffusers' beta_schedule name -> (its constructor arguments, our function with the same defaults).
SCHEDULES = {
    "linear": ({"beta_start": 1e-4, "beta_end": 0.02}, linear_betas),
    "scaled_linear": ({"beta_start": 0.00085, "beta_end": 0.012}, scaled_linear_betas),
    "squaredcos_cap_v2": ({}, cosine_betas),
}
SCHEDULE_NAMES = list(SCHEDULES)
TS = [10, 50, 1000]
SHAPES = [(3, 2), (3, 1, 4, 4)]


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def assert_agree(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    """``|ours − theirs| ≤ TOL · max(1, |theirs|)``: absolute up to magnitude 1, relative beyond."""
    theirs = torch.as_tensor(theirs, dtype=F64)
    assert ours.dtype == F64, f"{what}: expected float64, got {ours.dtype}"
    assert ours.shape == theirs.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(theirs.shape)}"
    assert torch.isfinite(ours).all() and torch.isfinite(theirs).all(), f"{what}: non-finite values"
    err = (ours - theirs).abs()
    bound = TOL * theirs.abs().clamp(min=1)
    worst = int(torch.argmax(err / bound))
    assert bool((err <= bound).all()), (
        f"{what}: ours {ours.flatten()[worst].item()!r} vs theirs {theirs.flatten()[worst].item()!r} "
        f"(|Δ| = {err.flatten()[worst].item():.3e} > {bound.flatten()[worst].item():.1e})"
    )


def assert_rel(ours: torch.Tensor, theirs: torch.Tensor, rtol: float, what: str) -> None:
    """Relative agreement of positive tables: ``|ours − theirs| ≤ rtol · |theirs|``."""
    theirs = torch.as_tensor(theirs).to(F64)
    rel = ((ours.to(F64) - theirs).abs() / theirs.abs()).max().item()
    assert rel <= rtol, f"{what}: max relative difference {rel:.3e} > {rtol:.0e}"


class _Float64Torch:
    """``torch`` as a diffusers scheduler module sees it, except that ``torch.float32`` is ``torch.float64``."""

    float32 = torch.float64

    def __getattr__(self, name: str):
        return getattr(torch, name)


def diffusers_float64(cls, T: int, schedule_name: str, **config):
    """A diffusers scheduler whose ``betas``/``alphas_cumprod`` were built in float64 by diffusers' own code.

    diffusers hard-codes ``dtype=torch.float32`` in ``__init__`` and in ``betas_for_alpha_bar`` (which
    takes no dtype: it computes in Python floats, then stores float32). While the scheduler is
    constructed, the ``torch`` name inside its module is replaced by a proxy whose ``float32`` is
    ``float64``, so exactly diffusers' lines run, in float64. ``step``/``add_noise`` then use these
    tables as they are; the comparisons are about the formulas, not about float32 storage.
    """
    module = sys.modules[cls.__module__]
    with mock.patch.object(module, "torch", _Float64Torch()):
        scheduler = cls(num_train_timesteps=T, beta_schedule=schedule_name, **SCHEDULES[schedule_name][0], **config)
    assert scheduler.betas.dtype == scheduler.alphas_cumprod.dtype == F64
    return scheduler


def our_schedule(schedule_name: str, T: int) -> NoiseSchedule:
    return make_schedule(SCHEDULES[schedule_name][1](T))


def randn(shape, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def eps_model(shape, seed: int = 0):
    """A deterministic stand-in denoiser: a fixed random affine map of ``x_t`` plus a ``t`` term, through tanh."""
    D = math.prod(shape[1:])
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D, D, generator=g, dtype=F64) / math.sqrt(D)
    b = torch.randn(D, generator=g, dtype=F64)

    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = x_t.flatten(1) @ W + b + torch.sin(t.to(F64) / 7)[:, None]
        return 1.5 * torch.tanh(h).reshape(x_t.shape)

    return model


def full_t(step: int, batch: int) -> torch.Tensor:
    return torch.full((batch,), int(step), dtype=torch.long)


def check_steps(T: int) -> list[int]:
    """0, 1, the middle, T − 2 and T − 1."""
    return sorted({0, 1, T // 2, T - 2, T - 1})


# --------------------------------------------------------------------------------------------------
# 1. diffusers: schedules
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 2, *TS])
@pytest.mark.parametrize("schedule_name", SCHEDULE_NAMES)
def test_schedules_match_diffusers_built_in_float64(schedule_name, T):
    """diffusers' own schedule code, run in float64, against ours: relative 1e-6 (observed ≤ 1e-13)."""
    theirs = diffusers_float64(diffusers.DDPMScheduler, T, schedule_name)
    ours = our_schedule(schedule_name, T)
    assert_rel(ours.betas, theirs.betas, TOL, f"{schedule_name} betas, T={T}")
    assert_rel(ours.alphas, theirs.alphas, TOL, f"{schedule_name} alphas, T={T}")
    assert_rel(ours.alpha_bars, theirs.alphas_cumprod, TOL, f"{schedule_name} alphas_cumprod, T={T}")


@pytest.mark.parametrize("T", TS)
@pytest.mark.parametrize("schedule_name", SCHEDULE_NAMES)
@pytest.mark.parametrize("cls_name", ["DDPMScheduler", "DDIMScheduler"])
def test_schedules_match_stock_diffusers_to_float32_precision(cls_name, schedule_name, T):
    """Stock diffusers stores float32: betas agree to relative 1e-6, ``alphas_cumprod`` to absolute 1e-6."""
    cls = getattr(diffusers, cls_name)
    theirs = cls(num_train_timesteps=T, beta_schedule=schedule_name, **SCHEDULES[schedule_name][0])
    assert theirs.betas.dtype == torch.float32
    ours = our_schedule(schedule_name, T)
    assert_rel(ours.betas, theirs.betas, TOL, f"{cls_name} {schedule_name} betas (float32), T={T}")
    err = (ours.alpha_bars - theirs.alphas_cumprod.to(F64)).abs().max().item()
    assert err <= TOL, f"{cls_name} {schedule_name} alphas_cumprod (float32), T={T}: max |Δ| {err:.3e}"


# --------------------------------------------------------------------------------------------------
# 1. diffusers: add_noise
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("T", TS)
@pytest.mark.parametrize("schedule_name", SCHEDULE_NAMES)
def test_q_sample_matches_add_noise(schedule_name, T, shape):
    """``add_noise`` with float64 tables (built by diffusers in float64) against ``q_sample``; one t per sample."""
    theirs = diffusers_float64(diffusers.DDPMScheduler, T, schedule_name)
    schedule = our_schedule(schedule_name, T)
    steps = check_steps(T)
    for offset in range(len(steps)):
        t = torch.tensor([steps[(offset + i) % len(steps)] for i in range(shape[0])])
        x0 = randn(shape, 10 + offset).clamp(-1, 1)
        noise = randn(shape, 20 + offset)
        assert_agree(q_sample(schedule, x0, t, noise), theirs.add_noise(x0, noise, t), f"q_sample t={t.tolist()}")


# --------------------------------------------------------------------------------------------------
# 1. diffusers: the DDPM step
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("T", TS)
@pytest.mark.parametrize("schedule_name", SCHEDULE_NAMES)
def test_p_sample_matches_ddpm_step(schedule_name, T, variance, clip, shape):
    """``DDPMScheduler.step`` against ``p_sample``/``p_mean_variance`` at t ∈ {0, 1, T/2, T−2, T−1}.

    The noise: diffusers draws it inside ``step`` as ``randn_tensor(shape, generator=g,
    dtype=model_output.dtype)``. We call that same public ``randn_tensor`` with a generator seeded
    identically to produce the ``noise`` we hand to ``p_sample``, then pass ``step`` a fresh
    generator with that seed: both sides add the same float64 draw. (At t = 0 diffusers draws
    nothing and ``p_sample`` adds no noise.) A wrong noise would show up at once: fixed-small and
    fixed-large differ only through the noise term.
    """
    theirs = diffusers_float64(diffusers.DDPMScheduler, T, schedule_name, variance_type=variance, clip_sample=clip)
    schedule = our_schedule(schedule_name, T)
    model = eps_model(shape)
    for step in check_steps(T):
        x_t = randn(shape, step)
        t = full_t(step, shape[0])
        seed = 1000 + step
        noise = torch_utils.randn_tensor(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
        out = theirs.step(model(x_t, t), step, x_t, generator=torch.Generator().manual_seed(seed))

        what = f"{variance}, clip={clip}, t={step}"
        ours = p_sample(model, schedule, x_t, t, noise, clip_denoised=clip, variance=variance)
        assert_agree(ours, out.prev_sample, f"p_sample vs DDPMScheduler.step ({what})")
        pred_x0 = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip, variance=variance)["pred_x0"]
        assert_agree(pred_x0, out.pred_original_sample, f"pred_x0 vs pred_original_sample ({what})")
        if step > 0:  # diffusers' variance table is only used (and only meaningful) where noise is added
            ours_var = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip, variance=variance)["variance"]
            assert_agree(ours_var.flatten(), theirs._get_variance(step).expand(shape[0]), f"variance ({what})")


# --------------------------------------------------------------------------------------------------
# 1. diffusers: the DDIM step, timesteps and sampling loop
# --------------------------------------------------------------------------------------------------

# (clip_sample, use_clipped_model_output) -> our clip_denoised. Ours clips x̂0 *and* re-derives eps
# from it (GLIDE's convention), i.e. diffusers' (True, True); with clip_sample=False re-deriving eps
# from the unclipped x̂0 is an identity, so both (False, *) are ours without clipping. diffusers'
# (True, False) — clip x̂0 but keep the model's eps — has no counterpart in our contract.
DDIM_CLIPPING = [(False, False), (False, True), (True, True)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("clip_sample", "use_clipped"), DDIM_CLIPPING)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize(("T", "num_steps"), [(10, 5), (50, 10), (1000, 50), (1000, 7)])
@pytest.mark.parametrize("schedule_name", SCHEDULE_NAMES)
def test_ddim_step_matches_diffusers(schedule_name, T, num_steps, eta, clip_sample, use_clipped, shape):
    """``DDIMScheduler.step`` (``set_alpha_to_one=True``, ``variance_noise`` given) against ``ddim_step``.

    Timesteps of the "leading" and "trailing" subsequences (all of them, or both ends and the middle
    when there are many) and T − 1, so t = 0 and t = T − 1 are both stepped. diffusers steps to
    ``t − T // num_inference_steps``; where that is negative it uses ``final_alpha_cumprod = 1``,
    which is our ``t_prev = −1`` (ᾱ = 1).
    """
    theirs = diffusers_float64(
        diffusers.DDIMScheduler, T, schedule_name, clip_sample=clip_sample, set_alpha_to_one=True
    )
    theirs.set_timesteps(num_steps)
    steps = {T - 1, *diffusers_timesteps("DDIMScheduler", T, num_steps, "uniform")}
    steps = sorted(steps | set(diffusers_timesteps("DDIMScheduler", T, num_steps, "trailing")))
    if len(steps) > 11:  # long subsequences: both ends and the middle are enough (and keep the file fast)
        steps = steps[:5] + steps[len(steps) // 2 : len(steps) // 2 + 1] + steps[-5:]
    schedule = our_schedule(schedule_name, T)
    model = eps_model(shape)
    for step in steps:
        prev = max(step - T // num_steps, -1)
        x_t, noise = randn(shape, step), randn(shape, 5000 + step)
        t = full_t(step, shape[0])
        out = theirs.step(model(x_t, t), step, x_t, eta=eta, use_clipped_model_output=use_clipped, variance_noise=noise)
        ours = ddim_step(
            model, schedule, x_t, t, full_t(prev, shape[0]), eta=eta, noise=noise, clip_denoised=clip_sample
        )
        assert_agree(ours, out.prev_sample, f"ddim_step t={step}→{prev}, eta={eta}, clip={clip_sample}")


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize(("T", "num_steps"), [(10, 10), (50, 10), (1000, 50), (1000, 13)])
@pytest.mark.parametrize("schedule_name", SCHEDULE_NAMES)
def test_ddim_sample_loop_matches_diffusers_loop(schedule_name, T, num_steps, clip):
    """The whole deterministic (η = 0) chain on "leading" timesteps (ours: "uniform") from the same start."""
    shape = (4, 1, 4, 4)
    theirs = diffusers_float64(diffusers.DDIMScheduler, T, schedule_name, clip_sample=clip, set_alpha_to_one=True)
    theirs.set_timesteps(num_steps)
    model = eps_model(shape, seed=7)
    x = start = randn(shape, 99)
    for step in theirs.timesteps:
        x = theirs.step(model(x, full_t(step, shape[0])), step, x, eta=0.0, use_clipped_model_output=clip).prev_sample
    ours = ddim_sample_loop(
        model,
        our_schedule(schedule_name, T),
        shape,
        num_steps=num_steps,
        spacing="uniform",
        noise=start,
        clip_denoised=clip,
    )
    assert_agree(ours, x, f"ddim_sample_loop, {num_steps} steps, clip={clip}")


DIFFUSERS_SPACING = {"uniform": "leading", "linspace": "linspace", "trailing": "trailing"}


def diffusers_timesteps(cls_name: str, T: int, num_steps: int, spacing: str) -> list[int]:
    """``set_timesteps`` ascending; drops the spurious trailing −1 diffusers appends for some (T, n) in "trailing"."""
    scheduler = getattr(diffusers, cls_name)(num_train_timesteps=T, timestep_spacing=DIFFUSERS_SPACING[spacing])
    scheduler.set_timesteps(num_steps)
    steps = scheduler.timesteps.tolist()
    if len(steps) == num_steps + 1:
        # np.arange(T, 0, -T/n) has n + 1 elements when the float step leaves a tiny positive last value,
        # which rounds to 0 and becomes −1 (e.g. T=15, n=13). Not a timestep: it means "the data".
        assert spacing == "trailing" and steps[-1] == -1, steps
        steps = steps[:-1]
    assert len(steps) == num_steps
    return steps[::-1]


@pytest.mark.parametrize("cls_name", ["DDIMScheduler", "DDPMScheduler"])
@pytest.mark.parametrize("spacing", list(DIFFUSERS_SPACING))
@pytest.mark.parametrize(
    ("T", "num_steps"), [(10, 1), (10, 3), (10, 10), (15, 13), (50, 7), (50, 50), (1000, 10), (1000, 50), (1000, 999)]
)
def test_ddim_timesteps_match_set_timesteps(T, num_steps, spacing, cls_name):
    """``ddim_timesteps`` (ascending) equals diffusers' ``set_timesteps`` (descending), reversed."""
    ours = ddim_timesteps(T, num_steps, spacing).tolist()
    assert ours == diffusers_timesteps(cls_name, T, num_steps, spacing)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=st.data(), T=st.integers(1, 1000), spacing=st.sampled_from(list(DIFFUSERS_SPACING)))
def test_ddim_timesteps_match_set_timesteps_everywhere(data, T, spacing):
    """For any (T, n), ties at exact half-integers included, the same steps as diffusers."""
    num_steps = data.draw(st.integers(1, T), label="num_steps")
    ours = ddim_timesteps(T, num_steps, spacing).tolist()
    assert ours == diffusers_timesteps("DDIMScheduler", T, num_steps, spacing), (T, num_steps, spacing)


@pytest.mark.parametrize(
    ("T", "num_steps", "spacing"),
    [(1000, 27, "linspace"), (1000, 48, "trailing"), (26, 23, "linspace"), (7, 6, "trailing")],
)
def test_ddim_timesteps_at_ties(T, num_steps, spacing):
    """At exact .5 ties numpy's float decides the neighbour; the reference takes the same one."""
    assert ddim_timesteps(T, num_steps, spacing).tolist() == diffusers_timesteps("DDIMScheduler", T, num_steps, spacing)


# --------------------------------------------------------------------------------------------------
# 1. diffusers: the timestep embedding
# --------------------------------------------------------------------------------------------------


def diffusers_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    return embeddings.get_timestep_embedding(t, dim, flip_sin_to_cos=False, downscale_freq_shift=0, max_period=10000)


@pytest.mark.parametrize("dim", [1, 2, 3, 8, 9, 32, 127, 128, 320])
def test_timestep_embedding_matches_diffusers(dim):
    """float32 both (our contract; diffusers computes in float32 too): absolute 1e-6. Odd dims: both zero-pad last."""
    t = torch.tensor([0, 1, 2, 10, 499, 998, 999, 9999])
    ours, theirs = timestep_embedding(t, dim), diffusers_embedding(t, dim)
    assert ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, atol=TOL, rtol=0)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    dim=st.integers(1, 300),
    t=st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
    fractional=st.booleans(),
)
def test_timestep_embedding_matches_diffusers_property(dim, t, fractional):
    steps = torch.tensor(t, dtype=torch.float32) / 3 if fractional else torch.tensor(t)
    torch.testing.assert_close(timestep_embedding(steps, dim), diffusers_embedding(steps, dim), atol=TOL, rtol=0)


# --------------------------------------------------------------------------------------------------
# 2. improved-diffusion (openai/improved-diffusion, improved_diffusion/gaussian_diffusion.py @ 6051920)
# --------------------------------------------------------------------------------------------------


def improved_diffusion_betas(name: str, T: int) -> np.ndarray:
    """``get_named_beta_schedule``: "linear" is Ho et al.'s range scaled by 1000/T; "cosine" discretises
    ``ᾱ(u) = cos²((u + 0.008)/1.008 · π/2)`` on u = i/T with betas capped at 0.999 (its ``betas_for_alpha_bar``)."""
    if name == "linear":
        scale = 1000 / T
        return np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)

    def abar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=np.float64)


def improved_diffusion_tables(betas: np.ndarray) -> dict[str, np.ndarray]:
    """The per-timestep arrays ``GaussianDiffusion.__init__`` defines, as float64 numpy expressions."""
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])  # its alphas_cumprod_prev
    posterior_variance = betas * (1.0 - abar_prev) / (1.0 - abar)  # β̃_t; 0 at t = 0
    return {
        "posterior_variance": posterior_variance,
        # the log with index 0 replaced by index 1, since β̃_0 = 0
        "posterior_log_variance_clipped": np.log(np.concatenate([posterior_variance[1:2], posterior_variance[1:]])),
        "posterior_mean_coef1": betas * np.sqrt(abar_prev) / (1.0 - abar),
        "posterior_mean_coef2": (1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / abar),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / abar - 1.0),
        # p_mean_variance's FIXED_LARGE variance: β_t, except β̃_1 at t = 0 ("for a better decoder log likelihood")
        "fixed_large_variance": np.concatenate([posterior_variance[1:2], betas[1:]]),
    }


def take(table: np.ndarray, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Its ``_extract_into_tensor``: ``table[t]`` broadcast to ``like``'s shape."""
    return torch.from_numpy(table[t.numpy()]).reshape(-1, *([1] * (like.dim() - 1))).expand_as(like)


def id_predict_xstart_from_eps(tab, x_t, t, eps):
    """``_predict_xstart_from_eps``: ``√(1/ᾱ_t) · x_t − √(1/ᾱ_t − 1) · eps``."""
    return take(tab["sqrt_recip_alphas_cumprod"], t, x_t) * x_t - take(tab["sqrt_recipm1_alphas_cumprod"], t, x_t) * eps


def id_q_posterior_mean(tab, x_start, x_t, t):
    """``q_posterior_mean_variance``'s mean: ``coef1_t · x_start + coef2_t · x_t``."""
    return take(tab["posterior_mean_coef1"], t, x_t) * x_start + take(tab["posterior_mean_coef2"], t, x_t) * x_t


# Its "linear" scales Ho et al.'s range by 1000/T, so β_{T−1} = 20/T: a valid schedule only for T > 20.
ID_CASES = [("linear", 50), ("linear", 1000), ("cosine", 2), ("cosine", 10), ("cosine", 50), ("cosine", 1000)]


@pytest.mark.parametrize(("name", "T"), ID_CASES)
def test_betas_match_improved_diffusion(name, T):
    """Its "linear" is ours with the 1000/T-scaled range; its "cosine" is our ``cosine_betas``: relative 1e-6."""
    scale = 1000 / T
    ours = linear_betas(T, scale * 1e-4, scale * 0.02) if name == "linear" else cosine_betas(T)
    assert_rel(ours, torch.from_numpy(improved_diffusion_betas(name, T)), TOL, f"{name} betas, T={T}")


@pytest.mark.parametrize("shape", [(5, 2), (5, 1, 4, 4)])
@pytest.mark.parametrize(("name", "T"), ID_CASES)
def test_posterior_matches_improved_diffusion(name, T, shape):
    """``q_posterior_mean_variance`` and ``predict_x0_from_eps``, one t per sample in {0, 1, T/2, T−2, T−1}."""
    betas = improved_diffusion_betas(name, T)
    tab, schedule = improved_diffusion_tables(betas), make_schedule(torch.from_numpy(betas))
    t = torch.tensor([0, 1, T // 2, T - 2, T - 1])
    x0, x_t, eps = randn(shape, 1).clamp(-1, 1), randn(shape, 2), randn(shape, 3)

    mean, variance, log_variance = q_posterior_mean_variance(schedule, x0, x_t, t)
    assert_agree(mean, id_q_posterior_mean(tab, x0, x_t, t), "posterior mean")
    # Ours are (B, 1, ..., 1), theirs broadcast to the data's shape: the same values.
    assert_agree(variance.expand(shape), take(tab["posterior_variance"], t, x_t), "posterior variance")
    assert_agree(
        log_variance.expand(shape), take(tab["posterior_log_variance_clipped"], t, x_t), "log variance clipped"
    )
    assert_agree(
        predict_x0_from_eps(schedule, x_t, t, eps), id_predict_xstart_from_eps(tab, x_t, t, eps), "x0 from eps"
    )


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("shape", [(5, 2), (5, 1, 4, 4)])
@pytest.mark.parametrize(("name", "T"), ID_CASES)
def test_p_mean_variance_matches_improved_diffusion(name, T, shape, clip):
    """``p_mean_variance`` (ε-prediction, FIXED_SMALL/FIXED_LARGE) and ``p_sample``, per-sample t incl. 0 and T−1.

    The one intended difference: at t = 0 improved-diffusion's FIXED_LARGE variance is β̃_1 (chosen
    for its discretised decoder likelihood L_0), ours is β_0 as in the contract. It never affects
    sampling — no noise is added at t = 0 — and our course computes no L_0 (``vlb_term`` rejects t = 0),
    so FIXED_LARGE variances are compared for t ≥ 1, and the samples at every t.
    """
    betas = improved_diffusion_betas(name, T)
    tab, schedule = improved_diffusion_tables(betas), make_schedule(torch.from_numpy(betas))
    t = torch.tensor([0, 1, T // 2, T - 2, T - 1])
    model = eps_model(shape, seed=3)
    x_t, noise = randn(shape, 4), randn(shape, 5)

    eps = model(x_t, t)
    pred_xstart = id_predict_xstart_from_eps(tab, x_t, t, eps)
    if clip:
        pred_xstart = pred_xstart.clamp(-1, 1)
    mean = id_q_posterior_mean(tab, pred_xstart, x_t, t)
    their_variances = {
        "fixed_small": (tab["posterior_variance"], tab["posterior_log_variance_clipped"]),
        "fixed_large": (tab["fixed_large_variance"], np.log(tab["fixed_large_variance"])),
    }
    nonzero = (t != 0).to(F64).reshape(-1, *([1] * (len(shape) - 1)))
    for variance, (var_table, log_var_table) in their_variances.items():
        ours = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip, variance=variance)
        assert_agree(ours["pred_x0"], pred_xstart, f"pred_x0 ({variance})")
        assert_agree(ours["mean"], mean, f"mean ({variance})")
        rows = slice(None) if variance == "fixed_small" else t != 0
        assert_agree(ours["variance"].expand(shape)[rows], take(var_table, t, x_t)[rows], f"variance ({variance})")
        assert_agree(
            ours["log_variance"].expand(shape)[rows], take(log_var_table, t, x_t)[rows], f"log var ({variance})"
        )
        if variance == "fixed_large":
            assert_agree(ours["variance"][0].flatten(), schedule.betas[:1], "our fixed_large variance at t = 0 is β_0")
        # its p_sample: mean + [t ≠ 0] · exp(½ log_variance) · noise
        their_sample = mean + nonzero * torch.exp(0.5 * take(log_var_table, t, x_t)) * noise
        ours_sample = p_sample(model, schedule, x_t, t, noise, clip_denoised=clip, variance=variance)
        assert_agree(ours_sample, their_sample, f"p_sample ({variance})")
