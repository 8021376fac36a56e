"""Part 7 — DDIM: deterministic and fast sampling on a subsequence of timesteps.

Song et al. 2020, eq. 12 (the generalised step), eq. 16 (σ) and §4.2 (sub-sequences); inversion
is the η = 0 step run backwards. Timesteps are 0-based and a step may go to ``t_prev = −1``,
where ``ᾱ = 1`` (the data). Shapes: ``x_t`` ``(B, ...)``, ``t``/``t_prev`` long ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from diffusion.posterior import predict_eps_from_x0, predict_x0_from_eps
from diffusion.schedules import NoiseSchedule, expand_like

Denoiser = Callable[..., torch.Tensor]
Spacing = Literal["uniform", "linspace", "trailing"]


def alpha_bar_at(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """``ᾱ_t`` for 0-based ``t ∈ {−1, ..., T−1}``, with ``ᾱ_{−1} = 1`` (a helper for this part).

    Returns:
        float64 tensor of the shape of ``t``, on ``t``'s device.
    """
    ### BEGIN SOLUTION
    padded = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alpha_bars])
    return padded.to(t.device)[t + 1]
    ### END SOLUTION


def ddim_timesteps(T: int, num_steps: int, spacing: Spacing = "uniform") -> torch.Tensor:
    """The ascending subsequence ``τ`` of ``num_steps`` distinct timesteps in ``[0, T)`` (Song et al. 2020, §4.2).

    Matches diffusers' ``timestep_spacing``:
    ``"uniform"`` (diffusers' "leading") ``τ_k = k · (T // num_steps)``;
    ``"linspace"`` ``τ = round(linspace(0, T − 1, num_steps))``;
    ``"trailing"`` ``τ_k = round(T − k · T / num_steps) − 1``, sorted; for ``k = 0..num_steps−1``.
    ``round`` is to the nearest integer; where the exact value is a half-integer, either neighbour will do.

    Raises:
        ValueError: if ``num_steps`` is not in ``1..T`` or ``spacing`` is unknown.
    """
    ### BEGIN SOLUTION
    if not 1 <= num_steps <= T:
        raise ValueError(f"num_steps must be in 1..T={T}, got {num_steps}")
    # numpy's float arithmetic, as diffusers': at an exact .5 tie it decides which neighbour is taken.
    if spacing == "uniform":
        steps = np.arange(num_steps) * (T // num_steps)
    elif spacing == "linspace":
        steps = np.linspace(0, T - 1, num_steps).round()
    elif spacing == "trailing":
        steps = np.round(np.arange(T, 0, -T / num_steps))[:num_steps] - 1
    else:
        raise ValueError(f"spacing must be 'uniform', 'linspace' or 'trailing', got {spacing!r}")
    return torch.from_numpy(np.sort(steps).astype(np.int64))
    ### END SOLUTION


def ddim_sigma(schedule: NoiseSchedule, t: torch.Tensor, t_prev: torch.Tensor, eta: float) -> torch.Tensor:
    """The noise scale of a DDIM step (Song et al. 2020, eq. 16).

    ``σ = η · √((1 − ᾱ_prev) / (1 − ᾱ_t)) · √(1 − ᾱ_t / ᾱ_prev)`` with ``ᾱ_prev = 1`` when
    ``t_prev < 0``. ``η = 1`` on consecutive steps gives DDPM's ``√β̃_t``; ``η = 0`` is deterministic.

    Returns:
        float64 tensor of shape ``(B,)``.
    """
    ### BEGIN SOLUTION
    alpha_bar, alpha_bar_prev = alpha_bar_at(schedule, t), alpha_bar_at(schedule, t_prev)
    return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()
    ### END SOLUTION


def ddim_step(
    model: Denoiser,
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: torch.Tensor,
    t_prev: torch.Tensor,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
    clip_denoised: bool = False,
    **model_kwargs,
) -> torch.Tensor:
    """One generalised DDIM step from ``t`` to ``t_prev < t`` (Song et al. 2020, eq. 12).

    1. ``eps = model(x_t, t)``; ``x̂0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t``.
    2. If ``clip_denoised``: clamp ``x̂0`` to [−1, 1] and recompute ``eps`` from it.
    3. ``x_prev = √ᾱ_prev · x̂0 + √(1 − ᾱ_prev − σ²) · eps + σ · noise`` with σ from :func:`ddim_sigma`.

    Raises:
        ValueError: if ``eta != 0`` and ``noise`` is ``None``.

    Returns:
        ``x_prev``, shape of ``x_t``.
    """
    ### BEGIN SOLUTION
    if eta != 0 and noise is None:
        raise ValueError("ddim_step with eta != 0 needs noise=; pass a standard normal tensor shaped like x_t")
    eps = model(x_t, t, **model_kwargs)
    pred_x0 = predict_x0_from_eps(schedule, x_t, t, eps)
    if clip_denoised:
        pred_x0 = pred_x0.clamp(-1, 1)
        eps = predict_eps_from_x0(schedule, x_t, t, pred_x0)
    alpha_bar_prev = alpha_bar_at(schedule, t_prev)
    sigma = ddim_sigma(schedule, t, t_prev, eta)
    direction = (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt()
    x_prev = expand_like(alpha_bar_prev.sqrt(), x_t) * pred_x0 + expand_like(direction, x_t) * eps
    if noise is not None:
        x_prev = x_prev + expand_like(sigma, x_t) * noise
    return x_prev
    ### END SOLUTION


@torch.no_grad()
def ddim_sample_loop(
    model: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    num_steps: int = 50,
    eta: float = 0.0,
    spacing: Spacing = "uniform",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    noise: torch.Tensor | None = None,
    clip_denoised: bool = False,
    **model_kwargs,
) -> torch.Tensor:
    """DDIM sampling down the subsequence ``τ`` of :func:`ddim_timesteps` (Song et al. 2020, §4.2).

    Starts from ``x ~ N(0, I)`` at ``τ[-1]`` and applies :func:`ddim_step` from each ``τ_k`` to
    ``τ_{k−1}``; the last step goes to ``t_prev = −1``. Noise (the start, and the per-step noise
    when ``η > 0``) is drawn on the CPU from ``generator`` and moved to ``device`` (default CPU).

    Args:
        shape: ``(B, ...)``, the shape of the samples.
        noise: the starting ``x`` at ``τ[-1]`` (e.g. from :func:`ddim_invert`); drawn when ``None``.

    Returns:
        the samples, shape ``shape``.

    Raises:
        ValueError: if ``noise`` is given and its shape is not ``shape``, or if ``eta < 0`` (its steps
            get no noise, and :func:`ddim_step` refuses ``eta != 0`` without it).
    """
    ### BEGIN SOLUTION
    device = torch.device("cpu") if device is None else torch.device(device)
    timesteps = ddim_timesteps(schedule.T, num_steps, spacing).tolist()
    if noise is not None and tuple(noise.shape) != tuple(shape):
        raise ValueError(f"noise= has shape {tuple(noise.shape)} but shape={tuple(shape)}; pass matching shapes")
    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise
    x = x.to(device)
    batch = x.shape[0]
    for k in tqdm(range(num_steps - 1, -1, -1), disable=not progress, desc="DDIM sampling"):
        t = torch.full((batch,), timesteps[k], dtype=torch.long, device=device)
        t_prev = torch.full((batch,), timesteps[k - 1] if k > 0 else -1, dtype=torch.long, device=device)
        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if eta > 0 else None
        x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)
    return x
    ### END SOLUTION


@torch.no_grad()
def ddim_invert(
    model: Denoiser,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    num_steps: int = 50,
    spacing: Spacing = "uniform",
    **model_kwargs,
) -> torch.Tensor:
    """DDIM inversion: the deterministic (η = 0) map from data to noise (Song et al. 2020, §4.3).

    Walks the subsequence upwards from ``t = −1`` (the data) to ``τ[-1]``; each step from level
    ``s`` to level ``t`` evaluates ``eps = model(x, t)``, forms ``x̂0 = (x − √(1 − ᾱ_s) · eps) / √ᾱ_s``
    and moves to ``x = √ᾱ_t · x̂0 + √(1 − ᾱ_t) · eps``. :func:`ddim_sample_loop` started from the
    result with the same model and subsequence reconstructs ``x0``.

    Returns:
        the latent at ``τ[-1]``, shape of ``x0``.
    """
    ### BEGIN SOLUTION
    timesteps = ddim_timesteps(schedule.T, num_steps, spacing).tolist()
    x = x0
    batch = x0.shape[0]
    level = torch.full((batch,), -1, dtype=torch.long, device=x0.device)
    for step in timesteps:
        t = torch.full((batch,), step, dtype=torch.long, device=x0.device)
        eps = model(x, t, **model_kwargs)
        alpha_bar, alpha_bar_next = alpha_bar_at(schedule, level), alpha_bar_at(schedule, t)
        pred_x0 = (x - expand_like((1 - alpha_bar).sqrt(), x) * eps) / expand_like(alpha_bar.sqrt(), x)
        x = expand_like(alpha_bar_next.sqrt(), x) * pred_x0 + expand_like((1 - alpha_bar_next).sqrt(), x) * eps
        level = t
    return x
    ### END SOLUTION
