"""Hidden checks of part 5 (embedding): the sinusoidal timestep embedding.

The answer is float32, and ``sin(t·freq)`` at ``t ≈ 1000`` inherits the float32 rounding of its
argument (~6e-5 there), so the tolerance grows with ``|t·freq|``: a float64 computation cast at the
end and the reference's float32 one must both pass. When an answer is wrong, the feedback says
which classic variant it matches (interleaved, swapped blocks, ``half − 1``, ``max_period`` ignored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import example, given
from hypothesis import strategies as st

from autograder.checks.framework import GRADING, CheckFailed, check, expect, expect_close, expect_tensor, tolerances
from autograder.checks.seeds import pinned_seed
from autograder.isolation.submission import Submission
from autograder.reference import load_reference

REFERENCE = load_reference()
ref = REFERENCE.embedding

ARGUMENT_ULPS = 16 * 2**-24
"""Tolerated error per unit of |t·freq|: float32 rounding of the argument, in the reference and the answer."""


@dataclass(frozen=True)
class EmbeddingCase:
    """A call ``timestep_embedding(t, dim[, max_period])`` with ``t`` of dtype ``t_dtype``."""

    t: tuple[float, ...]
    t_dtype: torch.dtype
    dim: int
    max_period: float | None = None  # None: not passed (the default 10000)

    @property
    def period(self) -> float:
        return 10000.0 if self.max_period is None else self.max_period

    def timesteps(self) -> torch.Tensor:
        return torch.tensor(self.t, dtype=torch.float64).to(self.t_dtype)

    def call(self, fn, t: torch.Tensor | None = None, dim: int | None = None):
        kwargs = {} if self.max_period is None else {"max_period": self.max_period}
        return fn(self.timesteps() if t is None else t, self.dim if dim is None else dim, **kwargs)

    def __repr__(self) -> str:
        values = [int(v) for v in self.t] if self.t_dtype == torch.long else [float(v) for v in self.t]
        period = "" if self.max_period is None else f", max_period={self.max_period:g}"
        dtype = str(self.t_dtype).removeprefix("torch.")
        return f"timestep_embedding(torch.tensor({values}, dtype=torch.{dtype}), dim={self.dim}{period})"


@st.composite
def embedding_cases(draw, dims=None) -> EmbeddingCase:
    t_dtype = draw(st.sampled_from([torch.long, torch.float32, torch.float64]))
    if t_dtype == torch.long:
        one = st.one_of(st.sampled_from([0, 1000]), st.integers(0, 1000))
    else:
        one = st.one_of(st.sampled_from([0.0, 0.5, 999.5]), st.floats(0, 1000, allow_nan=False))
    t = draw(st.lists(one, min_size=1, max_size=5))
    dim = draw(dims if dims is not None else st.one_of(st.sampled_from([2, 3, 4, 5, 128, 129]), st.integers(2, 96)))
    max_period = draw(st.one_of(st.none(), st.sampled_from([10.0, 100.0, 1000.0, 50000.0])))
    return EmbeddingCase(tuple(float(v) for v in t), t_dtype, dim, max_period)


def arguments(case: EmbeddingCase, *, denominator: int | None = None, period: float | None = None) -> torch.Tensor:
    """``t·freqs`` in float64, ``(B, half)``; ``denominator`` and ``period`` make the classic variants."""
    half = case.dim // 2
    i = torch.arange(half, dtype=torch.float64)
    freqs = torch.exp(-math.log(case.period if period is None else period) * i / (denominator or half))
    return case.timesteps().to(torch.float64)[:, None] * freqs[None, :]


def layout(first: torch.Tensor, second: torch.Tensor, dim: int, interleave: bool = False) -> torch.Tensor:
    """``cat[first, second]`` (or interleaved), zero-padded to ``dim`` columns."""
    body = torch.stack([first, second], dim=2).flatten(1) if interleave else torch.cat([first, second], dim=1)
    return torch.nn.functional.pad(body, (0, dim - body.shape[1]))


def variants(case: EmbeddingCase) -> dict[str, torch.Tensor]:
    """The usual wrong embeddings, in float64, to name the mistake when the answer matches one."""
    args, half = arguments(case), case.dim // 2
    found = {
        "sin and cos interleaved (sin, cos, sin, cos, ...)": layout(args.sin(), args.cos(), case.dim, interleave=True),
        "the cos block first, then the sin block": layout(args.cos(), args.sin(), case.dim),
        "freqs_i = exp(−ln(max_period)·i/dim), dividing by dim instead of half": layout(
            *(f(arguments(case, denominator=case.dim)) for f in (torch.sin, torch.cos)), case.dim
        ),
    }
    if case.period != 10000.0:
        found["max_period ignored (10000 used)"] = layout(
            *(f(arguments(case, period=10000.0)) for f in (torch.sin, torch.cos)), case.dim
        )
    if case.dim % 2:
        found["the padding column first instead of last"] = torch.nn.functional.pad(
            torch.cat([args.sin(), args.cos()], dim=1), (1, 0)
        )
    if half > 1:
        found["freqs_i = exp(−ln(max_period)·i/(half − 1)), dividing by half − 1 instead of half"] = layout(
            *(f(arguments(case, denominator=half - 1)) for f in (torch.sin, torch.cos)), case.dim
        )
    return found


def diagnosis(got: torch.Tensor, case: EmbeddingCase, tolerance: torch.Tensor) -> str:
    """`` (your output matches <variant>)`` when the answer is one of the usual wrong embeddings."""
    for name, wrong in variants(case).items():
        if wrong.shape == got.shape and bool(((got.to(torch.float64) - wrong).abs() <= tolerance).all()):
            return f"; your output matches {name}"
    return ""


def argument_scale(case: EmbeddingCase) -> torch.Tensor:
    """``|t·freq|`` laid out like the embedding, scaled so that ``rtol·scale`` is :data:`ARGUMENT_ULPS`·|t·freq|."""
    args = arguments(case).abs()
    return layout(args, args, case.dim) * (ARGUMENT_ULPS / tolerances(torch.float32)[0])


FORMULA_HINT = (
    "half = dim // 2, freqs_i = exp(−ln(max_period)·i/half) for i = 0..half−1 (divide by half, use the "
    "max_period argument), then cat([sin(t·freqs), cos(t·freqs)], dim=1): the sin block first, then the cos "
    "block, not interleaved"
)


@check("embedding", 2, "timestep_embedding = cat[sin(t·freqs), cos(t·freqs)], freqs_i = max_period^(−i/half)")
def embedding_formula(sub: Submission) -> None:
    timestep_embedding = sub.function("embedding", "timestep_embedding")

    @GRADING
    @given(embedding_cases())
    @example(EmbeddingCase((0.0, 1.0, 1000.0), torch.long, 8))
    @example(EmbeddingCase((3.0, 999.0), torch.long, 6, 100.0))
    def prop(case: EmbeddingCase) -> None:
        got = case.call(timestep_embedding)
        expected = case.call(ref.timestep_embedding)
        what = "timestep_embedding(t, dim, max_period) must be the sinusoidal embedding of Vaswani et al."
        got = expect_tensor(got, like=expected, what=what, hint=FORMULA_HINT, example=repr(case))
        scale = argument_scale(case)
        rtol, atol = tolerances(torch.float32)
        bad = (got - expected).abs() > atol + rtol * torch.maximum(expected.abs(), scale.float())
        hint = FORMULA_HINT
        if bool(bad.any()):
            hint += diagnosis(got, case, atol + rtol * torch.maximum(expected.abs(), scale).to(torch.float64))
        expect_close(got, expected, what=what, hint=hint, example=repr(case), scale=scale)

    prop()


@check("embedding", 0.5, "the embedding has shape (B, dim), dtype float32 and values in [−1, 1], for long and float t")
def embedding_shape_dtype_bounds(sub: Submission) -> None:
    timestep_embedding = sub.function("embedding", "timestep_embedding")

    @GRADING
    @pinned_seed("embedding_shape_dtype_bounds")
    @given(embedding_cases(dims=st.integers(4, 96)))
    @example(EmbeddingCase((0.0, 1000.0), torch.float64, 7))
    def prop(case: EmbeddingCase) -> None:
        got = case.call(timestep_embedding)
        expect_tensor(
            got,
            like=torch.empty(len(case.t), case.dim, dtype=torch.float32),
            what="timestep_embedding(t, dim) must be a float32 tensor of shape (B, dim), whatever t's dtype",
            hint="one row per timestep and exactly dim columns (pad one zero column when dim is odd); compute with "
            "t.float() (or cast the result with .float()), so a long or float64 t gives float32",
            example=repr(case),
        )
        expect(
            bool(torch.isfinite(got).all()) and bool((got.abs() <= 1).all()),
            "every value of the embedding must lie in [−1, 1] (sines and cosines)",
            example=repr(case),
            got=f"values from {got.min().item():.4g} to {got.max().item():.4g}",
            hint="return sin and cos of t·freqs themselves, not scaled or added",
        )

    prop()


@check("embedding", 1, "for odd dim, the embedding is that of width dim − 1 with one zero column appended")
def embedding_odd_padding(sub: Submission) -> None:
    """Judged against the submission's own even-width embedding, so a wrong formula costs the formula check only."""
    timestep_embedding = sub.function("embedding", "timestep_embedding")

    @GRADING
    @pinned_seed("embedding_odd_padding")
    @given(embedding_cases(dims=st.integers(1, 48).map(lambda k: 2 * k + 1)))
    @example(EmbeddingCase((5.0, 0.0), torch.long, 5))
    def prop(case: EmbeddingCase) -> None:
        what = "timestep_embedding(t, dim) with odd dim must be timestep_embedding(t, dim − 1) and one zero column"
        even = case.call(timestep_embedding, dim=case.dim - 1)
        if not isinstance(even, torch.Tensor) or tuple(even.shape) != (len(case.t), case.dim - 1):
            return  # the even width is wrong already: the shape check says so
        got = expect_tensor(
            case.call(timestep_embedding),
            like=torch.empty(len(case.t), case.dim, dtype=even.dtype),
            what=what,
            hint="half = dim // 2 sines and half cosines make dim − 1 columns: append one column of zeros",
            example=repr(case),
        )
        expect_close(
            got[:, -1],
            torch.zeros(len(case.t), dtype=even.dtype),
            what=what + " (the last column)",
            hint="the extra column of an odd dim is zeros appended as the last column, not the first",
            example=repr(case),
            atol=0.0,
        )
        expect_close(
            got[:, :-1],
            even,
            what=what + " (the first dim − 1 columns)",
            hint="half = dim // 2 is the same for dim and dim − 1, so are the frequencies; the padding goes after "
            "the cos block",
            example=repr(case),
        )

    prop()


@check("embedding", 0.5, "sin block then cos block: at t = 0 the first half is 0 (sin 0) and the second half is 1")
def embedding_blocks_at_zero(sub: Submission) -> None:
    timestep_embedding = sub.function("embedding", "timestep_embedding")

    @GRADING
    @pinned_seed("embedding_blocks_at_zero")
    @given(st.integers(2, 32).map(lambda k: 2 * k))
    @example(4)
    def prop(dim: int) -> None:
        case = EmbeddingCase((0.0, 0.0), torch.long, dim)
        half = dim // 2
        expected = torch.zeros(2, dim)
        expected[:, half : 2 * half] = 1
        got = case.call(timestep_embedding)
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(
                "timestep_embedding must return a tensor",
                example=repr(case),
                got=type(got),
                hint="build the embedding with torch operations on the tensor t (torch.sin, torch.cat), not Python "
                "lists or math functions",
            )
        expect_close(
            got,
            expected,
            what="timestep_embedding(0, dim) must be [0, …, 0 (half sines), 1, …, 1 (half cosines)] (+ a 0 if odd)",
            hint="cat([sin(t·freqs), cos(t·freqs)], dim=1): the sin block first, then the cos block; not "
            "interleaved, not the other way round",
            example=repr(case),
        )

    prop()
