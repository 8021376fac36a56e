"""Part 5 — the sinusoidal timestep embedding: ``timestep_embedding(t, dim, max_period=10000)``.

With ``half = dim // 2`` and ``freqs_i = exp(−ln(max_period) · i / half)`` for ``i = 0..half−1``, the embedding
is ``cat[sin(t · freqs), cos(t · freqs)]`` (all sines first, then all cosines), zero-padded by one column when
``dim`` is odd. The result is float32 of shape ``(B, dim)``. Every test calls only part 5's function.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffusion.embedding import timestep_embedding
from tests.public.helpers import PROPERTY, check_close

PART = "part 5 (embedding)"


def expected_embedding(t: list[int], dim: int, max_period: float = 10000) -> torch.Tensor:
    """The formula in Python floats: ``[sin(t·f_0), ..., sin(t·f_{h−1}), cos(t·f_0), ..., cos(t·f_{h−1})]``, then a 0
    when ``dim`` is odd."""
    half = dim // 2
    freqs = [math.exp(-math.log(max_period) * i / half) for i in range(half)]
    rows = []
    for step in t:
        row = [math.sin(step * f) for f in freqs] + [math.cos(step * f) for f in freqs]
        rows.append(row + [0.0] * (dim % 2))
    return torch.tensor(rows, dtype=torch.float64)


def test_embedding_shape_and_dtype_for_even_dim():
    """``timestep_embedding(t, dim)`` has shape ``(B, dim)`` and dtype float32 for long ``t`` of shape ``(B,)``."""
    emb = timestep_embedding(torch.tensor([0, 1, 10, 999]), 16)
    assert isinstance(emb, torch.Tensor) and emb.shape == (4, 16), (
        f"{PART}: timestep_embedding(t of shape (4,), 16) must have shape (4, 16), "
        f"got {tuple(getattr(emb, 'shape', ()))}\n"
        f"  hint: concatenate sin and cos along dim=1 (the feature axis), each of width dim // 2"
    )
    assert emb.dtype == torch.float32, (
        f"{PART}: timestep_embedding must return float32, got {emb.dtype}\n"
        f"  hint: t is a long tensor; convert it with t.float() (not t.double()) before multiplying by the freqs"
    )


def test_embedding_odd_dim_is_zero_padded_by_one_column():
    """For odd ``dim`` the output is ``(B, dim)``: the ``2 · (dim // 2)`` sin/cos columns, then one column of zeros."""
    t = [0, 3, 50]
    emb = timestep_embedding(torch.tensor(t), 7)
    assert emb.shape == (3, 7), (
        f"{PART}: timestep_embedding(t, dim=7) must have shape (3, 7), got {tuple(emb.shape)}\n"
        f"  hint: half = dim // 2 = 3 gives 6 columns; pad one zero column at the end when dim is odd"
    )
    check_close(
        emb[:, -1],
        torch.zeros(3),
        part=PART,
        what="timestep_embedding(t, 7): the last column (the padding) is 0",
        hint="pad with zeros at the end, e.g. torch.nn.functional.pad(emb, (0, 1)), not a copy of a sin/cos column",
    )
    check_close(
        emb,
        expected_embedding(t, 7),
        part=PART,
        what="timestep_embedding(t, 7) = [sin(t·freqs), cos(t·freqs), 0] with half = 3",
        hint="half = dim // 2 (rounded down); the padding goes after the cosines",
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("t", "dim", "kwargs", "expected", "what", "hint"),
    [
        pytest.param(
            [1, 100],
            4,
            {},
            [
                [math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01)],
                [math.sin(100), math.sin(1), math.cos(100), math.cos(1)],
            ],
            "timestep_embedding([1, 100], 4): freqs_i = exp(−ln(10000)·i/half) = [1, 0.01]",
            "divide i by half = dim // 2 (not by dim, not by half − 1); the exponent is negative",
            id="dim_4",
        ),
        pytest.param(
            [4],
            6,
            {"max_period": 8},
            [[math.sin(4), math.sin(2), math.sin(1), math.cos(4), math.cos(2), math.cos(1)]],
            "timestep_embedding([4], 6, max_period=8): freqs_i = exp(−ln(max_period)·i/half) = [1, 1/2, 1/4]",
            "use the max_period argument, not a hard-coded 10000",
            id="max_period_8",
        ),
    ],
)
def test_embedding_worked_examples(t, dim, kwargs, expected, what, hint):
    """Worked by hand. ``dim = 4``: ``half = 2``, ``freqs = [1, exp(−ln(10000)/2)] = [1, 0.01]``; at ``t = 100`` the
    row is ``[sin 100, sin 1, cos 100, cos 1]``. ``dim = 6``, ``max_period = 8``: ``freqs = 8^(−i/3) = [1, 1/2, 1/4]``;
    at ``t = 4`` the row is ``[sin 4, sin 2, sin 1, cos 4, cos 2, cos 1]``."""
    check_close(
        timestep_embedding(torch.tensor(t), dim, **kwargs),
        torch.tensor(expected),
        part=PART,
        what=what,
        hint=hint,
        rtol=1e-5,
        atol=1e-5,
    )


def test_embedding_at_t_zero_is_sin_zero_then_cos_one():
    """At ``t = 0``: ``sin(0 · f_i) = 0`` for the first half of the columns and ``cos(0 · f_i) = 1`` for the second."""
    emb = timestep_embedding(torch.tensor([0, 0]), 10)
    expected = torch.tensor([[0.0] * 5 + [1.0] * 5] * 2)
    check_close(
        emb,
        expected,
        part=PART,
        what="timestep_embedding(0, 10) = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]",
        hint="all sines first, then all cosines: torch.cat([sin, cos], dim=1), not interleaved and not cos first",
    )


@PROPERTY
@given(
    t=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=6),
    dim=st.integers(min_value=2, max_value=64),
)
def test_embedding_matches_formula_and_pairs_sin_with_cos(t, dim):
    """For any ``t`` and ``dim``: the formula holds, every value lies in [−1, 1], and column ``i`` and column
    ``half + i`` are the sine and cosine of the same angle, so ``emb[:, i]² + emb[:, half + i]² = 1``."""
    emb = timestep_embedding(torch.tensor(t), dim)
    half = dim // 2
    assert emb.shape == (len(t), dim), f"{PART}: timestep_embedding(t, {dim}) has shape {tuple(emb.shape)}"
    assert bool((emb.abs() <= 1).all()), (
        f"{PART}: timestep_embedding(t={t}, dim={dim}) has values outside [−1, 1] (max |value| "
        f"{emb.abs().max().item():.4g})\n  hint: the features are sines and cosines only; do not scale them"
    )
    check_close(
        emb[:, :half] ** 2 + emb[:, half : 2 * half] ** 2,
        torch.ones(len(t), half),
        part=PART,
        what=f"timestep_embedding(t={t}, dim={dim}): sin²(t·f_i) + cos²(t·f_i) = 1 for columns i and half + i",
        hint="the layout is [sin(t·f_0..f_{half−1}), cos(t·f_0..f_{half−1})]; interleaving sin and cos breaks it",
        atol=1e-5,
    )
    check_close(
        emb,
        expected_embedding(t, dim),
        part=PART,
        what=f"timestep_embedding(t={t}, dim={dim}) = cat[sin(t·freqs), cos(t·freqs)], freqs_i = 10000^(−i/half)",
        hint="half = dim // 2; i runs over 0..half−1; odd dim gets one zero column at the end",
        rtol=1e-4,
        atol=2e-3,
    )
