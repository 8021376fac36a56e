"""Hidden checks of part 4 (losses): ``normal_kl``, the simple loss ``ddpm_loss`` and the bound's ``vlb_term``.

The denoisers handed to the student's code (:mod:`autograder.checks.denoisers`) are deterministic
functions of their inputs that record how they were called, so a check can read the ``t`` and keyword
arguments the student's loss passed. Randomness is judged by its distribution (the range and coverage of the
drawn ``t``, the second moment of the drawn noise) and by its plumbing (one generator seed, one
loss; the global RNG untouched), never by the order of the draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autograder.checks.denoisers import AffineDenoiser, Constant, KnowsX0
from autograder.checks.framework import (
    GRADING,
    CheckFailed,
    check,
    expect,
    expect_close,
    expect_global_rng_untouched,
    expect_tensor,
    rtol_for,
)
from autograder.checks.numerics import (
    MC_SAMPLES,
    MC_STANDARD_ERRORS,
    ScalarGaussians,
    binomial_threshold,
    float32_slack,
    monte_carlo_kl,
)
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import WIDE_DATA, Case, ScheduleSpec, cases, shapes
from autograder.isolation.errors import StudentError
from autograder.isolation.submission import Submission
from autograder.reference import load_reference

REFERENCE = load_reference()
ref = REFERENCE.losses


def bias(x_t: torch.Tensor) -> torch.Tensor:
    """A fixed, input-dependent error added to a perfect denoiser."""
    return 0.5 * torch.sin(3 * x_t)


# --- normal_kl ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianPair:
    """Two diagonal Gaussians: means of spread 2 and log-variances in [−4, 3], of ``shape`` and ``dtype``."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    seed: int

    def tensors(self) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(self.seed)
        means = 2 * torch.randn((2, *self.shape), generator=generator, dtype=torch.float64)
        logvars = torch.rand((2, *self.shape), generator=generator, dtype=torch.float64) * 7 - 4
        return tuple(x.to(self.dtype) for x in (means[0], logvars[0], means[1], logvars[1]))

    def __repr__(self) -> str:
        return f"Gaussians of shape {self.shape}, {str(self.dtype).removeprefix('torch.')}, seed={self.seed}"


GAUSSIAN_PAIRS = st.builds(
    GaussianPair, shapes(), st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**16)
)


def kl_terms(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """The size of the terms of the closed form, to scale the tolerance (they cancel when KL ≈ 0)."""
    return 0.5 * (
        logvar1.abs() + logvar2.abs() + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) + 1
    )


KL_HINT = (
    "KL = ½·(logvar2 − logvar1 + exp(logvar1 − logvar2) + (mean1 − mean2)²·exp(−logvar2) − 1): the ½ applies to "
    "every term; logvar is a log-variance (not a variance or a standard deviation); KL(p1 ‖ p2) is not symmetric"
)


@check("losses", 1.5, "normal_kl is ½(logvar2 − logvar1 + e^(logvar1−logvar2) + (mean1 − mean2)²·e^(−logvar2) − 1)")
def normal_kl_closed_form(sub: Submission) -> None:
    normal_kl = sub.function("losses", "normal_kl")

    @GRADING
    @given(GAUSSIAN_PAIRS)
    def prop(pair: GaussianPair) -> None:
        args = pair.tensors()
        expect_close(
            normal_kl(*args),
            ref.normal_kl(*args),
            what="normal_kl(mean1, logvar1, mean2, logvar2) must be KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)), "
            "elementwise, in nats",
            hint=KL_HINT,
            example=repr(pair),
            scale=kl_terms(*args),
        )

    prop()


PARAMETER = st.floats(-2, 2, allow_nan=False)


@check("losses", 1.5, "normal_kl agrees with the Monte Carlo estimate E_{x~p1}[log p1(x) − log p2(x)]")
def normal_kl_monte_carlo(sub: Submission) -> None:
    normal_kl = sub.function("losses", "normal_kl")

    @GRADING
    @given(st.builds(ScalarGaussians, PARAMETER, PARAMETER, PARAMETER, PARAMETER))
    @example(ScalarGaussians(0.0, 0.0, 1.0, 0.0))
    @example(ScalarGaussians(0.5, -1.0, -0.5, 1.0))
    def prop(g: ScalarGaussians) -> None:
        estimate, standard_error = monte_carlo_kl(g)
        tolerance = MC_STANDARD_ERRORS * standard_error + 1e-9
        args = [torch.tensor(v, dtype=torch.float64) for v in (g.mean1, g.logvar1, g.mean2, g.logvar2)]
        expect_close(
            normal_kl(*args),
            torch.tensor(estimate, dtype=torch.float64),
            what=f"normal_kl must match the Monte Carlo estimate of KL(p1 ‖ p2) = E_p1[log p1(x) − log p2(x)] from "
            f"{MC_SAMPLES} samples of p1, within {MC_STANDARD_ERRORS:g} standard errors (± {tolerance:.2g})",
            hint=KL_HINT,
            example=repr(g),
            rtol=0.0,
            atol=tolerance,
        )

    prop()


@dataclass(frozen=True)
class BroadcastKL:
    """``normal_kl`` arguments of mixed shapes: each 0-dim, a row ``(D,)``, a column ``(B, 1)`` or full ``(B, D)``."""

    forms: tuple[str, str, str, str]
    B: int
    D: int
    dtype: torch.dtype
    seed: int

    def tensors(self) -> list[torch.Tensor]:
        full = GaussianPair((self.B, self.D), self.dtype, self.seed).tensors()
        pick = {"scalar": lambda x: x[0, 0], "row": lambda x: x[0], "column": lambda x: x[:, :1], "full": lambda x: x}
        return [pick[form](x).clone() for form, x in zip(self.forms, full, strict=True)]

    def __repr__(self) -> str:
        shapes_ = {"scalar": "()", "row": f"({self.D},)", "column": f"({self.B}, 1)", "full": f"({self.B}, {self.D})"}
        names = ("mean1", "logvar1", "mean2", "logvar2")
        args = ", ".join(f"{n} of shape {shapes_[f]}" for n, f in zip(names, self.forms, strict=True))
        return f"normal_kl({args}), {str(self.dtype).removeprefix('torch.')}, seed={self.seed}"


FORM = st.sampled_from(["scalar", "row", "column", "full"])


@check("losses", 0.5, "normal_kl is 0 between equal Gaussians and broadcasts 0-dim, row, column and full arguments")
def normal_kl_zero_and_broadcasting(sub: Submission) -> None:
    normal_kl = sub.function("losses", "normal_kl")

    @GRADING
    @given(
        st.builds(
            BroadcastKL,
            st.tuples(FORM, FORM, FORM, FORM),
            st.integers(1, 4),
            st.integers(2, 4),
            st.sampled_from([torch.float32, torch.float64]),
            st.integers(0, 2**16),
        )
    )
    def prop(case: BroadcastKL) -> None:
        mean1, logvar1, mean2, logvar2 = case.tensors()
        expect_close(
            normal_kl(mean1, logvar1, mean1.clone(), logvar1.clone()),
            torch.zeros_like(torch.broadcast_tensors(mean1, logvar1)[0]),
            what="normal_kl(mean, logvar, mean, logvar) must be 0: a distribution has no divergence from itself",
            hint="the terms must cancel: logvar − logvar = 0, exp(0) = 1, (mean − mean)² = 0, and the − 1",
            example=repr(case) + " (both Gaussians the first one)",
        )
        expected = ref.normal_kl(mean1, logvar1, mean2, logvar2)
        expect_close(
            normal_kl(mean1, logvar1, mean2, logvar2),
            expected,
            what="normal_kl must broadcast its arguments against each other, elementwise (no reduction)",
            hint="use only elementwise tensor operations (torch.exp, not math.exp; no .sum() or .mean()); the "
            "result has the broadcast shape of the four arguments",
            example=repr(case),
            scale=kl_terms(*torch.broadcast_tensors(mean1, logvar1, mean2, logvar2)),
        )

    prop()


# --- ddpm_loss ---------------------------------------------------------------------------------------------------


def labels_for(case: Case) -> torch.Tensor:
    return torch.arange(case.shape[0], dtype=torch.long) % 3 + 1


def loss_scale(noise: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """The size of the squared-error terms, to scale the tolerance of a mean of squares."""
    return ((noise.abs() + prediction.abs()) ** 2).mean()


@check("losses", 2, "ddpm_loss with given t and noise is mean ‖noise − model(q_sample(x0, t, noise), t, **kw)‖²")
def ddpm_loss_given_t_and_noise(sub: Submission) -> None:
    ddpm_loss = sub.function("losses", "ddpm_loss")

    @GRADING
    @pinned_seed("ddpm_loss_given_t_and_noise")
    @given(cases())
    @example(WIDE_DATA)
    def prop(case: Case) -> None:
        schedule, x0, t, noise, y = case.schedule, case.data(), case.timesteps(), case.randn(), labels_for(case)
        model = AffineDenoiser(schedule.T)
        got = ddpm_loss(model, schedule, x0, t=t, noise=noise, y=y)
        what = (
            "ddpm_loss(model, schedule, x0, t=t, noise=noise, y=y) must be the mean over every element of "
            "(noise − model(q_sample(schedule, x0, t, noise), t, y=y))²"
        )
        expect(
            len(model.calls) > 0 and all("y" in c.kwargs and torch.equal(c.kwargs["y"], y) for c in model.calls),
            what,
            example=repr(case),
            detail=f"the model was called {len(model.calls)} time(s), with keyword arguments "
            f"{[sorted(c.kwargs) for c in model.calls]}; expected y={y.tolist()}",
            hint="the extra keyword arguments (model_kwargs, such as labels y=) go on to the model unchanged",
        )
        expect(
            all(isinstance(c.t, torch.Tensor) and torch.equal(c.t, t) for c in model.calls),
            what,
            example=repr(case),
            detail=f"the model got t = {[c.t for c in model.calls]}, expected {t.tolist()}",
            hint="give the model the same 0-based t that made x_t (a long tensor of shape (B,))",
        )
        x_t = REFERENCE.forward.q_sample(schedule, x0, t, noise)
        prediction = AffineDenoiser(schedule.T)(x_t, t, y=y)
        expect_close(
            got,
            ((noise - prediction) ** 2).mean(),
            what=what,
            hint="the target is the noise (not x0); x_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·noise; average over every element "
            "(.mean(), not a sum over pixels); the result is a 0-dim tensor in x0's dtype",
            example=repr(case),
            scale=loss_scale(noise, prediction),
            rtol=rtol_for(case),
        )

    prop()


@check("losses", 1, "ddpm_loss is 0 for a model that recovers the true noise, and mean(δ²) when it is off by δ")
def ddpm_loss_minimised_by_true_noise(sub: Submission) -> None:
    ddpm_loss = sub.function("losses", "ddpm_loss")

    @GRADING
    @given(cases())
    def prop(case: Case) -> None:
        schedule, x0, t, noise = case.schedule, case.data(), case.timesteps(), case.randn()
        # The perfect denoiser reads the noise off x_t with x0 known; an error δ(x_t) costs exactly mean(δ²).
        x_t = REFERENCE.forward.q_sample(schedule, x0, t, noise)
        expect_close(
            ddpm_loss(KnowsX0(schedule, x0), schedule, x0, t=t, noise=noise),
            torch.zeros((), dtype=case.dtype),
            what="ddpm_loss must be 0 when the model predicts exactly the noise that made x_t",
            hint="compare the model's output with the same noise used to make x_t = q_sample(x0, t, noise), "
            "and give the model that x_t and t",
            example=repr(case),
        )
        delta = bias(x_t)
        # The model reads the noise back by dividing by √(1 − ᾱ_t): a correct float32 x_t whose 1 − ᾱ_t was
        # formed in float32 is off by ~2⁻²⁴/(1 − ᾱ_t) relative, which the loss sees through the cross term 2δ·e.
        slack = float32_slack(case, schedule, t, x0)
        expect_close(
            ddpm_loss(KnowsX0(schedule, x0, bias), schedule, x0, t=t, noise=noise),
            (delta**2).mean(),
            what="ddpm_loss must be mean(δ²) when the model's prediction is the true noise + δ",
            hint="the loss is the mean of the squared error over every element: (noise − prediction)².mean()",
            example=repr(case),
            scale=(2 * delta.abs() * (noise.abs() + x0.abs()) * slack).mean(),
            rtol=rtol_for(case),
        )

    prop()


DRAW_SCHEDULES = (ScheduleSpec("linear", 1), ScheduleSpec("cosine", 2), ScheduleSpec("random", 3, (0.1, 0.3, 0.5)))
DRAW_SEEDS = range(24)
DRAW_SHAPE = (8, 4, 4)


@check(
    "losses",
    1.5,
    "without t and noise, ddpm_loss draws t ~ U{0..T−1} (long, (B,)) and noise ~ N(0, I) for x_t and target",
)
def ddpm_loss_draws_t_and_noise(sub: Submission) -> None:
    """Distributions, not draw order. The model knows x0, so it reads the noise in x_t back exactly: its loss
    must be 0 (one noise for x_t and the target, one t for x_t and the model), and the noise it reads, pooled
    over the calls, must have mean 0 and second moment 1 within 5 standard errors. The t it receives must be
    valid and cover 0 and T − 1, and drawn independently per sample: of the disjoint pairs of samples of a batch
    (``(0, 1), (2, 3), ...``), a share ``1/T`` draws equal timesteps, so the count of equal pairs is binomial
    and above :func:`~autograder.checks.numerics.binomial_threshold` a correct implementation fails with
    probability ≤ 1e-9 per schedule (≤ 2e-9 for the two with ``T ≥ 2``; one t for the whole batch makes every
    pair equal). Each argument given alone is used as given: with only ``t`` the model gets that ``t``, with only
    ``noise`` the noise in ``x_t`` is that noise."""
    ddpm_loss = sub.function("losses", "ddpm_loss")
    x0 = (torch.rand(DRAW_SHAPE, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 2 - 1).float()
    for spec in DRAW_SCHEDULES:
        schedule, example_ = spec.build(), f"schedule={spec!r}, x0 of shape {DRAW_SHAPE}, float32"
        seen: set[int] = set()
        noises, batches = [], []
        for seed in DRAW_SEEDS:
            knows = KnowsX0(schedule, x0, record_outputs=True)
            call = f"ddpm_loss(model, schedule, x0, generator=torch.Generator().manual_seed({seed}))"
            loss = ddpm_loss(knows, schedule, x0, generator=torch.Generator().manual_seed(seed))
            what = f"{call} must draw t ~ U{{0, ..., T−1}} and noise ~ N(0, I) itself"
            for c in knows.calls:
                expect(
                    bool(((c.t >= 0) & (c.t < schedule.T)).all()),
                    what,
                    example=example_,
                    detail=f"the model got t = {c.t.tolist()}, outside 0..{schedule.T - 1}",
                    hint="the 0-based timesteps are 0..T−1: an index T or above, or below 0, is outside the schedule",
                )
                seen.update(c.t.tolist())
                noises.append(c.eps)
            batches.append(torch.cat([c.t for c in knows.calls]) if knows.calls else torch.zeros(0, dtype=torch.long))
            got = expect_tensor(
                loss, like=torch.zeros(()), what=what, hint="the loss is a 0-dim tensor", example=example_
            )
            expect(
                bool(torch.isfinite(got)),
                what,
                example=example_,
                detail=f"the loss is not finite: {got.item()}",
                hint="a model that knows x0 has loss 0: a NaN or inf comes from coefficients taken outside the "
                "schedule (t must index 0..T−1) or from noise that is not a standard normal draw",
            )
            expect_close(
                got,
                torch.zeros(()),
                what=what + ": a model that knows x0 (so it recovers the noise in x_t exactly) must get loss 0",
                hint="draw the noise once and use it both to make x_t and as the target; pass the model the same t "
                "that made x_t",
                example=example_,
                atol=1e-6,
            )
        missing = {0, schedule.T - 1} - seen
        expect(
            not missing,
            "ddpm_loss must draw every t in 0..T−1",
            example=f"{example_}, {len(DRAW_SEEDS)} calls with batch {DRAW_SHAPE[0]}",
            detail=f"never drew t = {sorted(missing)} (drew {sorted(seen)})",
            hint="the 0-based timesteps are 0..T−1, both ends included: mind whether the draw excludes its upper bound",
        )
        if schedule.T > 1:
            pairs = torch.cat([b[: len(b) // 2 * 2].reshape(-1, 2) for b in batches])
            equal, limit = int((pairs[:, 0] == pairs[:, 1]).sum()), binomial_threshold(len(pairs), 1 / schedule.T)
            expect(
                equal < limit,
                "ddpm_loss must draw one t per sample, independently: t ~ U{0..T−1} for each of the B samples",
                example=f"{example_}, {len(DRAW_SEEDS)} calls with batch {DRAW_SHAPE[0]}",
                detail=f"{equal} of {len(pairs)} pairs of samples (0 and 1, 2 and 3, ...) got the same t; "
                f"independent draws give about {len(pairs) / schedule.T:.0f} (at least {limit}: probability ≤ 1e-9)",
                hint="the batch's samples are independent training examples: each gets a timestep of its own, "
                "not one timestep shared by the whole batch",
            )
        pooled = torch.cat([n.flatten() for n in noises]).to(torch.float64)
        mean, mean_square, n = float(pooled.mean()), float((pooled**2).mean()), pooled.numel()
        expect(
            abs(mean) <= 5 / math.sqrt(n) and abs(mean_square - 1) <= 5 * math.sqrt(2 / n),
            "ddpm_loss must draw noise ~ N(0, I)",
            example=example_,
            expected=f"mean 0 ± {5 / math.sqrt(n):.3f} and mean square 1 ± {5 * math.sqrt(2 / n):.3f}",
            got=f"mean {mean:.4f} and mean square {mean_square:.4f} (the noise in x_t over {len(DRAW_SEEDS)} calls, "
            f"{n} values)",
            hint="the noise is standard normal (not uniform), of x0's shape, drawn from the generator anew "
            "for every call",
        )

    expect_given_argument_used(ddpm_loss, x0)


def expect_given_argument_used(ddpm_loss, x0: torch.Tensor) -> None:
    """``ddpm_loss`` given only ``t``, or only ``noise``, draws the other and uses the given one as it is."""
    spec = DRAW_SCHEDULES[-1]
    schedule = spec.build()
    t = torch.arange(DRAW_SHAPE[0], dtype=torch.long) % schedule.T
    noise = torch.randn(DRAW_SHAPE, generator=torch.Generator().manual_seed(11))
    for name, value in (("t", t), ("noise", noise)):
        knows = KnowsX0(schedule, x0, record_outputs=True)
        ddpm_loss(knows, schedule, x0, generator=torch.Generator().manual_seed(5), **{name: value})
        used = [c.t for c in knows.calls] if name == "t" else [c.eps for c in knows.calls]
        used = torch.cat(used) if used else None
        expect(
            used is not None
            and used.shape == value.shape
            and (torch.equal(used, value) if name == "t" else bool(torch.allclose(used, value, atol=1e-4))),
            f"ddpm_loss given {name}= alone must use that {name} and draw only the missing "
            f"{'noise' if name == 't' else 't'}",
            example=f"ddpm_loss(model, schedule={spec!r}, x0 of shape {DRAW_SHAPE}, {name}=given, "
            "generator=torch.Generator().manual_seed(5))",
            detail=f"the {'model got t' if name == 't' else 'noise in x_t was'} different from the {name} given",
            hint="t and noise are optional each on its own: draw each one only when it is missing (None), and never "
            "replace an argument the caller gave",
        )


@check("losses", 0.5, "ddpm_loss draws from its generator: same seed, same loss; the global RNG is never touched")
def ddpm_loss_uses_generator(sub: Submission) -> None:
    ddpm_loss = sub.function("losses", "ddpm_loss")
    spec = ScheduleSpec("linear", 10)
    schedule = spec.build()
    x0 = (torch.rand(DRAW_SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1).float()
    model = AffineDenoiser(schedule.T)
    example_ = f"schedule={spec!r}, x0 of shape {DRAW_SHAPE}, float32"
    losses = []
    for seed in (0, 0, 1, 2):
        call = f"ddpm_loss(model, schedule, x0, generator=torch.Generator().manual_seed({seed}))"
        losses.append(
            expect_global_rng_untouched(
                lambda seed=seed: ddpm_loss(model, schedule, x0, generator=torch.Generator().manual_seed(seed)),
                what=f"{call} changed torch's global random state",
                example=example_,
                hint="t and noise come from the given generator only; the global random state is neither used nor "
                "reseeded",
            )
        )
    expect(
        isinstance(losses[0], torch.Tensor) and torch.equal(losses[0], losses[1]),
        "ddpm_loss with two generators of the same seed must give the same loss",
        example=f"{example_}, seed 0 twice",
        got=f"{losses[0]!r:.60} and {losses[1]!r:.60}",
        hint="draw t and noise only from the given generator",
    )
    expect(
        len({float(x) for x in losses[1:]}) == 3,
        "ddpm_loss with generators of different seeds must draw different t and noise",
        example=f"{example_}, seeds 0, 1, 2",
        got=f"losses {[float(x) for x in losses[1:]]}",
        hint="use the given generator; do not reseed",
    )


# --- vlb_term ----------------------------------------------------------------------------------------------------


def vlb_cases() -> st.SearchStrategy[Case]:
    """Cases with ``t ≥ 1`` and data of at least two dimensions ``(B, D, ...)`` (a ``(B,)`` batch gets ``D = 2``;
    :func:`vlb_term_formula` tries data of shape ``(B,)`` as an explicit example)."""
    return cases(min_T=2, min_t=1).map(
        lambda c: c if len(c.shape) > 1 else Case(c.spec, (*c.shape, 2), c.dtype, c.t, c.seed)
    )


def vlb_inputs(case: Case):
    schedule, x0, t, noise = case.schedule, case.data(), case.timesteps(), case.randn()
    return schedule, x0, REFERENCE.forward.q_sample(schedule, x0, t, noise), t, noise


@check("losses", 1.5, "vlb_term is KL(q(x_{t−1}|x_t, x0) ‖ p_θ(x_{t−1}|x_t)) with β̃_t, averaged per sample, in nats")
def vlb_term_formula(sub: Submission) -> None:
    vlb_term = sub.function("losses", "vlb_term")

    @GRADING
    @pinned_seed("vlb_term_formula")
    @given(vlb_cases())
    @example(Case(ScheduleSpec("linear", 10), (3,), torch.float64, (1, 5, 9), 0))  # data of shape (B,)
    def prop(case: Case) -> None:
        schedule, x0, x_t, t, _ = vlb_inputs(case)
        got = vlb_term(schedule, KnowsX0(schedule, x0, bias, batch=x_t), x0, x_t, t)
        # Expected in float64 from the same inputs. KL = (μ̃ − μ_θ)²/(2β̃) once the log terms cancel, so a
        # float32 answer is off by ~ |Δμ|·(|μ̃| + |μ_θ|)/β̃ times the rounding of the means.
        x0_, x_t_ = x0.to(torch.float64), x_t.to(torch.float64)
        expected = ref.vlb_term(schedule, KnowsX0(schedule, x0_, bias), x0_, x_t_, t).to(case.dtype)
        true_mean, variance, _ = REFERENCE.posterior.q_posterior_mean_variance(schedule, x0_, x_t_, t)
        model_mean = REFERENCE.ddpm.p_mean_variance(
            KnowsX0(schedule, x0_, bias), schedule, x_t_, t, clip_denoised=False
        )["mean"]
        size = (true_mean - model_mean).abs() * (true_mean.abs() + model_mean.abs()) / variance
        slack = float32_slack(case, schedule, t - 1, x0)
        expect_close(
            got,
            expected,
            what="vlb_term(schedule, model, x0, x_t, t) must be normal_kl(posterior mean, log β̃_t, model mean, "
            "log β̃_t), averaged over the non-batch dimensions: shape (B,), in nats",
            hint="the model's step uses the fixed-small variance β̃_t (not β_t) and no clipping of x̂0 "
            "(clip_denoised=False); take the mean over non-batch dims (not the sum), and use natural logs (nats, "
            "not bits: no division by log 2)",
            example=repr(case),
            scale=(size * slack).reshape(len(t), -1).mean(1),
            rtol=rtol_for(case),
        )

    prop()


@st.composite
def cases_with_t0(draw) -> Case:
    """A case whose batch holds ``t = 0`` at a drawn position, the other samples at ``t ≥ 1``."""
    case = draw(vlb_cases())
    position = draw(st.integers(0, case.shape[0] - 1))
    t = tuple(0 if i == position else s for i, s in enumerate(case.t))
    return Case(case.spec, case.shape, case.dtype, t, case.seed)


@check("losses", 0.5, "vlb_term raises ValueError when any t is 0 (L_0 is the decoder's term, not a KL)")
def vlb_term_rejects_t0(sub: Submission) -> None:
    vlb_term = sub.function("losses", "vlb_term")

    @settings(parent=GRADING, max_examples=10)
    @pinned_seed("vlb_term_rejects_t0")
    @given(cases_with_t0())
    @example(Case(ScheduleSpec("linear", 5), (3, 2), torch.float32, (4, 2, 0), 0))
    def prop(case: Case) -> None:
        schedule, x0, x_t, t, _ = vlb_inputs(case)
        what = "vlb_term must raise ValueError when any t == 0"
        vlb_term(schedule, KnowsX0(schedule, x0, batch=x_t), x0, x_t, t.clamp(min=1))  # t ≥ 1 must work (no credit for
        # rejecting everything); a StudentError from this call fails the check with its own message
        try:
            vlb_term(schedule, KnowsX0(schedule, x0, batch=x_t), x0, x_t, t)
        except StudentError as error:
            if error.error_type == "ValueError":
                return
            raise CheckFailed(
                what,
                example=repr(case),
                expected="ValueError",
                got=f"{error.error_type}: {error.message}",
                hint="the promised error is ValueError, raised by your own check of t",
            ) from None
        raise CheckFailed(
            what,
            example=repr(case),
            expected="ValueError",
            got="no error: it returned a value",
            hint="check every sample of the batch: one t = 0 anywhere is enough to refuse",
        )

    prop()


@check("losses", 0.5, "vlb_term is 0 when the model predicts exactly the noise that made x_t")
def vlb_term_zero_for_true_noise(sub: Submission) -> None:
    vlb_term = sub.function("losses", "vlb_term")

    @GRADING
    @given(vlb_cases())
    def prop(case: Case) -> None:
        schedule, x0, x_t, t, noise = vlb_inputs(case)
        expect_close(
            vlb_term(schedule, Constant(noise, batch=x_t), x0, x_t, t),
            torch.zeros(len(t), dtype=case.dtype),
            what="vlb_term must be 0 for a model whose eps is the true noise: then p_θ's step is exactly q's posterior",
            hint="both sides use the same variance β̃_t (the model's is the fixed-small one, not β_t) and the model's "
            "mean is the posterior mean at x̂0 = predict_x0_from_eps(x_t, t, eps), at the same t",
            example=repr(case),
        )

    prop()
