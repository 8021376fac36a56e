"""Part 8 — guidance: classifier-free (Ho & Salimans 2022) and classifier guidance (Dhariwal & Nichol 2021).

Class labels are long tensors ``(B,)`` in ``0..num_classes−1``; the null label ``num_classes``
means "unconditional". Shapes: ``x_t``/``eps`` ``(B, ...)``, ``t`` long ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffusion.schedules import NoiseSchedule, extract

Denoiser = Callable[..., torch.Tensor]


def drop_labels(
    y: torch.Tensor, p_uncond: float, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Label dropout for classifier-free guidance training (Ho & Salimans 2022, Algorithm 1).

    Each label independently becomes the null label ``num_classes`` with probability ``p_uncond``;
    the uniforms are drawn on the CPU from ``generator``.

    Returns:
        long tensor of the shape of ``y``; ``y`` itself is not modified.
    """
    # YOUR CODE HERE
    raise NotImplementedError("guidance.drop_labels is not implemented yet")


def cfg_eps(
    model: Denoiser, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, guidance_scale: float, num_classes: int
) -> torch.Tensor:
    """Classifier-free guided noise ``eps_u + s · (eps_c − eps_u)`` (Ho & Salimans 2022, eq. 6).

    ``s = guidance_scale``: ``s = 1`` is the conditional model, ``s = 0`` the unconditional one;
    the paper's ``w`` is ``s − 1``. Conditional and unconditional predictions come from **one**
    batched model call of size ``2B`` (labels ``y`` then the null label ``num_classes``).

    Returns:
        guided ``eps``, shape of ``x_t``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("guidance.cfg_eps is not implemented yet")


def classifier_guided_mean(
    mean: torch.Tensor, variance: torch.Tensor, grad_log_prob: torch.Tensor, scale: float
) -> torch.Tensor:
    """Shift the reverse-step mean along the classifier's gradient (Dhariwal & Nichol 2021, Algorithm 1).

    ``mean + scale · variance · ∇_{x_t} log p(y | x_t)``; ``variance`` broadcasts to ``mean``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("guidance.classifier_guided_mean is not implemented yet")


def classifier_guided_eps(
    schedule: NoiseSchedule, eps: torch.Tensor, t: torch.Tensor, grad_log_prob: torch.Tensor, scale: float
) -> torch.Tensor:
    """Guided noise for DDIM (Dhariwal & Nichol 2021, Algorithm 2).

    ``eps − scale · √(1 − ᾱ_t) · ∇_{x_t} log p(y | x_t)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("guidance.classifier_guided_eps is not implemented yet")


def guided_denoiser(
    model: Denoiser, guidance_scale: float, num_classes: int, cfg: Callable[..., torch.Tensor] | None = None
) -> Denoiser:
    """Wrap a class-conditional denoiser as ``f(x_t, t, y=...)`` that returns :func:`cfg_eps` (provided).

    The samplers of parts 6 and 7 take the result as their ``model`` and pass ``y=`` through. ``cfg``
    replaces :func:`cfg_eps` (same signature) when given.
    """
    guide = cfg_eps if cfg is None else cfg

    def denoise(x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return guide(model, x_t, t, y, guidance_scale, num_classes)

    return denoise
