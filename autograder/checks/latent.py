"""Hidden checks of part 10 (latent): the latent scale factor and ``LatentDiffusion`` (Rombach et al. 2022).

Only the student's ``diffusion.latent`` is graded here; the samplers and guidance it calls are the
reference's (part isolation). ``LatentDiffusion`` is built with a :class:`LinearVAE` whose encoder and
decoder are known affine maps, and with the exact denoiser of a 2-D Gaussian mixture in the *scaled*
latent space (:class:`~autograder.checks.denoisers.MixtureOracle`): a correct pipeline samples that mixture, and
the decoded images, mapped back to scaled latents by the decoder's inverse, must show it (energy
distance, as in the sampler checks). Scaling where unscaling belongs, or decoding unscaled latents,
moves the samples by the factor ``f`` and fails the comparison. The latents must come from the model: the
denoiser's calls must chain by the sampler's update and the images decode its last update
(:mod:`autograder.checks.trajectory`).
"""

from __future__ import annotations

import math
import numbers

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.denoisers import MixtureOracle, SmoothDenoiser, hidden_mixture, mixture_truth
from autograder.checks.framework import (
    GRADING,
    CheckFailed,
    as_decoded,
    check,
    expect,
    expect_close,
    expect_global_rng_untouched,
    expect_tensor,
    single_threaded,
    tolerances,
)
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import ScheduleSpec
from autograder.checks.trajectory import Sampling, ddim_rule, ddpm_rule, verify
from autograder.isolation.errors import StudentError
from autograder.isolation.submission import Instance, Submission
from autograder.reference import load_reference
from autograder.sandbox.channel import Exposed
from autograder.scoring.energy import energy_distance

REFERENCE = load_reference()
SCALE = 2.5
"""The scale factor ``f`` of the checks: unscaled latents are 1/2.5 the size of the mixture's points."""
IMAGE_SHAPE = (1, 4, 4)


class LinearVAE(torch.nn.Module, Exposed):
    """A VAE with known affine maps between images ``(B, 1, 4, 4)`` and latents ``(B, 2)``.

    ``encode(x) = (E·x, −1 + 0.1·G·x)`` and ``decode(u) = D·u + b``, with ``D`` of full column rank so
    :meth:`latents_of` inverts the decoder exactly. It records how often each method is called.
    """

    exposed_methods = ("encode", "decode")

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(2022)
        pixels = math.prod(IMAGE_SHAPE)
        self.E = torch.nn.Parameter(torch.randn(2, pixels, generator=generator, dtype=torch.float64) / 4, False)
        self.G = torch.nn.Parameter(torch.randn(2, pixels, generator=generator, dtype=torch.float64) / 4, False)
        self.D = torch.nn.Parameter(torch.randn(pixels, 2, generator=generator, dtype=torch.float64), False)
        self.b = torch.nn.Parameter(0.1 * torch.randn(pixels, generator=generator, dtype=torch.float64), False)
        self.calls = {"encode": 0, "decode": 0}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls["encode"] += 1
        flat = _images(x, "LatentDiffusion passed vae.encode").flatten(1).double()
        return (flat @ self.E.T).to(x.dtype), (-1 + 0.1 * flat @ self.G.T).to(x.dtype)

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        self.calls["decode"] += 1
        if not isinstance(u, torch.Tensor) or u.dim() != 2 or u.shape[1] != 2:
            raise ValueError(f"vae.decode expects latents of shape (B, 2), got {getattr(u, 'shape', u)!r:.60}")
        return (u.double() @ self.D.T + self.b).reshape(-1, *IMAGE_SHAPE).to(u.dtype)

    def latents_of(self, images: torch.Tensor) -> torch.Tensor:
        """The latents ``u`` with ``decode(u) = images`` (least squares; exact for decoded images)."""
        flat = images.detach().cpu().double().flatten(1) - self.b
        return torch.linalg.lstsq(self.D.detach(), flat.T).solution.T


def _images(x: object, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{what} something other than images of shape (B, {', '.join(map(str, IMAGE_SHAPE))})")
    return x


def latent_diffusion(vae: LinearVAE, model, schedule, num_classes: int | None = None) -> Instance:
    """A fresh student ``LatentDiffusion(vae, model, schedule, SCALE, (2,), num_classes)``."""
    return Instance("LatentDiffusion", (vae, model, schedule, SCALE, (2,)), {"num_classes": num_classes})


@check("latent", 1, "latent_scale_factor(latents) = 1 / std(latents) over the whole set: scaled latents have std 1")
def latent_scale_factor_unit_variance(sub: Submission) -> None:
    latent_scale_factor = sub.function("latent", "latent_scale_factor")

    @GRADING
    @pinned_seed("latent_scale_factor_unit_variance")
    @given(
        st.integers(64, 256),
        st.sampled_from([0.05, 0.4, 1.0, 7.0, 20.0]),
        st.sampled_from([0.0, 0.5, -3.0]),
        st.sampled_from([torch.float32, torch.float64]),
        st.integers(0, 2**16),
    )
    def prop(n: int, std: float, offset: float, dtype: torch.dtype, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        channel_scale = torch.tensor([1.0, 0.3, 2.0, 0.7]).reshape(1, 4, 1, 1)  # channels differ: one factor for all
        latents = (offset + std * channel_scale * torch.randn(n, 4, 3, 3, generator=generator)).to(dtype)
        example = f"{n} latents of shape (4, 3, 3), {str(dtype).removeprefix('torch.')}, std ≈ {std}, mean {offset}"
        factor = latent_scale_factor(latents)
        if not isinstance(factor, numbers.Real):  # the docstring promises a Python float, not a tensor
            raise CheckFailed(
                "latent_scale_factor must return one number, a Python float",
                example=example,
                got=f"{type(factor).__name__}: {factor!r:.80}",
                hint="one standard deviation over every element of the set, not one per channel, returned as a "
                "Python number (a 0-dim tensor is not one: convert it)",
            )
        spread = float(latents.double().std())
        expect(
            math.isfinite(factor) and abs(factor * spread - 1) <= 1e-3,
            "latent_scale_factor(latents) must be 1 / std(latents), so f · latents has standard deviation 1",
            example=example,
            expected=f"{1 / spread:.6g}",
            got=f"{factor:.6g}",
            hint="f = 1 / latents.std() over all elements at once (the std subtracts the mean: not the root "
            "mean square), not std itself and not 1 / variance",
        )

    prop()


@check("latent", 1, "LatentDiffusion.encode(x) = f · mu(x) (the VAE's mean), decode(z) = vae.decode(z / f)")
def latent_encode_decode(sub: Submission) -> None:
    vae = LinearVAE()
    schedule = ScheduleSpec("linear", 10).build()
    instance = latent_diffusion(vae, SmoothDenoiser(10), schedule)
    generator = torch.Generator().manual_seed(7)
    x = torch.rand(5, *IMAGE_SHAPE, generator=generator, dtype=torch.float64) * 2 - 1
    z = SCALE * torch.randn(5, 2, generator=generator, dtype=torch.float64)
    example = f"scale_factor f = {SCALE}, a VAE with affine encoder and decoder, x of shape (5, 1, 4, 4), float64"
    mu, _ = vae.encode(x)
    expect_close(
        sub.method("latent", instance, "encode")(x),
        SCALE * mu,
        what="LatentDiffusion.encode(x) must be f · mu, where (mu, logvar) = vae.encode(x)",
        hint="use the VAE's mean (no sampling with logvar) and multiply by the scale factor (not divide)",
        example=example,
    )
    expect_close(
        sub.method("latent", instance, "decode")(z),
        vae.decode(z / SCALE),
        what="LatentDiffusion.decode(z) must be vae.decode(z / f)",
        hint="undo the scale before decoding: the VAE's decoder was trained on unscaled latents",
        example=example.replace("x of shape (5, 1, 4, 4)", "z of shape (5, 2)"),
    )


ORACLE_N = 4000
ORACLE_RUNS = (("ddim", 100, 0.003), ("ddpm", 1000, 0.003))
"""``(sampler, steps, threshold)``: the thresholds of the sampler checks for the same runs (see ``ddim``,
``ddpm``): a correct pipeline gives the reference samplers' samples, typically below 0.001."""


def _oracle_setup(sub: Submission) -> tuple[LinearVAE, MixtureOracle]:
    schedule = ScheduleSpec("linear", 1000).build()
    return LinearVAE(), MixtureOracle(schedule, hidden_mixture(sub.fingerprint))


SAMPLE_HINT = (
    "samples must come from the model: sample the latents with the package's sampler (which evaluates the model "
    "once per step and moves by its update) and decode what it returns"
)
DECODED_HINT = (
    "samples must come from the model: the images are the decoded samples of the sampler, vae.decode(z / f) of "
    "the latents it returned, nothing else and at no other scale"
)


def _sampling(
    schedule, sampler: str, n: int, steps: int, example: str, returned_hint: str = DECODED_HINT, **guided
) -> Sampling:
    """What ``LatentDiffusion.sample(n, sampler, num_steps=steps)`` must do with the model trained with
    ``schedule`` (start drawn from the generator, DDIM with η = 0, DDPM without clipping), for
    :func:`~autograder.checks.trajectory.verify`."""
    if sampler == "ddim":
        timesteps = REFERENCE.ddim.ddim_timesteps(schedule.T, steps, "uniform").flip(0).tolist()
        rule, update = ddim_rule(schedule, eta=0.0, clip_denoised=False), "DDIM's step (eq. 12, η = 0)"
    else:
        timesteps = list(range(schedule.T - 1, -1, -1))
        rule = ddpm_rule(schedule, clip_denoised=False, variance="fixed_small")
        update = "the mean of p_θ(x_{t−1} | x_t) (no clipping) + √β̃_t·z"
    return Sampling(
        "LatentDiffusion.sample",
        example,
        timesteps,
        n,
        rule,
        update,
        SAMPLE_HINT,
        returned_tolerance=tolerances(torch.float32),
        returned_hint=returned_hint,
        **guided,
    )


def _scaled_latents(vae: LinearVAE, images: object, n: int, example: str) -> torch.Tensor:
    """The scaled latents ``f · u`` that decode to ``images``, after checking their shape and values."""
    images = expect_tensor(
        images,
        like=torch.empty(n, *IMAGE_SHAPE),
        what=f"LatentDiffusion.sample(n={n}) must return n decoded images",
        example=example,
        hint="sample latents of shape (n, *latent_shape), then return self.decode(latents)",
    )
    expect(
        bool(torch.isfinite(images).all()),
        "LatentDiffusion.sample returned NaN or inf",
        example=example,
        hint="the images are the decoded latents vae.decode(z / f), with f the scale factor given to the "
        "constructor: a NaN or inf comes from dividing by something else",
    )
    return SCALE * vae.latents_of(images)


@check(
    "latent", 1.5, "LatentDiffusion.sample (DDIM and DDPM) with the exact latent denoiser decodes the latent mixture"
)
def latent_sample_oracle(sub: Submission) -> None:
    for index, (sampler, steps, threshold) in enumerate(ORACLE_RUNS):
        vae, oracle = _oracle_setup(sub)
        sample = sub.method("latent", latent_diffusion(vae, oracle, oracle.schedule), "sample")
        example = (
            f"LatentDiffusion(scale_factor={SCALE}, latent_shape=(2,)).sample({ORACLE_N}, sampler={sampler!r}"
            + (f", num_steps={steps}" if sampler == "ddim" else "")
            + "), the exact denoiser of a 2-D mixture of scaled latents, linear(T=1000), an affine VAE"
        )
        kwargs = {"num_steps": steps} if sampler == "ddim" else {}
        with single_threaded():
            images = sample(ORACLE_N, sampler=sampler, generator=torch.Generator().manual_seed(61 + index), **kwargs)
        latents = _scaled_latents(vae, images, ORACLE_N, example)
        expect(
            oracle.num_calls == steps,
            f"LatentDiffusion.sample must run the sampler over {steps} steps (one model call each)",
            example=example,
            detail=f"the model was called {oracle.num_calls} times",
            hint="samples must come from the model, one call per step of the sampler: pass num_steps to "
            "ddim.ddim_sample_loop; DDPM takes all T steps",
        )
        with single_threaded():
            last = verify(oracle, None, _sampling(oracle.schedule, sampler, ORACLE_N, steps, example))
        truth = mixture_truth(oracle.mixture, ORACLE_N, 261 + index)
        distance = energy_distance(latents, truth)
        spread = float(latents.norm(dim=1).mean() / truth.norm(dim=1).mean())
        expect(
            distance <= threshold,
            "LatentDiffusion.sample with the exact denoiser must decode latents of the mixture it was trained on",
            example=example,
            detail=f"energy distance of the images' scaled latents to the mixture: {distance:.5f}, a correct "
            f"pipeline stays below {threshold}; their size is {spread:.3g}× the mixture's",
            hint="sample scaled latents of shape (n, *latent_shape) with the package's sampler and the model, "
            "then decode: vae.decode(z / f) (a size of f or 1/f means a scale applied the wrong way)",
        )
        last.check(latents)


@check("latent", 1, "LatentDiffusion.sample with labels y uses classifier-free guidance and samples each class")
def latent_sample_guidance(sub: Submission) -> None:
    vae, oracle = _oracle_setup(sub)
    K = oracle.num_classes
    instance = latent_diffusion(vae, oracle, oracle.schedule, num_classes=K)
    sample = sub.method("latent", instance, "sample")
    n = 800
    labels = torch.arange(n, dtype=torch.long) % K
    means = oracle.mixture.means
    for guidance_scale in (1.0, 3.0):
        oracle.reset()
        example = (
            f"LatentDiffusion(num_classes={K}).sample({n}, num_steps=50, y=labels 0..{K - 1}, "
            f"guidance_scale={guidance_scale}), the exact class-conditional denoiser of a 2-D mixture"
        )
        with single_threaded():
            images = sample(
                n, num_steps=50, y=labels, guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(5)
            )
        latents = _scaled_latents(vae, images, n, example)
        sampling = _sampling(oracle.schedule, "ddim", n, 50, example, labels=labels, guidance=(guidance_scale, K))
        with single_threaded():
            last = verify(oracle, None, sampling)
        nearest = torch.cdist(latents, means.to(latents)).argmin(dim=1)
        accuracy = float((nearest == labels).double().mean())
        expect(
            accuracy >= 0.95,
            "LatentDiffusion.sample with labels y must sample each image's class",
            example=example,
            detail=f"{accuracy:.1%} of the samples lie nearest their class's component (a correct pipeline: 100%)",
            hint="with labels, the denoiser is the classifier-free guided one of part 8 (with the guidance scale and "
            "the "
            "number of classes) and the sampler passes the labels on to it",
        )
        null_calls = sum(bool((call.kwargs.get("y") == K).any()) for call in oracle.calls if "y" in call.kwargs)
        expect(
            guidance_scale == 1.0 or null_calls > 0,
            f"LatentDiffusion.sample with guidance_scale={guidance_scale} must use classifier-free guidance",
            example=example,
            detail=f"the model was never called with the null label {K}",
            hint="guidance ≠ 1 needs the guided denoiser of part 8, which also calls the model with the null label",
        )
        last.check(latents)


UNCLIPPED_HINT = (
    "latents are not confined to [−1, 1] as images are: the DDPM branch must not clamp x̂0 (mind the sampler's "
    "default), and the images are vae.decode(z / f) of the latents it returned"
)


@check(
    "latent",
    0.5,
    "LatentDiffusion.sample: both samplers reproducible from the generator, DDPM unclipped; bad arguments refused",
)
def latent_sample_contract(sub: Submission) -> None:
    """Each sampler branch passes the generator on (same seed, same images); the DDPM branch does not clip x̂0
    (the smooth denoiser's x̂0 leaves [−1, 1] at once, and its trajectory is held to the unclipped update);
    ``ValueError`` for an unknown sampler, for ``s ≠ 1`` without labels, for labels without ``num_classes`` and
    for labels not of shape ``(n,)``."""
    vae = LinearVAE()
    schedule = ScheduleSpec("linear", 20).build()
    for sampler in ("ddim", "ddpm"):
        model = SmoothDenoiser(20, num_classes=3, record_outputs=True, record_inputs=True)
        sample = sub.method("latent", latent_diffusion(vae, model, schedule, num_classes=3), "sample")
        example = f"sample(6, sampler={sampler!r}, num_steps=5, generator=torch.Generator().manual_seed(3))"
        first = sample(6, sampler=as_decoded(sampler), num_steps=5, generator=torch.Generator().manual_seed(3))
        if sampler == "ddpm":
            with single_threaded():
                last = verify(model, None, _sampling(schedule, sampler, 6, schedule.T, example, UNCLIPPED_HINT))
            last.check(_scaled_latents(vae, first, 6, example))
        second = expect_global_rng_untouched(
            lambda sample=sample, sampler=sampler: sample(
                6, sampler=sampler, num_steps=5, generator=torch.Generator().manual_seed(3)
            ),
            what="LatentDiffusion.sample changed torch's global random state",
            example=example,
            hint="the samplers draw from `generator` only; the global random state is neither drawn from nor reseeded",
        )
        expect(
            isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor) and torch.equal(first, second),
            "LatentDiffusion.sample must be reproducible: the same generator seed must give the same images",
            example=f"{example} twice",
            hint="each sampler branch must get the generator; draw nothing from the global RNG",
        )
    model = SmoothDenoiser(20, num_classes=3)
    conditional = sub.method("latent", latent_diffusion(vae, model, schedule, num_classes=3), "sample")
    unconditional = sub.method("latent", latent_diffusion(vae, model, schedule), "sample")
    labels = torch.arange(6, dtype=torch.long) % 3
    for sample, kwargs, why in (
        (conditional, {"sampler": "euler"}, "an unknown sampler"),
        (conditional, {"sampler": "DDPM"}, "an unknown sampler (the names are lower case)"),
        (conditional, {"guidance_scale": 2.0}, "guidance_scale ≠ 1 without labels y"),
        (conditional, {"guidance_scale": 0.0}, "guidance_scale ≠ 1 (0: the unconditional model) without labels y"),
        (unconditional, {"y": labels}, "labels y given to a model built without num_classes"),
        (conditional, {"y": labels[:5]}, "labels y of shape (5,) for n = 6 images"),
        (conditional, {"y": labels.reshape(6, 1)}, "labels y of shape (6, 1) for n = 6 images"),
    ):
        what = f"LatentDiffusion.sample must raise ValueError for {why}"
        arguments = ", ".join(
            f"{key}=tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"{key}={value!r}"
            for key, value in kwargs.items()
        )
        example = f"sample(6, num_steps=5, generator=torch.Generator().manual_seed(3), {arguments})"
        hint = (
            "check the arguments before sampling: the samplers are 'ddim' and 'ddpm' only, any guidance_scale but 1 "
            "(above or below it) needs labels y, labels need a class-conditional model and one label per image; "
            "raise ValueError(...) otherwise"
        )
        try:
            sample(6, num_steps=5, generator=torch.Generator().manual_seed(3), **kwargs)
        except StudentError as error:
            if error.error_type == "ValueError":
                continue
            raise CheckFailed(what, example=example, expected="ValueError", got=error.error_type, hint=hint) from None
        raise CheckFailed(what, example=example, expected="ValueError", got="no error: it returned", hint=hint)
