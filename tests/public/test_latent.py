"""Part 10 — latent diffusion: ``latent_scale_factor`` and ``LatentDiffusion.encode`` / ``decode`` / ``sample``.

Rombach et al. 2022. Latents are the VAE's means scaled by ``f = 1 / std`` (unit variance): ``encode(x) = f · mu(x)``
and ``decode(z) = vae.decode(z / f)``. ``sample`` draws latents with the package's own samplers, DDIM
(``ddim.ddim_sample_loop``) or DDPM (``ddpm.p_sample_loop``, without clipping), with classifier-free guidance
(``guidance.cfg_eps`` through ``guidance.guided_denoiser``) when labels are given, and decodes them.

Part isolation: the tests use their own exact autoencoder instead of your VAE, and replace the two samplers and
``cfg_eps`` by stand-ins that record their arguments and take one simple step. So none of your parts 6–9 is needed,
and ``sample`` must call those functions through their modules (``ddim.ddim_sample_loop(...)``, as the provided
``from diffusion import ddim, ddpm, guidance`` allows), not through copies of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn.functional import pixel_shuffle, pixel_unshuffle

from diffusion import ddim, ddpm, guidance
from diffusion.latent import LatentDiffusion, latent_scale_factor
from diffusion.schedules import expand_like
from tests.public.helpers import PROPERTY, check_close, randn, schedule

PART = "part 10 (latent)"
NUM_CLASSES = 3
LATENT_SHAPE = (4, 4, 4)
SCALE = 0.7


class ExactAutoencoder(nn.Module):
    """A stand-in VAE for images ``(B, 1, 8, 8)`` and latents ``(B, 4, 4, 4)``:
    ``mu = gain · pixel_unshuffle(x) + 0.5``, ``logvar = −1`` everywhere, and ``decode`` the exact inverse of ``mu``,
    clamped to [−1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(2.0))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.gain * pixel_unshuffle(x, 2) + 0.5
        return mu, torch.full_like(mu, -1.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle((z - 0.5) / self.gain, 2).clamp(-1, 1)


def denoiser(z_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """A made-up ``eps_hat = 0.2 · z_t + 0.001 · t (+ 0.1 · y)``; without ``y`` it is unconditional."""
    eps = 0.2 * z_t + 0.001 * expand_like(t.to(torch.float32), z_t)
    return eps if y is None else eps + 0.1 * expand_like(y.to(torch.float32), z_t)


def latent_diffusion(num_classes: int | None = None) -> LatentDiffusion:
    return LatentDiffusion(ExactAutoencoder(), denoiser, schedule(50), SCALE, LATENT_SHAPE, num_classes=num_classes)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def one_step(model: Callable[..., torch.Tensor], shape, seed: int, **model_kwargs) -> torch.Tensor:
    """What the stand-in samplers return: ``x − 0.5 · model(x, T − 1)`` for ``x ~ N(0, I)`` drawn from the seed."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return x - 0.5 * model(x, torch.full((shape[0],), 49), **model_kwargs)


class StandIns:
    """Replaces ``ddim.ddim_sample_loop``, ``ddpm.p_sample_loop`` and ``guidance.cfg_eps`` for one test.

    The samplers record their arguments, bound to the real signatures (``calls``: name, arguments, model kwargs),
    and return ``x − 0.5 · model(x, T − 1)`` with ``x`` their ``noise`` or else drawn from their ``generator``.
    ``cfg_eps`` records its arguments (``cfg_calls``) and returns ``eps_u + s · (eps_c − eps_u)``.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, dict, dict]] = []
        self.cfg_calls: list[dict] = []
        # The stand-ins replace the modules' attributes, so LatentDiffusion.sample meets them only when it looks the
        # functions up in their modules at call time (ddim.ddim_sample_loop(...), guidance.guided_denoiser, which
        # calls guidance.cfg_eps); a copy of a sampler, or a name imported into latent.py, would bypass them.
        for module, name in [(ddim, "ddim_sample_loop"), (ddpm, "p_sample_loop")]:
            monkeypatch.setattr(module, name, self.sampler(name, inspect.signature(getattr(module, name))))
        self.cfg_signature = inspect.signature(guidance.cfg_eps)
        monkeypatch.setattr(guidance, "cfg_eps", self.cfg_eps)

    def sampler(self, name: str, signature: inspect.Signature) -> Callable[..., torch.Tensor]:
        def stand_in(*args, **kwargs) -> torch.Tensor:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            model_kwargs = arguments.pop("model_kwargs")
            self.calls.append((name, arguments, model_kwargs))
            unexpected = sorted(set(model_kwargs) - {"y"})
            assert not unexpected, (
                f"{PART}: LatentDiffusion.sample passed {unexpected} to {name}, which does not take them: they would "
                f"reach the denoiser\n  hint: p_sample_loop has no num_steps (DDPM always runs all T steps)"
            )
            x = arguments["noise"]
            if x is None:
                x = torch.randn(tuple(arguments["shape"]), generator=arguments["generator"])
            x = x.to(arguments["device"] or "cpu")
            t = torch.full((x.shape[0],), arguments["schedule"].T - 1, device=x.device)
            return x - 0.5 * arguments["model"](x, t, **model_kwargs)

        return stand_in

    def cfg_eps(self, *args, **kwargs) -> torch.Tensor:
        bound = self.cfg_signature.bind(*args, **kwargs)
        a = bound.arguments
        self.cfg_calls.append(dict(a))
        eps_c = a["model"](a["x_t"], a["t"], y=a["y"])
        eps_u = a["model"](a["x_t"], a["t"], y=torch.full_like(a["y"], a["num_classes"]))
        return eps_u + a["guidance_scale"] * (eps_c - eps_u)

    def only_call(self, name: str) -> tuple[dict, dict]:
        """The arguments of the single sampler call, which must be to ``name``."""
        called = [c[0] for c in self.calls]
        function = {"ddim": "ddim.ddim_sample_loop", "ddpm": "ddpm.p_sample_loop"}[name]
        assert called == [{"ddim": "ddim_sample_loop", "ddpm": "p_sample_loop"}[name]], (
            f"{PART}: LatentDiffusion.sample(sampler={name!r}) must call {function} exactly once; the samplers "
            f"called were {called}\n  hint: call the sampler through its module ({function}(...)), as the provided "
            f"import `from diffusion import ddim, ddpm, guidance` allows; do not copy its loop"
        )
        return self.calls[0][1], self.calls[0][2]


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> StandIns:
    return StandIns(monkeypatch)


# --- latent_scale_factor -------------------------------------------------------------------------------------------


@PROPERTY
@given(
    shape=st.sampled_from([(50, 4, 7, 7), (200, 2, 3, 3), (1000, 3)]),
    std=st.floats(0.05, 20),
    shift=st.floats(-3, 3),
    seed=st.integers(0, 2**16),
)
def test_latent_scale_factor_gives_unit_variance(shape, std, shift, seed):
    """``f = 1 / std`` over the whole set: a number (not one per channel), the scaled latents ``f · z`` have standard
    deviation 1, and the mean of the latents does not matter. Either ``std`` convention (``/ N`` or ``/ (N − 1)``)
    is accepted."""
    latents = shift + std * randn(shape, seed=seed)
    got = latent_scale_factor(latents)
    assert isinstance(got, float | torch.Tensor) and torch.as_tensor(got).numel() == 1, (
        f"{PART}: latent_scale_factor must return one number for the whole set, got {got!r:.100}\n"
        f"  hint: the std over every element at once (latents.std()), not per channel; return a float"
    )
    got = float(got)
    candidates = [1 / latents.std(correction=c).item() for c in (0, 1)]
    assert any(abs(got - c) <= 1e-6 * c for c in candidates), (
        f"{PART}: latent_scale_factor of latents with mean {shift:.3g} and std {std:.3g} returned {got:.6g}, "
        f"expected 1/std = {candidates[1]:.6g}; (f · z).std() = {(got * latents).std().item():.4g}, not 1\n"
        f"  hint: 1 / latents.std() (the root mean square 1/√mean(z²) would mix in the mean; std, not the variance)"
    )


# --- encode and decode ---------------------------------------------------------------------------------------------


def test_encode_is_the_scaled_vae_mean():
    """``encode(x) = f · mu(x)``: the VAE's mean, no sample and no ``logvar``, times the scale factor."""
    ld, x = latent_diffusion(), images(3)
    got = ld.encode(x)
    with torch.no_grad():
        expected = SCALE * ld.vae.encode(x)[0]
    check_close(
        got,
        expected,
        part=PART,
        what=f"LatentDiffusion.encode(x) = f · mu(x) with f = {SCALE}, shape (3, *latent_shape)",
        hint="mu, logvar = self.vae.encode(x); multiply (do not divide) mu by self.scale_factor; do not sample",
    )


def test_decode_unscales_then_decodes():
    """``decode(z) = vae.decode(z / f)``."""
    ld, z = latent_diffusion(), randn((3, *LATENT_SHAPE), torch.float32)
    got = ld.decode(z)
    with torch.no_grad():
        expected = ld.vae.decode(z / SCALE)
    check_close(
        got,
        expected,
        part=PART,
        what=f"LatentDiffusion.decode(z) = vae.decode(z / f) with f = {SCALE}, shape (3, 1, 8, 8)",
        hint="undo the scale of encode before decoding: divide by self.scale_factor",
    )


@PROPERTY
@given(scale=st.floats(0.05, 20), seed=st.integers(0, 2**16))
def test_decode_inverts_encode_for_an_exact_autoencoder(scale, seed):
    """With an autoencoder whose decoder inverts its mean, ``decode(encode(x)) = x`` for every scale factor."""
    ld, x = LatentDiffusion(ExactAutoencoder(), denoiser, schedule(50), scale, LATENT_SHAPE), images(2, seed)
    check_close(
        ld.decode(ld.encode(x)),
        x,
        part=PART,
        what=f"LatentDiffusion.decode(encode(x)) = x (scale factor {scale:.4g})",
        hint="encode multiplies mu by f and decode divides by f: the scale must cancel",
        rtol=1e-4,
        atol=1e-5,
    )


# --- sample --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sample_runs_the_sampler_on_latents_and_decodes(stand_ins, sampler):
    """``sample(5, sampler, num_steps=7, generator=g)`` calls the chosen sampler once with the denoiser, the
    schedule, the latent shape ``(5, *latent_shape)``, the generator and the VAE's device (DDIM with ``num_steps``,
    DDPM with ``clip_denoised=False``), and returns the decoded latents ``vae.decode(z / f)``, shape ``(5, 1, 8, 8)``.
    """
    ld, generator = latent_diffusion(), torch.Generator().manual_seed(3)
    got = ld.sample(5, sampler=sampler, num_steps=7, generator=generator)
    arguments, model_kwargs = stand_ins.only_call(sampler)
    call = f"LatentDiffusion.sample(sampler={sampler!r}) called the sampler with"
    assert arguments["model"] is denoiser and arguments["schedule"] is ld.schedule, (
        f"{PART}: {call} model={arguments['model']!r:.60}, schedule={arguments['schedule']!r:.60}\n"
        f"  hint: without labels, pass self.model itself and self.schedule"
    )
    assert tuple(arguments["shape"]) == (5, *LATENT_SHAPE), (
        f"{PART}: {call} shape={arguments['shape']}, expected (n, *latent_shape) = {(5, *LATENT_SHAPE)}\n"
        f"  hint: the sampler draws latents, not images: shape = (n, *self.latent_shape)"
    )
    assert arguments["generator"] is generator, (
        f"{PART}: {call} generator={arguments['generator']!r}, not the generator given to sample\n"
        f"  hint: pass generator=generator on: the samplers draw every random number from it"
    )
    assert arguments["device"] is not None and torch.device(arguments["device"]) == ld.device, (
        f"{PART}: {call} device={arguments['device']!r}, expected the VAE's device {ld.device}\n"
        f"  hint: pass device=self.device so that sampling runs where the VAE and the denoiser are"
    )
    if sampler == "ddim":
        assert arguments["num_steps"] == 7, (
            f"{PART}: {call} num_steps={arguments['num_steps']}, expected 7\n  hint: pass num_steps=num_steps on"
        )
    assert arguments["clip_denoised"] is False, (
        f"{PART}: {call} clip_denoised={arguments['clip_denoised']}\n"
        f"  hint: latents are not confined to [−1, 1]: pass clip_denoised=False (p_sample_loop clips by default)"
    )
    assert model_kwargs.get("y") is None and not stand_ins.cfg_calls, (
        f"{PART}: {call} {model_kwargs} and cfg_eps was called {len(stand_ins.cfg_calls)}×, without labels y\n"
        f"  hint: without y, sample unconditionally with self.model and no guidance"
    )
    with torch.no_grad():
        expected = ld.vae.decode(one_step(denoiser, (5, *LATENT_SHAPE), seed=3) / SCALE)
    check_close(
        got,
        expected,
        part=PART,
        what=f"LatentDiffusion.sample(sampler={sampler!r}) = vae.decode(sampled latents / f), shape (5, 1, 8, 8)",
        hint="return self.decode(z) of the sampler's output z (decode divides by the scale factor)",
    )


def test_sample_is_reproducible_from_the_generator(stand_ins):
    """Randomness comes only from ``generator``: the same seed gives the same images, another seed others."""
    ld = latent_diffusion()

    def run(seed: int) -> torch.Tensor:
        return ld.sample(4, num_steps=5, generator=torch.Generator().manual_seed(seed))

    first, again, other = run(1), run(1), run(2)
    assert torch.equal(first, again) and not torch.equal(first, other), (
        f"{PART}: LatentDiffusion.sample with generators seeded 1, 1, 2 must give equal, equal, different images\n"
        f"  hint: let the sampler draw the noise from generator=generator; draw nothing from the global RNG"
    )


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sample_with_labels_uses_classifier_free_guidance(stand_ins, sampler):
    """With ``y`` and ``guidance_scale = s``, the sampler's denoiser is ``cfg_eps(model, z_t, t, y, s, num_classes)``
    (through ``guidance.guided_denoiser``) and ``y`` reaches the sampler as ``y=``."""
    ld, y = latent_diffusion(num_classes=NUM_CLASSES), torch.tensor([0, 2, 1, 2])
    got = ld.sample(4, sampler=sampler, y=y, guidance_scale=2.5, generator=torch.Generator().manual_seed(5))
    _, model_kwargs = stand_ins.only_call(sampler)
    assert "y" in model_kwargs and torch.equal(model_kwargs["y"], y), (
        f"{PART}: LatentDiffusion.sample(y=y) must pass y=y to the sampler, which passes it to the denoiser; "
        f"the sampler got {model_kwargs}\n  hint: sampler(model, schedule, shape, ..., y=y)"
    )
    assert stand_ins.cfg_calls, (
        f"{PART}: LatentDiffusion.sample(y=y, guidance_scale=2.5) never called guidance.cfg_eps\n"
        f"  hint: wrap the denoiser with guidance.guided_denoiser(self.model, guidance_scale, self.num_classes)"
    )
    cfg = stand_ins.cfg_calls[0]
    assert cfg["guidance_scale"] == 2.5 and cfg["num_classes"] == NUM_CLASSES and cfg["model"] is denoiser, (
        f"{PART}: cfg_eps was called with guidance_scale={cfg['guidance_scale']}, num_classes={cfg['num_classes']}, "
        f"model={cfg['model']!r:.60}; expected 2.5, {NUM_CLASSES} and the denoiser\n"
        f"  hint: guidance.guided_denoiser(self.model, guidance_scale, self.num_classes)"
    )

    def guided(z_t, t, y):
        eps_u = denoiser(z_t, t, torch.full_like(y, NUM_CLASSES))
        return eps_u + 2.5 * (denoiser(z_t, t, y) - eps_u)

    with torch.no_grad():
        expected = ld.vae.decode(one_step(guided, (4, *LATENT_SHAPE), seed=5, y=y) / SCALE)
    check_close(
        got,
        expected,
        part=PART,
        what=f"LatentDiffusion.sample(sampler={sampler!r}, y, guidance_scale=2.5) with the guided denoiser",
        hint="the sampler's model is the guided denoiser; decode its result",
    )


@pytest.mark.parametrize(
    ("num_classes", "kwargs", "hint"),
    [
        pytest.param(None, {"sampler": "euler"}, "sampler must be 'ddim' or 'ddpm'", id="unknown-sampler"),
        pytest.param(
            None, {"y": torch.tensor([0, 1])}, "labels need a class-conditional model (num_classes)", id="y-no-classes"
        ),
        pytest.param(
            NUM_CLASSES, {"y": torch.tensor([0, 1, 2])}, "y must hold one label per image, shape (n,)", id="y-shape"
        ),
        pytest.param(NUM_CLASSES, {"guidance_scale": 3.0}, "guidance needs labels y", id="guidance-without-y"),
    ],
)
def test_sample_rejects_bad_arguments(stand_ins, num_classes, kwargs, hint):
    """``ValueError`` for an unknown sampler, labels for an unconditional model, labels not of shape ``(n,)``, and a
    guidance scale other than 1 without labels."""
    ld = latent_diffusion(num_classes=num_classes)
    try:
        ld.sample(2, generator=torch.Generator().manual_seed(0), **kwargs)
    except ValueError:
        return
    pytest.fail(
        f"{PART}: LatentDiffusion(num_classes={num_classes}).sample(2, **{kwargs}) must raise ValueError\n"
        f"  hint: {hint}"
    )
