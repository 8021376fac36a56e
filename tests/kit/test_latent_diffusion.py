"""Latent diffusion end to end with the reference: a VAE, the UNet on its latents, the real samplers and guidance;
and the checks of the provided ``LatentDiffusion`` constructor."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion.ddim import ddim_sample_loop
from diffusion.latent import LatentDiffusion
from diffusion.unet import UNet
from diffusion.vae import VAE
from tests.public.helpers import schedule

NUM_CLASSES = 3
LATENT_SHAPE = (4, 7, 7)


def latent_diffusion() -> LatentDiffusion:
    """An untrained narrow VAE for 28×28 images and a class-conditional UNet on its 4×7×7 latents (the UNet's
    zero-initialised last conv given random weights, so that its prediction depends on ``y``)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vae = VAE(base_channels=8).eval()
        unet = UNet(in_channels=4, base_channels=16, channel_mults=(1, 2), num_classes=NUM_CLASSES).eval()
        torch.nn.init.normal_(unet.out_conv.weight, std=0.1)
    return LatentDiffusion(vae, unet, schedule(20), 1.3, LATENT_SHAPE, num_classes=NUM_CLASSES)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("y", [None, torch.tensor([0, 2, 1])], ids=["unconditional", "guided"])
def test_samples_are_images_in_range_and_reproducible(sampler, y) -> None:
    ld = latent_diffusion()

    def run(seed: int) -> torch.Tensor:
        scale = 1.0 if y is None else 3.0
        return ld.sample(
            3, sampler=sampler, num_steps=5, y=y, guidance_scale=scale, generator=torch.Generator().manual_seed(seed)
        )

    first, again, other = run(0), run(0), run(1)
    assert first.shape == (3, 1, 28, 28) and first.dtype == torch.float32
    assert bool(torch.isfinite(first).all()) and float(first.abs().max()) <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_guidance_scale_one_is_the_conditional_model() -> None:
    """Classifier-free guidance at ``s = 1`` samples the conditional model: the same images as DDIM run with ``y``."""
    ld, y = latent_diffusion(), torch.tensor([1, 0, 2, 1])
    guided = ld.sample(4, num_steps=6, y=y, guidance_scale=1.0, generator=torch.Generator().manual_seed(4))
    latents = ddim_sample_loop(
        ld.model, ld.schedule, (4, *LATENT_SHAPE), 6, generator=torch.Generator().manual_seed(4), y=y
    )
    torch.testing.assert_close(guided, ld.decode(latents), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale_factor", [0.0, -1.0, math.inf, math.nan])
def test_constructor_rejects_a_scale_factor_that_is_not_positive_and_finite(scale_factor) -> None:
    ld = latent_diffusion()
    with pytest.raises(ValueError, match="scale_factor"):
        LatentDiffusion(ld.vae, ld.model, ld.schedule, scale_factor, LATENT_SHAPE)


def test_constructor_rejects_num_classes_below_one() -> None:
    ld = latent_diffusion()
    with pytest.raises(ValueError, match="num_classes"):
        LatentDiffusion(ld.vae, ld.model, ld.schedule, 1.0, LATENT_SHAPE, num_classes=0)
