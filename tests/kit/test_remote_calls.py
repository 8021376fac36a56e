"""Calls beyond plain functions, in the sandbox and in-process alike: methods of a fresh object of the
student's class with given weights, gradients taken where the student's code runs, and objects
handed to the student's code as stand-ins."""

from __future__ import annotations

import shutil

import pytest
import torch

from autograder.checks.denoisers import SmoothDenoiser
from autograder.checks.latent import LinearVAE, latent_diffusion
from autograder.checks.strategies import ScheduleSpec
from autograder.checks.vae import VAE_KWARGS, reference_vae
from autograder.isolation.errors import StudentError
from autograder.isolation.remote import RemoteSubmission
from autograder.isolation.submission import Instance
from tests.kit.conftest import RUNNERS, reference_with, submission
from tests.plugin import ROOT

SOLUTIONS = ROOT / "solutions"


@pytest.fixture(scope="module", params=RUNNERS)
def reference(request):
    with submission(request.param, SOLUTIONS) as reference:
        yield reference


def test_gradients_are_taken_where_the_code_runs(reference):
    mu, logvar, noise = torch.randn(3, 4, dtype=torch.float64).unbind(0)
    cotangent = torch.linspace(-1, 1, 4, dtype=torch.float64)
    value, (d_mu, d_logvar) = reference.gradient("vae", "reparameterize", wrt=(0, 1))(
        mu, logvar, noise, cotangent=cotangent
    )
    assert torch.allclose(value, mu + (0.5 * logvar).exp() * noise)
    assert torch.equal(d_mu, cotangent)
    assert torch.allclose(d_logvar, cotangent * 0.5 * (0.5 * logvar).exp() * noise)
    assert not value.requires_grad


def test_a_method_runs_on_a_fresh_object_with_the_given_weights(reference):
    vae = reference_vae()
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    instance = Instance("VAE", kwargs=VAE_KWARGS, state=vae.state_dict())
    mu, logvar = reference.method("vae", instance, "encode")(x)
    with torch.no_grad():
        expected = vae.encode(x)
    assert torch.equal(mu, expected[0]) and torch.equal(logvar, expected[1])
    state = torch.get_rng_state()
    reference.method("vae", Instance("VAE", kwargs=VAE_KWARGS), "encode")(x)  # its own initial weights
    assert torch.equal(torch.get_rng_state(), state), "building the object must not draw from the caller's RNG"


def test_an_object_with_other_weights_is_refused_with_a_clear_message(reference):
    state = reference_vae().state_dict()
    wrong = Instance("VAE", kwargs={**VAE_KWARGS, "base_channels": 16}, state=state)
    with pytest.raises(StudentError, match="keep the provided architecture"):
        reference.method("vae", wrong, "decode")(torch.zeros(1, 2, 2, 2))


def test_an_exposed_object_is_used_through_its_methods(reference):
    """LatentDiffusion gets the grader's VAE: its calls come back here, its device is known."""
    vae = LinearVAE()
    schedule = ScheduleSpec("linear", 10).build()
    instance = latent_diffusion(vae, SmoothDenoiser(10), schedule)
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    z = reference.method("latent", instance, "encode")(x)
    assert torch.allclose(z, 2.5 * vae.encode(x)[0])
    assert vae.calls["encode"] == 2  # the student's call and ours


def test_other_parts_imported_as_a_package_attribute_are_the_reference(tmp_path):
    """``from diffusion import ddpm`` in the student's module reaches the reference's sampler, not the stub."""
    root = tmp_path / "submission"
    shutil.copytree(SOLUTIONS / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    vae = LinearVAE()
    schedule = ScheduleSpec("linear", 10).build()
    model = SmoothDenoiser(10)
    with RemoteSubmission(root) as submission:
        images = submission.method("latent", latent_diffusion(vae, model, schedule), "sample")(
            4, sampler="ddpm", generator=torch.Generator().manual_seed(0)
        )
    assert images.shape == (4, 1, 4, 4) and model.num_calls == 10


VANDAL = """
import torch


def q_sample(schedule, x0, t, noise):
    for tensor in (x0, noise, schedule.betas, schedule.alphas, schedule.alpha_bars, schedule.alpha_bars_prev):
        tensor.zero_()
    return torch.zeros_like(x0)


def q_step(schedule, x_prev, t, noise):
    return x_prev


def q_mean_variance(schedule, x0, t):
    torch.randn(3, generator=GENERATOR)
    return x0, x0


GENERATOR = None
"""


@pytest.fixture(scope="module", params=RUNNERS)
def vandal(request, tmp_path_factory):
    root = reference_with(tmp_path_factory.mktemp("vandal"), "forward", "")
    (root / "diffusion" / "forward.py").write_text(VANDAL)
    with submission(request.param, root) as vandal:
        yield vandal


def test_a_change_in_place_fails_the_call_and_never_reaches_the_graders_tensors(vandal):
    schedule = ScheduleSpec("linear", 10).build()
    fields = [schedule.betas.clone(), schedule.alpha_bars.clone()]
    x0, noise, t = (
        torch.ones(2, 3, dtype=torch.float64),
        torch.full((2, 3), 0.5, dtype=torch.float64),
        torch.tensor([1, 4]),
    )
    with pytest.raises(StudentError) as raised:
        vandal.function("forward", "q_sample")(schedule, x0, t, noise)
    assert raised.value.changed_in_place
    message = str(raised.value)
    assert "forward.q_sample changed" in message and "in place" in message
    assert "its argument 2" in message and "NoiseSchedule's betas" in message
    assert torch.equal(x0, torch.ones(2, 3, dtype=torch.float64)) and torch.equal(noise, torch.full_like(noise, 0.5))
    assert torch.equal(schedule.betas, fields[0]) and torch.equal(schedule.alpha_bars, fields[1])


def test_a_generator_passed_to_a_call_comes_back_as_it_was(reference):
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    reference.function("losses", "ddpm_loss")(
        SmoothDenoiser(10), ScheduleSpec("linear", 10).build(), torch.zeros(4, 2), generator=generator
    )
    assert torch.equal(generator.get_state(), state)
