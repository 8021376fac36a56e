"""Part 3 — the forward-process posterior ``q(x_{t−1} | x_t, x_0)`` and the reparameterisations.

Ho et al. 2020, eqs. 6–7, and Salimans & Ho 2022 (v-prediction). With 0-based ``t``, ``ᾱ_prev``
is ``schedule.alpha_bars_prev[t]`` (1 at ``t = 0``). Shapes: data ``(B, ...)``, ``t`` long ``(B,)``.
"""

from __future__ import annotations

import torch

from diffusion.schedules import NoiseSchedule, extract


def q_posterior_mean_variance(
    schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean and variance of ``q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)`` (Ho et al. 2020, eqs. 6–7).

    ``μ̃_t = β_t √ᾱ_prev / (1 − ᾱ_t) · x0 + (1 − ᾱ_prev) √α_t / (1 − ᾱ_t) · x_t`` and
    ``β̃_t = β_t (1 − ᾱ_prev) / (1 − ᾱ_t)``, which is 0 at ``t = 0``. Its log is −∞ there, so
    ``log_variance_clipped`` uses ``β̃`` at index 1 in place of index 0 (Nichol & Dhariwal 2021); a
    one-step schedule (``T = 1``) has no index 1 and uses ``β_0`` there.

    Returns:
        ``(mean, variance, log_variance_clipped)``: ``mean`` of shape ``(B, ...)``, the other two
        of shape ``(B, 1, ..., 1)``.
    """
    ### BEGIN SOLUTION
    betas, alpha_bars, alpha_bars_prev = schedule.betas, schedule.alpha_bars, schedule.alpha_bars_prev
    coef_x0 = betas * alpha_bars_prev.sqrt() / (1 - alpha_bars)
    coef_xt = (1 - alpha_bars_prev) * schedule.alphas.sqrt() / (1 - alpha_bars)
    posterior_variance = betas * (1 - alpha_bars_prev) / (1 - alpha_bars)
    first = posterior_variance[1:2] if schedule.T > 1 else betas[:1]
    log_variance_clipped = torch.log(torch.cat([first, posterior_variance[1:]]))
    mean = extract(coef_x0, t, x_t) * x0 + extract(coef_xt, t, x_t) * x_t
    return mean, extract(posterior_variance, t, x_t), extract(log_variance_clipped, t, x_t)
    ### END SOLUTION


def predict_x0_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Invert eq. 4 of Ho et al. 2020 for the data: ``x0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t``."""
    ### BEGIN SOLUTION
    return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alpha_bars.sqrt(), t, x_t)
    ### END SOLUTION


def predict_eps_from_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Invert eq. 4 of Ho et al. 2020 for the noise: ``eps = (x_t − √ᾱ_t · x0) / √(1 − ᾱ_t)``."""
    ### BEGIN SOLUTION
    return (x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * x0) / extract((1 - schedule.alpha_bars).sqrt(), t, x_t)
    ### END SOLUTION


def predict_v(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The velocity target of Salimans & Ho 2022 (§4): ``v = √ᾱ_t · eps − √(1 − ᾱ_t) · x0``."""
    ### BEGIN SOLUTION
    return extract(schedule.alpha_bars.sqrt(), t, x0) * eps - extract((1 - schedule.alpha_bars).sqrt(), t, x0) * x0
    ### END SOLUTION


def predict_x0_from_v(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Recover the data from a v-prediction (Salimans & Ho 2022): ``x0 = √ᾱ_t · x_t − √(1 − ᾱ_t) · v``."""
    ### BEGIN SOLUTION
    return extract(schedule.alpha_bars.sqrt(), t, x_t) * x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * v
    ### END SOLUTION
