"""Part 10 — latent diffusion: DDPM and DDIM in the latent space of a trained VAE.

Rombach et al. 2022: first an autoencoder (part 9), then a denoiser trained on its scaled latents
``z0 = f · mu(x)``. The factor ``f = 1 / std(mu)`` gives the latents unit variance, the scale of the
noise the schedule adds. Sampling runs the package's own samplers (:mod:`diffusion.ddpm`,
:mod:`diffusion.ddim`) and guidance (:mod:`diffusion.guidance`) on latents and decodes the result.
Shapes: images ``(B, C, H, W)``; latents ``(B, *latent_shape)``, e.g. ``(B, 4, 7, 7)`` for 28×28 images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch

from diffusion import ddim, ddpm, guidance
from diffusion.schedules import NoiseSchedule
from diffusion.vae import VAE

Denoiser = Callable[..., torch.Tensor]
Sampler = Literal["ddim", "ddpm"]


def latent_scale_factor(latents: torch.Tensor) -> float:
    """The factor ``f = 1 / std(latents)`` that gives the scaled latents unit variance (Rombach et al. 2022).

    The standard deviation is over every element of the whole set at once (not per channel).

    Args:
        latents: VAE means of a set of images, shape ``(N, ...)``.

    Returns:
        ``f`` as a Python float.
    """
    # YOUR CODE HERE
    raise NotImplementedError("latent.latent_scale_factor is not implemented yet")


class LatentDiffusion:
    """A trained VAE, a denoiser on its scaled latents and the schedule that denoiser was trained with.

    ``encode``, ``decode`` and ``sample`` are yours; they run without gradients, on the device of the
    VAE's parameters (:attr:`device`), where the denoiser must be too.

    Args:
        vae: a trained :class:`~diffusion.vae.VAE` (anything with ``encode(x) -> (mu, logvar)`` and
            ``decode(z) -> x``).
        model: the denoiser ``model(z_t, t, **model_kwargs) -> eps_hat`` on scaled latents, e.g. a
            :class:`~diffusion.unet.UNet` with ``in_channels = latent_shape[0]``.
        schedule: the noise schedule ``model`` was trained with.
        scale_factor: ``f`` of :func:`latent_scale_factor`, positive.
        latent_shape: the shape of one latent, e.g. ``(4, 7, 7)``.
        num_classes: the denoiser's number of classes for classifier-free guidance; ``None`` when it
            is unconditional.

    Raises:
        ValueError: if ``scale_factor`` is not a positive finite number or ``num_classes`` is below 1.
    """

    def __init__(
        self,
        vae: VAE,
        model: Denoiser,
        schedule: NoiseSchedule,
        scale_factor: float,
        latent_shape: Sequence[int],
        num_classes: int | None = None,
    ) -> None:
        if not (math.isfinite(scale_factor) and scale_factor > 0):
            raise ValueError(
                f"scale_factor must be a positive finite number (1 / std of the latents); got {scale_factor}"
            )
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be None (unconditional) or >= 1, got {num_classes}")
        self.vae = vae
        self.model = model
        self.schedule = schedule
        self.scale_factor = float(scale_factor)
        self.latent_shape = tuple(latent_shape)
        self.num_classes = num_classes

    @property
    def device(self) -> torch.device:
        """The device of the VAE's parameters: sampling runs there and images come out there."""
        return next(self.vae.parameters()).device

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The scaled latent ``z0 = f · mu(x)``: the VAE's mean, no sampling (Rombach et al. 2022, §3).

        Args:
            x: images ``(B, C, H, W)`` on :attr:`device`.

        Returns:
            latents ``(B, *latent_shape)``.
        """
        # YOUR CODE HERE
        raise NotImplementedError("latent.LatentDiffusion.encode is not implemented yet")

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from scaled latents: undo the scale, then the VAE's decoder, ``vae.decode(z / f)``.

        Args:
            z: latents ``(B, *latent_shape)`` on :attr:`device`.

        Returns:
            images ``(B, C, H, W)``.
        """
        # YOUR CODE HERE
        raise NotImplementedError("latent.LatentDiffusion.decode is not implemented yet")

    @torch.no_grad()
    def sample(
        self,
        n: int,
        sampler: Sampler = "ddim",
        num_steps: int = 50,
        y: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` images: sample latents with the package's own sampler, then :meth:`decode` them.

        1. Check the arguments (below).
        2. With labels ``y``, the denoiser is :func:`diffusion.guidance.guided_denoiser` of ``model``
           (classifier-free guidance with :func:`diffusion.guidance.cfg_eps`, part 8) and ``y`` goes
           to the sampler as ``y=``; without labels it is ``model`` itself, unconditional.
        3. Latents of shape ``(n, *latent_shape)`` on :attr:`device`, from
           :func:`diffusion.ddim.ddim_sample_loop` with ``num_steps`` (part 7) or
           :func:`diffusion.ddpm.p_sample_loop` over all ``T`` steps (part 6) with
           ``clip_denoised=False``: latents are not confined to [−1, 1]. The samplers draw their
           noise on the CPU from ``generator``.
        4. Decode.

        Args:
            n: number of images.
            sampler: ``"ddim"`` or ``"ddpm"``.
            num_steps: DDIM's number of steps (DDPM always takes ``T``).
            y: class labels, long ``(n,)`` in ``0..num_classes−1``; ``None`` for unconditional samples.
            guidance_scale: ``s`` of :func:`~diffusion.guidance.cfg_eps` (1: the conditional model).

        Raises:
            ValueError: for an unknown ``sampler``; for ``y`` without ``num_classes``, or not of shape
                ``(n,)``; for ``guidance_scale != 1`` without ``y``.

        Returns:
            images ``(n, C, H, W)`` on :attr:`device`.
        """
        # YOUR CODE HERE
        raise NotImplementedError("latent.LatentDiffusion.sample is not implemented yet")
