"""Hidden checks of part 6 (ddpm): the reverse step ``p_θ(x_{t−1} | x_t)``, one ancestral step, the
sampling loop's bookkeeping, and sampling with the exact denoiser of a Gaussian mixture.

Only the student's ``diffusion.ddpm`` is graded here; schedules, the posterior and every
denoiser come from the reference (part isolation). Exact checks pass explicit noise; the loop is
judged by what it calls and, with the oracle, by the distribution of its samples, never by the
order in which it draws random numbers.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.checks.denoisers import MixtureOracle, SmoothDenoiser, hidden_mixture, mixture_truth
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
from autograder.checks.strategies import Case, ScheduleSpec, cases, mixed_t_cases, schedule_specs, shapes
from autograder.checks.trajectory import Sampling, ddpm_rule, expect_loop_plumbing, verify
from autograder.isolation.submission import Submission
from autograder.reference import load_reference
from autograder.scoring.energy import energy_distance

REFERENCE = load_reference()
ref = REFERENCE.ddpm
extract = REFERENCE.schedules.extract

VARIANCES = ("fixed_small", "fixed_large")
KEYS = ("mean", "variance", "log_variance", "pred_x0", "eps")
TRAJECTORY_HINT = (
    "the trajectory starts with the starting noise x_T and adds the state after each step: T steps make T + 1 "
    "states, the last of them the samples (a list of the steps' outputs alone misses the start)"
)


def _outputs(out: object, case: object) -> dict:
    """The student's ``p_mean_variance`` result, if it is a dict with every key of the contract."""
    if not isinstance(out, dict) or any(key not in out for key in KEYS):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise CheckFailed(
            f"p_mean_variance must return a dict with keys {', '.join(KEYS)}",
            example=repr(case),
            got=got,
            hint="the reverse step's dict holds the mean, the variance and its log, the model's x̂0 and its eps, "
            "under exactly these keys",
        )
    return out


def _eq11(schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 11 of Ho et al. in float64, and the size of the terms any arrangement of it adds up."""
    x, e = x_t.double(), eps.double()
    betas, alphas, alpha_bars = schedule.betas, schedule.alphas, schedule.alpha_bars
    coef_eps = extract(betas / (1 - alpha_bars).sqrt(), t, x)
    mean = (x - coef_eps * e) / extract(alphas.sqrt(), t, x)
    # The posterior arrangement μ̃(x̂0, x_t) = c1·x̂0 + c2·x_t adds terms of this size.
    pred_x0_size = (x.abs() + extract((1 - alpha_bars).sqrt(), t, x) * e.abs()) / extract(alpha_bars.sqrt(), t, x)
    c1 = extract(betas * schedule.alpha_bars_prev.sqrt() / (1 - alpha_bars), t, x)
    c2 = extract((1 - schedule.alpha_bars_prev) * alphas.sqrt() / (1 - alpha_bars), t, x)
    size = torch.maximum(
        (x.abs() + coef_eps * e.abs()) / extract(alphas.sqrt(), t, x), c1 * pred_x0_size + c2 * x.abs()
    )
    return mean.to(x_t.dtype), size.to(x_t.dtype)


@check("ddpm", 3, "p_mean_variance without clipping: mean = (x_t − β_t/√(1 − ᾱ_t)·eps)/√α_t (Ho et al. eq. 11)")
def p_mean_variance_mean(sub: Submission) -> None:
    p_mean_variance = sub.function("ddpm", "p_mean_variance")

    @GRADING
    @given(cases(), st.sampled_from(VARIANCES))
    def prop(case: Case, variance: str) -> None:
        schedule, x_t, t = case.schedule, case.randn(), case.timesteps()
        model = SmoothDenoiser(schedule.T)
        out = _outputs(p_mean_variance(model, schedule, x_t, t, clip_denoised=False, variance=variance), case)
        eps = model(x_t, t)
        example = f"{case!r}, variance={variance!r}, clip_denoised=False"
        expect_close(
            out["eps"],
            eps,
            what="p_mean_variance: 'eps' must be the model's output model(x_t, t)",
            hint="call the model once on (x_t, t, **model_kwargs) and return its answer unchanged",
            example=example,
        )
        x0_size = (x_t.abs() + extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps.abs()) / extract(
            schedule.alpha_bars.sqrt(), t, x_t
        )
        expect_close(
            out["pred_x0"],
            REFERENCE.posterior.predict_x0_from_eps(schedule, x_t, t, eps),
            what="p_mean_variance: 'pred_x0' must be (x_t − √(1 − ᾱ_t)·eps)/√ᾱ_t",
            hint="use predict_x0_from_eps with the model's eps; do not clamp when clip_denoised=False",
            example=example,
            scale=x0_size,
        )
        mean, size = _eq11(schedule, x_t, t, eps)
        expect_close(
            out["mean"],
            mean,
            what="p_mean_variance: without clipping the mean must equal (x_t − β_t/√(1 − ᾱ_t)·eps)/√α_t",
            hint="the mean is the posterior mean μ̃_t(pred_x0, x_t) of q(x_{t−1} | x_t, x0) with pred_x0 "
            "from the model's eps (eq. 11 written out: divide by √α_t, not α_t or √ᾱ_t)",
            example=example,
            scale=size,
        )

    prop()


@check("ddpm", 2, "p_mean_variance variance: 'fixed_small' = β̃_t, 'fixed_large' = β_t, and their logs")
def p_mean_variance_variances(sub: Submission) -> None:
    p_mean_variance = sub.function("ddpm", "p_mean_variance")

    @GRADING
    @pinned_seed("p_mean_variance_variances")
    @given(cases(), st.sampled_from(VARIANCES))
    def prop(case: Case, variance: str) -> None:
        schedule, x_t, t = case.schedule, case.randn(), case.timesteps()
        student = p_mean_variance(SmoothDenoiser(schedule.T), schedule, x_t, t, variance=as_decoded(variance))
        out = _outputs(student, case)
        expected = ref.p_mean_variance(SmoothDenoiser(schedule.T), schedule, x_t, t, variance=variance)
        example = f"{case!r}, variance={variance!r}"
        name = "β̃_t = β_t·(1 − ᾱ_prev)/(1 − ᾱ_t)" if variance == "fixed_small" else "β_t"
        for key, what, hint in (
            (
                "variance",
                f"p_mean_variance: variance={variance!r} must be {name}",
                "'fixed_small' is the posterior variance β̃_t (0 at t = 0), 'fixed_large' is β_t; "
                "do not swap them, and use ᾱ_prev = alpha_bars_prev[t]",
            ),
            (
                "log_variance",
                f"p_mean_variance: log_variance for variance={variance!r} must be the log of {name}",
                "for 'fixed_small' return the posterior's log_variance_clipped (β̃ at index 1 in place of "
                "log 0 = −∞ at t = 0); for 'fixed_large' log β_t",
            ),
        ):
            got = out[key]
            if not isinstance(got, torch.Tensor):
                raise CheckFailed(what, example=example, expected="a tensor", got=type(got).__name__, hint=hint)
            try:
                got = torch.broadcast_to(got, x_t.shape)
            except RuntimeError:
                raise CheckFailed(
                    what,
                    example=example,
                    detail=f"its shape {tuple(got.shape)} does not broadcast to x_t's {tuple(x_t.shape)}",
                    hint="return per-sample values shaped (B, 1, ..., 1)",
                ) from None
            expect_close(got, expected[key].expand_as(x_t), what=what, hint=hint, example=example)

    prop()
    spec, x_t = ScheduleSpec("linear", 5), torch.zeros(2, 3)
    for variance in ("fixed", "learned", "Fixed_small"):  # only the two names of the contract are variances
        expect_value_error(
            lambda variance=variance: p_mean_variance(
                SmoothDenoiser(5), spec.build(), x_t, torch.tensor([4, 0]), variance=variance
            ),
            f"p_mean_variance must raise ValueError for the unknown variance {variance!r}",
            f"p_mean_variance(model, schedule={spec!r}, x_t of shape (2, 3), t=[4, 0], variance={variance!r})",
        )


@check("ddpm", 1, "p_mean_variance with clip_denoised clamps pred_x0 to [−1, 1] before the posterior mean")
def p_mean_variance_clipping(sub: Submission) -> None:
    p_mean_variance = sub.function("ddpm", "p_mean_variance")

    @GRADING
    @pinned_seed("p_mean_variance_clipping")
    @given(cases())
    def prop(case: Case) -> None:
        schedule, x_t, t = case.schedule, 2 * case.randn(), case.timesteps()
        out = _outputs(p_mean_variance(SmoothDenoiser(schedule.T), schedule, x_t, t, clip_denoised=True), case)
        expected = ref.p_mean_variance(SmoothDenoiser(schedule.T), schedule, x_t, t, clip_denoised=True)
        example = f"{case!r} (x_t = 2·randn), clip_denoised=True"
        expect_close(
            out["pred_x0"],
            expected["pred_x0"],
            what="p_mean_variance: with clip_denoised=True, 'pred_x0' must be clamped to [−1, 1]",
            hint="with clipping, the x0 predicted from eps is confined to the data range [−1, 1], and that confined "
            "value is the one returned (and used for the mean)",
            example=example,
        )
        expect_close(
            out["mean"],
            expected["mean"],
            what="p_mean_variance: with clip_denoised=True the mean is μ̃_t(clamp(pred_x0, −1, 1), x_t)",
            hint="clamp pred_x0 first, then compute the posterior mean from the clamped pred_x0 "
            "(eq. 11 with the raw eps ignores the clipping)",
            example=example,
        )

    prop()


@check("ddpm", 1, "p_mean_variance passes **model_kwargs (e.g. y=) on to the model")
def p_mean_variance_model_kwargs(sub: Submission) -> None:
    p_mean_variance = sub.function("ddpm", "p_mean_variance")

    @settings(parent=GRADING, max_examples=10)
    @pinned_seed("p_mean_variance_model_kwargs")
    @given(cases(max_T=10))
    def prop(case: Case) -> None:
        schedule, x_t, t = case.schedule, case.randn(), case.timesteps()
        y = torch.arange(x_t.shape[0], dtype=torch.long) % 3
        model = SmoothDenoiser(schedule.T)
        out = _outputs(p_mean_variance(model, schedule, x_t, t, clip_denoised=False, y=y, scale=0.5), case)
        expect(
            model.num_calls >= 1
            and all("y" in call.kwargs and "scale" in call.kwargs for call in model.calls)
            and torch.equal(model.calls[-1].kwargs["y"], y)
            and model.calls[-1].kwargs["scale"] == 0.5,
            "p_mean_variance(model, schedule, x_t, t, y=y, scale=0.5) must call model(x_t, t, y=y, scale=0.5)",
            example=repr(case),
            detail=f"the model got keyword arguments {[sorted(call.kwargs) for call in model.calls]}",
            hint="accept **model_kwargs and pass them to the model unchanged",
        )
        expected = ref.p_mean_variance(
            SmoothDenoiser(schedule.T), schedule, x_t, t, clip_denoised=False, y=y, scale=0.5
        )
        expect_close(
            out["mean"],
            expected["mean"],
            what="p_mean_variance with model keyword arguments: the mean must use the model's answer for them",
            hint="pass **model_kwargs to the model unchanged",
            example=f"{case!r}, y={y.tolist()}, scale=0.5",
        )

    prop()


@check("ddpm", 3, "p_sample = mean + √variance·noise, and exactly the mean where t == 0")
def p_sample_step(sub: Submission) -> None:
    p_sample = sub.function("ddpm", "p_sample")

    @GRADING
    @given(mixed_t_cases())
    def prop(case: Case) -> None:
        schedule, x_t, t, noise = case.schedule, case.randn(), case.timesteps(), case.randn(stream=1)
        for variance in VARIANCES:
            got = p_sample(SmoothDenoiser(schedule.T), schedule, x_t, t, noise, clip_denoised=False, variance=variance)
            expected = ref.p_sample(
                SmoothDenoiser(schedule.T), schedule, x_t, t, noise, clip_denoised=False, variance=variance
            )
            example = f"{case!r}, variance={variance!r}, clip_denoised=False"
            got = expect_tensor(
                got, like=expected, what="p_sample must return x_{t−1} shaped like x_t", example=example
            )
            at_zero = t == 0
            expect_close(
                got[at_zero],
                expected[at_zero],
                what="p_sample: samples whose t == 0 must get no noise (x_{−1} is the mean)",
                hint="multiply the noise by a mask (t != 0), per sample; with 'fixed_large' β_0 > 0 would add noise",
                example=example,
            )
            expect_close(
                got,
                expected,
                what="p_sample must return mean + √variance·noise (Ho et al. Algorithm 2, line 4)",
                hint="the noise is scaled by the standard deviation √variance (or exp(½·log_variance)), "
                "not by the variance",
                example=example,
            )

    prop()


@check("ddpm", 1, "p_sample_loop calls the model T times with t = T−1, ..., 0 and is reproducible from its generator")
def p_sample_loop_bookkeeping(sub: Submission) -> None:
    p_sample_loop = sub.function("ddpm", "p_sample_loop")

    @settings(parent=GRADING, max_examples=15)
    @pinned_seed("p_sample_loop_bookkeeping")
    @given(schedule_specs(1, 12), shapes(), st.integers(0, 2**16))
    def prop(spec: ScheduleSpec, shape: tuple[int, ...], seed: int) -> None:
        schedule = spec.build()
        T, batch = schedule.T, shape[0]
        example = f"schedule={spec!r}, shape={shape}, generator seed {seed}"
        model = SmoothDenoiser(T)
        labels = torch.arange(batch, dtype=torch.long) % 3
        first = p_sample_loop(model, schedule, shape, generator=torch.Generator().manual_seed(seed), y=labels)
        expect_tensor(
            first,
            like=torch.empty(shape),
            what="p_sample_loop(model, schedule, shape, generator=...) must return float32 samples of shape `shape`",
            hint="the start is standard normal noise of `shape`, drawn in float32 on the CPU from `generator`",
            example=example,
        )
        problem = calls_problem(
            model.calls,
            labels,
            count=T,
            expected_count=f"T = {T} (once per step)",
            timesteps_ok=lambda steps: [s.tolist() for s in steps] == [[step] * batch for step in range(T - 1, -1, -1)],
            expected_timesteps=list(range(T - 1, -1, -1)),
        )
        if problem:
            raise CheckFailed(
                "p_sample_loop must call the model once per step with t = T−1, ..., 0 (descending), passing "
                "**model_kwargs on",
                example=example,
                detail=problem,
                hint="one step per timestep, from t = T−1 down to 0 inclusive, each with one long t per sample, and "
                "the model's keyword arguments passed on at every step",
            )
        again = p_sample_loop(
            SmoothDenoiser(T), schedule, shape, generator=torch.Generator().manual_seed(seed), y=labels
        )
        expect(
            isinstance(again, torch.Tensor) and torch.equal(first, again),
            "p_sample_loop with the same generator seed must return the same samples",
            example=example,
            hint="every random number comes from `generator`, the start and each step's noise; never from the global "
            "random state",
        )
        start = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
        result = p_sample_loop(
            SmoothDenoiser(T), schedule, shape, generator=torch.Generator().manual_seed(seed), noise=start
        )
        expect_tensor(
            result,
            like=start,
            what="p_sample_loop(..., noise=x_start) with float64 x_start must return float64 samples",
            hint="start from the given noise= and keep its dtype (cast each step's drawn noise to x's dtype)",
            example=example,
        )
        returned = p_sample_loop(
            SmoothDenoiser(T), schedule, shape, generator=torch.Generator().manual_seed(seed), return_trajectory=True
        )
        ok = isinstance(returned, tuple | list) and len(returned) == 2
        trajectory = returned[1] if ok else None
        expect(
            ok
            and isinstance(trajectory, list | tuple)
            and len(trajectory) == T + 1
            and isinstance(trajectory[-1], torch.Tensor)
            and torch.equal(trajectory[-1], returned[0]),
            "p_sample_loop(..., return_trajectory=True) must return (samples, states) with the T + 1 states "
            "from the starting noise to the samples",
            example=example,
            got=f"{type(returned).__name__}"
            + (f" with {len(trajectory)} states" if isinstance(trajectory, list | tuple) else ""),
            hint=TRAJECTORY_HINT,
        )

    prop()
    expect_loop_plumbing(p_sample_loop, "p_sample_loop")


# Each transition of a trajectory, x_{t−1} = mean + √variance·z, is recovered from the states: the last
# (t = 0) exactly, the others by the spread of z = (x_{t−1} − mean)/√variance over 2000 values (standard
# error of its RMS 0.016, so the bounds below are about 9 standard errors; swapping β_t and β̃_t changes
# the RMS by a factor 1.5–4 on these short schedules). The order of the random numbers does not matter.
TRANSITION_RUNS = (
    ("linear", 4, "fixed_large", False),
    ("cosine", 5, "fixed_small", True),
    ("linear", 3, "fixed_small", False),
    ("cosine", 4, "fixed_large", True),
)
TRANSITION_SHAPE = (500, 4)
TRANSITION_RMS = (0.85, 1.15)


@check("ddpm", 1, "p_sample_loop's trajectory follows p_θ(x_{t−1} | x_t) with the clip_denoised and variance given")
def p_sample_loop_transitions(sub: Submission) -> None:
    p_sample_loop = sub.function("ddpm", "p_sample_loop")
    for index, (kind, T, variance, clip) in enumerate(TRANSITION_RUNS):
        spec = ScheduleSpec(kind, T)
        schedule = spec.build()
        example = (
            f"schedule={spec!r}, shape={TRANSITION_SHAPE}, float64 noise= (2·randn), variance={variance!r}, "
            f"clip_denoised={clip}, return_trajectory=True"
        )
        start = 2 * torch.randn(TRANSITION_SHAPE, generator=torch.Generator().manual_seed(index), dtype=torch.float64)
        model = SmoothDenoiser(T, record_inputs=True)
        returned = p_sample_loop(
            model,
            schedule,
            TRANSITION_SHAPE,
            generator=torch.Generator().manual_seed(index + 50),
            noise=start,
            clip_denoised=clip,
            variance=variance,
            return_trajectory=True,
        )
        states = returned[1] if isinstance(returned, tuple | list) and len(returned) == 2 else None
        expect(
            isinstance(states, list | tuple)
            and len(states) == T + 1
            and all(isinstance(s, torch.Tensor) and s.shape == start.shape for s in states)
            and torch.equal(states[0], start),
            "p_sample_loop(..., noise=x_start, return_trajectory=True) must return (samples, states) with the "
            "T + 1 states from x_start to the samples",
            example=example,
            hint=TRAJECTORY_HINT,
        )
        seen = [call.x for call in model.calls]
        unseen = [i for i, (state, x) in enumerate(zip(states, seen, strict=False)) if not torch.equal(state, x)]
        expect(
            len(seen) == T and not unseen and torch.equal(states[-1], returned[0]),
            "p_sample_loop(..., return_trajectory=True): the states must be those the loop evaluated the model at, "
            "one per step, then the samples it returned",
            example=example,
            detail=f"the model was called {len(seen)} times for T = {T} steps"
            if len(seen) != T
            else f"state {unseen[0]} is not the x_t of model call {unseen[0] + 1}"
            if unseen
            else "the last state is not the samples returned",
            hint="the trajectory records the states the sampler moves through: the one each step evaluates the "
            "model at, and the samples after the last step",
        )
        for i, step in enumerate(range(T - 1, -1, -1)):
            x_t, x_prev = states[i].double(), states[i + 1].double()
            t = torch.full((TRANSITION_SHAPE[0],), step, dtype=torch.long)
            out = ref.p_mean_variance(SmoothDenoiser(T), schedule, x_t, t, clip_denoised=clip, variance=variance)
            if step == 0:
                _, size = _eq11(schedule, x_t, t, out["eps"])
                expect_close(
                    x_prev,
                    out["mean"],
                    what="p_sample_loop: the last step (t = 0) must return the mean of p_θ(x_{−1} | x_0) computed "
                    f"with clip_denoised={clip}",
                    hint="pass clip_denoised= and variance= on to every p_sample call",
                    example=example,
                    scale=size,
                )
                continue
            z = (x_prev - out["mean"]) / out["variance"].sqrt()
            rms, centre = float(z.pow(2).mean().sqrt()), float(z.mean())
            low, high = TRANSITION_RMS
            expect(
                low <= rms <= high and abs(centre) <= 0.15,
                f"p_sample_loop: the step from t = {step} must be x_{{t−1}} = mean + √variance·z with z ~ N(0, I), "
                f"for variance={variance!r} and clip_denoised={clip}",
                example=example,
                expected=f"RMS in [{low}, {high}] and |mean| ≤ 0.15",
                got=f"RMS {rms:.3f} and mean {centre:.3f} of (x_{{t−1}} − mean)/√variance over {z.numel()} values",
                hint="pass clip_denoised= and variance= on to every p_sample call; draw each step's noise "
                "from a standard normal",
            )


# Sampling the course's 2-D mixture (8 components of std 0.07 on a ring of radius 0.6), turned by the submission's
# hidden angle (denoisers.hidden_mixture: a rotation leaves every energy distance below unchanged), with the exact
# denoiser, 1000 steps, n = 4000 samples from float64 noise against 4000 true samples with the classes
# in exact proportion. First the samples must come from the model: the oracle's calls must chain by the update of
# p_θ(x_{t−1} | x_t) (clip_denoised=True, 'fixed_small', the defaults) and the samples be the last update
# (trajectory.verify). Energy distance (calibrated with the reference, seeds other than the check's):
#   data vs data (200 draws): mean 0.00022, max 0.00071
#   reference, linear (60 seeds): mean 0.00026, max 0.00067; cosine (60 seeds): mean 0.00027, max 0.00085
#   the samples' class proportions dominate the spread: that term's 1e−6 quantile is 0.0018 at n = 4000
#   (2·10⁶ multinomial draws), so a correct sampler, whatever its random-number order, stays below 0.002
#   bugs: noise scaled by the variance instead of √variance 0.0084–0.0095; mean with β_t/(1 − ᾱ_t) for
#   β_t/√(1 − ᾱ_t) 0.0047–0.0070; ascending loop 0.17; β̃ without the division by (1 − ᾱ_t) 0.0032–0.0038
#   (borderline here; p_mean_variance_variances catches it exactly); eq. 11 with α_t for √α_t 0.0001–0.0009
#   (the exact denoiser corrects it; p_mean_variance_mean catches it)
# Threshold 0.003 ≥ max(3 × data-vs-data mean, 2 × reference max, reference mean + the 1e−6 quantile).
ORACLE_N = 4000
ORACLE_THRESHOLD = 0.003
ORACLE_RUNS = (("linear", 1000, 11), ("cosine", 1000, 12))


@check("ddpm", 4, "p_sample_loop with the exact denoiser of a 2-D Gaussian mixture samples that mixture")
def p_sample_loop_oracle(sub: Submission) -> None:
    p_sample_loop = sub.function("ddpm", "p_sample_loop")
    mixture = hidden_mixture(sub.fingerprint)
    for kind, T, seed in ORACLE_RUNS:
        spec = ScheduleSpec(kind, T)
        schedule = spec.build()
        oracle = MixtureOracle(schedule, mixture)
        start = torch.randn(ORACLE_N, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        with single_threaded():
            samples = p_sample_loop(
                oracle, schedule, (ORACLE_N, 2), generator=torch.Generator().manual_seed(seed + 100), noise=start
            )
        example = f"schedule={spec!r}, {ORACLE_N} samples from float64 noise, the exact denoiser E[eps | x_t]"
        expect_samples(
            samples,
            shape=tuple(start.shape),
            sampler="p_sample_loop with the exact denoiser",
            example=example,
            shape_hint="return the last state of the loop, shaped like the starting noise (not the trajectory)",
            finite_hint="a NaN or inf comes from a coefficient taken at a timestep outside 0..T−1 or from the square "
            "root of a negative variance",
        )
        sampling = Sampling(
            "p_sample_loop",
            example,
            list(range(T - 1, -1, -1)),
            ORACLE_N,
            ddpm_rule(schedule, clip_denoised=True, variance="fixed_small"),
            "the mean of p_θ(x_{t−1} | x_t) (x̂0 clamped, the default) + √β̃_t·z",
            "samples must come from the model: each step evaluates it on the current state x_t and moves to the "
            "mean of p_θ(x_{t−1} | x_t) for its answer plus the standard deviation times fresh standard normal "
            "noise (none at t = 0)",
            start=start,
        )
        with single_threaded():
            verify(oracle, samples, sampling)
        distance = energy_distance(samples, mixture_truth(oracle.mixture, ORACLE_N, seed + 200))
        expect(
            distance <= ORACLE_THRESHOLD,
            "p_sample_loop with the exact denoiser E[eps | x_t] of a 2-D Gaussian mixture must sample that mixture",
            example=example,
            detail=f"energy distance to true samples: {distance:.5f}; a correct sampler stays below "
            f"{ORACLE_THRESHOLD} (typically 0.0003)",
            hint="check the mean (eq. 11), that the noise is scaled by √variance, that the loop walks "
            "t = T−1, ..., 0 and that the last step adds no noise",
        )
