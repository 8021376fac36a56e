"""Part 2 — the forward (noising) process ``q`` of DDPM (Ho et al. 2020, eqs. 2 and 4).

Shapes: ``x0``/``x_prev`` are ``(B, ...)``; ``t`` is a long tensor ``(B,)`` of 0-based timesteps;
results keep the dtype and device of the data.
"""

from __future__ import annotations

import torch

from diffusion.schedules import NoiseSchedule, extract


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Sample ``x_t ~ q(x_t | x_0)`` in closed form (Ho et al. 2020, eq. 4).

    ``x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise`` with ``noise ~ N(0, I)`` of the shape of ``x0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("forward.q_sample is not implemented yet")


def q_step(schedule: NoiseSchedule, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One Markov step ``x_t ~ q(x_t | x_{t−1})`` (Ho et al. 2020, eq. 2).

    ``x_t = √α_t · x_prev + √β_t · noise``; at 0-based ``t = 0`` the input is the data ``x0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("forward.q_step is not implemented yet")


def q_mean_variance(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of ``q(x_t | x_0) = N(√ᾱ_t · x0, (1 − ᾱ_t) I)`` (Ho et al. 2020, eq. 4).

    Returns:
        ``(mean, variance)``: ``mean`` of shape ``(B, ...)``; ``variance`` of shape ``(B, 1, ..., 1)``,
        broadcastable to ``x0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("forward.q_mean_variance is not implemented yet")
