"""Part 5 — the sinusoidal timestep embedding (Vaswani et al. 2017, §3.5; Ho et al. 2020, App. B)."""

from __future__ import annotations

import math

import torch


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000) -> torch.Tensor:
    """Sinusoidal features of the timestep.

    With ``half = dim // 2`` and ``freqs_i = exp(−ln(max_period) · i / half)`` for ``i < half``, the
    embedding is ``cat[sin(t · freqs), cos(t · freqs)]``, zero-padded by one column when ``dim`` is
    odd. Every value lies in [−1, 1].

    Args:
        t: timesteps, shape ``(B,)`` (long or float).
        dim: embedding width.

    Returns:
        float32 tensor of shape ``(B, dim)`` on ``t``'s device.
    """
    # YOUR CODE HERE
    raise NotImplementedError("embedding.timestep_embedding is not implemented yet")
