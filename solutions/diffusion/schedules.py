"""Part 1 — noise schedules.

The forward process of DDPM (Ho et al. 2020, eq. 2) adds Gaussian noise with variance ``β_t``
at every step. Everything else is derived from the betas:

    α_t = 1 − β_t,     ᾱ_t = ∏_{s ≤ t} α_s,     ᾱ_prev[t] = ᾱ_{t−1}  (ᾱ_prev[0] = 1).

Conventions: timesteps are **0-based**; index ``t`` is the paper's step ``t + 1``. Schedules are
built in ``float64``; :func:`extract` casts a coefficient to the data's dtype and device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NoiseSchedule:
    """The per-timestep coefficients of a diffusion process (provided).

    All fields are ``float64`` tensors of shape ``(T,)``.
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor
    alpha_bars_prev: torch.Tensor

    def __post_init__(self) -> None:
        T = self.betas.shape[0]
        for name in ("betas", "alphas", "alpha_bars", "alpha_bars_prev"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or value.shape != (T,):
                raise ValueError(f"NoiseSchedule.{name} must be a tensor of shape ({T},), got {value!r:.80}")

    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return self.betas.shape[0]


def expand_like(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample values ``(B,)`` to ``(B, 1, ..., 1)`` in ``x``'s dtype and device (provided).

    Use it for a per-sample coefficient; for a per-timestep table use :func:`extract`, which calls it.
    """
    return values.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def extract(a: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a[t]`` cast to ``x``'s dtype and device, shaped ``(B, 1, ..., 1)`` to broadcast against ``x`` (provided).

    Args:
        a: per-timestep table, shape ``(T,)`` (usually float64).
        t: 0-based timesteps, long tensor of shape ``(B,)``.
        x: data of shape ``(B, ...)``.
    """
    return expand_like(a.to(t.device)[t], x)


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Linear schedule of Ho et al. 2020 (§4): ``β_t = linspace(beta_start, beta_end, T)[t]``.

    Returns:
        float64 tensor of shape ``(T,)``; ``betas[0] == beta_start`` and ``betas[T−1] == beta_end``.
    """
    ### BEGIN SOLUTION
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    ### END SOLUTION


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal 2021 (eq. 17).

    ``f(u) = cos²(((u/T) + s)/(1 + s) · π/2)`` is ``ᾱ`` at continuous time ``u``, and
    ``β_t = min(1 − f(t+1)/f(t), max_beta)`` for 0-based ``t = 0..T−1``.

    Returns:
        float64 tensor of shape ``(T,)``.
    """
    ### BEGIN SOLUTION
    u = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)
    ### END SOLUTION


def scaled_linear_betas(T: int, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """Stable Diffusion's "scaled linear" schedule: ``β_t = linspace(√beta_start, √beta_end, T)[t]²``.

    Returns:
        float64 tensor of shape ``(T,)``.
    """
    ### BEGIN SOLUTION
    return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2
    ### END SOLUTION


def make_schedule(betas: torch.Tensor) -> NoiseSchedule:
    """Derive every coefficient from the betas (Ho et al. 2020, §2).

    ``α_t = 1 − β_t``, ``ᾱ_t = ∏_{s ≤ t} α_s`` and ``ᾱ_prev = [1, ᾱ_0, ..., ᾱ_{T−2}]``, all float64
    (betas of another dtype, e.g. float32, are converted to float64 first).

    Raises:
        ValueError: if ``betas`` is not 1-D or any beta lies outside the open interval (0, 1).
    """
    ### BEGIN SOLUTION
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.dim() != 1 or betas.numel() == 0:
        raise ValueError(f"betas must be a non-empty 1-D tensor, got shape {tuple(betas.shape)}")
    if not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError(
            f"every beta must lie in (0, 1); got min {betas.min().item():.4g}, max {betas.max().item():.4g}"
        )
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)
    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
    return NoiseSchedule(betas=betas, alphas=alphas, alpha_bars=alpha_bars, alpha_bars_prev=alpha_bars_prev)
    ### END SOLUTION


def snr(schedule: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio ``SNR(t) = ᾱ_t / (1 − ᾱ_t)`` (Kingma et al. 2021, eq. 1).

    Args:
        t: 0-based timesteps, long tensor of shape ``(B,)``.

    Returns:
        float64 tensor of shape ``(B,)``, decreasing in ``t``.
    """
    ### BEGIN SOLUTION
    alpha_bar = schedule.alpha_bars.to(t.device)[t]
    return alpha_bar / (1 - alpha_bar)
    ### END SOLUTION
