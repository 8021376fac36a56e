"""Part 9 — the VAE: ``reparameterize``, ``gaussian_kl``, ``vae_loss`` and ``VAE.encode`` / ``decode`` / ``forward``.

Kingma & Welling 2014. The encoder gives ``q(z | x) = N(mu, diag(e^logvar))``; a sample is
``z = mu + exp(½ · logvar) · noise`` (the reparameterisation trick, §2.4); its KL to the prior ``N(0, I)`` is
``½ Σ (mu² + e^logvar − 1 − logvar)`` per sample (App. B); the loss is ``recon + kl_weight · kl``, ``recon`` the
per-sample sum of squared errors, both averaged over the batch. The VAE's layers are provided (``vae.encoder``,
``vae.decoder``): expected values are built from them with plain torch, and every test calls only part 9's code.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffusion.vae import VAE, gaussian_kl, reparameterize, vae_loss
from tests.public.helpers import DTYPES, PROPERTY, SHAPES, TOL, check_close, randn

PART = "part 9 (vae)"


def prior_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, σ²) ‖ N(0, 1))`` per element from the general two-Gaussian form
    ``log(σ_p/σ_q) + (σ_q² + (mu_q − mu_p)²)/(2σ_p²) − ½`` with ``mu_p = 0``, ``σ_p = 1``."""
    var = logvar.exp()
    return -0.5 * logvar + (var + mu**2) / 2 - 0.5


def small_vae(**kwargs) -> VAE:
    """A narrow VAE (``base_channels = 8``) with weights from a fixed seed; the global RNG is left untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return VAE(**({"base_channels": 8} | kwargs))


def images(shape, seed=0) -> torch.Tensor:
    """Float32 images uniform in [−1, 1]."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- reparameterize ------------------------------------------------------------------------------------------------


@PROPERTY
@given(shape=st.sampled_from(SHAPES), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_reparameterize_is_mu_plus_sigma_times_noise(shape, dtype, seed):
    """``z = mu + exp(½ · logvar) · noise``, in the dtype of the inputs."""
    mu, logvar, noise = randn(shape, dtype, seed), 2 * randn(shape, dtype, seed + 1), randn(shape, dtype, seed + 2)
    got = reparameterize(mu, logvar, noise)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype, (
        f"{PART}: reparameterize on {dtype} inputs returned {getattr(got, 'dtype', type(got).__name__)}"
    )
    check_close(
        got,
        mu + torch.exp(logvar / 2) * noise,
        part=PART,
        what="reparameterize(mu, logvar, noise) = mu + exp(½·logvar)·noise",
        hint="σ = exp(½·logvar) is the standard deviation: exp(logvar) is the variance, and logvar is not σ; "
        "use the given noise, never draw your own",
        **TOL[dtype],
    )


def test_reparameterize_passes_gradients_to_mu_and_logvar():
    """The trick makes ``z`` differentiable: ``∂z/∂mu = 1`` and ``∂z/∂logvar = ½ · exp(½ · logvar) · noise``."""
    mu, logvar, noise = randn((4, 3)), randn((4, 3), seed=1), randn((4, 3), seed=2)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    z = reparameterize(mu, logvar, noise)
    assert z.requires_grad, (
        f"{PART}: reparameterize cut the graph: its result does not depend on mu and logvar for autograd\n"
        f"  hint: no torch.no_grad(), .detach() or torch.normal(mu, std) (not differentiable): mu + std · noise"
    )
    z.sum().backward()
    hint = "z = mu + exp(½·logvar)·noise: the gradient flows through both terms"
    check_close(mu.grad, torch.ones_like(mu), part=PART, what="∂z/∂mu = 1", hint=hint)
    check_close(logvar.grad, 0.5 * torch.exp(logvar.detach() / 2) * noise, part=PART, what="∂z/∂logvar", hint=hint)


# --- gaussian_kl ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3), (4, 2, 5, 5)], ids=lambda shape: "x".join(map(str, shape)))
def test_gaussian_kl_is_zero_at_the_prior(shape):
    """``mu = 0``, ``logvar = 0`` is the prior itself: the KL is exactly 0, one value per sample, shape ``(B,)``."""
    zeros = torch.zeros(shape, dtype=torch.float64)
    check_close(
        gaussian_kl(zeros, zeros),
        torch.zeros(shape[0], dtype=torch.float64),
        part=PART,
        what="gaussian_kl(0, 0) = 0, shape (B,)",
        hint="sum ½(mu² + e^logvar − 1 − logvar) over every dimension but the batch (flatten(1).sum(1)); "
        "the −1 term makes it 0 at the prior",
        atol=0,
    )


@PROPERTY
@given(shape=st.sampled_from(SHAPES), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_gaussian_kl_matches_the_closed_form(shape, dtype, seed):
    """``gaussian_kl = ½ Σ (mu² + e^logvar − 1 − logvar)`` summed over non-batch dims (``(B,)``), in the inputs' dtype.
    Expected: the general KL of two Gaussians with the second one ``N(0, 1)``."""
    mu, logvar = randn(shape, dtype, seed), 1.5 * randn(shape, dtype, seed + 1)
    got = gaussian_kl(mu, logvar)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype, (
        f"{PART}: gaussian_kl on {dtype} inputs returned {getattr(got, 'dtype', type(got).__name__)}"
    )
    check_close(
        got,
        prior_kl(mu, logvar).flatten(1).sum(dim=1),
        part=PART,
        what=f"gaussian_kl(mu, logvar) = ½ Σ (mu² + e^logvar − 1 − logvar), shape (B,) = ({shape[0]},)",
        hint="sum (not mean) over every non-batch dimension; e^logvar is the variance; the sign of logvar is minus",
        **TOL[dtype],
    )


@PROPERTY
@given(
    sample=st.integers(0, 3),
    element=st.integers(0, 11),
    which=st.sampled_from(["mu", "logvar"]),
    value=st.floats(-3, 3).filter(lambda v: abs(v) > 1e-2),
)
def test_gaussian_kl_is_positive_away_from_the_prior(sample, element, which, value):
    """Move one element of one sample off the prior: that sample's KL is positive, the others stay exactly 0."""
    mu, logvar = torch.zeros(4, 12, dtype=torch.float64), torch.zeros(4, 12, dtype=torch.float64)
    (mu if which == "mu" else logvar)[sample, element] = value
    got = gaussian_kl(mu, logvar)
    others = [i for i in range(4) if i != sample]
    assert got.shape == (4,) and got[sample] > 0 and bool((got[others] == 0).all()), (
        f"{PART}: gaussian_kl with {which}[{sample}, {element}] = {value} and the prior elsewhere must be > 0 for "
        f"sample {sample} and 0 for the others; got {got.tolist()}\n"
        f"  hint: KL ≥ 0 with equality only at mu = 0, logvar = 0: ½(mu² + e^logvar − 1 − logvar) per element, "
        f"summed within each sample only"
    )


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    """``KL = E_q[log q(z) − log p(z)]``: averaged over 200 000 draws ``z = mu + σ·eps`` it agrees with
    ``gaussian_kl`` within 5 standard errors of the estimate."""
    mu = torch.tensor([[0.5, -1.0, 0.0], [1.5, 0.2, -0.3]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0, 0.7], [-0.5, 0.3, 1.2]], dtype=torch.float64)
    eps = torch.randn(200_000, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = mu + torch.exp(logvar / 2) * eps
    log_ratio = (-0.5 * eps**2 - 0.5 * logvar + 0.5 * z**2).sum(dim=2)  # log q(z) − log p(z), (N, B); log 2π cancels
    estimate, stderr = log_ratio.mean(dim=0), log_ratio.std(dim=0) / 200_000**0.5
    got = gaussian_kl(mu, logvar)
    assert got.shape == (2,) and bool(((got - estimate).abs() < 5 * stderr).all()), (
        f"{PART}: gaussian_kl = {got.tolist()}, the Monte Carlo estimate of E_q[log q − log p] is "
        f"{estimate.tolist()} ± {stderr.tolist()}\n"
        f"  hint: ½ Σ (mu² + e^logvar − 1 − logvar), summed over the latent dimensions of each sample"
    )


# --- vae_loss ------------------------------------------------------------------------------------------------------


def test_vae_loss_worked_example():
    """Two 1×4×4 images of zeros, reconstructed as all 0.5 and all 1: per-sample sums of squared errors 4 and 16,
    ``recon = 10``; KLs ½·2·1² = 1 (two latents at mu = 1) and 0, ``kl = 0.5``; ``loss = 10 + 0.5``."""
    x = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    x_recon = torch.stack([torch.full((1, 4, 4), 0.5), torch.ones(1, 4, 4)]).to(torch.float64)
    mu, logvar = torch.zeros(2, 8, dtype=torch.float64), torch.zeros(2, 8, dtype=torch.float64)
    mu[0, :2] = 1.0
    got = vae_loss(x, x_recon, mu, logvar)
    assert isinstance(got, dict) and {"loss", "recon", "kl"} <= got.keys(), (
        f"{PART}: vae_loss must return a dict with keys 'loss', 'recon', 'kl'; got {got!r:.200}"
    )
    for key, expected, hint in [
        (
            "recon",
            10.0,
            "sum the squared error over each image's pixels, then average over the batch "
            "(the mean over every pixel would give 0.625, the sum over the batch 20)",
        ),
        ("kl", 0.5, "the batch mean of gaussian_kl (the sum over the batch would give 1)"),
        ("loss", 10.5, "loss = recon + kl_weight · kl, with kl_weight = 1 by default"),
    ]:
        value = got[key]
        assert isinstance(value, torch.Tensor) and value.dim() == 0, (
            f"{PART}: vae_loss(...)[{key!r}] must be a scalar tensor, got {value!r:.100}"
        )
        check_close(value, torch.tensor(expected), part=PART, what=f"vae_loss(...)[{key!r}] = {expected}", hint=hint)


@PROPERTY
@given(kl_weight=st.floats(0, 10), batch=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_vae_loss_is_recon_plus_weighted_kl(kl_weight, batch, seed):
    """``recon = mean_b Σ (x − x_recon)²``, ``kl = mean_b gaussian_kl``, ``loss = recon + kl_weight · kl``;
    ``recon`` and ``kl`` do not depend on ``kl_weight``."""
    x, x_recon = randn((batch, 1, 4, 4), seed=seed).tanh(), randn((batch, 1, 4, 4), seed=seed + 1).tanh()
    mu, logvar = randn((batch, 2, 2, 2), seed=seed + 2), randn((batch, 2, 2, 2), seed=seed + 3)
    got = vae_loss(x, x_recon, mu, logvar, kl_weight=kl_weight)
    recon = ((x - x_recon) ** 2).flatten(1).sum(dim=1).mean()
    kl = prior_kl(mu, logvar).flatten(1).sum(dim=1).mean()
    what = f"vae_loss(kl_weight={kl_weight}) with a batch of {batch}"
    check_close(got["recon"], recon, part=PART, what=f"{what}: recon", hint="per-sample sum, batch mean")
    check_close(got["kl"], kl, part=PART, what=f"{what}: kl", hint="the batch mean of gaussian_kl, unweighted")
    check_close(
        got["loss"],
        recon + kl_weight * kl,
        part=PART,
        what=f"{what}: loss = recon + kl_weight · kl",
        hint="kl_weight multiplies the KL only, not the reconstruction term",
    )


def test_vae_loss_is_a_batch_mean():
    """Repeating the batch three times changes none of ``loss``, ``recon``, ``kl``: they are means over the batch."""
    x, x_recon = randn((2, 1, 4, 4)).tanh(), randn((2, 1, 4, 4), seed=1).tanh()
    mu, logvar = randn((2, 3), seed=2), randn((2, 3), seed=3)
    once = vae_loss(x, x_recon, mu, logvar, kl_weight=0.3)
    thrice = vae_loss(*(t.repeat(3, *[1] * (t.dim() - 1)) for t in (x, x_recon, mu, logvar)), kl_weight=0.3)
    for key in ("loss", "recon", "kl"):
        check_close(
            thrice[key],
            once[key],
            part=PART,
            what=f"vae_loss(...)[{key!r}] of a batch repeated 3 times = that of the batch",
            hint="average over the batch dimension (sum within each sample first), do not sum over it",
        )


# --- VAE -----------------------------------------------------------------------------------------------------------

CONFIGS = [
    pytest.param({}, (2, 1, 28, 28), (2, 4, 7, 7), id="28x28x1-to-4x7x7"),
    pytest.param({"in_channels": 3, "latent_channels": 2}, (2, 3, 16, 16), (2, 2, 4, 4), id="16x16x3-to-2x4x4"),
]


@pytest.mark.parametrize(("config", "image_shape", "latent_shape"), CONFIGS)
def test_vae_encode_splits_the_encoder_output_into_mu_and_logvar(config, image_shape, latent_shape):
    """``encode(x)``: ``vae.encoder(x)`` has ``2 · latent_channels`` channels; the first half is ``mu``, the second
    ``logvar``, each of shape ``(B, latent_channels, H/4, W/4)``."""
    vae, x = small_vae(**config), images(image_shape)
    got = vae.encode(x)
    assert isinstance(got, tuple) and len(got) == 2, f"{PART}: VAE.encode must return (mu, logvar), got {got!r:.100}"
    with torch.no_grad():
        h = vae.encoder(x)
    c = latent_shape[1]
    hint = "mu, logvar = self.encoder(x).chunk(2, dim=1): split the channels (dim 1), mu first"
    check_close(got[0], h[:, :c], part=PART, what=f"VAE.encode(x)[0] = mu, shape {latent_shape}", hint=hint)
    check_close(got[1], h[:, c:], part=PART, what=f"VAE.encode(x)[1] = logvar, shape {latent_shape}", hint=hint)


@pytest.mark.parametrize(("config", "image_shape", "latent_shape"), CONFIGS)
def test_vae_decode_is_tanh_of_the_decoder(config, image_shape, latent_shape):
    """``decode(z) = tanh(vae.decoder(z))``: images of shape ``(B, C, 4h, 4w)`` in [−1, 1], even for large ``z``."""
    vae, z = small_vae(**config), 20 * randn(latent_shape, torch.float32)
    got = vae.decode(z)
    with torch.no_grad():
        expected = torch.tanh(vae.decoder(z))
    check_close(
        got,
        expected,
        part=PART,
        what=f"VAE.decode(z) = tanh(self.decoder(z)), shape {image_shape}",
        hint="the decoder's output is unbounded; tanh maps it into [−1, 1] like the data",
    )


def test_vae_forward_with_noise_decodes_the_reparameterized_sample():
    """``forward(x, noise) = (decode(mu + exp(½·logvar)·noise), mu, logvar)`` with ``(mu, logvar) = encode(x)``."""
    vae, x, noise = small_vae(), images((3, 1, 28, 28)), randn((3, 4, 7, 7), torch.float32)
    got = vae(x, noise=noise)
    assert isinstance(got, tuple) and len(got) == 3, (
        f"{PART}: VAE.forward must return (x_recon, mu, logvar), got {got!r:.100}"
    )
    with torch.no_grad():
        mu, logvar = vae.encoder(x).chunk(2, dim=1)
        expected = torch.tanh(vae.decoder(mu + torch.exp(logvar / 2) * noise))
    hint = "encode, z = reparameterize(mu, logvar, noise), decode(z); return (x_recon, mu, logvar) in that order"
    check_close(got[0], expected, part=PART, what="VAE.forward(x, noise)[0] = decode(mu + σ·noise)", hint=hint)
    check_close(got[1], mu, part=PART, what="VAE.forward(x, noise)[1] = mu", hint=hint)
    check_close(got[2], logvar, part=PART, what="VAE.forward(x, noise)[2] = logvar", hint=hint)


def test_vae_forward_draws_standard_normal_noise_when_none_is_given():
    """``forward(x)`` without noise decodes ``z = mu + σ·eps`` with fresh ``eps ~ N(0, I)``: over 32 images the
    ``eps = (z − mu)/σ`` seen by the decoder have mean 0 and standard deviation 1 within 0.05, and two calls differ."""
    vae, x = small_vae(), images((32, 1, 28, 28))
    decoded = []
    vae.decoder.register_forward_pre_hook(lambda module, args: decoded.append(args[0].detach()))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        first, mu, logvar = vae(x)
        second = vae(x)[0]
    assert len(decoded) == 2, f"{PART}: VAE.forward(x) must decode once per call; the decoder ran {len(decoded)}×"
    eps = (decoded[0] - mu.detach()) / torch.exp(logvar.detach() / 2)
    mean, std = eps.mean().item(), eps.std().item()
    assert abs(mean) < 0.05 and abs(std - 1) < 0.05, (
        f"{PART}: VAE.forward(x) with noise=None: (z − mu)/σ has mean {mean:.3f} and std {std:.3f}, expected 0 and 1\n"
        f"  hint: noise = torch.randn_like(mu), then z = reparameterize(mu, logvar, noise)"
    )
    assert not torch.equal(first, second), (
        f"{PART}: two calls of VAE.forward(x) with noise=None gave the same reconstruction\n"
        f"  hint: draw new noise on every call (torch.randn_like(mu)); do not decode mu itself"
    )


def test_vae_forward_passes_gradients_to_the_encoder_and_the_decoder():
    """Training needs gradients everywhere: a loss on ``forward(x, noise)`` reaches the first encoder layer and the
    last decoder layer."""
    vae, x, noise = small_vae(), images((2, 1, 28, 28)), randn((2, 4, 7, 7), torch.float32)
    x_recon, mu, logvar = vae(x, noise=noise)
    ((x_recon - x) ** 2).sum().backward()
    for name, layer in [("encoder[0]", vae.encoder[0]), ("decoder[-1]", vae.decoder[-1])]:
        grad = layer.weight.grad
        assert grad is not None and bool(grad.abs().sum() > 0), (
            f"{PART}: the reconstruction loss has no gradient at vae.{name}\n"
            f"  hint: no torch.no_grad() or .detach() in encode, decode, forward or reparameterize"
        )
