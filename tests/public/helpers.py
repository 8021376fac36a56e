"""Helpers for the public tests.

Each part is tested on its own: a test of part k calls only part k's functions and the provided
code, so an unfinished earlier part never makes a later one fail. :func:`schedule` builds a
:class:`~diffusion.schedules.NoiseSchedule` directly from tensors for that reason, and the formulas
of earlier parts that later tests need (:func:`diffuse`, :func:`x0_from_eps`, :func:`posterior_mean`,
:func:`beta_tilde`) are written out here with plain torch.

Also shared by several test files: the Hypothesis settings of the property tests (:data:`PROPERTY`),
the batch of parts 2–4 (:data:`SHAPES`, :data:`TIMESTEPS`), the dtypes and their tolerances, seeded
data (:func:`randn`), two denoisers, and assertions whose messages name the part, the equation and
the usual mistake (:func:`check_close`, :func:`assert_dtype`).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import Phase, settings

from diffusion.schedules import NoiseSchedule, extract

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
"""The property tests: 25 examples, the same ones on every run, no time limit."""

# --- the batch of the tests of parts 2–4 --------------------------------------------------------------------------

T = 50
SHAPES = [(5, 2), (5, 1, 8, 8), (5, 3, 4, 4, 2)]
TIMESTEPS = torch.tensor([0, 49, 1, 24, 48])  # one per sample, unsorted, both ends of T = 50 included
AT_T = f"t = {TIMESTEPS.tolist()}, one per sample"
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: {"rtol": 2e-4, "atol": 2e-5}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}
"""``check_close`` tolerances for results in each dtype."""

shapes = pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "x".join(map(str, shape)))
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])


def randn(shape, dtype=torch.float64, seed=0) -> torch.Tensor:
    """Standard normal data of ``shape`` in ``dtype`` from a fixed seed (drawn in float64, so that float32 and
    float64 tests of one seed see the same numbers)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


# --- a schedule, and formulas written out -------------------------------------------------------------------------


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


def diffuse(sched: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · eps`` (Ho et al. eq. 4), so that later parts need nothing from part 2."""
    return extract(sched.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - sched.alpha_bars).sqrt(), t, x0) * eps


def x0_from_eps(sched: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``x̂0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t``: eq. 4 solved for x0, so that parts 6–7 need nothing from part 3."""
    return (x_t - extract((1 - sched.alpha_bars).sqrt(), t, x_t) * eps) / extract(sched.alpha_bars.sqrt(), t, x_t)


def posterior_mean(sched: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``μ̃_t = β_t √ᾱ_prev / (1 − ᾱ_t) · x0 + (1 − ᾱ_prev) √α_t / (1 − ᾱ_t) · x_t`` (Ho et al. eq. 7)."""
    coef_x0 = sched.betas * sched.alpha_bars_prev.sqrt() / (1 - sched.alpha_bars)
    coef_xt = (1 - sched.alpha_bars_prev) * sched.alphas.sqrt() / (1 - sched.alpha_bars)
    return extract(coef_x0, t, x_t) * x0 + extract(coef_xt, t, x_t) * x_t


def beta_tilde(sched: NoiseSchedule) -> torch.Tensor:
    """The posterior variance ``β̃_t = β_t (1 − ᾱ_prev) / (1 − ᾱ_t)`` for t = 0..T−1 (float64; 0 at t = 0)."""
    return sched.betas * (1 - sched.alpha_bars_prev) / (1 - sched.alpha_bars)


# --- denoisers ----------------------------------------------------------------------------------------------------


def x0_denoiser(sched: NoiseSchedule, x0: torch.Tensor):
    """The denoiser that knows the data: ``eps = (x_t − √ᾱ_t · x0) / √(1 − ᾱ_t)`` (built with ``extract``)."""

    def model(x_t: torch.Tensor, t: torch.Tensor, **model_kwargs) -> torch.Tensor:
        sqrt_ab = extract(sched.alpha_bars.sqrt(), t, x_t)
        return (x_t - sqrt_ab * x0.to(x_t.dtype)) / extract((1 - sched.alpha_bars).sqrt(), t, x_t)

    return model


class RecordingModel:
    """A denoiser that records the ``t`` (and keyword arguments) of every call and returns ``0.1 · x_t``."""

    def __init__(self) -> None:
        self.ts: list[torch.Tensor] = []
        self.xs: list[torch.Tensor] = []
        self.kwargs: list[dict] = []

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, **model_kwargs) -> torch.Tensor:
        self.ts.append(t.clone())
        self.xs.append(x_t.clone())
        self.kwargs.append(model_kwargs)
        return 0.1 * x_t

    def steps(self) -> list[int]:
        """The timestep of each call (of its first sample), in call order."""
        return [int(t[0]) for t in self.ts]


# --- assertions ---------------------------------------------------------------------------------------------------


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


def assert_dtype(got: torch.Tensor, dtype: torch.dtype, *, part: str, what: str) -> None:
    """Assert that ``got`` is a tensor in the data's ``dtype`` (coefficients must not promote float32 data)."""
    assert isinstance(got, torch.Tensor) and got.dtype == dtype, (
        f"{part}: {what}\n  must return the data's dtype {dtype}, got {getattr(got, 'dtype', type(got).__name__)}\n"
        f"  hint: read coefficients with extract(schedule.<field>, t, x), which casts them to the data's dtype"
    )
