"""Hidden checks of part 8 (guidance): label dropout, classifier-free guidance (Ho & Salimans 2022) and
classifier guidance (Dhariwal & Nichol 2021), and CFG sampling with the exact class-conditional
denoiser of a Gaussian mixture.

Only the student's ``diffusion.guidance`` is graded here; schedules, the DDIM sampler and every
denoiser come from the reference (part isolation).
"""

from __future__ import annotations

import math

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autograder.checks.denoisers import MixtureOracle, SmoothDenoiser, hidden_mixture, mixture_truth
from autograder.checks.framework import (
    GRADING,
    CheckFailed,
    check,
    expect,
    expect_close,
    expect_global_rng_untouched,
    expect_tensor,
    single_threaded,
)
from autograder.checks.numerics import binomial_threshold
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import Case, ScheduleSpec, cases
from autograder.isolation.submission import Submission
from autograder.reference import load_reference
from autograder.scoring.energy import energy_distance

REFERENCE = load_reference()
extract = REFERENCE.schedules.extract


def _labels(case: Case, num_classes: int) -> torch.Tensor:
    """Labels in ``0..num_classes−1`` for the case's batch, from its seed."""
    generator = torch.Generator().manual_seed(case.seed * 1009 + 900)
    return torch.randint(0, num_classes, (case.shape[0],), generator=generator)


@check("guidance", 1.5, "drop_labels: labels kept or replaced by the null label; p = 0 keeps all, p = 1 drops all")
def drop_labels_contract(sub: Submission) -> None:
    drop_labels = sub.function("guidance", "drop_labels")

    @GRADING
    @pinned_seed("drop_labels_contract")
    @given(
        st.integers(1, 64),
        st.integers(1, 12),
        st.sampled_from([0.0, 1.0, 0.1, 0.5, 0.9]),
        st.integers(0, 2**16),
    )
    # torch.rand(32) from generator seed 194552 draws exactly 0.0 at index 25 (a float32 uniform is 0 with
    # probability 2^-24): p_uncond = 0 must keep that label too, which a comparison u <= p would drop.
    @example(32, 10, 0.0, 194551)
    def prop(n: int, num_classes: int, p: float, seed: int) -> None:
        y = torch.randint(0, num_classes, (n,), generator=torch.Generator().manual_seed(seed))
        example = (
            f"drop_labels(y of {n} labels in 0..{num_classes - 1}, p_uncond={p}, num_classes={num_classes}), "
            f"generator seed {seed + 1}"
        )
        # A y changed in place fails the call itself (the grader's arguments stay the grader's).
        got = drop_labels(y, p, num_classes, generator=torch.Generator().manual_seed(seed + 1))
        got = expect_tensor(
            got, like=y, what="drop_labels must return long labels shaped like y", hint=LABELS_HINT, example=example
        )
        kept, dropped = got == y, got == num_classes
        expect(
            bool((kept | dropped).all()),
            f"drop_labels: every label must stay as it is or become the null label {num_classes}",
            example=example,
            detail=(f"y = {y.tolist()}", f"got {got.tolist()}"),
            hint=NULL_LABEL_HINT,
        )
        if p == 0.0:
            expect(
                torch.equal(got, y),
                "drop_labels with p_uncond = 0 must keep every label",
                example=example,
                got=got.tolist(),
                hint="a uniform of torch.rand lies in [0, 1), 0 included, and is below p_uncond with probability "
                "p_uncond: drop where it is strictly below, since a uniform equal to p_uncond = 0 must not drop",
            )
        if p == 1.0:
            expect(
                bool(dropped.all()),
                f"drop_labels with p_uncond = 1 must replace every label by {num_classes}",
                example=example,
                got=got.tolist(),
                hint=NULL_LABEL_HINT,
            )

    prop()


DROP_N = 20_000
LABELS_HINT = "keep y's shape and its long dtype: each label is kept or replaced, never turned into a float"
NULL_LABEL_HINT = (
    "the null label is num_classes, one past the last class (not 0, which is a class, nor −1): a dropped label "
    "is replaced by it"
)


@check("guidance", 1, "drop_labels drops each label with probability p_uncond, reproducibly from its generator")
def drop_labels_rate(sub: Submission) -> None:
    drop_labels = sub.function("guidance", "drop_labels")
    y = torch.arange(DROP_N, dtype=torch.long) % 10
    for p in (0.1, 0.5, 0.9):
        example = f"drop_labels(y of {DROP_N} labels in 0..9, p_uncond={p}, num_classes=10), generator seed 31"
        got = drop_labels(y, p, 10, generator=torch.Generator().manual_seed(31))
        got = expect_tensor(
            got, like=y, what="drop_labels must return long labels shaped like y", hint=LABELS_HINT, example=example
        )
        rate = float((got == 10).double().mean())
        # Five binomial standard errors: a correct implementation is outside with probability < 1e-6.
        tolerance = 5 * math.sqrt(p * (1 - p) / DROP_N)
        expect(
            abs(rate - p) <= tolerance,
            f"drop_labels(p_uncond={p}) must drop each label with probability {p}",
            example=example,
            expected=f"{p} ± {tolerance:.4f} (5 standard errors)",
            got=f"a dropped fraction {rate:.4f}",
            hint="each label is dropped with probability p_uncond, one independent decision per label drawn from the "
            "generator; the share dropped is off when the comparison or the distribution of the draw is",
        )
        for label in range(10):
            share = float((got[y == label] == 10).double().mean())
            tolerance_label = 5 * math.sqrt(p * (1 - p) / (DROP_N // 10))
            expect(
                abs(share - p) <= tolerance_label,
                f"drop_labels(p_uncond={p}) must drop every class equally often",
                example=example,
                detail=f"label {label}: dropped {share:.4f}, expected {p} ± {tolerance_label:.4f}",
                hint="draw one uniform per label, whatever its class, and drop where it is below p_uncond",
            )
        again = expect_global_rng_untouched(
            lambda p=p: drop_labels(y, p, 10, generator=torch.Generator().manual_seed(31)),
            what="drop_labels changed torch's global random state",
            example=example,
            hint="the uniforms come from `generator` only; the global random state is neither drawn from nor reseeded",
        )
        expect(
            isinstance(again, torch.Tensor) and torch.equal(got, again),
            f"drop_labels with the same generator seed must drop the same labels (p_uncond={p})",
            example=f"{example}, twice",
            hint="draw the uniforms from `generator`, never from the global random state",
        )
    expect_independent_drops(drop_labels)


BATCH_N, BATCH_CALLS = 8, 60


def expect_independent_drops(drop_labels) -> None:
    """Each label is dropped independently, so the number dropped from a batch of ``n`` is ``Binomial(n, ½)`` at
    ``p_uncond = ½``: exactly ``n/2`` with probability ``C(n, n/2)/2ⁿ`` (70/256 for n = 8). Over
    :data:`BATCH_CALLS` seeds the count of batches with exactly ``n/2`` dropped is binomial, and reaching
    :func:`~autograder.checks.numerics.binomial_threshold` fails a correct implementation with probability
    ≤ 1e-9; dropping an exact fraction ``round(p·n)`` of every batch reaches it every time."""
    y = torch.arange(BATCH_N, dtype=torch.long) % 10
    example = f"drop_labels(y of {BATCH_N} labels, p_uncond=0.5, num_classes=10), generator seeds 0..{BATCH_CALLS - 1}"
    exact = 0
    for seed in range(BATCH_CALLS):
        got = drop_labels(y, 0.5, 10, generator=torch.Generator().manual_seed(seed))
        got = expect_tensor(
            got, like=y, what="drop_labels must return long labels shaped like y", hint=LABELS_HINT, example=example
        )
        exact += int((got == 10).sum()) == BATCH_N // 2
    p_exact = math.comb(BATCH_N, BATCH_N // 2) / 2**BATCH_N
    limit = binomial_threshold(BATCH_CALLS, p_exact)
    expect(
        exact < limit,
        "drop_labels must drop each label independently: the number dropped from a batch varies (binomial)",
        example=example,
        detail=f"{exact} of {BATCH_CALLS} batches dropped exactly {BATCH_N // 2} labels; independent drops do that "
        f"in about {BATCH_CALLS * p_exact:.0f} (at least {limit}: probability ≤ 1e-9)",
        hint="p_uncond is the probability of each label's drop, decided label by label; it is not a fraction of "
        "the batch to drop exactly",
    )


@check("guidance", 3, "cfg_eps = eps_u + s·(eps_c − eps_u): the conditional model at s = 1, the unconditional at s = 0")
def cfg_eps_formula(sub: Submission) -> None:
    cfg_eps = sub.function("guidance", "cfg_eps")

    @GRADING
    @given(cases(), st.integers(1, 10), st.floats(-2.0, 10.0, allow_nan=False))
    def prop(case: Case, num_classes: int, scale: float) -> None:
        schedule, x_t, t = case.schedule, case.randn(), case.timesteps()
        y = _labels(case, num_classes)
        model = SmoothDenoiser(schedule.T, num_classes)
        eps_c = model(x_t, t, y=y)
        eps_u = model(x_t, t, y=torch.full_like(y, num_classes))
        example = f"{case!r}, y={y.tolist()}, num_classes={num_classes}"
        for s, expected, what, hint in (
            (
                1.0,
                eps_c,
                "cfg_eps with guidance_scale s = 1 must equal the conditional model model(x_t, t, y=y)",
                "s multiplies (eps_c − eps_u) and is added to eps_u; s is not Ho & Salimans' w (w = s − 1)",
            ),
            (
                0.0,
                eps_u,
                f"cfg_eps with guidance_scale s = 0 must equal the unconditional model (null label {num_classes})",
                f"the unconditional half uses y = num_classes = {num_classes}, and s = 0 leaves eps_u alone",
            ),
            (
                scale,
                eps_u + scale * (eps_c - eps_u),
                "cfg_eps must be eps_u + s·(eps_c − eps_u) (linear in s)",
                "split the batched answer into its conditional and unconditional halves in the order you built it",
            ),
        ):
            expect_close(
                cfg_eps(SmoothDenoiser(schedule.T, num_classes), x_t, t, y, s, num_classes),
                expected,
                what=what,
                hint=hint,
                example=f"{example}, guidance_scale={s}",
                scale=(1 + abs(s)) * (eps_c.abs() + eps_u.abs()),
            )

    prop()


@check("guidance", 0.5, "cfg_eps makes one batched model call of size 2B (labels y and the null label)")
def cfg_eps_single_call(sub: Submission) -> None:
    cfg_eps = sub.function("guidance", "cfg_eps")

    @settings(parent=GRADING, max_examples=10)
    @pinned_seed("cfg_eps_single_call")
    @given(cases(), st.integers(1, 10))
    def prop(case: Case, num_classes: int) -> None:
        schedule, x_t, t = case.schedule, case.randn(), case.timesteps()
        y, batch = _labels(case, num_classes), case.shape[0]
        model = SmoothDenoiser(schedule.T, num_classes)
        cfg_eps(model, x_t, t, y, 3.0, num_classes)
        example = f"{case!r}, y={y.tolist()}, num_classes={num_classes}"
        if model.num_calls != 1 or model.calls[0].batch != 2 * batch:
            raise CheckFailed(
                f"cfg_eps must evaluate the model once, on a batch of 2B = {2 * batch}",
                example=example,
                got=f"{model.num_calls} call(s) with batch sizes {[call.batch for call in model.calls]}",
                hint="classifier-free guidance evaluates the conditional and the unconditional model together: one "
                "batch holding each sample twice, once with its label and once with the null label, then the "
                "answer split in two halves",
            )
        call = model.calls[0]
        labels = call.kwargs.get("y")
        expected = torch.cat([y, torch.full_like(y, num_classes)]).sort().values
        expect(
            isinstance(labels, torch.Tensor) and torch.equal(labels.sort().values, expected),
            f"cfg_eps must pass y= with the labels y and B null labels {num_classes}",
            example=example,
            detail=f"the model got y={labels.tolist() if isinstance(labels, torch.Tensor) else labels}",
            hint="one half of the batch is conditional (the labels y), the other unconditional (the null label "
            "num_classes)",
        )
        expect(
            torch.equal(call.t.sort().values, torch.cat([t, t]).sort().values),
            "cfg_eps must pass each sample's t for both halves",
            example=example,
            detail=f"the model got t={call.t.tolist()}",
            hint="both halves evaluate each sample at its own timestep: the doubled batch repeats t",
        )

    prop()


@check("guidance", 1, "classifier_guided_mean = mean + scale·variance·∇log p(y | x_t) (Dhariwal & Nichol Alg. 1)")
def classifier_guided_mean_formula(sub: Submission) -> None:
    classifier_guided_mean = sub.function("guidance", "classifier_guided_mean")

    @GRADING
    @given(cases(), st.floats(0.0, 10.0, allow_nan=False))
    def prop(case: Case, scale: float) -> None:
        schedule, t = case.schedule, case.timesteps()
        mean, grad = case.randn(), case.randn(stream=1)
        variance = extract(schedule.betas, t, mean)  # (B, 1, ..., 1), as p_mean_variance returns it
        expected = mean + scale * variance * grad
        expect_close(
            classifier_guided_mean(mean, variance, grad, scale),
            expected,
            what="classifier_guided_mean must be mean + scale·variance·∇log p(y | x_t)",
            hint="the shift is scaled by the variance Σ (not its square root) and by the scale",
            example=f"{case!r} (variance β_t shaped (B, 1, ...)), scale={scale}",
            scale=mean.abs() + scale * variance * grad.abs(),
        )

    prop()


@check("guidance", 2, "classifier_guided_eps = eps − scale·√(1 − ᾱ_t)·∇log p(y | x_t) (Dhariwal & Nichol Alg. 2)")
def classifier_guided_eps_formula(sub: Submission) -> None:
    classifier_guided_eps = sub.function("guidance", "classifier_guided_eps")

    @GRADING
    @given(cases(), st.floats(0.0, 10.0, allow_nan=False))
    def prop(case: Case, scale: float) -> None:
        schedule, t = case.schedule, case.timesteps()
        eps, grad = case.randn(), case.randn(stream=1)
        coef = extract((1 - schedule.alpha_bars).sqrt(), t, eps)
        expect_close(
            classifier_guided_eps(schedule, eps, t, grad, scale),
            eps - scale * coef * grad,
            what="classifier_guided_eps must be eps − scale·√(1 − ᾱ_t)·∇log p(y | x_t)",
            hint="subtract (the gradient points towards the class); use √(1 − ᾱ_t) with ᾱ_t = alpha_bars[t], "
            "not β_t or ᾱ_prev",
            example=f"{case!r}, scale={scale}",
            scale=eps.abs() + scale * coef * grad.abs(),
        )

    prop()


# CFG with the exact class-conditional denoiser of the course's 2-D mixture (8 components, std 0.07; turned
# by the submission's hidden angle, denoisers.hidden_mixture, which changes no energy distance),
# the reference DDIM (η = 0, 100 steps, linear T = 1000), n = 3000 samples with stratified labels. The samples
# must come from the model: at every step cfg_eps must answer the guided combination of the exact denoiser's
# answers for that x_t (within float64 tolerance), whatever it computed it from.
# Energy distances, 20 seeds:
#   per class (375 samples vs 1000 true ones of that component), the largest of the 8 classes:
#     data vs data (100 draws) mean 0.0009, max 0.0018; reference mean 0.0018, max 0.0030
#   overall (3000 vs 3000 with the same labels): reference max 0.0003
#   s = 0 with every label 0, against the whole mixture: reference max 0.0006
#   bugs: s used as w (eps_c + s·(eps_c − eps_u)): per class 0.047, s = 0 gives class 0 only: 0.67;
#         halves swapped: per class 0.74; null label 0 for the unconditional half: s = 0 → 0.68.
CFG_N, CFG_TRUTH_PER_CLASS, CFG_STEPS = 3000, 1000, 100
CFG_THRESHOLD_CLASS, CFG_THRESHOLD = 0.006, 0.0025


@check("guidance", 4, "CFG sampling with the exact denoiser: s = 1 samples each class's component, s = 0 the mixture")
def cfg_oracle_sampling(sub: Submission) -> None:
    cfg_eps = sub.function("guidance", "cfg_eps")
    schedule = ScheduleSpec("linear", 1000).build()
    oracle = MixtureOracle(schedule, hidden_mixture(sub.fingerprint))
    mixture, K = oracle.mixture, oracle.num_classes
    setting = f"reference DDIM (η = 0, {CFG_STEPS} steps, linear T=1000) with model = cfg_eps(exact denoiser, ...)"
    hint = "s = 1 must give the conditional model and s = 0 the unconditional one (null label num_classes)"

    def sample(guidance_scale: float, labels: torch.Tensor, seed: int) -> torch.Tensor:
        def denoise(x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            oracle.reset()  # one step's calls at a time: the sampler makes 100 of them
            got = cfg_eps(oracle, x_t, t, y, guidance_scale, K)
            eps_c, eps_u = oracle.eps(x_t, t, y), oracle.eps(x_t, t, torch.full_like(y, K))
            expect_close(
                got,
                eps_u + guidance_scale * (eps_c - eps_u),
                what="cfg_eps must answer eps_u + s·(eps_c − eps_u) from the model's answers for the x_t and t it "
                "is given: the guided samples must come from the model",
                hint="evaluate the model on the given x_t (both halves) and combine exactly its two answers; "
                "nothing but the model's answers enters the result",
                example=f"{setting}, guidance_scale={guidance_scale}, the step from t = {int(t[0])}",
                scale=(1 + abs(guidance_scale)) * (eps_c.abs() + eps_u.abs()),
            )
            return got

        start = torch.randn(CFG_N, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        with single_threaded():
            samples = REFERENCE.ddim.ddim_sample_loop(
                denoise, schedule, (CFG_N, 2), num_steps=CFG_STEPS, noise=start, y=labels
            )
        expect(
            bool(torch.isfinite(samples).all()),
            f"cfg_eps gave NaN or inf samples with guidance_scale={guidance_scale}",
            example=setting,
            hint="cfg_eps is the linear combination eps_u + s·(eps_c − eps_u) of the model's two answers: it "
            "divides by nothing",
        )
        return samples

    def truth(labels: torch.Tensor, seed: int) -> torch.Tensor:
        return mixture_truth(mixture, labels.shape[0], seed, labels)

    labels = torch.arange(CFG_N, dtype=torch.long) % K
    samples = sample(1.0, labels, 41)
    for k in range(K):
        component = truth(torch.full((CFG_TRUTH_PER_CLASS,), k, dtype=torch.long), 300 + k)
        distance = energy_distance(samples[labels == k], component)
        expect(
            distance <= CFG_THRESHOLD_CLASS,
            "CFG sampling at guidance_scale s = 1 must sample class y's component",
            example=f"{setting}, {CFG_N} samples with labels 0..{K - 1}",
            detail=f"class {k}: energy distance {distance:.5f} to its component, a correct cfg_eps stays below "
            f"{CFG_THRESHOLD_CLASS}",
            hint=hint,
        )
    distance = energy_distance(samples, truth(labels, 299))
    expect(
        distance <= CFG_THRESHOLD,
        "CFG sampling at s = 1 must sample the class-conditional mixture",
        example=setting,
        detail=f"energy distance {distance:.5f}, a correct cfg_eps stays below {CFG_THRESHOLD}",
        hint=hint,
    )
    samples = sample(0.0, torch.zeros(CFG_N, dtype=torch.long), 42)
    distance = energy_distance(samples, truth(labels, 298))
    expect(
        distance <= CFG_THRESHOLD,
        "CFG sampling at s = 0 must ignore the labels and sample the whole mixture",
        example=f"{setting}, every label 0",
        detail=f"energy distance {distance:.5f} to the mixture, a correct cfg_eps stays below {CFG_THRESHOLD}",
        hint=hint,
    )
