"""A small UNet noise predictor ``eps_θ(x_t, t, y)`` for images (provided).

The architecture of Ho et al. 2020 (App. B), scaled down to train in minutes on a laptop CPU:

- the timestep goes through :func:`diffusion.embedding.timestep_embedding` and a two-layer MLP;
  an optional class embedding (``num_classes + 1`` rows, the last one the null label of
  classifier-free guidance) is added to it;
- residual blocks ``GroupNorm → SiLU → conv`` with the embedding added between the two convs;
- a stride-2 conv halves the resolution between levels, nearest upsampling plus a conv doubles it,
  and skip connections carry every down-path activation to the up path;
- self-attention in the middle, at the lowest resolution only.

Images are ``(B, C, H, W)``. ``H`` and ``W`` need not be divisible by ``2^(levels − 1)``: the
input is padded on the bottom/right by edge replication and the output cropped back, so 16, 28
and 32 all work (with two levels, 28 → 14; with three, 28 → 14 → 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.functional import interpolate, pad, scaled_dot_product_attention, silu

from diffusion.embedding import timestep_embedding


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm over the largest of 8, 4, 2, 1 groups that divides ``channels``."""
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class ConditionEmbedding(nn.Module):
    """The conditioning vector ``MLP(sinusoid(t)) + E[y]`` shared by the denoisers, shape ``(B, emb_dim)``.

    ``sinusoid(t)`` is :func:`diffusion.embedding.timestep_embedding` of width ``sinusoid_dim``; the
    MLP is ``Linear → SiLU → Linear``. With ``num_classes = K`` the table ``E`` has ``K + 1`` rows:
    row ``K`` is the null label of classifier-free guidance, used for the whole batch when ``y`` is
    ``None``.
    """

    def __init__(self, sinusoid_dim: int, emb_dim: int, num_classes: int | None = None) -> None:
        super().__init__()
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be None (unconditional) or >= 1, got {num_classes}")
        self.sinusoid_dim = sinusoid_dim
        self.num_classes = num_classes
        self.time_mlp = nn.Sequential(nn.Linear(sinusoid_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes is not None else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``t``: long ``(B,)``; ``y``: long ``(B,)`` in ``0..num_classes``, or ``None``."""
        dtype = self.time_mlp[0].weight.dtype
        emb = self.time_mlp(timestep_embedding(t, self.sinusoid_dim).to(dtype))  # (B, emb_dim)
        if self.class_emb is None:
            if y is not None:
                raise ValueError(
                    "this model is unconditional (num_classes=None): build it with num_classes=K to pass y"
                )
            return emb
        if y is None:
            y = torch.full_like(t, self.num_classes, dtype=torch.long)
        if y.shape != t.shape:
            raise ValueError(f"y must hold one label per sample, shape {tuple(t.shape)}; got {tuple(y.shape)}")
        return emb + self.class_emb(y)


class ResBlock(nn.Module):
    """``x + conv(SiLU(GN(conv(SiLU(GN(x))) + W·emb)))``, with a 1×1 conv on the skip when channels change.

    Shapes: ``x`` ``(B, in_ch, H, W)``, ``emb`` ``(B, emb_dim)`` → ``(B, out_ch, H, W)``.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(silu(self.norm1(x)))
        h = h + self.emb_proj(silu(emb))[:, :, None, None]  # (B, out_ch, 1, 1) broadcast
        h = self.conv2(self.dropout(silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the ``H · W`` positions, with a residual connection.

    Shapes: ``(B, C, H, W)`` → ``(B, C, H, W)``; ``C`` must be divisible by ``num_heads``.
    """

    def __init__(self, channels: int, num_heads: int = 4) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(
                f"attention over {channels} channels cannot be split into {num_heads} heads; "
                f"choose num_heads dividing the channel count at the lowest resolution"
            )
        self.num_heads = num_heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, self.num_heads, C // self.num_heads, H * W)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # each (B, heads, HW, C/heads)
        out = scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(B, C, H, W))


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3×3 conv: ``(B, C, H, W)`` → ``(B, C, ⌈H/2⌉, ⌈W/2⌉)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution by nearest-neighbour upsampling and a 3×3 conv: ``(B, C, H, W)`` → ``(B, C, 2H, 2W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """Noise predictor ``eps_θ(x_t, t, y) -> eps_hat`` for images ``(B, C, H, W)``.

    Args:
        in_channels: image channels ``C``; the output has the same number.
        base_channels: channels of the first level; level ``i`` has ``base_channels · channel_mults[i]``.
        channel_mults: one entry per resolution level; ``len(channel_mults) − 1`` downsamplings.
        num_res_blocks: residual blocks per level on the down path (the up path has one more).
        num_classes: ``None`` for an unconditional model; else labels ``0..num_classes−1`` plus the
            null label ``num_classes`` for classifier-free guidance.
        dropout: dropout rate inside the residual blocks.
        attention: self-attention in the middle block (the lowest resolution).
        num_heads: attention heads.

    The last conv is zero-initialised, so a fresh model predicts ``eps_hat = 0`` (loss 1 at start).
    The defaults have about 1.06 M parameters; with ``num_res_blocks=1`` and three levels a 28×28
    image goes 28 → 14 → 7, and attention runs over the 49 positions at 7×7.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 1,
        num_classes: int | None = None,
        dropout: float = 0.0,
        attention: bool = True,
        num_heads: int = 4,
    ) -> None:
        super().__init__()
        if not channel_mults:
            raise ValueError("channel_mults needs at least one level, e.g. (1, 2, 2)")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.num_levels = len(channel_mults)
        emb_dim = 4 * base_channels

        self.cond = ConditionEmbedding(base_channels, emb_dim, num_classes)
        self.in_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        # Down path: record the channels of every activation that becomes a skip connection.
        self.down = nn.ModuleList()
        skip_channels = [base_channels]
        ch = base_channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, base_channels * mult, emb_dim, dropout))
                ch = base_channels * mult
                skip_channels.append(ch)
            if level < self.num_levels - 1:
                self.down.append(Downsample(ch))
                skip_channels.append(ch)

        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = SelfAttention(ch, num_heads) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)

        # Up path: each block consumes one skip connection, in reverse order.
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skip_channels.pop(), base_channels * mult, emb_dim, dropout))
                ch = base_channels * mult
            if level > 0:
                self.up.append(Upsample(ch))

        self.out_norm = group_norm(ch)
        self.out_conv = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the noise in ``x``.

        Args:
            x: noisy images ``x_t``, shape ``(B, C, H, W)``.
            t: 0-based timesteps, long tensor of shape ``(B,)``.
            y: class labels, long ``(B,)`` in ``0..num_classes`` (``num_classes`` = null); ``None``
                is the null label on a conditional model and required on an unconditional one.

        Returns:
            ``eps_hat``, shape ``(B, C, H, W)``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects images (B, {self.in_channels}, H, W); got shape {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(
                f"t must be a long tensor of shape ({x.shape[0]},), one timestep per image; got {tuple(t.shape)}"
            )
        emb = self.cond(t, y)  # (B, emb_dim)
        H, W = x.shape[-2:]
        multiple = 2 ** (self.num_levels - 1)
        pad_h, pad_w = -H % multiple, -W % multiple  # replicate-pad bottom/right to a multiple of 2^(levels−1)
        h = pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

        h = self.in_conv(h)
        skips = [h]
        for block in self.down:
            h = block(h, emb) if isinstance(block, ResBlock) else block(h)
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb) if isinstance(block, ResBlock) else block(h)
        out = self.out_conv(silu(self.out_norm(h)))
        return out[..., :H, :W]
