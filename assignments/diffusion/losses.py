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
    # YOUR CODE HERE
    raise NotImplementedError("losses.ddpm_loss is not implemented yet")


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2))`` in nats.

    ``½ (logvar2 − logvar1 + e^(logvar1 − logvar2) + (mean1 − mean2)² e^(−logvar2) − 1)``.
    Arguments broadcast against each other.
    """
    # YOUR CODE HERE
    raise NotImplementedError("losses.normal_kl is not implemented yet")


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
    # YOUR CODE HERE
    raise NotImplementedError("losses.vlb_term is not implemented yet")
