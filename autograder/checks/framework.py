"""The hidden checks' framework: registration with points, verdicts, comparisons, Hypothesis settings.

A check is a function ``check(sub: Submission) -> None`` registered with :func:`check`; it passes
by returning and fails by raising :class:`CheckFailed` with the fields of a message for the student
(what does not hold, the smallest counterexample, expected vs got and a hint at the usual mistake),
which :class:`CheckFailed` alone lays out; :func:`expect`, :func:`expect_tensor` and
:func:`expect_close` raise it.
A :class:`~autograder.isolation.submission.StudentError` from the student's code fails it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypedDict, Unpack

import torch
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from autograder.isolation.errors import StudentError
from autograder.isolation.submission import Submission
from autograder.parts import PART_BY_NAME

GRADING = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    print_blob=False,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=list(HealthCheck),
)
"""Same submission, same verdict: derandomized, no example database, no deadline. A derandomized property's
examples follow from a hash of its source text; :mod:`autograder.checks.seeds` keeps them when the text changes."""


@dataclass(frozen=True)
class Check:
    """One hidden check: its part, name, the identity it tests (shown to students) and its points."""

    part: str
    name: str
    title: str
    points: float
    run: Callable[[Submission], None]


REGISTRY: list[Check] = []


def check(part: str, points: float, title: str) -> Callable[[Callable[[Submission], None]], Callable]:
    """Register the decorated function as a check of ``part`` worth ``points``."""
    if part not in PART_BY_NAME:
        raise ValueError(f"unknown part {part!r}; parts are {sorted(PART_BY_NAME)}")

    def register(fn: Callable[[Submission], None]) -> Callable[[Submission], None]:
        REGISTRY.append(Check(part, fn.__name__, title, points, fn))
        return fn

    return register


class CheckFailed(AssertionError):
    """A check's verdict against the submission; its message is shown to the student.

    The one place the feedback's layout is defined. The message is ``what`` (the property that does not
    hold), then one indented line per field given::

        <what>
          example: <the smallest input that shows it>
          expected <expected>, got <got>
          <each line of detail>
          hint: <the concept and the usual mistake>

    Args:
        what: the property the submission breaks, in a sentence.
        example: the input that shows it (a string, shown as it is).
        expected: what the answer should be or have (shown with ``str``); ``None``: not shown.
        got: what the answer was or had (shown with ``str``); ``None``: not shown.
        hint: the concept at stake and the usual mistake (never the solution's line).
        detail: further facts, a line or a sequence of lines (what was measured, where it differs).
    """

    def __init__(
        self,
        what: str,
        *,
        example: str | None = None,
        expected: object = None,
        got: object = None,
        hint: str | None = None,
        detail: str | Sequence[str] | None = None,
    ) -> None:
        self.what, self.example, self.expected, self.got, self.hint = what, example, expected, got, hint
        self.detail: tuple[str, ...] = (detail,) if isinstance(detail, str) else tuple(detail or ())
        super().__init__(self.render())

    def render(self) -> str:
        """The message: ``what`` and the indented lines of the fields given (see the class)."""
        lines = [self.what]
        if self.example:
            lines.append(f"example: {self.example}")
        if self.expected is not None and self.got is not None:
            lines.append(f"expected {self.expected}, got {self.got}")
        elif self.expected is not None:
            lines.append(f"expected {self.expected}")
        elif self.got is not None:
            lines.append(f"got {self.got}")
        lines += self.detail
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n  ".join(lines)


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol)`` for answers in ``dtype``: loose enough for any correct arrangement of the formula."""
    return (1e-7, 1e-9) if dtype == torch.float64 else (2e-4, 2e-5)


def expect_tensor(
    got: object, *, like: torch.Tensor, what: str, hint: str | None = None, example: str | None = None
) -> torch.Tensor:
    """Fail unless ``got`` is a tensor with the shape, dtype and device of ``like``; return it."""
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(what, example=example, expected="a torch.Tensor", got=type(got).__name__, hint=hint)
    problems = []
    if tuple(got.shape) != tuple(like.shape):
        problems.append(f"shape: expected {tuple(like.shape)}, got {tuple(got.shape)}")
    if got.dtype != like.dtype:
        problems.append(f"dtype: expected {like.dtype}, got {got.dtype}")
    if got.device != like.device:
        problems.append(f"device: expected {like.device}, got {got.device}")
    if problems:
        raise CheckFailed(what, example=example, detail=problems, hint=hint)
    return got


def expect_close(
    got: object,
    expected: torch.Tensor,
    *,
    what: str,
    hint: str,
    example: str | None = None,
    scale: torch.Tensor | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Fail unless ``|got − expected| ≤ atol + rtol · max(|expected|, scale)`` everywhere.

    ``scale`` bounds the size of the terms the answer is computed from (e.g. ``|x_t| / √ᾱ_t``), so
    a correct formula arranged differently is not failed for its float rounding.
    """
    got = expect_tensor(got, like=expected, what=what, hint=hint, example=example)
    default_rtol, default_atol = tolerances(expected.dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    size = expected.abs() if scale is None else torch.maximum(expected.abs(), scale.to(expected).expand_as(expected))
    bad = ~((got - expected).abs() <= atol + rtol * size)
    if not bool(bad.any()):
        return
    index = tuple(int(i) for i in torch.nonzero(bad)[0])
    got_value, expected_value = got[index].item(), expected[index].item()
    allowed = atol + rtol * size[index].item()
    counts = f"{int(bad.sum())} of {bad.numel()} values differ"
    if f"{got_value:.{SHOWN_DIGITS}g}" != f"{expected_value:.{SHOWN_DIGITS}g}":
        raise CheckFailed(
            what,
            example=example,
            detail=f"at index {index}: expected {expected_value:.{SHOWN_DIGITS}g}, got {got_value:.{SHOWN_DIGITS}g}"
            f" (difference {abs(got_value - expected_value):.3g}, tolerance {allowed:.3g}; {counts})",
            hint=hint,
        )
    relative = abs(got_value - expected_value) / max(abs(expected_value), torch.finfo(torch.float64).tiny)
    raise CheckFailed(
        what + ": a question of precision",
        example=example,
        detail=f"at index {index}: expected {expected_value:.17g}, got {got_value:.17g} (relative difference "
        f"{relative:.3g}, tolerance {allowed:.3g} absolute; {counts})",
        hint=PRECISION_HINT,
    )


SHOWN_DIGITS = 6
"""Significant digits of the values a failed comparison shows; values that agree to these are shown in full."""
PRECISION_HINT = (
    "precision, not the formula: the values agree to 6 digits but not to the precision of their dtype; compute in "
    "the dtype of the data throughout (a float64 input needs float64 coefficients, not a table or a constant made "
    "in float32, the default dtype of torch.tensor and torch.linspace)"
)


class Fields(TypedDict, total=False):
    """The fields of a :class:`CheckFailed` besides ``what``."""

    example: str | None
    expected: object
    got: object
    hint: str | None
    detail: str | Sequence[str] | None


def expect(condition: bool, what: str, **fields: Unpack[Fields]) -> None:
    """Fail with ``CheckFailed(what, **fields)`` unless ``condition``."""
    if not condition:
        raise CheckFailed(what, **fields)


def expect_value_error(call: Callable[[], object], what: str, example: str) -> None:
    """Fail unless ``call()`` raises ``ValueError`` in the student's code."""
    try:
        call()
    except StudentError as error:
        if error.error_type == "ValueError":
            return
        raise CheckFailed(
            what,
            example=example,
            expected="ValueError",
            got=f"{error.error_type}: {error.message}",
            hint="the promised error is ValueError, raised by your own check of the arguments",
        ) from None
    raise CheckFailed(
        what,
        example=example,
        expected="ValueError",
        got="no error: it returned without raising",
        hint="validate the arguments first and raise ValueError for any value outside the documented ones",
    )


def as_decoded(name: str) -> str:
    """An equal copy of the mode name ``name`` that is not the interned literal, as the sandbox's channel decodes it:
    a student's ``mode is "ddim"`` (identity, not equality) fails in-process as it fails in the sandbox."""
    return name.encode().decode()


def expect_samples(
    samples: object, *, shape: tuple[int, ...], sampler: str, example: str, shape_hint: str, finite_hint: str
) -> torch.Tensor:
    """Fail unless the ``sampler``'s ``samples`` are a floating tensor of ``shape`` with finite values; return them."""
    expect(
        isinstance(samples, torch.Tensor) and samples.is_floating_point() and tuple(samples.shape) == shape,
        f"{sampler} must return floating samples of shape {shape}",
        example=example,
        hint=shape_hint,
    )
    expect(bool(torch.isfinite(samples).all()), f"{sampler} returned NaN or inf", example=example, hint=finite_hint)
    return samples


def expect_global_rng_untouched(run: Callable[[], object], *, what: str, example: str, hint: str) -> object:
    """``run()`` from a global random state no ``torch.manual_seed`` gives (a seeded state advanced by some draws,
    so that reseeding shows even where an earlier call left the state at a seed's start); fail unless the state
    is the same afterwards: nothing drawn from it, nothing reseeded. The caller's state is restored; returns the
    result of ``run()``. The sandbox carries the global state to the worker and back, so this holds there too."""
    advanced = torch.Generator().manual_seed(90_210)
    torch.randn(17, generator=advanced)
    state = advanced.get_state()
    saved = torch.get_rng_state()
    try:
        torch.set_rng_state(state)
        result = run()
        expect(torch.equal(torch.get_rng_state(), state), what, example=example, hint=hint)
    finally:
        torch.set_rng_state(saved)
    return result


FLOAT64_RTOL = 1e-10
"""Relative tolerance of float64 answers, of the size of the terms they are built from: any float64 arrangement
of a formula is within ~1e-12 of it, while coefficients taken from a schedule cast to float32 are ~1e-7 off."""


def rtol_for(case) -> float | None:
    """The relative tolerance of the comparisons of ``case`` (anything with a ``dtype``): :data:`FLOAT64_RTOL`
    for float64 data, ``None`` (the float32 default of :func:`tolerances`) otherwise."""
    return FLOAT64_RTOL if case.dtype == torch.float64 else None


def expect_reference_on_cases(
    student: Callable,
    reference: Callable,
    strategy: st.SearchStrategy,
    *,
    inputs: Callable,
    scale: Callable,
    what: str,
    hint: str,
    examples: Sequence = (),
) -> None:
    """Run the property of a check of a formula ``f(schedule, a, t, b)``: for every drawn case, the student's
    ``f`` must give the reference's answer, within :func:`rtol_for` of the size of its terms.

    Args:
        strategy: draws cases (:class:`~autograder.checks.strategies.Case`).
        inputs: ``inputs(case, schedule, t) -> (a, b)``, the arguments of the case.
        scale: ``scale(case, schedule, t, a, b)``, the size of the terms of the answer (see :func:`expect_close`).
        examples: cases tried first, in this order.
    """

    def prop(case) -> None:
        schedule, t = case.schedule, case.timesteps()
        a, b = inputs(case, schedule, t)
        expect_close(
            student(schedule, a, t, b),
            reference(schedule, a, t, b),
            what=what,
            hint=hint,
            example=repr(case),
            rtol=rtol_for(case),
            scale=scale(case, schedule, t, a, b),
        )

    for case in reversed(examples):  # as decorators: the first example is tried first
        prop = example(case)(prop)
    GRADING(given(strategy)(prop))()


def calls_problem(
    calls: Sequence,
    labels: torch.Tensor,
    *,
    count: int,
    expected_count: str,
    timesteps_ok: Callable[[list[torch.Tensor]], bool],
    expected_timesteps: object,
) -> str:
    """What is wrong with the model calls a sampling loop made, ``""`` if nothing: their number (``count``,
    described by ``expected_count``), each ``t`` a long tensor of shape ``(B,)``, the timesteps
    (``timesteps_ok(steps)``, else shown against ``expected_timesteps``), and the labels ``y`` passed on.

    ``calls`` are a recording denoiser's (each with ``.t`` and ``.kwargs``); ``labels`` has shape ``(B,)``.
    """
    steps = [call.t for call in calls]
    if len(steps) != count:
        return f"the model was called {len(steps)} times, expected {expected_count}"
    if any(s.dtype != torch.long or tuple(s.shape) != (len(labels),) for s in steps):
        return "each call must pass t as a long tensor of shape (B,)"
    if not timesteps_ok(steps):
        return f"the model got t = {[s.unique().tolist() for s in steps]}, expected {expected_timesteps}"
    if not all(isinstance(c.kwargs.get("y"), torch.Tensor) and torch.equal(c.kwargs["y"], labels) for c in calls):
        return f"called with y={labels.tolist()}, the model got keyword arguments {calls[0].kwargs}"
    return ""


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with one intra-op thread (then restore the setting).

    Sampling with the oracle is thousands of small tensor operations; on a loaded machine (a pool
    grading several submissions, or two cores shared) torch's thread pool makes them many times
    slower than one thread does.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
