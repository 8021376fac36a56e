"""Part 9 — the variational autoencoder that gives latent diffusion its latent space.

Kingma & Welling 2014 (§2.4 the reparameterisation trick, eq. 10 and App. B the KL to the prior);
Rombach et al. 2022 (§3, a KL-regularised autoencoder). The encoder maps an image to a diagonal
Gaussian ``q(z | x) = N(mu, diag(e^logvar))``, the decoder maps a latent back to an image in [−1, 1].
Shapes: images ``(B, C, H, W)``, latents ``(B, latent_channels, H/4, W/4)``: 28×28 → 7×7.
"""

from __future__ import annotations

import torch
from torch import nn

from diffusion.unet import Downsample, Upsample, group_norm


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """A sample of ``N(mu, diag(e^logvar))``, differentiable in ``mu`` and ``logvar`` (Kingma & Welling 2014, §2.4).

    ``z = mu + σ · noise`` with ``σ = exp(½ · logvar)`` and ``noise ~ N(0, I)``.

    Args:
        mu, logvar, noise: the same shape ``(B, ...)``.

    Returns:
        ``z``, shape of ``mu``.
    """
    ### BEGIN SOLUTION
    return mu + torch.exp(0.5 * logvar) * noise
    ### END SOLUTION


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(e^logvar)) ‖ N(0, I))`` per sample, in nats (Kingma & Welling 2014, App. B).

    ``½ Σ (mu² + e^logvar − 1 − logvar)``, summed over every non-batch dimension: the special case
    of a Gaussian against the standard normal. It is 0 exactly when ``mu = 0`` and ``logvar = 0``.

    Args:
        mu, logvar: the same shape ``(B, ...)``.

    Returns:
        shape ``(B,)``.
    """
    ### BEGIN SOLUTION
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)
    ### END SOLUTION


def vae_loss(
    x: torch.Tensor, x_recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kl_weight: float = 1.0
) -> dict[str, torch.Tensor]:
    """The negative ELBO of a VAE with a Gaussian decoder, averaged over the batch (Kingma & Welling 2014, eq. 10).

    ``recon`` is the per-sample sum of squared errors ``Σ (x − x_recon)²`` (the decoder's negative
    log-likelihood up to constants), ``kl`` is :func:`gaussian_kl`; each is averaged over the batch,
    and ``loss = recon + kl_weight · kl``. A ``kl_weight`` below 1 trades sample quality of the
    VAE itself for sharper reconstructions, as latent diffusion wants (Rombach et al. 2022, §3).

    Args:
        x, x_recon: images ``(B, ...)``; mu, logvar: latents ``(B, ...)``.

    Returns:
        dict of scalar tensors ``loss``, ``recon``, ``kl``.
    """
    ### BEGIN SOLUTION
    recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()
    kl = gaussian_kl(mu, logvar).mean()
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}
    ### END SOLUTION


class VAE(nn.Module):
    """A small convolutional VAE: images ``(B, C, H, W)`` ↔ latents ``(B, latent_channels, H/4, W/4)``.

    The architecture is provided; ``encode``, ``decode`` and ``forward`` are yours.

    - ``encoder``: a conv to ``base_channels``, then ``GroupNorm → SiLU → conv`` four times: a
      stride-2 conv (H/2), a conv to twice the channels, a stride-2 conv (H/4), and a last conv to
      ``2 · latent_channels`` channels: the first ``latent_channels`` are ``mu``, the others ``logvar``.
    - ``decoder``: the mirror image, doubling the resolution twice by nearest upsampling and a conv
      and ending in ``C`` channels; :meth:`decode` squashes them into [−1, 1] with ``tanh``.

    ``H`` and ``W`` must be divisible by 4. The defaults have about 0.14 M parameters.

    Args:
        in_channels: image channels ``C``.
        latent_channels: latent channels.
        base_channels: channels at full resolution; the lower resolutions have up to twice as many.
    """

    def __init__(self, in_channels: int = 1, latent_channels: int = 4, base_channels: int = 32) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.latent_channels = latent_channels
        wide = 2 * base_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, base_channels, 3, padding=1),  # (B, base, H, W)
            group_norm(base_channels),
            nn.SiLU(),
            Downsample(base_channels),  # (B, base, H/2, W/2)
            group_norm(base_channels),
            nn.SiLU(),
            nn.Conv2d(base_channels, wide, 3, padding=1),  # (B, wide, H/2, W/2)
            group_norm(wide),
            nn.SiLU(),
            Downsample(wide),  # (B, wide, H/4, W/4)
            group_norm(wide),
            nn.SiLU(),
            nn.Conv2d(wide, 2 * latent_channels, 3, padding=1),  # (B, 2 · latent, H/4, W/4): mu, logvar
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, wide, 3, padding=1),  # (B, wide, H/4, W/4)
            group_norm(wide),
            nn.SiLU(),
            Upsample(wide),  # (B, wide, H/2, W/2)
            group_norm(wide),
            nn.SiLU(),
            nn.Conv2d(wide, base_channels, 3, padding=1),  # (B, base, H/2, W/2)
            group_norm(base_channels),
            nn.SiLU(),
            Upsample(base_channels),  # (B, base, H, W)
            group_norm(base_channels),
            nn.SiLU(),
            nn.Conv2d(base_channels, in_channels, 3, padding=1),  # (B, C, H, W), before tanh
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The parameters of ``q(z | x)``: split ``self.encoder(x)`` along the channels into ``(mu, logvar)``.

        Args:
            x: images ``(B, C, H, W)`` in [−1, 1].

        Returns:
            ``mu`` and ``logvar``, each ``(B, latent_channels, H/4, W/4)``.
        """
        ### BEGIN SOLUTION
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar
        ### END SOLUTION

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``tanh(self.decoder(z))``, in [−1, 1] like the data.

        Args:
            z: latents ``(B, latent_channels, h, w)``.

        Returns:
            images ``(B, C, 4h, 4w)``.
        """
        ### BEGIN SOLUTION
        return torch.tanh(self.decoder(z))
        ### END SOLUTION

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, sample ``z`` with :func:`reparameterize`, decode.

        Args:
            x: images ``(B, C, H, W)``.
            noise: the standard normal ``noise`` of :func:`reparameterize`, shaped like ``mu``; when
                ``None`` it is drawn with ``torch.randn_like(mu)`` (the global RNG, as dropout does).

        Returns:
            ``(x_recon, mu, logvar)``: ``x_recon`` shaped like ``x``, ``mu`` and ``logvar`` as :meth:`encode`.
        """
        ### BEGIN SOLUTION
        mu, logvar = self.encode(x)
        if noise is None:
            noise = torch.randn_like(mu)
        return self.decode(reparameterize(mu, logvar, noise)), mu, logvar
        ### END SOLUTION
