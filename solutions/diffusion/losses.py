"""Part 4 — training objectives: the simple DDPM loss and the variational bound's terms.

Ho et al. 2020 (eq. 14 and §3.2) and Nichol & Dhariwal 2021 (§2.1, ``L_vlb``). Shapes: ``x0``
``(B, ...)``, ``t`` long ``(B,)``; a denoiser maps ``(x_t, t, **model_kwargs)`` to ``eps_hat``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffusion.ddpm import p_mean_variance
from diffusion.forward import q_sample
from diffusion.posterior import q_posterior_mean_variance
from diffusion.schedules import NoiseSchedule

Denoiser = Callable[..., torch.Tensor]


def ddpm_loss(
    model: Denoiser,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    **model_kwargs,
) -> torch.Tensor:
    """The simple loss ``L_simple = E ‖eps − eps_θ(√ᾱ_t x0 + √(1 − ᾱ_t) eps, t)‖²`` (Ho et al. 2020, eq. 14).

    When not given, ``t ~ U{0, ..., T−1}`` (shape ``(B,)``) and ``noise ~ N(0, I)`` (shape of ``x0``)
    are drawn on the CPU from ``generator`` and moved to ``x0``'s device.

    Returns:
        scalar tensor: the mean over every element of the squared error.
    """
    ### BEGIN SOLUTION
    if t is None:
        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    x_t = q_sample(schedule, x0, t, noise)
    return ((noise - model(x_t, t, **model_kwargs)) ** 2).mean()
    ### END SOLUTION


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2))`` in nats.

    ``½ (logvar2 − logvar1 + e^(logvar1 − logvar2) + (mean1 − mean2)² e^(−logvar2) − 1)``.
    Arguments broadcast against each other.
    """
    ### BEGIN SOLUTION
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)
    ### END SOLUTION


def vlb_term(
    schedule: NoiseSchedule, model: Denoiser, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The bound's term ``L_{t} = KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t))`` for 0-based ``t ≥ 1``.

    Ho et al. 2020, eq. 5. The model's reverse step uses the fixed-small variance ``β̃_t`` and no
    clipping; both sides use ``log_variance_clipped``.

    Returns:
        shape ``(B,)``: the KL averaged over the non-batch dimensions, in nats.

    Raises:
        ValueError: if any ``t == 0`` (that term is the decoder's likelihood, not a KL).
    """
    ### BEGIN SOLUTION
    if bool((t == 0).any()):
        raise ValueError("vlb_term is the KL term L_t for t >= 1; t == 0 is the decoder term L_0")
    true_mean, _, true_log_variance = q_posterior_mean_variance(schedule, x0, x_t, t)
    out = p_mean_variance(model, schedule, x_t, t, clip_denoised=False, variance="fixed_small")
    kl = normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])
    return kl.reshape(len(kl), -1).mean(dim=1)  # (B,) data too: one value per sample
    ### END SOLUTION
