"""Part 6 — the reverse process of DDPM: one step and the ancestral sampling loop.

Ho et al. 2020, eqs. 11–12 and Algorithm 2; the variance choices of §3.2. Shapes: ``x_t`` is
``(B, ...)``, ``t`` a long tensor ``(B,)`` of 0-based timesteps; a denoiser maps
``(x_t, t, **model_kwargs)`` to ``eps_hat`` of the shape of ``x_t``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from tqdm.auto import tqdm

from diffusion.posterior import predict_x0_from_eps, q_posterior_mean_variance
from diffusion.schedules import NoiseSchedule, expand_like, extract

Denoiser = Callable[..., torch.Tensor]
VarianceType = Literal["fixed_small", "fixed_large"]


def p_mean_variance(
    model: Denoiser,
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: torch.Tensor,
    clip_denoised: bool = True,
    variance: VarianceType = "fixed_small",
    **model_kwargs,
) -> dict[str, torch.Tensor]:
    """Mean and variance of the model's reverse step ``p_θ(x_{t−1} | x_t)`` (Ho et al. 2020, §3.2).

    1. ``eps = model(x_t, t, **model_kwargs)``.
    2. ``pred_x0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t``, clamped to [−1, 1] when ``clip_denoised``.
    3. ``mean`` = the posterior mean ``μ̃_t(pred_x0, x_t)`` of eq. 7.
    4. ``variance``: ``"fixed_small"`` is ``β̃_t`` (log from ``log_variance_clipped``),
       ``"fixed_large"`` is ``β_t``.

    Without clipping the mean equals eq. 11: ``(x_t − β_t / √(1 − ᾱ_t) · eps) / √α_t``.

    Returns:
        dict with ``mean``, ``pred_x0``, ``eps`` of shape ``(B, ...)`` and ``variance``,
        ``log_variance`` of shape ``(B, 1, ..., 1)``.

    Raises:
        ValueError: for a ``variance`` other than ``"fixed_small"`` and ``"fixed_large"``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("ddpm.p_mean_variance is not implemented yet")


def p_sample(
    model: Denoiser,
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    clip_denoised: bool = True,
    variance: VarianceType = "fixed_small",
    **model_kwargs,
) -> torch.Tensor:
    """One ancestral step ``x_{t−1} = mean + √variance · noise`` (Ho et al. 2020, Algorithm 2, line 4).

    Samples whose ``t == 0`` get no noise: their result is the mean.

    Returns:
        ``x_{t−1}``, shape of ``x_t``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("ddpm.p_sample is not implemented yet")


@torch.no_grad()
def p_sample_loop(
    model: Denoiser,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    return_trajectory: bool = False,
    noise: torch.Tensor | None = None,
    clip_denoised: bool = True,
    variance: VarianceType = "fixed_small",
    **model_kwargs,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2): ``x_{T−1} ~ N(0, I)``, then :func:`p_sample`
    for ``t = T−1, ..., 0``.

    Noise is drawn on the CPU from ``generator`` (float32) and moved to ``device`` (default CPU), so
    one seed gives the same samples on every device.

    Args:
        shape: ``(B, ...)``, the shape of the samples.
        noise: the starting ``x_{T−1}``; drawn from ``generator`` when ``None``.
        return_trajectory: also return the ``T + 1`` states, from the starting noise to the sample.

    Returns:
        the samples, shape ``shape``; with ``return_trajectory`` also the list of states.

    Raises:
        ValueError: if ``noise`` is given and its shape is not ``shape``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("ddpm.p_sample_loop is not implemented yet")
