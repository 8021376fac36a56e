"""Hidden checks of part 1 (schedules): the three beta schedules, the derived coefficients and the SNR.

Schedules are float64 tables, so these checks compare in float64 with a tight relative tolerance
(``rtol = 1e-9``, no absolute slack): any correct float64 arrangement (``linspace`` or an
``arange`` formula, ``cumprod`` or ``exp(cumsum(log α))``) agrees to ~1e-12, while a table
computed in float32 and cast afterwards is off by ~1e-7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import example, given
from hypothesis import strategies as st

from autograder.checks.framework import GRADING, CheckFailed, check, expect, expect_close, expect_tensor
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import Case, ScheduleSpec, cases, schedule_lengths, schedule_specs
from autograder.isolation.errors import StudentError
from autograder.isolation.submission import Submission
from autograder.reference import load_reference

REFERENCE = load_reference()
ref = REFERENCE.schedules

RTOL, ATOL = 1e-9, 0.0
"""Float64 tables: relative agreement to 1e-9 (float32 arithmetic cast to float64 is ~1e-7 off)."""

FIELDS = ("betas", "alphas", "alpha_bars", "alpha_bars_prev")


def expect_table(got: object, expected: torch.Tensor, *, what: str, hint: str, example: str) -> None:
    """:func:`expect_close` for a float64 table: agreement to :data:`RTOL`, with no absolute slack."""
    expect_close(got, expected, what=what, hint=hint, example=example, rtol=RTOL, atol=ATOL)


@dataclass(frozen=True)
class BetasCall:
    """A call ``name(T, **kwargs)`` of a beta schedule; its repr is the call as the student would write it."""

    name: str
    T: int
    kwargs: tuple[tuple[str, float], ...] = ()

    def __call__(self, fn):
        return fn(self.T, **dict(self.kwargs))

    def arg(self, key: str, default: float) -> float:
        return dict(self.kwargs).get(key, default)

    def __repr__(self) -> str:
        args = [str(self.T), *(f"{key}={value!r}" for key, value in self.kwargs)]
        return f"{self.name}({', '.join(args)})"


def betas_calls(name: str, **optional: st.SearchStrategy[float]) -> st.SearchStrategy[BetasCall]:
    """Calls of the schedule ``name`` with a drawn ``T`` and each keyword argument either default or drawn."""
    return st.builds(
        lambda T, kwargs: BetasCall(name, T, tuple(sorted(kwargs.items()))),
        schedule_lengths(),
        st.fixed_dictionaries({}, optional=optional),
    )


ENDPOINT = st.floats(1e-5, 0.2, allow_nan=False, allow_infinity=False)


@check("schedules", 0.5, "linear_betas(T, beta_start, beta_end) is linspace(beta_start, beta_end, T) in float64")
def linear_betas_formula(sub: Submission) -> None:
    linear_betas = sub.function("schedules", "linear_betas")

    @GRADING
    @pinned_seed("linear_betas_formula")
    @given(betas_calls("linear_betas", beta_start=ENDPOINT, beta_end=ENDPOINT))
    @example(BetasCall("linear_betas", 1000))
    @example(BetasCall("linear_betas", 1, (("beta_end", 0.05), ("beta_start", 0.001))))
    def prop(call: BetasCall) -> None:
        expect_table(
            call(linear_betas),
            call(ref.linear_betas),
            what="linear_betas must be T evenly spaced betas from beta_start to beta_end, both included",
            hint="T evenly spaced points with both endpoints (not T + 1, and T = 1 gives [beta_start]), built in "
            "float64 rather than in float32 and cast afterwards",
            example=repr(call),
        )

    prop()


def raw_cosine_betas(call: BetasCall) -> torch.Tensor:
    """``1 − f(t+1)/f(t)`` before clipping, in float64 (used only to tell clipped entries from the rest)."""
    T, s = call.T, call.arg("s", 0.008)
    u = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    return 1 - f[1:] / f[:-1]


COSINE_CALLS = betas_calls(
    "cosine_betas", s=st.floats(0.0, 0.05, allow_nan=False), max_beta=st.floats(0.3, 0.999, allow_nan=False)
)


def expect_cosine_entries(cosine_betas, call: BetasCall, *, clipped: bool, what: str, hint: str) -> None:
    """Judge the entries of ``call(cosine_betas)`` that the reference clips at max_beta (``clipped``), or those
    it does not; the others are the other check's business, so the student's values are accepted there."""
    got = expect_tensor(call(cosine_betas), like=call(ref.cosine_betas), what=what, hint=hint, example=repr(call))
    clipped_entries = raw_cosine_betas(call) >= call.arg("max_beta", 0.999)
    judged = clipped_entries if clipped else ~clipped_entries
    expect_table(got, torch.where(judged, call(ref.cosine_betas), got), what=what, hint=hint, example=repr(call))


@check("schedules", 1.5, "cosine_betas(T)[t] = 1 − f(t+1)/f(t) with f(u) = cos²((u/T + s)/(1 + s)·π/2), in float64")
def cosine_betas_formula(sub: Submission) -> None:
    cosine_betas = sub.function("schedules", "cosine_betas")

    @GRADING
    @given(COSINE_CALLS)
    @example(BetasCall("cosine_betas", 1000))
    @example(BetasCall("cosine_betas", 5, (("s", 0.02),)))
    def prop(call: BetasCall) -> None:
        expect_cosine_entries(
            cosine_betas,
            call,
            clipped=False,
            what="cosine_betas must follow Nichol & Dhariwal's eq. 17 (entries below max_beta)",
            hint="betas[t] = 1 − f(t+1)/f(t) for 0-based t = 0..T−1 (not f(t)/f(t−1)): compute f on u = 0..T "
            "(T + 1 points) in float64 and divide neighbours",
        )

    prop()


@check("schedules", 0.5, "cosine_betas clips every beta at max_beta (the last steps would otherwise reach 1)")
def cosine_betas_clipped(sub: Submission) -> None:
    cosine_betas = sub.function("schedules", "cosine_betas")

    @GRADING
    @pinned_seed("cosine_betas_clipped")
    @given(COSINE_CALLS)
    @example(BetasCall("cosine_betas", 1000))
    @example(BetasCall("cosine_betas", 1))
    def prop(call: BetasCall) -> None:
        expect_cosine_entries(
            cosine_betas,
            call,
            clipped=True,
            what="cosine_betas must be min(1 − f(t+1)/f(t), max_beta): entries above max_beta are clipped to it",
            hint="every beta is capped at max_beta (f(T) ≈ 0 makes the last beta ≈ 1 without the cap)",
        )

    prop()


@check("schedules", 0.5, "scaled_linear_betas(T) is linspace(√beta_start, √beta_end, T)², in float64")
def scaled_linear_betas_formula(sub: Submission) -> None:
    scaled_linear_betas = sub.function("schedules", "scaled_linear_betas")

    @GRADING
    @pinned_seed("scaled_linear_betas_formula")
    @given(betas_calls("scaled_linear_betas", beta_start=ENDPOINT, beta_end=ENDPOINT))
    @example(BetasCall("scaled_linear_betas", 1000))
    @example(BetasCall("scaled_linear_betas", 1))
    def prop(call: BetasCall) -> None:
        expect_table(
            call(scaled_linear_betas),
            call(ref.scaled_linear_betas),
            what="scaled_linear_betas must space the square roots of the betas evenly, then square them",
            hint="the square roots of the betas are evenly spaced (not the betas themselves): space the square "
            "roots of the endpoints, then square, in float64",
            example=repr(call),
        )

    prop()


def schedule_fields(schedule: object, what: str, example: str) -> dict[str, object]:
    """The four tables of the student's schedule object, failing clearly when one is missing."""
    missing = [name for name in FIELDS if not hasattr(schedule, name)]
    if missing:
        raise CheckFailed(
            what,
            example=example,
            detail=f"make_schedule returned a {type(schedule).__name__} without {', '.join(missing)}",
            hint="return NoiseSchedule(betas=..., alphas=..., alpha_bars=..., alpha_bars_prev=...)",
        )
    return {name: getattr(schedule, name) for name in FIELDS}


SCHEDULES = schedule_specs(1, 1000)
EXTREMES = (ScheduleSpec("linear", 1), ScheduleSpec("random", 3, (0.5, 1e-4, 0.2)))
"""Always tried, before the drawn schedules (of every length up to 1000)."""


def with_examples(prop, specs=EXTREMES):
    for spec in specs:
        prop = example(spec)(prop)
    return prop


def make_schedules(make_schedule, spec: ScheduleSpec, what: str) -> tuple[dict[str, object], object]:
    """The fields of the student's ``make_schedule`` of ``spec``'s betas, and the reference's schedule."""
    betas = spec.betas_tensor()
    reference = ref.make_schedule(betas)
    return schedule_fields(make_schedule(betas.clone()), what, f"make_schedule({spec!r})"), reference


@check("schedules", 1, "make_schedule: α_t = 1 − β_t and ᾱ_t = ∏_{s≤t} α_s (a cumulative product), float64")
def make_schedule_cumprod(sub: Submission) -> None:
    make_schedule = sub.function("schedules", "make_schedule")

    @GRADING
    @pinned_seed("make_schedule_cumprod")
    @given(SCHEDULES)
    @with_examples
    def prop(spec: ScheduleSpec) -> None:
        what = "make_schedule(betas) must derive alphas = 1 − betas and alpha_bars = cumprod(alphas)"
        got, expected = make_schedules(make_schedule, spec, what)
        hints = {
            "betas": "keep the given betas (as float64) in the schedule",
            "alphas": "alphas = 1 − betas, elementwise, in float64",
            "alpha_bars": "ᾱ_t is the running product of the alphas up to and including t: a cumulative "
            "product, not a cumulative sum, and of the alphas rather than the betas",
        }
        for name, hint in hints.items():
            expect_table(
                got[name],
                getattr(expected, name),
                what=f"{what} (field {name})",
                hint=hint,
                example=f"make_schedule({spec!r})",
            )

    prop()
    # "All float64" holds whatever the dtype of the betas given: float32 betas are converted, not kept.
    betas = torch.tensor([1e-4, 0.02, 0.3], dtype=torch.float32)
    what = "make_schedule(betas) must build every table in float64, also from float32 betas"
    got = schedule_fields(make_schedule(betas.clone()), what, "make_schedule(float32 betas [1e-4, 0.02, 0.3])")
    expected = ref.make_schedule(betas)
    for name in FIELDS:
        expect_table(
            got[name],
            getattr(expected, name),
            what=f"{what} (field {name})",
            hint="a schedule is a float64 table whatever the dtype of the betas it is given: convert them to "
            "float64 first, so every coefficient is computed in float64",
            example="make_schedule(torch.tensor([1e-4, 0.02, 0.3], dtype=torch.float32))",
        )


@check("schedules", 1, "make_schedule: alpha_bars_prev = [1, ᾱ_0, …, ᾱ_{T−2}] (starts with 1, shifted by one)")
def make_schedule_alpha_bars_prev(sub: Submission) -> None:
    """Judged against the submission's own alpha_bars, so a wrong ᾱ costs the previous check only."""
    make_schedule = sub.function("schedules", "make_schedule")

    @GRADING
    @pinned_seed("make_schedule_alpha_bars_prev")
    @given(SCHEDULES)
    @with_examples
    def prop(spec: ScheduleSpec) -> None:
        what = "make_schedule(betas).alpha_bars_prev[t] must be ᾱ one step earlier, with alpha_bars_prev[0] = 1"
        fields, reference = make_schedules(make_schedule, spec, what)
        example_ = f"make_schedule({spec!r})"
        got = expect_tensor(
            fields["alpha_bars_prev"],
            like=reference.alpha_bars_prev,
            what=what,
            hint="one float64 entry per timestep: alpha_bars_prev has length T, like alpha_bars",
            example=example_,
        )
        alpha_bars = fields["alpha_bars"]
        if not (isinstance(alpha_bars, torch.Tensor) and alpha_bars.shape == reference.alpha_bars.shape):
            alpha_bars = reference.alpha_bars
        expected = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars.to(torch.float64)[:-1]])
        expect_table(
            got[:1],
            expected[:1],
            what=what + " (index 0)",
            hint="alpha_bars_prev[0] = 1: before the first step nothing has been noised (ᾱ of the clean data)",
            example=example_,
        )
        expect_table(
            got,
            expected,
            what=what + " (compared with your alpha_bars shifted right by one)",
            hint="ᾱ one step earlier: alpha_bars shifted one step to the right behind the 1 of index 0 (the last ᾱ "
            "falls off, not the first)",
            example=example_,
        )

    prop()


@dataclass(frozen=True)
class BadBetas:
    """Valid betas with the entry at ``index`` replaced by ``value`` outside (0, 1)."""

    betas: tuple[float, ...]
    index: int
    value: float

    def tensor(self) -> torch.Tensor:
        betas = torch.tensor(self.betas, dtype=torch.float64)
        betas[self.index] = self.value
        return betas

    def __repr__(self) -> str:
        values = [f"{b:.3g}" for b in self.tensor().tolist()]
        return f"make_schedule(tensor([{', '.join(values)}], dtype=float64))"


@st.composite
def bad_betas(draw) -> BadBetas:
    betas = draw(st.lists(st.floats(1e-4, 0.6), min_size=1, max_size=8))
    index = draw(st.sampled_from([0, len(betas) - 1]) | st.integers(0, len(betas) - 1))
    value = draw(st.sampled_from([0.0, 1.0, -0.01, 1.01, -1.0, 2.0]))
    return BadBetas(tuple(betas), index, value)


@check("schedules", 1, "make_schedule raises ValueError when any beta is ≤ 0 or ≥ 1, or betas is not 1-D")
def make_schedule_rejects_invalid_betas(sub: Submission) -> None:
    make_schedule = sub.function("schedules", "make_schedule")

    @GRADING
    @pinned_seed("make_schedule_rejects_invalid_betas")
    @given(bad_betas())
    @example(BadBetas((0.1, 0.2, 0.3), 1, 0.0))
    @example(BadBetas((0.1, 0.2, 0.3), 2, 1.0))
    def prop(bad: BadBetas) -> None:
        what = "make_schedule must reject betas outside the open interval (0, 1)"
        make_schedule(torch.tensor(bad.betas, dtype=torch.float64))  # the valid betas must be accepted (no credit
        # for rejecting everything); a StudentError from this call fails the check with its own message
        try:
            make_schedule(bad.tensor())
        except StudentError as error:
            if error.error_type == "ValueError":
                return
            raise CheckFailed(
                what,
                example=repr(bad),
                expected="ValueError",
                got=f"{error.error_type}: {error.message}",
                hint="raise ValueError(...) yourself (not assert, which is skipped under python -O)",
            ) from None
        raise CheckFailed(
            what,
            example=repr(bad),
            expected="ValueError",
            got="no error: it returned a schedule",
            hint="check every beta, at both ends of the interval, and that the bounds are strict (0 and 1 themselves "
            "are "
            "outside), then raise ValueError",
        )

    prop()
    for shape in ((), (2, 3)):  # one beta per step: a scalar or a table is not a schedule
        betas = torch.full(shape, 0.1, dtype=torch.float64)
        try:
            make_schedule(betas)
        except StudentError as error:
            if error.error_type == "ValueError":
                continue
            got = f"{error.error_type}: {error.message}"
        else:
            got = "no error: it returned a schedule"
        raise CheckFailed(
            "make_schedule must raise ValueError when betas is not one-dimensional",
            example=f"make_schedule(betas of shape {shape})",
            expected="ValueError",
            got=got,
            hint="a schedule has one beta per step: check the number of dimensions of betas before using them",
        )


@check("schedules", 1, "snr(schedule, t) = ᾱ_t / (1 − ᾱ_t), shape (B,), float64, decreasing in t")
def snr_formula(sub: Submission) -> None:
    snr = sub.function("schedules", "snr")

    @GRADING
    @pinned_seed("snr_formula")
    @given(cases())
    @example(Case(ScheduleSpec("cosine", 1000), (3,), torch.float32, (999, 0, 500), 0))
    def prop(case: Case) -> None:
        schedule, t = case.schedule, case.timesteps()
        hint = (
            "SNR = ᾱ_t / (1 − ᾱ_t) with ᾱ_t = alpha_bars[t] (not alpha_bars_prev, not its square root), one value per t"
        )
        expect_close(  # to the size of 1 / (1 − ᾱ_t): an equal float64 form such as 1 / (1 − ᾱ_t) − 1 passes
            snr(schedule, t),
            ref.snr(schedule, t),
            what="snr(schedule, t) must be ᾱ_t / (1 − ᾱ_t), a float64 tensor of shape (B,)",
            hint=hint,
            example=f"snr({case.spec!r}, t={list(case.t)})",
            rtol=RTOL,
            atol=ATOL,
            scale=1 / (1 - schedule.alpha_bars[t]),
        )
        every = torch.arange(schedule.T)
        every_example = f"snr({case.spec!r}, t=0..{schedule.T - 1})"
        values = expect_tensor(
            snr(schedule, every),
            like=ref.snr(schedule, every),
            what="snr over t = 0..T−1",
            hint=hint,
            example=every_example,
        )
        expect(
            bool((values[1:] < values[:-1]).all()),
            "snr(schedule, t) must decrease strictly in t (more noise, less signal)",
            example=every_example,
            got=f"{values.tolist()[:6]}{' ...' if schedule.T > 6 else ''}",
            hint=hint,
        )

    prop()
