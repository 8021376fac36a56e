"""Samples must come from the model (DESIGN.md, principle 6): the checks of a sampler's trajectory.

A denoiser a check hands to a student's sampling loop stays in the grader (in the sandbox the student's code
holds a proxy) and records each call's input ``x_t`` and answer (:class:`~autograder.checks.denoisers.Denoiser`).
A sampler's documented update turns the state the model was evaluated at and its answer into the next state::

    x_next = mean(x_t, eps) + σ · z,        z ~ N(0, I), drawn afresh for each step

- DDPM (:func:`ddpm_rule`): the mean of ``p_θ(x_{t−1} | x_t)`` (x̂0 clamped when ``clip_denoised``) and
  ``σ = √variance``, 0 at ``t = 0``;
- DDIM (:func:`ddim_rule`): eq. 12 without its noise term and σ of eq. 16, 0 at η = 0 and on the last step
  (to ``t_prev = −1``).

:func:`verify` holds one sampling run to it, with the grader's reference for the update:

(a) the model was called once per step, on the whole batch, at the step's timestep;
(b) the first call was on the starting noise (the ``noise=`` given, else noise that looks standard normal), and
    each later call's ``x_t`` follows from the previous call's ``x_t`` and answer: exactly (to float tolerance)
    where σ = 0, elsewhere with residuals ``z = (x_next − mean)/σ`` that look like independent standard
    normals: per step and over all steps, their mean, mean square and correlation with the previous step's
    ``z`` lie within :data:`STANDARD_ERRORS` standard errors of 0, 1 and 0 (a step of fewer than
    :data:`MIN_VALUES` values counts only in the totals, and totals of fewer are not judged);
(c) the samples returned are the update of the last call (σ = 0 there for both samplers), to float tolerance.

A loop that gets its samples any other way (from the public mixture after a look at the model, drawn afresh
after sampling, from a state the model never saw) breaks (a), (b) or (c), whatever the distribution of what
it returns. Every correct arrangement passes: the float tolerances are the framework's for the states' dtype
(:func:`~autograder.checks.framework.tolerances`), relative to the size of the update's terms; the statistics
do not depend on the order in which the random numbers are drawn (principle 2). With
:data:`STANDARD_ERRORS` = 6.5 a correct sampler fails one of the ~10⁴ tests of a grading with a probability
of about 10⁻⁶.

Both loops' checks also share :func:`expect_loop_plumbing`: their randomness, their progress bar and their
refusal of a ``noise=`` of another shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from autograder.checks.denoisers import Call, Denoiser, SmoothDenoiser
from autograder.checks.framework import (
    CheckFailed,
    expect,
    expect_global_rng_untouched,
    expect_value_error,
    tolerances,
)
from autograder.checks.strategies import ScheduleSpec
from autograder.reference import load_reference

REFERENCE = load_reference()
extract, expand_like = REFERENCE.schedules.extract, REFERENCE.schedules.expand_like
alpha_bar_at = REFERENCE.ddim.alpha_bar_at

STANDARD_ERRORS = 6.5
"""How far (in standard errors) the residuals' statistics may stray: a normal tail of 8·10⁻¹¹ per test."""
MIN_VALUES = 500
"""A step's residuals are judged on their own from this many values up (fewer: only in the totals)."""


@dataclass(frozen=True)
class Update:
    """A step's update in float64: ``x_next = mean + sigma · z``; ``size`` bounds its terms (for float tolerance)."""

    mean: torch.Tensor
    sigma: torch.Tensor
    size: torch.Tensor


Rule = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], Update]
"""``rule(x, t, t_next, eps, eps_size) -> Update`` (float64 tensors; ``t_next = −1`` after the last step)."""


def _constant(eps: torch.Tensor) -> Callable[..., torch.Tensor]:
    """A model that answers ``eps`` whatever it is asked: the recorded answer, for the reference's update."""
    return lambda *args, **kwargs: eps


def ddpm_rule(schedule, *, clip_denoised: bool, variance: str) -> Rule:
    """DDPM's ancestral step (the reference's ``p_mean_variance``): mean of ``p_θ(x_{t−1} | x_t)``, ``σ = √variance``
    where ``t > 0`` and 0 at ``t = 0``."""

    def rule(x, t, t_next, eps, eps_size) -> Update:
        out = REFERENCE.ddpm.p_mean_variance(
            _constant(eps), schedule, x, t, clip_denoised=clip_denoised, variance=variance
        )
        sigma = out["variance"].sqrt() * expand_like(t != 0, x)
        alpha_bars = schedule.alpha_bars
        coef_eps = extract(schedule.betas / (1 - alpha_bars).sqrt(), t, x)
        sqrt_alpha = extract(schedule.alphas.sqrt(), t, x)
        x0_size = (x.abs() + extract((1 - alpha_bars).sqrt(), t, x) * eps_size) / extract(alpha_bars.sqrt(), t, x)
        c1 = extract(schedule.betas * schedule.alpha_bars_prev.sqrt() / (1 - alpha_bars), t, x)
        c2 = extract((1 - schedule.alpha_bars_prev) * schedule.alphas.sqrt() / (1 - alpha_bars), t, x)
        # Eq. 11 and the posterior mean μ̃(x̂0, x_t) add terms of these sizes.
        size = torch.maximum((x.abs() + coef_eps * eps_size) / sqrt_alpha, c1 * x0_size + c2 * x.abs())
        return Update(out["mean"], sigma, size)

    return rule


def ddim_rule(schedule, *, eta: float, clip_denoised: bool) -> Rule:
    """DDIM's step from ``t`` to ``t_next`` (the reference's ``ddim_step`` without noise, ``ddim_sigma``)."""

    def rule(x, t, t_next, eps, eps_size) -> Update:
        mean = REFERENCE.ddim.ddim_step(
            _constant(eps), schedule, x, t, t_next, eta=eta, noise=torch.zeros_like(x), clip_denoised=clip_denoised
        )
        sigma = expand_like(REFERENCE.ddim.ddim_sigma(schedule, t, t_next, eta), x)
        alpha_bar, alpha_bar_prev = (
            expand_like(alpha_bar_at(schedule, t), x),
            expand_like(alpha_bar_at(schedule, t_next), x),
        )
        x0_size = (x.abs() + (1 - alpha_bar).sqrt() * eps_size) / alpha_bar.sqrt()
        if clip_denoised:  # eps recomputed from the clamped x̂0
            eps_size = torch.maximum(eps_size, (x.abs() + alpha_bar.sqrt()) / (1 - alpha_bar).sqrt())
        # eq. 12 as √ᾱ_prev·x̂0 + direction·eps, or rearranged in x_t and eps: terms of at most this size.
        return Update(mean, sigma, 2 * alpha_bar_prev.sqrt() * x0_size + eps_size)

    return rule


@dataclass(frozen=True)
class Sampling:
    """What a check asked a sampler for, to hold the run to its update (:func:`verify`).

    Args:
        sampler: the student's function, for the messages (``"p_sample_loop"``).
        example: the check's example (the sampler's arguments).
        timesteps: the timestep of each model call, in call order.
        batch: the number of samples.
        rule: the update (:func:`ddpm_rule`, :func:`ddim_rule`).
        update: the update in words, for the messages (``"the mean of p_θ(x_{t−1} | x_t) + √variance·z"``).
        hint: the concept at stake when the trajectory breaks.
        start: the ``noise=`` passed, or ``None`` when the sampler draws its start (it must look standard normal).
        labels: the labels ``y`` passed, if any; with ``guidance = (s, K)`` a call may hold the batch twice, with
            the labels and the null label ``K``, and the step's answer is ``eps_u + s·(eps_c − eps_u)``.
        returned_tolerance: ``(rtol, atol)`` for the samples returned (default: those of their dtype).
        returned_hint: the hint when the samples returned are not the last update.
    """

    sampler: str
    example: str
    timesteps: list[int]
    batch: int
    rule: Rule
    update: str
    hint: str
    start: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    guidance: tuple[float, int] | None = None
    returned_tolerance: tuple[float, float] | None = None
    returned_hint: str = (
        "samples must come from the model: they are the state the loop ends with, the update of the last model "
        "call, not a state from before it, a prediction made on the way or anything drawn afterwards"
    )


@dataclass(frozen=True)
class _Step:
    """One model evaluation as the update sees it: the state, its timestep, the answer and a bound on its size."""

    x: torch.Tensor
    t: int
    eps: torch.Tensor
    eps_size: torch.Tensor


CHUNK_STEPS = 100
"""The updates of this many steps are computed at once (one batch of every state), bounding the memory used."""


@dataclass(frozen=True)
class LastUpdate:
    """The update of a run's last model call, which the samples returned must be (:meth:`check`)."""

    sampling: Sampling
    shape: tuple[int, ...]
    mean: torch.Tensor
    size: torch.Tensor
    t: int

    def check(self, samples: object) -> None:
        """Fail unless ``samples`` is this update (σ = 0 on the last step of both samplers), to float tolerance."""
        sampling = self.sampling
        if not isinstance(samples, torch.Tensor) or tuple(samples.shape) != self.shape:
            raise CheckFailed(
                f"{sampling.sampler} must return the state its last step makes, shaped like the states the model got",
                example=sampling.example,
                expected=f"a tensor of shape {self.shape}",
                got=f"shape {tuple(samples.shape)}" if isinstance(samples, torch.Tensor) else type(samples).__name__,
                hint=sampling.returned_hint,
            )
        tolerance = sampling.returned_tolerance or tolerances(samples.dtype)
        target = samples.detach().cpu().to(torch.float64)
        rows = torch.ones_like(self.mean, dtype=torch.bool)
        _verify_exact(target, self.mean, self.size, rows, tolerance, self.t, -1, True, sampling)


def verify(model: Denoiser, samples: torch.Tensor | None, sampling: Sampling) -> LastUpdate:
    """Fail unless ``model``'s recorded calls are the trajectory of ``sampling`` and ``samples`` its last update
    (see the module docstring); ``model`` must record its inputs and outputs. With ``samples=None`` the last
    update is returned unchecked, for its :meth:`LastUpdate.check` later."""
    steps = _steps(model.calls, sampling)
    _verify_start(steps[0], sampling)
    totals, previous, last_update = _Totals(), None, None
    for begin in range(0, len(steps), CHUNK_STEPS):
        chunk = range(begin, min(begin + CHUNK_STEPS, len(steps)))
        nexts = [steps[k + 1].t if k + 1 < len(steps) else -1 for k in chunk]
        x = torch.cat([steps[k].x.to(torch.float64) for k in chunk])
        t = torch.cat([torch.full((steps[k].x.shape[0],), steps[k].t, dtype=torch.long) for k in chunk])
        t_next = torch.cat(
            [torch.full((steps[k].x.shape[0],), n, dtype=torch.long) for k, n in zip(chunk, nexts, strict=True)]
        )
        update = sampling.rule(
            x, t, t_next, torch.cat([steps[k].eps for k in chunk]), torch.cat([steps[k].eps_size for k in chunk])
        )
        sigma = update.sigma.expand_as(x)
        row = 0
        for k, t_after in zip(chunk, nexts, strict=True):
            rows = slice(row, row + steps[k].x.shape[0])
            row = rows.stop
            mean, step_sigma = update.mean[rows], sigma[rows]
            size = torch.maximum(mean.abs(), update.size[rows])
            if k == len(steps) - 1:
                if bool((step_sigma > 0).any()):
                    raise ValueError(f"{sampling.sampler}'s last step adds noise: the samples cannot be checked")
                last_update = LastUpdate(sampling, tuple(steps[k].x.shape), mean, size, steps[k].t)
                continue
            target = steps[k + 1].x.detach().to(torch.float64)
            noisy = step_sigma > 0
            tolerance = tolerances(steps[k + 1].x.dtype)
            _verify_exact(target, mean, size, ~noisy, tolerance, steps[k].t, t_after, False, sampling)
            if not bool(noisy.any()):
                previous = None
                continue
            z = (target[noisy] - mean[noisy]) / step_sigma[noisy]
            correlated = previous if previous is not None and previous.shape == z.shape else None
            totals.add(z, correlated)
            if z.numel() >= MIN_VALUES:
                _verify_normal(z, correlated, sampling, steps[k].t, float(step_sigma.max()))
            previous = z
    if totals.count >= MIN_VALUES:
        _verify_totals(totals, sampling)
    if samples is not None:
        last_update.check(samples)
    return last_update


def _steps(calls: list[Call], sampling: Sampling) -> list[_Step]:
    """The model evaluations of the run, one per step; fail with what is wrong with the calls, if anything."""
    expected, batch = sampling.timesteps, sampling.batch
    problem, steps = "", []
    if len(calls) != len(expected):
        problem = f"the model was called {len(calls)} times, expected {len(expected)}"
    for k, (call, step) in enumerate(zip(calls, expected, strict=False) if not problem else ()):
        got, problem = _step(call, step, sampling)
        if problem:
            problem = f"call {k + 1} of {len(expected)}: {problem}"
            break
        steps.append(got)
    if problem:
        shown = ", ".join(map(str, expected[:3])) + (f", ..., {expected[-1]}" if len(expected) > 3 else "")
        raise CheckFailed(
            f"{sampling.sampler} must evaluate the model once per step, {len(expected)} times with t = {shown}, each "
            f"on the whole batch of {batch}: the samples must come from the model",
            example=sampling.example,
            detail=problem,
            hint="samples must come from the model: each step evaluates it once, on the current state of every "
            "sample at that step's timestep, and takes the next state from its answer",
        )
    return steps


def _step(call: Call, step: int, sampling: Sampling) -> tuple[_Step | None, str]:
    """The update's view of one call (its answer combined by guidance if it is a guided call), or a problem."""
    batch = sampling.batch
    t = call.t
    if t.dtype != torch.long or t.dim() != 1 or not bool((t == step).all()):
        values = t.unique().tolist()[:6] if t.numel() else []
        return None, f"the model got t = {values}, expected {step} for every sample"
    x, eps, labels = call.x, call.eps, call.kwargs.get("y")
    if sampling.guidance is not None and call.batch == 2 * batch and isinstance(labels, torch.Tensor):
        scale, null = sampling.guidance
        conditional, unconditional = labels != null, labels == null
        if int(conditional.sum()) != batch or int(unconditional.sum()) != batch:
            return None, f"a guided call of {2 * batch} must hold {batch} labels and {batch} null labels {null}"
        if not torch.equal(x[conditional], x[unconditional]) or not torch.equal(labels[conditional], sampling.labels):
            return None, (
                "the conditional and unconditional halves of a guided call must hold the same states, the "
                "conditional one with the labels y in order"
            )
        eps_c, eps_u = eps[conditional].to(torch.float64), eps[unconditional].to(torch.float64)
        combined = eps_u + scale * (eps_c - eps_u)
        return _Step(x[conditional], step, combined, (1 + abs(scale)) * (eps_c.abs() + eps_u.abs())), ""
    if call.batch != batch:
        return None, f"the model got a batch of {call.batch}, expected {batch}"
    if sampling.labels is not None and not (isinstance(labels, torch.Tensor) and torch.equal(labels, sampling.labels)):
        return None, f"the model got y = {labels!r:.60}, expected the labels y passed to the sampler"
    eps = eps.to(torch.float64)
    return _Step(x, step, eps, eps.abs()), ""


def _verify_start(first: _Step, sampling: Sampling) -> None:
    """The first call must be on the ``noise=`` given, or on noise that looks standard normal."""
    x = first.x.to(torch.float64)
    if sampling.start is None:
        problem = _normal_problem(x.numel(), float(x.mean()), float((x * x).mean()), None)
        if problem is not None:
            expected, got = problem
            raise CheckFailed(
                f"{sampling.sampler}: the first model call must be on standard normal noise x_T ~ N(0, I)",
                example=sampling.example,
                expected=f"for its {x.numel()} values {expected}",
                got=got,
                hint="samples must come from the model, from the starting noise on: the loop starts from "
                "unscaled standard normal noise drawn from the generator",
            )
        return
    start = sampling.start.to(torch.float64)
    rtol, atol = tolerances(first.x.dtype)
    if x.shape != start.shape or not bool(((x - start).abs() <= atol + rtol * start.abs()).all()):
        difference = f"largest difference {float((x - start).abs().max()):.3g}" if x.shape == start.shape else ""
        raise CheckFailed(
            f"{sampling.sampler}: the first model call must be on the starting noise noise= the sampler was given",
            example=sampling.example,
            detail=difference or f"the model got x_t of shape {tuple(x.shape)}, the noise has {tuple(start.shape)}",
            hint="samples must come from the model, from the starting noise on: start the loop from noise= as it "
            "is (when given), and evaluate the model on it first",
        )


def _verify_exact(
    target: torch.Tensor,
    mean: torch.Tensor,
    size: torch.Tensor,
    rows: torch.Tensor,
    tolerance: tuple[float, float],
    t: int,
    t_next: int,
    last: bool,
    sampling: Sampling,
) -> None:
    """Where σ = 0 (``rows``) the next state must be the update's ``mean``, within ``tolerance`` of ``size``."""
    if not bool(rows.any()):
        return
    rtol, atol = tolerance
    bad = rows & ((target - mean).abs() > atol + rtol * size)
    if not bool(bad.any()):
        return
    index = tuple(int(i) for i in torch.nonzero(bad)[0])
    got, expected = target[index].item(), mean[index].item()
    detail = (
        f"{'the samples returned' if last else 'the next model call got'}: at index {index} {got:.6g}, expected "
        f"{expected:.6g} (difference {abs(got - expected):.3g}, tolerance {atol + rtol * size[index].item():.3g}; "
        f"{int(bad.sum())} of {int(rows.sum())} values differ)"
    )
    what = (
        f"{sampling.sampler} must return the state its last step (from t = {t}) makes from the model's last "
        f"answer: {sampling.update}, with no noise on the last step"
        if last
        else f"{sampling.sampler}: the state after the step from t = {t} (the x_t of the next model call) must be "
        f"{sampling.update} from the model's answer at t = {t}, here with no noise (σ = 0)"
    )
    hint = sampling.returned_hint if last else sampling.hint
    raise CheckFailed(what, example=sampling.example, detail=detail, hint=hint)


def _normal_bounds(n: int) -> tuple[float, tuple[float, float]]:
    """For ``n`` standard normals: the bound on their mean, and the interval of their mean square (Wilson–Hilferty:
    ``(χ²_n/n)^(1/3)`` is normal with mean ``1 − 2/(9n)`` and variance ``2/(9n)``), at :data:`STANDARD_ERRORS`."""
    c = 2 / (9 * n)
    low, high = (1 - c - STANDARD_ERRORS * math.sqrt(c)), (1 - c + STANDARD_ERRORS * math.sqrt(c))
    return STANDARD_ERRORS / math.sqrt(n), (max(low, 0.0) ** 3, high**3)


def _normal_problem(n: int, mean: float, square: float, correlation: float | None) -> tuple[str, str] | None:
    """``(expected, got)`` if the statistics of ``n`` residuals do not look like independent standard normals."""
    mean_bound, (low, high) = _normal_bounds(n)
    ok = abs(mean) <= mean_bound and low <= square <= high
    expected = f"a mean within ±{mean_bound:.3g}, a mean square within [{low:.4g}, {high:.4g}]"
    got = f"a mean of {mean:.4g}, a mean square of {square:.4g}"
    if correlation is not None:
        ok = ok and abs(correlation) <= mean_bound
        expected += f" and a correlation with the previous step's z within ±{mean_bound:.3g}"
        got += f" and a correlation of {correlation:.4g}"
    return None if ok else (expected, got)


def _verify_normal(z: torch.Tensor, previous: torch.Tensor | None, sampling: Sampling, t: int, sigma: float) -> None:
    """The residuals ``z`` of the step from ``t`` (and their products with the previous step's) must look like
    independent standard normals."""
    correlation = None if previous is None else float((z * previous).mean())
    problem = _normal_problem(z.numel(), float(z.mean()), float((z * z).mean()), correlation)
    if problem is None:
        return
    expected, got = problem
    raise CheckFailed(
        f"{sampling.sampler}: the step from t = {t} must move to {sampling.update}: the residual "
        f"z = (x_next − mean)/σ (σ = {sigma:.3g}) must be standard normal noise drawn afresh for the step",
        example=sampling.example,
        expected=f"for its {z.numel()} values {expected}",
        got=got,
        detail="x_next is the x_t of the next model call",
        hint=sampling.hint,
    )


class _Totals:
    """The residuals' sums over every step with noise: their count, sum and sum of squares, and the count and sum
    of their products with the previous step's residuals."""

    def __init__(self) -> None:
        self.count, self.total, self.squares = 0, 0.0, 0.0
        self.pairs, self.products = 0, 0.0

    def add(self, z: torch.Tensor, previous: torch.Tensor | None) -> None:
        self.count += z.numel()
        self.total += float(z.sum())
        self.squares += float((z * z).sum())
        if previous is not None:
            self.pairs += z.numel()
            self.products += float((z * previous).sum())


def _verify_totals(totals: _Totals, sampling: Sampling) -> None:
    """Over every step with noise, the residuals must look like independent standard normals."""
    mean_bound, (low, high) = _normal_bounds(totals.count)
    mean, square = totals.total / totals.count, totals.squares / totals.count
    expected = f"over {totals.count} values a mean within ±{mean_bound:.3g}"
    expected += f", a mean square within [{low:.4g}, {high:.4g}]"
    got = f"a mean of {mean:.4g}, a mean square of {square:.4g}"
    ok = abs(mean) <= mean_bound and low <= square <= high
    if totals.pairs >= MIN_VALUES:
        bound, correlation = STANDARD_ERRORS / math.sqrt(totals.pairs), totals.products / totals.pairs
        expected += f" and a correlation of successive steps' z within ±{bound:.3g}"
        got += f" and a correlation of {correlation:.4g}"
        ok = ok and abs(correlation) <= bound
    if ok:
        return
    raise CheckFailed(
        f"{sampling.sampler}: over all its steps with noise, the residuals z = (x_next − mean)/σ of the moves to "
        f"{sampling.update} must be independent standard normal noise",
        example=sampling.example,
        expected=expected,
        got=got,
        hint=sampling.hint,
    )


def expect_loop_plumbing(loop, name: str, **kwargs) -> None:
    """A sampling ``loop`` draws nothing from (and does not reseed) the global random state, ``progress=True``
    only shows a bar (the same samples as without it), and a ``noise=`` not of ``shape`` is refused with
    ``ValueError``."""
    spec, shape = ScheduleSpec("linear", 6), (3, 2)
    example = f"{name}(model, schedule={spec!r}, shape={shape}, generator=torch.Generator().manual_seed(4)"
    example += "".join(f", {key}={value!r}" for key, value in kwargs.items()) + ")"

    def run(progress: bool) -> object:
        generator = torch.Generator().manual_seed(4)
        return loop(SmoothDenoiser(6), spec.build(), shape, generator=generator, progress=progress, **kwargs)

    plain = expect_global_rng_untouched(
        lambda: run(False),
        what=f"{name} changed torch's global random state",
        example=example,
        hint="every random number comes from `generator`; the global random state is neither drawn from nor reseeded",
    )
    shown = run(True)
    expect(
        isinstance(plain, torch.Tensor) and isinstance(shown, torch.Tensor) and torch.equal(plain, shown),
        f"{name}(..., progress=True) must return the same samples as without the progress bar",
        example=example,
        hint="the progress bar only displays the steps: the loop, its draws and its result are the same",
    )
    options = "".join(f", {key}={value!r}" for key, value in kwargs.items())
    for noise_shape in ((2, 2), (3, 3)):  # fewer samples than `shape`, then more features
        expect_value_error(
            lambda noise_shape=noise_shape: loop(
                SmoothDenoiser(6), spec.build(), shape, noise=torch.zeros(noise_shape), **kwargs
            ),
            f"{name} must raise ValueError for a noise= whose shape is not `shape`",
            f"{name}(model, schedule={spec!r}, shape={shape}, noise=torch.zeros({noise_shape}){options})",
        )
