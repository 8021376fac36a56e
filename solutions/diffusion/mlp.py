"""A time-conditioned MLP noise predictor ``eps_θ(x_t, t, y)`` for vector data ``(B, D)`` (provided).

For the 2-D Gaussian mixture and other low-dimensional data. The timestep goes through
:func:`diffusion.embedding.timestep_embedding` and a two-layer MLP; an optional class embedding
(``num_classes + 1`` rows, the last one the null label of classifier-free guidance) is added to it.
The trunk is a stack of pre-norm residual blocks ``h + W₂ SiLU(W₁ LN(h) + U·SiLU(emb))``; the
conditioning vector is :class:`diffusion.unet.ConditionEmbedding`, shared with the UNet.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import silu

from diffusion.unet import ConditionEmbedding


class MLPBlock(nn.Module):
    """Pre-norm residual block ``h + W₂ · dropout(SiLU(W₁ · LN(h) + U · SiLU(emb)))``.

    Shapes: ``h`` ``(B, hidden)``, ``emb`` ``(B, emb_dim)`` → ``(B, hidden)``.
    """

    def __init__(self, hidden: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.emb_proj = nn.Linear(emb_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = self.fc1(self.norm(h)) + self.emb_proj(silu(emb))
        return h + self.fc2(self.dropout(silu(z)))


class MLPDenoiser(nn.Module):
    """Noise predictor ``eps_θ(x_t, t, y) -> eps_hat`` for vectors ``(B, D)``.

    Args:
        dim: data dimension ``D``; the output has the same.
        hidden: width of the residual trunk.
        num_blocks: number of residual blocks.
        emb_dim: width of the sinusoidal time embedding and of the conditioning vector.
        num_classes: ``None`` for an unconditional model; else labels ``0..num_classes−1`` plus the
            null label ``num_classes`` for classifier-free guidance.
        dropout: dropout rate inside the blocks.
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        num_blocks: int = 3,
        emb_dim: int = 64,
        num_classes: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.num_classes = num_classes
        self.cond = ConditionEmbedding(emb_dim, emb_dim, num_classes)
        self.in_proj = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(MLPBlock(hidden, emb_dim, dropout) for _ in range(num_blocks))
        self.out_norm = nn.LayerNorm(hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the noise in ``x``.

        Args:
            x: noisy data ``x_t``, shape ``(B, D)``.
            t: 0-based timesteps, long tensor of shape ``(B,)``.
            y: class labels, long ``(B,)`` in ``0..num_classes`` (``num_classes`` = null); ``None``
                is the null label on a conditional model and required on an unconditional one.

        Returns:
            ``eps_hat``, shape ``(B, D)``.
        """
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"MLPDenoiser expects vectors (B, {self.dim}); got shape {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(
                f"t must be a long tensor of shape ({x.shape[0]},), one timestep per sample; got {tuple(t.shape)}"
            )
        emb = self.cond(t, y)  # (B, emb_dim)
        h = self.in_proj(x)  # (B, hidden)
        for block in self.blocks:
            h = block(h, emb)
        return self.out_proj(silu(self.out_norm(h)))
