"""Hidden checks of part 9 (vae): the reparameterisation trick, the KL to the prior, the negative ELBO and
the VAE's ``encode`` / ``decode`` / ``forward`` (Kingma & Welling 2014).

Only the student's ``diffusion.vae`` is graded here. The formulas are compared with the reference on
drawn shapes and dtypes; the KL also against a Monte Carlo estimate that does not use the reference,
and the reparameterisation's gradients are taken in the student's process (autograd does not cross
the sandbox's channel). The VAE's methods run on a fresh object of the student's class carrying the
weights of a seeded reference VAE: the architecture is provided, so the same weights must give the
same answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks.framework import GRADING, CheckFailed, check, expect, expect_close, expect_tensor
from autograder.checks.numerics import MC_STANDARD_ERRORS, ScalarGaussians, monte_carlo_kl
from autograder.checks.seeds import pinned_seed
from autograder.checks.strategies import shapes
from autograder.isolation.submission import Instance, Submission
from autograder.reference import load_reference

REFERENCE = load_reference()
ref = REFERENCE.vae

REPARAMETERIZE_HINT = (
    "z = mu + σ·noise with σ = exp(½·logvar): logvar is the log-variance, so the standard deviation is "
    "exp(logvar / 2), not exp(logvar) and not logvar itself; use the given noise"
)
KL_HINT = (
    "KL(N(mu, e^logvar) ‖ N(0, I)) = ½·Σ(mu² + e^logvar − 1 − logvar) over every dimension but the batch: "
    "the ½ applies to every term, e^logvar is the variance, and the result has one value per sample"
)


@dataclass(frozen=True)
class Gaussians:
    """A batch of diagonal Gaussians ``N(mu, e^logvar)`` and standard normal noise, from a seed."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    seed: int

    def __repr__(self) -> str:
        return f"mu, logvar, noise of shape {self.shape}, {str(self.dtype).removeprefix('torch.')} (seed {self.seed})"

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mu, logvar, noise)``: ``mu ~ N(0, 1.5²)``, ``logvar ~ U(−3, 2)``, ``noise ~ N(0, I)``."""
        generator = torch.Generator().manual_seed(self.seed)
        mu = 1.5 * torch.randn(self.shape, generator=generator, dtype=torch.float64)
        logvar = torch.rand(self.shape, generator=generator, dtype=torch.float64) * 5 - 3
        noise = torch.randn(self.shape, generator=generator, dtype=torch.float64)
        return mu.to(self.dtype), logvar.to(self.dtype), noise.to(self.dtype)


GAUSSIANS = st.builds(
    Gaussians, shapes(min_dims=2), st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**16)
)


@check("vae", 1.5, "reparameterize(mu, logvar, noise) = mu + exp(½·logvar)·noise (Kingma & Welling 2014, §2.4)")
def reparameterize_formula(sub: Submission) -> None:
    reparameterize = sub.function("vae", "reparameterize")

    @GRADING
    @given(GAUSSIANS)
    def prop(case: Gaussians) -> None:
        mu, logvar, noise = case.tensors()
        expect_close(
            reparameterize(mu, logvar, noise),
            ref.reparameterize(mu, logvar, noise),
            what="reparameterize(mu, logvar, noise) must be mu + exp(½·logvar)·noise",
            hint=REPARAMETERIZE_HINT,
            example=repr(case),
            scale=mu.abs() + (0.5 * logvar).exp() * noise.abs(),
        )

    prop()


@check("vae", 1, "reparameterize passes gradients to mu and logvar: ∂z/∂mu = 1, ∂z/∂logvar = ½·σ·noise")
def reparameterize_gradients(sub: Submission) -> None:
    """The trick exists so that gradients reach the encoder: with ``z = mu + σ·noise``, the vector-Jacobian
    products with a cotangent ``v`` are ``v`` for ``mu`` and ``v·½·σ·noise`` for ``logvar``."""
    with_gradients = sub.gradient("vae", "reparameterize", wrt=(0, 1))

    @GRADING
    @pinned_seed("reparameterize_gradients")
    @given(GAUSSIANS)
    def prop(case: Gaussians) -> None:
        mu, logvar, noise = case.tensors()
        cotangent = torch.randn(case.shape, generator=torch.Generator().manual_seed(case.seed + 1)).to(case.dtype)
        _, grads = with_gradients(mu, logvar, noise, cotangent=cotangent)
        expected = (cotangent, cotangent * 0.5 * (0.5 * logvar).exp() * noise)
        hint = (
            "compute z from mu and logvar with differentiable torch operations: no .detach(), torch.no_grad(), "
            ".item(), numpy or torch.normal(mu, std) (it does not pass gradients)"
        )
        for name, grad, want in zip(("mu", "logvar"), grads, expected, strict=True):
            expect(grad is not None, f"reparameterize: no gradient reaches {name}", example=repr(case), hint=hint)
            expect_close(
                grad,
                want,
                what=f"the gradient of reparameterize with respect to {name} (vector-Jacobian product with v)",
                hint="∂z/∂mu = 1 and ∂z/∂logvar = ½·exp(½·logvar)·noise; " + hint,
                example=repr(case),
                scale=cotangent.abs() * (1 + (0.5 * logvar).exp() * noise.abs()),
            )

    prop()


@check("vae", 1, "gaussian_kl(mu, logvar) = ½·Σ(mu² + e^logvar − 1 − logvar) per sample, shape (B,)")
def gaussian_kl_formula(sub: Submission) -> None:
    gaussian_kl = sub.function("vae", "gaussian_kl")

    @GRADING
    @given(GAUSSIANS)
    def prop(case: Gaussians) -> None:
        mu, logvar, _ = case.tensors()
        dims = tuple(range(1, mu.dim()))
        expect_close(
            gaussian_kl(mu, logvar),
            ref.gaussian_kl(mu, logvar),
            what="gaussian_kl(mu, logvar) must be KL(N(mu, e^logvar) ‖ N(0, I)) summed over the non-batch "
            "dimensions, one value per sample",
            hint=KL_HINT,
            example=repr(case),
            scale=0.5 * (mu**2 + logvar.exp() + 1 + logvar.abs()).sum(dim=dims),
        )

    prop()


MC_CASES = ((0.0, 0.0), (0.8, 0.0), (0.0, -1.5), (-1.2, 1.0), (0.5, -3.0), (2.0, 1.8))
"""``(mu, logvar)`` per dimension of the Monte Carlo check's one sample (one dimension each)."""


@check("vae", 1, "gaussian_kl agrees with a Monte Carlo estimate of E_q[log q − log p] and is 0 exactly at N(0, I)")
def gaussian_kl_monte_carlo_and_zero(sub: Submission) -> None:
    """Independent of the reference: the KL is the expectation of the log-ratio under ``q``, estimated from
    one fixed draw (:func:`autograder.checks.numerics.monte_carlo_kl` per dimension, summed)."""
    gaussian_kl = sub.function("vae", "gaussian_kl")
    for shape in ((1, 1), (3, 4), (2, 2, 3, 3)):
        zeros = torch.zeros(shape, dtype=torch.float64)
        got = expect_tensor(
            gaussian_kl(zeros, zeros),
            like=torch.zeros(shape[0], dtype=torch.float64),
            what="gaussian_kl(mu, logvar) must return one KL per sample, shape (B,)",
            example=f"mu = logvar = zeros{shape}",
            hint="sum over every dimension but the first (e.g. .flatten(1).sum(dim=1)); do not average over the batch",
        )
        expect(
            bool((got == 0).all()),
            "gaussian_kl(mu = 0, logvar = 0) must be exactly 0: q is the prior N(0, I)",
            example=f"zeros{shape}",
            got=got.tolist(),
            hint=KL_HINT,
        )
    mu = torch.tensor([[m for m, _ in MC_CASES]], dtype=torch.float64)
    logvar = torch.tensor([[v for _, v in MC_CASES]], dtype=torch.float64)
    estimates = [monte_carlo_kl(ScalarGaussians(m, v, 0.0, 0.0)) for m, v in MC_CASES]
    estimate = sum(e for e, _ in estimates)
    error = math.sqrt(sum(se**2 for _, se in estimates))
    got = gaussian_kl(mu, logvar)
    example = f"one sample of {len(MC_CASES)} dimensions, (mu, logvar) = {list(MC_CASES)}"
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        raise CheckFailed(
            "gaussian_kl of one sample must return shape (1,)",
            example=example,
            got=f"{got!r:.80}",
            hint="one KL per sample: sum over every dimension but the batch, and keep the batch dimension",
        )
    value = float(got.reshape(()))
    expect(
        abs(value - estimate) <= MC_STANDARD_ERRORS * error + 1e-9,
        "gaussian_kl must equal E_{z~q}[log q(z) − log p(z)] for q = N(mu, e^logvar), p = N(0, I)",
        example=example,
        expected=f"the Monte Carlo estimate {estimate:.6f} ± {error:.2g} (1M draws)",
        got=f"{value:.6f}",
        hint=KL_HINT,
    )


@dataclass(frozen=True)
class LossCase:
    """Images, reconstructions and latents for ``vae_loss``, from a seed."""

    batch: int
    image: tuple[int, int, int]
    latent: tuple[int, int, int]
    kl_weight: float | None
    seed: int

    def __repr__(self) -> str:
        weight = "default kl_weight" if self.kl_weight is None else f"kl_weight={self.kl_weight}"
        return (
            f"x, x_recon of shape {(self.batch, *self.image)}, mu, logvar of shape {(self.batch, *self.latent)}, "
            f"{weight}, float32 (seed {self.seed})"
        )

    def tensors(self) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(self.seed)
        x = torch.rand((self.batch, *self.image), generator=generator) * 2 - 1
        x_recon = (x + 0.3 * torch.randn(x.shape, generator=generator)).clamp(-1, 1)
        mu = torch.randn((self.batch, *self.latent), generator=generator)
        logvar = torch.rand(mu.shape, generator=generator) * 3 - 2
        return x, x_recon, mu, logvar


LOSS_CASES = st.builds(
    LossCase,
    st.integers(1, 5),
    st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
    st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
    st.sampled_from([None, 1.0, 0.5, 0.01, 2.0]),
    st.integers(0, 2**16),
)


def _scalar(value: object, key: str, example: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise CheckFailed(
            f"vae_loss(...)[{key!r}] must be a scalar tensor (the batch mean)",
            example=example,
            got=f"{value!r:.80}",
            hint="average the per-sample values over the batch: one number (a 0-dim tensor), not one per sample",
        )
    return value.reshape(())


@check("vae", 1.5, "vae_loss: recon = batch mean of per-sample Σ(x − x̂)², kl = batch mean KL, loss = recon + w·kl")
def vae_loss_parts_and_weighting(sub: Submission) -> None:
    vae_loss = sub.function("vae", "vae_loss")

    @GRADING
    @pinned_seed("vae_loss_parts_and_weighting")
    @given(LOSS_CASES)
    def prop(case: LossCase) -> None:
        x, x_recon, mu, logvar = case.tensors()
        weight = {} if case.kl_weight is None else {"kl_weight": case.kl_weight}
        got = vae_loss(x, x_recon, mu, logvar, **weight)
        keys = {"loss", "recon", "kl"}
        if not isinstance(got, dict) or keys - got.keys():
            raise CheckFailed(
                f"vae_loss must return a dict with keys {sorted(keys)}",
                example=repr(case),
                got=f"{got!r:.120}",
                hint="the negative ELBO and its two terms, the reconstruction error and the KL, each under its key",
            )
        expected = ref.vae_loss(x, x_recon, mu, logvar, **weight)
        hints = {
            "recon": "sum the squared error over each sample's pixels (not the mean over pixels), then average "
            "over the batch",
            "kl": "gaussian_kl per sample, then the mean over the batch (not the sum)",
            "loss": "loss = recon + kl_weight · kl, with kl_weight = 1 by default",
        }
        for key in ("recon", "kl", "loss"):
            expect_close(
                _scalar(got[key], key, repr(case)),
                expected[key],
                what=f"vae_loss(x, x_recon, mu, logvar)[{key!r}]",
                hint=hints[key],
                example=repr(case),
            )

    prop()


VAE_KWARGS = {"in_channels": 1, "latent_channels": 2, "base_channels": 8}
VAE_SEED = 9
ODD_LATENT = {**VAE_KWARGS, "latent_channels": 3}
"""A VAE whose encoder's 6 output channels make three pieces of two, and two halves of three."""


def reference_vae(kwargs: dict[str, int] = VAE_KWARGS) -> torch.nn.Module:
    """The reference :class:`~diffusion.vae.VAE` with ``kwargs``, initialised from :data:`VAE_SEED`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(VAE_SEED)
        return ref.VAE(**kwargs).eval()


def expect_encoding(got: object, expected: tuple[torch.Tensor, torch.Tensor], hint: str, example: str) -> None:
    """Fail unless ``got``, an answer of ``VAE.encode(x)``, is the pair ``expected = (mu, logvar)``."""
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed(
            "VAE.encode(x) must return the pair (mu, logvar)", example=example, got=f"{got!r:.80}", hint=hint
        )
    expect_close(got[0], expected[0], what="VAE.encode(x)[0], mu", hint=hint, example=example)
    expect_close(got[1], expected[1], what="VAE.encode(x)[1], logvar", hint=hint, example=example)


@check("vae", 1, "VAE.encode splits the encoder's output into (mu, logvar); decode is tanh(decoder); forward samples")
def vae_methods(sub: Submission) -> None:
    vae = reference_vae()
    instance = Instance("VAE", kwargs=VAE_KWARGS, state=vae.state_dict())
    generator = torch.Generator().manual_seed(90)
    x = torch.rand(3, 1, 8, 8, generator=generator) * 2 - 1
    z = torch.randn(3, 2, 2, 2, generator=generator)
    noise = torch.randn(3, 2, 2, 2, generator=generator)
    example = f"VAE(**{VAE_KWARGS}) with seeded weights, x of shape (3, 1, 8, 8)"
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        expected_recon = vae.decode(mu + (0.5 * logvar).exp() * noise)

    hint = "mu is the first latent_channels channels of self.encoder(x), logvar the rest (e.g. .chunk(2, dim=1))"
    expect_encoding(sub.method("vae", instance, "encode")(x), (mu, logvar), hint, example)
    # With 2 latent channels the encoder's 4 channels are two pieces of 2 however they are counted; with 3, its 6
    # channels are two halves of 3 but three pieces of 2 (torch.chunk's argument is the number of pieces).
    odd = reference_vae(ODD_LATENT)
    with torch.no_grad():
        odd_mu, odd_logvar = odd.encode(x)
    odd_example = f"VAE(**{ODD_LATENT}) with seeded weights, x of shape (3, 1, 8, 8)"
    odd_hint = (
        "the encoder's 2·latent_channels channels split in two halves: mu the first latent_channels, logvar the "
        "rest, whatever latent_channels is (torch.chunk takes the number of pieces, torch.split their size)"
    )
    odd_instance = Instance("VAE", kwargs=ODD_LATENT, state=odd.state_dict())
    expect_encoding(sub.method("vae", odd_instance, "encode")(x), (odd_mu, odd_logvar), odd_hint, odd_example)

    with torch.no_grad():
        expected = vae.decode(z)
    expect_close(
        sub.method("vae", instance, "decode")(z),
        expected,
        what="VAE.decode(z) must be tanh(self.decoder(z))",
        hint="squash the decoder's output into [−1, 1] with torch.tanh (not a clamp, not a sigmoid)",
        example=f"{example}, z of shape (3, 2, 2, 2)",
    )

    got = sub.method("vae", instance, "forward")(x, noise)
    hint = (
        "encode, draw z by the reparameterisation trick from (mu, logvar) and the given noise, decode z (not mu); "
        "return (x_recon, mu, logvar)"
    )
    if not isinstance(got, tuple | list) or len(got) != 3:
        raise CheckFailed(
            "VAE.forward(x, noise) must return (x_recon, mu, logvar)", example=example, got=f"{got!r:.80}", hint=hint
        )
    expect_close(got[1], mu, what="VAE.forward(x, noise)[1], mu", hint=hint, example=example)
    expect_close(got[2], logvar, what="VAE.forward(x, noise)[2], logvar", hint=hint, example=example)
    expect_close(got[0], expected_recon, what="VAE.forward(x, noise)[0], x_recon", hint=hint, example=example)
