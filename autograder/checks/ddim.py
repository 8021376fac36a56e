"""Hidden checks of part 7 (ddim): the subsequence, σ, the generalised step (Song et al. 2020, eq. 12)
and its identities, inversion, the loop's bookkeeping, and sampling with the exact mixture denoiser.

Only the student's ``diffusion.ddim`` is graded here; schedules, the posterior, DDPM's step and
every denoiser come from the reference (part isolation).
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autograder.checks.denoisers import KnowsX0, MixtureOracle, SmoothDenoiser, data, hidden_mixture, mixture_truth
from autograder.checks.framework import (
    GRADING,
    CheckFailed,
    as_decoded,
    calls_problem,
    check,
    expect,
    expect_close,
    expect_samples,
    expect_tensor,
    expect_value_error,
    single_threaded,
)
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import (
    Case,
    ScheduleSpec,
    StepCase,
    SubsequenceSpec,
    shapes,
    step_cases,
    subsequence_specs,
)
from autograder.checks.trajectory import Sampling, ddim_rule, expect_loop_plumbing, verify
from autograder.isolation.submission import Submission
from autograder.reference import load_reference
from autograder.scoring.energy import energy_distance

REFERENCE = load_reference()
ref = REFERENCE.ddim
extract = REFERENCE.schedules.extract

SPACING_RULES = {
    "uniform": "k·(T // num_steps) for k = 0..num_steps−1",
    "linspace": "round(linspace(0, T − 1, num_steps))",
    "trailing": "round(T − k·T/num_steps) − 1 for k = 0..num_steps−1, sorted ascending",
}


def allowed_timesteps(T: int, num_steps: int, spacing: str) -> list[tuple[int, ...]]:
    """For each position of the ascending subsequence, the values the contract allows.

    The rules are exact in rational arithmetic; where the exact value is a half-integer either
    neighbour is correct (the reference rounds numpy's float as diffusers does).
    """
    if spacing == "uniform":
        return [(k * (T // num_steps),) for k in range(num_steps)]
    if spacing == "linspace":
        exact = [Fraction(k * (T - 1), num_steps - 1) if num_steps > 1 else Fraction(0) for k in range(num_steps)]
    elif spacing == "trailing":
        exact = [T - Fraction(k * T, num_steps) - 1 for k in range(num_steps)][::-1]
    else:
        raise ValueError(f"unknown spacing {spacing!r}")
    return [(math.floor(v), math.ceil(v)) if v.denominator == 2 else (math.floor(v + Fraction(1, 2)),) for v in exact]


def _step_size(schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """An upper bound on the terms eq. 12 adds up, ``≥ |x̂0| + |eps| + |noise|``, for float tolerances."""
    x, e = x_t.double().abs(), eps.double().abs()
    x0_size = (x + extract((1 - schedule.alpha_bars).sqrt(), t, x) * e) / extract(schedule.alpha_bars.sqrt(), t, x)
    return (x0_size + e + noise.double().abs()).to(x_t.dtype)


def walked_timesteps(calls: list, T: int, num_steps: int, spacing: str) -> list[int]:
    """The timesteps a loop's model calls walked, when each is one the contract allows at its place (descending);
    else the reference's subsequence, against which :func:`~autograder.checks.trajectory.verify` shows the calls."""
    allowed = allowed_timesteps(T, num_steps, spacing)[::-1]
    walked = [int(call.t[0]) if call.t.numel() else -1 for call in calls]
    if (
        len(walked) == len(allowed)
        and all(step in ok for step, ok in zip(walked, allowed, strict=True))
        and walked == sorted(set(walked), reverse=True)
    ):
        return walked
    return ref.ddim_timesteps(T, num_steps, spacing).flip(0).tolist()


def loop_sampling(
    schedule,
    num_steps: int,
    eta: float,
    start: torch.Tensor,
    example: str,
    spacing: str = "uniform",
    clip_denoised: bool = False,
    steps: list[int] | None = None,
) -> Sampling:
    """What ``ddim_sample_loop(model, schedule, start.shape, num_steps, eta, spacing, noise=start)`` must do with
    the model, for :func:`~autograder.checks.trajectory.verify`: walk ``steps`` (default: the reference's
    subsequence, descending) by eq. 12 with σ of eq. 16."""
    if steps is None:
        steps = ref.ddim_timesteps(schedule.T, num_steps, spacing).flip(0).tolist()
    noise = "" if eta == 0 else " + σ·z"
    return Sampling(
        "ddim_sample_loop",
        example,
        steps,
        start.shape[0],
        ddim_rule(schedule, eta=eta, clip_denoised=clip_denoised),
        f"√ᾱ_prev·x̂0 + √(1 − ᾱ_prev − σ²)·eps{noise} (eq. 12 with η = {eta}"
        + (", x̂0 clamped)" if clip_denoised else ")"),
        "samples must come from the model: each step evaluates it on the current state x_t and moves to eq. 12 "
        "for its answer, with ᾱ_prev at the next timestep of the subsequence (1 after the last) and, for η > 0, "
        "σ of eq. 16 times fresh standard normal noise",
        start=start,
    )


@check("ddim", 1, "ddim_timesteps: num_steps distinct ascending indices in [0, T) as diffusers' spacings; ValueError")
def ddim_timesteps_spacings(sub: Submission) -> None:
    ddim_timesteps = sub.function("ddim", "ddim_timesteps")

    @GRADING
    @pinned_seed("ddim_timesteps_spacings")
    @given(subsequence_specs(max_T=1000))
    # Cases where rounding and truncating differ without a tie, and where T // num_steps ≠ T / num_steps:
    # the mistakes of the spacings are caught whatever the drawn examples.
    @example(SubsequenceSpec(8, 4, "linspace"))
    @example(SubsequenceSpec(8, 3, "trailing"))
    @example(SubsequenceSpec(10, 4, "uniform"))
    @example(SubsequenceSpec(1000, 7, "trailing"))
    def prop(spec: SubsequenceSpec) -> None:
        T, n, spacing = spec.T, spec.num_steps, spec.spacing
        example = f"ddim_timesteps(T={T}, num_steps={n}, spacing={spacing!r})"
        got = ddim_timesteps(T, n, as_decoded(spacing))
        expect(
            isinstance(got, torch.Tensor) and got.dtype == torch.long and tuple(got.shape) == (n,),
            "ddim_timesteps must return a long tensor of shape (num_steps,)",
            example=example,
            got=f"{got.dtype} of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) else type(got).__name__,
            hint="one timestep per sampling step: exactly num_steps entries (a stride T // num_steps over 0..T−1 "
            "gives more when num_steps does not divide T), as a long tensor",
        )
        values = got.tolist()
        expect(
            values == sorted(set(values)) and all(0 <= v < T for v in values),
            f"ddim_timesteps must be distinct, ascending and within [0, T) = [0, {T})",
            example=example,
            got=f"{values[:12]}{' ...' if n > 12 else ''}",
            hint="timesteps are 0-based indices; sort ascending (samplers walk them backwards)",
        )
        allowed = allowed_timesteps(T, n, spacing)
        wrong = [i for i, (value, ok) in enumerate(zip(values, allowed, strict=True)) if value not in ok]
        if wrong:
            index = wrong[0]
            raise CheckFailed(
                f"ddim_timesteps with spacing={spacing!r} must be {SPACING_RULES[spacing]} (diffusers' "
                "timestep_spacing)",
                example=example,
                detail=f"at position {index} (ascending): expected {' or '.join(map(str, allowed[index]))}, "
                f"got {values[index]}",
                hint="'uniform' is diffusers' 'leading'; 'linspace' and 'trailing' round to the nearest integer",
            )
        for bad in (0, T + 1):
            expect_value_error(
                lambda bad=bad: ddim_timesteps(T, bad, spacing),
                "ddim_timesteps must raise ValueError when num_steps is not in 1..T",
                f"ddim_timesteps(T={T}, num_steps={bad}, spacing={spacing!r})",
            )

    prop()
    # Only the three names of the contract are spacings; unknown ones sort before and after them.
    for spacing in ("leading", "Linspace", "", "uniforms"):
        expect_value_error(
            lambda spacing=spacing: ddim_timesteps(10, 5, spacing),
            "ddim_timesteps must raise ValueError for a spacing other than 'uniform', 'linspace' or 'trailing'",
            f"ddim_timesteps(T=10, num_steps=5, spacing={spacing!r})",
        )


@check("ddim", 1.5, "ddim_sigma = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev) (eq. 16): 0 at η = 0, √β̃_t at η = 1")
def ddim_sigma_formula(sub: Submission) -> None:
    ddim_sigma = sub.function("ddim", "ddim_sigma")

    @GRADING
    @given(step_cases())
    def prop(step: StepCase) -> None:
        case = step.case
        schedule, t, t_prev = case.schedule, case.timesteps(), step.prev_timesteps()
        consecutive = t - 1
        for t_p, eta, expected, what, hint in (
            (
                t_prev,
                step.eta,
                ref.ddim_sigma(schedule, t, t_prev, step.eta),
                "ddim_sigma must be η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)",
                "ᾱ_prev is ᾱ at t_prev (the next timestep of the subsequence), not alpha_bars_prev[t]; "
                "ᾱ_prev = 1 when t_prev = −1; keep both square roots",
            ),
            (
                consecutive,
                1.0,
                (schedule.betas[t] * (1 - schedule.alpha_bars_prev[t]) / (1 - schedule.alpha_bars[t])).sqrt(),
                "ddim_sigma(η = 1) on consecutive steps (t_prev = t − 1) must equal √β̃_t, DDPM's posterior std",
                "with t_prev = t − 1 the formula reduces to √(β_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)); ᾱ_{−1} = 1",
            ),
            (t_prev, 0.0, torch.zeros(len(case.t), dtype=torch.float64), "ddim_sigma must be 0 at η = 0", "σ ∝ η"),
        ):
            expect_close(
                ddim_sigma(schedule, t, t_p, eta),
                expected,
                what=what,
                hint=hint + " (σ is float64 of shape (B,))",
                example=f"{case.spec!r}, t={list(case.t)}, t_prev={t_p.tolist()}, eta={eta}",
            )

    prop()


@check("ddim", 3, "ddim_step: x_prev = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev − σ²)·eps + σ·noise (Song et al. eq. 12)")
def ddim_step_formula(sub: Submission) -> None:
    ddim_step = sub.function("ddim", "ddim_step")

    @GRADING
    @pinned_seed("ddim_step_formula")
    @given(step_cases())
    # η = 1 from t = 7 to t_prev = 0 while ᾱ falls by 10^-21: 1 − ᾱ_prev − σ² is 5·10^-24 and rounds to
    # −1.4·10^-17, whose square root is NaN.
    @example(
        StepCase(Case(ScheduleSpec("random", 8, (0.07,) + (0.999,) * 7), (2, 3), torch.float64, (7, 7), 1), (0, 0), 1.0)
    )
    def prop(step: StepCase) -> None:
        case = step.case
        schedule, x_t, t, t_prev = case.schedule, case.randn(), case.timesteps(), step.prev_timesteps()
        noise = case.randn(stream=1) if step.eta != 0 else None
        got = ddim_step(SmoothDenoiser(schedule.T), schedule, x_t, t, t_prev, eta=step.eta, noise=noise)
        expected = ref.ddim_step(SmoothDenoiser(schedule.T), schedule, x_t, t, t_prev, eta=step.eta, noise=noise)
        eps = SmoothDenoiser(schedule.T)(x_t, t)
        got = expect_tensor(got, like=expected, what="ddim_step must return x_prev shaped like x_t", example=repr(step))
        expect(
            bool(torch.isfinite(got).all()),
            "ddim_step returned NaN or inf",
            example=repr(step),
            hint="1 − ᾱ_prev − σ² can round to just below 0; compute it in float64 from the schedule "
            "and clamp it at 0 before the square root",
        )
        expect_close(
            got,
            expected,
            what="ddim_step must be √ᾱ_prev·x̂0 + √(1 − ᾱ_prev − σ²)·eps + σ·noise with x̂0 from the model's eps",
            hint="ᾱ_prev is ᾱ at t_prev (ᾱ = 1 at t_prev = −1), not ᾱ_t or alpha_bars_prev[t]; "
            "the direction term uses √(1 − ᾱ_prev − σ²), not √(1 − ᾱ_prev)",
            example=repr(step),
            scale=_step_size(schedule, x_t, t, eps, torch.zeros_like(x_t) if noise is None else noise),
        )

    prop()


@check("ddim", 1, "ddim_step clip_denoised recomputes eps from the clamped x̂0; ValueError for η ≠ 0 without noise")
def ddim_step_clip_and_noise(sub: Submission) -> None:
    ddim_step = sub.function("ddim", "ddim_step")

    @settings(parent=GRADING, max_examples=15)
    @pinned_seed("ddim_step_clip_and_noise")
    @given(step_cases())
    def prop(step: StepCase) -> None:
        case = step.case
        schedule, x_t, t, t_prev = case.schedule, 2 * case.randn(), case.timesteps(), step.prev_timesteps()
        noise = case.randn(stream=1)
        got = ddim_step(
            SmoothDenoiser(schedule.T), schedule, x_t, t, t_prev, eta=step.eta, noise=noise, clip_denoised=True
        )
        expected = ref.ddim_step(
            SmoothDenoiser(schedule.T), schedule, x_t, t, t_prev, eta=step.eta, noise=noise, clip_denoised=True
        )
        expect_close(
            got,
            expected,
            what="ddim_step(clip_denoised=True): clamp x̂0 to [−1, 1], recompute eps from it, then eq. 12",
            hint="after clamping x̂0 recompute eps = (x_t − √ᾱ_t·x̂0)/√(1 − ᾱ_t) (predict_eps_from_x0), so the "
            "step stays consistent with x_t",
            example=f"{step!r} (x_t = 2·randn), clip_denoised=True",
            scale=_step_size(schedule, x_t, t, SmoothDenoiser(schedule.T)(x_t, t), noise),
        )
        expect_value_error(
            lambda: ddim_step(SmoothDenoiser(schedule.T), schedule, x_t, t, t_prev, eta=0.5, noise=None),
            "ddim_step(..., eta=0.5, noise=None) must raise ValueError (η ≠ 0 needs noise=)",
            repr(case),
        )

    prop()
    schedule = ScheduleSpec("linear", 10).build()
    x_t = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t, t_prev = torch.tensor([5, 5]), torch.tensor([2, 2])
    expect_value_error(  # the rule is η ≠ 0, not η > 0
        lambda: ddim_step(SmoothDenoiser(schedule.T), schedule, x_t, t, t_prev, eta=-0.5, noise=None),
        "ddim_step(..., eta=-0.5, noise=None) must raise ValueError (η ≠ 0 needs noise=)",
        "schedule=linear(T=10), x_t of shape (2, 3), t=5, t_prev=2, eta=-0.5, noise=None",
    )


@check("ddim", 1.5, "ddim_step with η = 1 from t to t − 1 is DDPM's posterior step (fixed_small, same noise)")
def ddim_eta_one_is_ddpm(sub: Submission) -> None:
    ddim_step = sub.function("ddim", "ddim_step")

    @GRADING
    @given(step_cases(consecutive=True, etas=(1.0,)))
    def prop(step: StepCase) -> None:
        case = step.case
        schedule, x_t, t, t_prev = case.schedule, case.randn(), case.timesteps(), step.prev_timesteps()
        noise = case.randn(stream=1)
        got = ddim_step(SmoothDenoiser(schedule.T), schedule, x_t, t, t_prev, eta=1.0, noise=noise)
        expected = REFERENCE.ddpm.p_sample(
            SmoothDenoiser(schedule.T), schedule, x_t, t, noise, clip_denoised=False, variance="fixed_small"
        )
        expect_close(
            got,
            expected,
            what="ddim_step(eta=1, t_prev=t − 1) must equal DDPM's step μ̃_t(x̂0, x_t) + √β̃_t·noise",
            hint="on consecutive steps σ = √β̃_t; use ᾱ at t_prev = t − 1 (1 at t_prev = −1) and "
            "√(1 − ᾱ_prev − σ²) for the direction",
            example=repr(step),
            scale=_step_size(schedule, x_t, t, SmoothDenoiser(schedule.T)(x_t, t), noise),
        )

    prop()


@check("ddim", 1.5, "ddim_sample_loop with a denoiser that knows x0 returns x0 (clamped if clip_denoised), any τ and η")
def ddim_loop_recovers_known_x0(sub: Submission) -> None:
    ddim_sample_loop = sub.function("ddim", "ddim_sample_loop")

    @settings(parent=GRADING, max_examples=20)
    @pinned_seed("ddim_loop_recovers_known_x0")
    @given(
        subsequence_specs(max_T=200, etas=(0.0, 0.5, 1.0)),
        st.sampled_from(["linear", "cosine"]),
        shapes(),
        st.booleans(),
    )
    def prop(spec: SubsequenceSpec, kind: str, shape: tuple[int, ...], clip: bool) -> None:
        schedule = ScheduleSpec(kind, spec.T).build()
        generator = torch.Generator().manual_seed(spec.seed)
        x0 = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * 1.5
        start = torch.randn(shape, generator=generator, dtype=torch.float64)
        knows = KnowsX0(schedule, x0, record_outputs=True, record_inputs=True)
        got = ddim_sample_loop(
            knows,
            schedule,
            shape,
            num_steps=spec.num_steps,
            eta=spec.eta,
            spacing=spec.spacing,
            generator=torch.Generator().manual_seed(spec.seed + 1),
            noise=start,
            clip_denoised=clip,
        )
        expected = x0.clamp(-1, 1) if clip else x0
        expect_close(
            got,
            expected,
            what="ddim_sample_loop with the denoiser eps = (x_t − √ᾱ_t·x0)/√(1 − ᾱ_t) must return x0"
            + (", clamped to [−1, 1] with clip_denoised=True" if clip else " (clip_denoised=False)"),
            hint="every step predicts x̂0 = x0 exactly (clamped when clip_denoised, which the loop must pass on "
            "to every ddim_step); the last step goes to t_prev = −1 where ᾱ = 1, so it returns x̂0. Use ᾱ at "
            "the next timestep of the subsequence (not alpha_bars_prev[t])",
            example=f"{kind} schedule, {spec!r}, shape={shape}, float64 x0 in [−1.5, 1.5], clip_denoised={clip}",
            atol=1e-6,
        )
        # x0 is in the model's every answer: the samples must also be the loop's last update of its calls.
        steps = walked_timesteps(knows.calls, spec.T, spec.num_steps, spec.spacing)
        example = f"{kind} schedule, {spec!r}, shape={shape}, float64 noise=, clip_denoised={clip}"
        verify(knows, got, loop_sampling(schedule, spec.num_steps, spec.eta, start, example, spec.spacing, clip, steps))

    # One thread: hundreds of tiny tensor operations, which a shared thread pool slows down many times over.
    with single_threaded():
        prop()


@check(
    "ddim",
    1,
    "ddim_invert climbs τ from t = −1: x ← √ᾱ_t·x̂0 + √(1 − ᾱ_t)·eps, eps = model(x, t), x̂0 at the level below",
)
def ddim_invert_recurrence(sub: Submission) -> None:
    ddim_invert = sub.function("ddim", "ddim_invert")

    @settings(parent=GRADING, max_examples=20)
    @pinned_seed("ddim_invert_recurrence")
    @given(subsequence_specs(max_T=20), st.sampled_from(["linear", "cosine"]), shapes())
    def prop(spec: SubsequenceSpec, kind: str, shape: tuple[int, ...]) -> None:
        schedule = ScheduleSpec(kind, spec.T).build()
        x0 = torch.randn(shape, generator=torch.Generator().manual_seed(spec.seed), dtype=torch.float64)
        example = f"{kind} schedule, {spec!r}, shape={shape}, float64 x0 = randn"
        model = SmoothDenoiser(spec.T)
        got = ddim_invert(model, schedule, x0, num_steps=spec.num_steps, spacing=spec.spacing)
        allowed = allowed_timesteps(spec.T, spec.num_steps, spec.spacing)
        steps = [call.t for call in model.calls]
        if (
            len(steps) != spec.num_steps
            or any(tuple(s.shape) != (shape[0],) or len(set(s.tolist())) != 1 for s in steps)
            or any(
                s[0].item() not in ok or (i and s[0].item() <= steps[i - 1][0].item())
                for i, (s, ok) in enumerate(zip(steps, allowed, strict=True))
            )
        ):
            wanted = [ok[0] if len(ok) == 1 else "|".join(map(str, ok)) for ok in allowed]
            raise CheckFailed(
                "ddim_invert must call the model once per timestep of ddim_timesteps(T, num_steps, spacing), from "
                "the first (smallest) up to the last",
                example=example,
                detail=f"the model got t = {[s.unique().tolist() for s in steps]}, expected {wanted}",
                hint="walk the ascending subsequence forwards, starting at level −1 (the data, ᾱ = 1); each "
                "step evaluates the model at the timestep it moves to",
            )
        # The recurrence of the contract, along the timesteps the submission used.
        x, level = x0, -1
        for s in steps:
            step = int(s[0])
            eps = SmoothDenoiser(spec.T)(x, s)
            alpha_bar = 1.0 if level < 0 else float(schedule.alpha_bars[level])
            alpha_bar_next = float(schedule.alpha_bars[step])
            pred_x0 = (x - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
            x, level = math.sqrt(alpha_bar_next) * pred_x0 + math.sqrt(1 - alpha_bar_next) * eps, step
        expect_close(
            got,
            x,
            what="ddim_invert must step from level s to the next timestep t by eps = model(x, t), "
            "x̂0 = (x − √(1 − ᾱ_s)·eps)/√ᾱ_s, x ← √ᾱ_t·x̂0 + √(1 − ᾱ_t)·eps, starting at s = −1 (ᾱ = 1) with x = x0",
            hint="the first step goes from the data (t = −1) to τ_0, so x0 is not already at τ_0; keep the level "
            "of x up to date and form x̂0 with ᾱ of that level, not of the timestep you move to",
            example=example,
            scale=x0.abs() + 1,
        )

    prop()


# Single Gaussian N(m, s²I), m = (0.3, −0.2), s = 0.5: the exact probability-flow map to level ᾱ is
# x ↦ √ᾱ·m + √(ᾱs² + 1 − ᾱ)·(x − m)/s. Reference, 200 steps, 256 points, linear/cosine T = 1000, any
# spacing: latent error ≤ 0.018, reconstruction error ≤ 0.023 (first order: about 4.5 / num_steps).
INVERSION_STEPS = 200
INVERSION_GRID = (
    ("linear", "uniform"),
    ("cosine", "trailing"),
    ("linear", "linspace"),
    ("cosine", "uniform"),
    ("linear", "trailing"),
    ("cosine", "linspace"),
)
INVERSION_TOLERANCE = 0.08
LATENT = {
    "what": "ddim_invert must return a latent shaped like x0",
    "hint": "the latent is x0 carried up the subsequence: the same shape, dtype and device as x0, not the trajectory",
}
"""What :func:`~autograder.checks.framework.expect_tensor` says of a latent of ``ddim_invert`` of the wrong form."""


@check(
    "ddim",
    1,
    "ddim_invert (with **model_kwargs) follows the ODE flow; ddim_sample_loop from its latent reconstructs x0",
)
def ddim_invert_reconstructs(sub: Submission) -> None:
    ddim_invert = sub.function("ddim", "ddim_invert")
    ddim_sample_loop = sub.function("ddim", "ddim_sample_loop")

    # A fixed grid rather than Hypothesis: each example is 800 sampler steps, too costly to shrink.
    # One thread: thousands of tiny tensor operations, which a shared thread pool slows down many times over.
    with single_threaded():
        for seed, (kind, spacing) in enumerate(INVERSION_GRID):
            schedule = ScheduleSpec(kind, 1000).build()
            example = f"{kind}(T=1000), num_steps={INVERSION_STEPS}, spacing={spacing!r}, seed={seed}"
            # 1. The denoiser that knows x0: the round trip is exact.
            x0 = torch.rand(8, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
            knows = KnowsX0(schedule, x0, record_outputs=True, record_inputs=True)
            labels = torch.arange(x0.shape[0], dtype=torch.long) % 3
            latent = ddim_invert(knows, schedule, x0, num_steps=INVERSION_STEPS, spacing=spacing, y=labels)
            expect(
                knows.num_calls >= 1
                and all(
                    isinstance(c.kwargs.get("y"), torch.Tensor) and torch.equal(c.kwargs["y"], labels)
                    for c in knows.calls
                ),
                "ddim_invert(..., y=y) must call the model as model(x, t, y=y) at every step",
                example=f"{example}, y={labels.tolist()}",
                detail=f"the model got keyword arguments {sorted({k for c in knows.calls for k in c.kwargs})}",
                hint="accept **model_kwargs and pass them to every model call unchanged",
            )
            expect_tensor(latent, like=x0, example=example, **LATENT)
            expect(
                bool(torch.isfinite(latent).all()),
                "ddim_invert returned NaN or inf",
                example=example,
                hint="x̂0 divides by √ᾱ of the level x is at, and that level starts at −1 (the data, ᾱ = 1): a NaN "
                "or inf comes from ᾱ taken at a wrong index",
            )
            knows.reset()
            back = ddim_sample_loop(
                knows, schedule, x0.shape, num_steps=INVERSION_STEPS, spacing=spacing, noise=latent, eta=0.0
            )
            steps = walked_timesteps(knows.calls, 1000, INVERSION_STEPS, spacing)
            verify(knows, back, loop_sampling(schedule, INVERSION_STEPS, 0.0, latent, example, spacing, steps=steps))
            expect_close(
                back,
                x0,
                what="ddim_sample_loop(noise=ddim_invert(x0)) must return x0 for a denoiser that knows x0",
                hint="invert along the same subsequence as the sampler, from t = −1 (the data) up to its last timestep",
                example=example,
                atol=1e-6,
            )
            # 2. The exact denoiser of a single Gaussian: invertible up to the discretisation.
            mean, std = torch.tensor([[0.3, -0.2]], dtype=torch.float64), 0.5
            mixture = data.GaussianMixture.isotropic(mean, std)
            oracle = MixtureOracle(schedule, mixture)
            x0 = mixture.sample(256, generator=torch.Generator().manual_seed(seed))[0]
            latent = ddim_invert(oracle, schedule, x0, num_steps=INVERSION_STEPS, spacing=spacing)
            expect_tensor(latent, like=x0, example=example, **LATENT)
            oracle.reset()
            back = ddim_sample_loop(
                oracle, schedule, x0.shape, num_steps=INVERSION_STEPS, spacing=spacing, noise=latent, eta=0.0
            )
            steps = walked_timesteps(oracle.calls, 1000, INVERSION_STEPS, spacing)
            verify(oracle, back, loop_sampling(schedule, INVERSION_STEPS, 0.0, latent, example, spacing, steps=steps))
            alpha_bar = schedule.alpha_bars[ref.ddim_timesteps(1000, INVERSION_STEPS, spacing)[-1]]
            flow = alpha_bar.sqrt() * mean + (alpha_bar * std**2 + 1 - alpha_bar).sqrt() * (x0 - mean) / std
            gaussian = f"{example}, data N((0.3, −0.2), 0.5²I) with its exact denoiser, 256 points"
            expect_close(
                latent,
                flow,
                what="ddim_invert must follow the deterministic DDIM flow: for Gaussian data x0 ~ N(m, s²I) the "
                "latent at level ᾱ is √ᾱ·m + √(ᾱs² + 1 − ᾱ)·(x0 − m)/s, up to the discretisation",
                hint="each step from level s to the next timestep t evaluates eps = model(x, t), forms "
                "x̂0 = (x − √(1 − ᾱ_s)·eps)/√ᾱ_s (ᾱ = 1 at s = −1) and moves to √ᾱ_t·x̂0 + √(1 − ᾱ_t)·eps",
                example=gaussian,
                rtol=0.0,
                atol=INVERSION_TOLERANCE,
            )
            expect_close(
                back,
                x0,
                what="ddim_sample_loop(noise=ddim_invert(x0)) must reconstruct x0 up to the discretisation",
                hint="the sampler and the inversion must walk the same subsequence with η = 0",
                example=gaussian,
                rtol=0.0,
                atol=INVERSION_TOLERANCE,
            )


@check("ddim", 1.5, "ddim_sample_loop calls the model num_steps times down the subsequence; seeded and dtype-stable")
def ddim_loop_bookkeeping(sub: Submission) -> None:
    ddim_sample_loop = sub.function("ddim", "ddim_sample_loop")

    @settings(parent=GRADING, max_examples=15)
    @pinned_seed("ddim_loop_bookkeeping")
    @given(subsequence_specs(max_T=40, etas=(0.0, 1.0)), shapes())
    def prop(spec: SubsequenceSpec, shape: tuple[int, ...]) -> None:
        schedule = ScheduleSpec("linear", spec.T).build()
        batch, example = shape[0], f"{spec!r}, shape={shape}"

        def run(model, **kwargs):
            return ddim_sample_loop(
                model,
                schedule,
                shape,
                num_steps=spec.num_steps,
                eta=spec.eta,
                spacing=spec.spacing,
                generator=torch.Generator().manual_seed(spec.seed),
                **kwargs,
            )

        model = SmoothDenoiser(spec.T)
        labels = torch.arange(batch, dtype=torch.long) % 3
        first = run(model, y=labels)
        expect_tensor(
            first,
            like=torch.empty(shape),
            what="ddim_sample_loop must return float32 samples of shape `shape`",
            hint="the start is standard normal noise of `shape`, drawn in float32 on the CPU from `generator`",
            example=example,
        )
        allowed = allowed_timesteps(spec.T, spec.num_steps, spec.spacing)[::-1]  # descending, as sampled
        problem = calls_problem(
            model.calls,
            labels,
            count=spec.num_steps,
            expected_count=f"num_steps = {spec.num_steps}",
            timesteps_ok=lambda steps: (
                not any(
                    len(set(s.tolist())) != 1 or s[0].item() not in ok or (i and s[0].item() >= steps[i - 1][0].item())
                    for i, (s, ok) in enumerate(zip(steps, allowed, strict=True))
                )
            ),
            expected_timesteps=[ok[0] if len(ok) == 1 else "|".join(map(str, ok)) for ok in allowed],
        )
        if problem:
            raise CheckFailed(
                "ddim_sample_loop must call the model once per timestep of ddim_timesteps(T, num_steps, spacing), "
                "from the last (largest) down to the first, passing **model_kwargs on",
                example=example,
                detail=problem,
                hint="walk the ascending subsequence backwards; each step goes to the previous entry, the "
                "last one to t_prev = −1; hand **model_kwargs to every ddim_step call",
            )
        again = run(SmoothDenoiser(spec.T), y=labels)
        expect(
            isinstance(again, torch.Tensor) and torch.equal(first, again),
            "ddim_sample_loop with the same generator seed must return the same samples",
            example=example,
            hint="draw the starting noise and, for η > 0, each step's noise from `generator`",
        )
        start = torch.randn(shape, generator=torch.Generator().manual_seed(spec.seed + 1), dtype=torch.float64)
        expect_tensor(
            run(SmoothDenoiser(spec.T), noise=start),
            like=start,
            what="ddim_sample_loop(..., noise=x_start) with float64 x_start must return float64 samples",
            hint="start from the given noise= and keep its dtype (cast each step's drawn noise to x's dtype)",
            example=example,
        )

    prop()
    expect_loop_plumbing(ddim_sample_loop, "ddim_sample_loop", num_steps=3, eta=1.0)
    expect_value_error(
        lambda: ddim_sample_loop(
            SmoothDenoiser(6),
            ScheduleSpec("linear", 6).build(),
            (3, 2),
            num_steps=3,
            eta=-0.5,
            generator=torch.Generator().manual_seed(4),
        ),
        "ddim_sample_loop must raise ValueError for η < 0",
        "ddim_sample_loop(model, schedule=linear(T=6), shape=(3, 2), num_steps=3, eta=-0.5, "
        "generator=torch.Generator().manual_seed(4))",
    )


# DDIM on the course's 2-D mixture (turned by the submission's hidden angle, denoisers.hidden_mixture, which changes
# no energy distance) with the exact denoiser, linear T = 1000, "uniform" spacing, n = 4000
# samples from float64 noise against 4000 true samples with the classes in exact proportion. First the samples
# must come from the model: the oracle's calls must chain by eq. 12 (+ σ·z for η = 1) and the samples be the
# last update (trajectory.verify). Energy distance of the reference (seeds other than the check's):
#   data vs data (200 draws): mean 0.00022, max 0.00071; the class-proportion term's 1e−6 quantile 0.0018
#   10 steps  η=0: 0.0235–0.0259 (30 seeds)   η=1: 0.031–0.0343 (30 seeds)   (10 coarse steps are biased)
#   50 steps  η=0: mean 0.00054, max 0.00105  η=1: mean 0.00078, max 0.00117 (100 seeds each)
#   100 steps η=0: mean 0.00032, max 0.00085  η=1: mean 0.00044, max 0.00091 (100 seeds each)
#   bugs: ᾱ_t for ᾱ_prev 0.18; alpha_bars_prev[t] for ᾱ at t_prev 0.08–0.18 (more at fewer steps);
#   direction √(1 − ᾱ_prev) without σ² (η = 1): 0.029 at 50 steps, 0.042 at 100 (0.0015 at 10 steps).
# Thresholds ≥ max(2 × reference max, reference mean + the 1e−6 quantile of the proportion term).
ORACLE_N = 4000
ORACLE_RUNS = (
    (10, 0.0, 0.055),
    (10, 1.0, 0.07),
    (50, 0.0, 0.003),
    (50, 1.0, 0.0035),
    (100, 0.0, 0.003),
    (100, 1.0, 0.003),
)


@check("ddim", 4, "ddim_sample_loop with the exact denoiser of a 2-D Gaussian mixture samples it (10–100 steps, η 0/1)")
def ddim_loop_oracle(sub: Submission) -> None:
    ddim_sample_loop = sub.function("ddim", "ddim_sample_loop")
    schedule = ScheduleSpec("linear", 1000).build()
    mixture = hidden_mixture(sub.fingerprint)
    oracle = MixtureOracle(schedule, mixture)
    for index, (num_steps, eta, threshold) in enumerate(ORACLE_RUNS):
        seed = 21 + index
        oracle.reset()
        start = torch.randn(ORACLE_N, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        with single_threaded():
            samples = ddim_sample_loop(
                oracle,
                schedule,
                (ORACLE_N, 2),
                num_steps=num_steps,
                eta=eta,
                generator=torch.Generator().manual_seed(seed + 100),
                noise=start,
            )
        example = f"linear(T=1000), num_steps={num_steps}, eta={eta}, {ORACLE_N} samples, the exact E[eps | x_t]"
        expect_samples(
            samples,
            shape=tuple(start.shape),
            sampler="ddim_sample_loop",
            example=example,
            shape_hint="return the state after the last step (t_prev = −1), shaped like the starting noise",
            finite_hint="ᾱ after the last step is 1 (t_prev = −1, not an index of the schedule), and "
            "1 − ᾱ_prev − σ² can round below 0: clamp it at 0 before the square root",
        )
        with single_threaded():
            verify(oracle, samples, loop_sampling(schedule, num_steps, eta, start, example))
        distance = energy_distance(samples, mixture_truth(mixture, ORACLE_N, seed + 200))
        expect(
            distance <= threshold,
            "ddim_sample_loop with the exact denoiser E[eps | x_t] of a 2-D Gaussian mixture must sample it",
            example=example,
            detail=f"energy distance to true samples: {distance:.5f}; a correct DDIM stays below {threshold}",
            hint="each step must use ᾱ at the next timestep of the subsequence (1 after the last), "
            "σ of eq. 16 and the direction √(1 − ᾱ_prev − σ²)",
        )
