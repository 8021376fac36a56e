"""Helpers for the public tests.

Each part is tested on its own: a test of part k calls only part k's functions and the provided
code, so an unfinished earlier part never makes a later one fail. :func:`schedule` builds a
:class:`~diffusion.schedules.NoiseSchedule` directly from tensors for that reason.
"""

from __future__ import annotations

import math

import torch

from diffusion.schedules import NoiseSchedule


def schedule(T: int = 50, kind: str = "linear") -> NoiseSchedule:
    """A correct float64 schedule built without any student function ("linear" or "cosine")."""
    if kind == "linear":
        betas = torch.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, dtype=torch.float64).clamp(max=0.999)
    elif kind == "cosine":
        u = torch.arange(T + 1, dtype=torch.float64)
        f = torch.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    else:
        raise ValueError(f"kind must be 'linear' or 'cosine', got {kind!r}")
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, 0)
    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
    return NoiseSchedule(betas=betas, alphas=alphas, alpha_bars=alpha_bars, alpha_bars_prev=alpha_bars_prev)


def check_close(
    got: torch.Tensor,
    expected: torch.Tensor,
    *,
    part: str,
    what: str,
    hint: str,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Assert ``got ≈ expected`` with a message that names the part, the equation and the usual mistake.

    Args:
        part: e.g. ``"part 2 (forward)"``.
        what: the function and the equation it must satisfy.
        hint: the mistake that usually produces this failure.
    """
    assert isinstance(got, torch.Tensor), f"{part}: {what}\n  expected a torch.Tensor, got {type(got).__name__}"
    assert got.shape == expected.shape, (
        f"{part}: {what}\n  shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}\n  hint: {hint}"
    )
    expected = expected.to(dtype=got.dtype, device=got.device)
    if torch.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=False):
        return
    if not torch.isfinite(got).all():
        bad = tuple(int(i) for i in torch.nonzero(~torch.isfinite(got))[0])
        raise AssertionError(
            f"{part}: {what}\n  got {got[bad].item()} at index {bad}: a NaN or inf usually comes from the "
            f"square root or log of a negative number, or a division by 1 − ᾱ = 0\n  hint: {hint}"
        )
    err = (got - expected).abs()
    where = tuple(int(i) for i in torch.nonzero(err == err.max())[0]) if err.numel() else ()
    raise AssertionError(
        f"{part}: {what}\n"
        f"  largest difference {err.max().item():.3g} at index {where}: "
        f"expected {expected[where].item():.6g}, got {got[where].item():.6g}\n"
        f"  hint: {hint}"
    )
