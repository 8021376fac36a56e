"""Training the VAE of latent diffusion on the negative ELBO (provided).

Each step draws a batch uniformly with replacement, encodes, samples ``z`` with your
:func:`diffusion.vae.reparameterize` (inside :meth:`diffusion.vae.VAE.forward`), decodes and takes an
Adam step on :func:`diffusion.vae.vae_loss` with a small ``kl_weight`` (Rombach et al. 2022, §3: a
lightly KL-regularised autoencoder reconstructs sharply and keeps its latents near N(0, I)). One
``torch.Generator`` seeded with ``config.seed`` draws the batches and the noise, so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from diffusion.vae import VAE, vae_loss


@dataclass(frozen=True)
class VAETrainConfig:
    """Everything that determines a VAE training run."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    kl_weight: float = 1e-3
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0 or self.kl_weight < 0:
            raise ValueError(f"invalid VAETrainConfig: steps >= 0, batch_size >= 1, lr > 0, kl_weight >= 0 ({self})")


def train_vae(
    vae: VAE,
    dataset: Dataset,
    config: VAETrainConfig,
    progress: bool = True,
    vae_loss_fn: Callable[..., dict[str, torch.Tensor]] | None = None,
) -> list[dict[str, float]]:
    """Train ``vae`` in place on the images of ``dataset`` (``(x, y)`` pairs, ``x`` in [−1, 1]) on ``vae_loss_fn``
    (default: your :func:`~diffusion.vae.vae_loss`).

    Returns:
        every step's ``{"loss", "recon", "kl"}``; the VAE is left in eval mode on ``config.device``.
    """
    if len(dataset) == 0:
        raise ValueError("the data set is empty")
    device = torch.device(config.device)
    vae.to(device).train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    vae_loss_fn = vae_loss if vae_loss_fn is None else vae_loss_fn
    history = []
    for _ in tqdm(range(config.steps), disable=not progress, desc="training the VAE"):
        index = torch.randint(0, len(dataset), (config.batch_size,), generator=generator)
        x, _ = default_collate([dataset[i] for i in index.tolist()])
        x = x.to(device)
        with torch.no_grad():
            mu, _ = vae.encode(x)
        noise = torch.randn(mu.shape, generator=generator).to(device)
        x_recon, mu, logvar = vae(x, noise)
        terms = vae_loss_fn(x, x_recon, mu, logvar, kl_weight=config.kl_weight)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        history.append({key: float(value.detach()) for key, value in terms.items()})
    vae.eval()
    return history
