"""Samples must come from the model: the trajectory a sampler made the grader's denoiser see, the hidden mixture
drawn per submission from the grader's secret, and the bound on what a denoiser records."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import stat

import pytest
import torch

from autograder import secret
from autograder.checks.denoisers import (
    OFFSET_DEGREES,
    SECTOR,
    MixtureOracle,
    RecordingLimit,
    SmoothDenoiser,
    hidden_angle,
    hidden_mixture,
)
from autograder.checks.framework import CheckFailed
from autograder.checks.strategies import ScheduleSpec
from autograder.checks.trajectory import Sampling, ddim_rule, ddpm_rule, verify
from autograder.grading import grade
from autograder.isolation.intake import package_fingerprint
from autograder.isolation.submission import LocalSubmission
from autograder.reference import load_reference
from tests.kit.conftest import RUNNERS, reference_with, submission
from tests.plugin import ROOT

REFERENCE = load_reference()
SOLUTIONS = ROOT / "solutions"


def test_the_hidden_angle_is_the_submissions_own_and_keyed_by_the_secret(monkeypatch):
    monkeypatch.setenv(secret.ENVIRONMENT, "one secret")
    angles = [hidden_angle(f"submission {i}") for i in range(64)]
    assert hidden_angle("submission 0") == angles[0], "the same submission must get the same angle"
    assert len(set(angles)) == len(angles)
    low, high = (math.radians(d) for d in OFFSET_DEGREES)
    assert all(low <= angle % SECTOR <= high for angle in angles), "too close to a turn that maps the ring onto itself"
    assert {int(angle // SECTOR) for angle in angles} == set(range(8))
    monkeypatch.setenv(secret.ENVIRONMENT, "another secret")
    assert hidden_angle("submission 0") != angles[0], "another grader's secret must draw another angle"
    means = hidden_mixture("submission 0").means
    assert torch.allclose(means.norm(dim=1), torch.full((8,), 0.6, dtype=torch.float64))


def test_without_the_environment_the_secret_is_a_private_file_made_once(monkeypatch, tmp_path):
    monkeypatch.delenv(secret.ENVIRONMENT, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = secret.grader_secret()
    path = secret.secret_file()
    assert path.is_relative_to(tmp_path) and len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secret.grader_secret() == first and os.listdir(path.parent) == ["secret"]


def test_the_package_fingerprint_follows_the_files_the_worker_sees(tmp_path):
    package = tmp_path / "diffusion"
    shutil.copytree(SOLUTIONS / "diffusion", package, ignore=shutil.ignore_patterns("__pycache__"))
    before = package_fingerprint(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "ddpm.cpython-311.pyc").write_bytes(b"cache")
    assert package_fingerprint(package) == before, "Python's caches are not the submission"
    (package / "notes.txt").write_text("an angle learned elsewhere")
    assert package_fingerprint(package) != before, "every file the student's code can read counts"
    assert LocalSubmission(tmp_path).fingerprint == package_fingerprint(package)


def _oracle_run(sampler: str, eta: float = 0.0, seed: int = 0):
    """A run of the reference's sampler with the exact denoiser (T = 100, 1000 points) and what it must satisfy."""
    schedule = ScheduleSpec("linear", 100).build()
    oracle = MixtureOracle(schedule, hidden_mixture("a test"))
    start = torch.randn(1000, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed + 1)
    if sampler == "ddpm":
        samples = REFERENCE.ddpm.p_sample_loop(oracle, schedule, (1000, 2), generator=generator, noise=start)
        steps, rule = list(range(99, -1, -1)), ddpm_rule(schedule, clip_denoised=True, variance="fixed_small")
    else:
        samples = REFERENCE.ddim.ddim_sample_loop(
            oracle, schedule, (1000, 2), num_steps=20, eta=eta, generator=generator, noise=start
        )
        steps, rule = (
            REFERENCE.ddim.ddim_timesteps(100, 20).flip(0).tolist(),
            ddim_rule(schedule, eta=eta, clip_denoised=False),
        )
    return oracle, samples, Sampling(sampler, "a test run", steps, 1000, rule, "its update", "a hint", start=start)


@pytest.mark.parametrize(("sampler", "eta"), [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_a_sampler_is_held_to_the_trajectory_its_model_saw(sampler, eta):
    oracle, samples, sampling = _oracle_run(sampler, eta)
    verify(oracle, samples, sampling)  # the reference: whatever the angle or the order of its random numbers
    with pytest.raises(CheckFailed, match="must return the state its last step"):
        verify(oracle, samples + 1e-6, sampling)
    with pytest.raises(CheckFailed, match="once per step"):
        verify(oracle, samples, Sampling(**{**sampling.__dict__, "timesteps": sampling.timesteps[1:]}))
    other = torch.randn(samples.shape, dtype=torch.float64)
    with pytest.raises(CheckFailed, match="first model call must be on the starting noise"):
        verify(oracle, samples, Sampling(**{**sampling.__dict__, "start": other}))
    middle = len(oracle.calls) // 2  # the loop evaluates the model at a state it never reached
    oracle.calls[middle] = dataclasses.replace(oracle.calls[middle], x=oracle.calls[middle - 1].x)
    with pytest.raises(CheckFailed, match="must be standard normal|here with no noise"):
        verify(oracle, samples, sampling)


def test_noise_reused_at_every_step_breaks_the_trajectory():
    schedule = ScheduleSpec("linear", 100).build()
    oracle = MixtureOracle(schedule, hidden_mixture("a test"))
    x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    start, z = x, torch.randn(1000, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for step in range(99, -1, -1):
        x = REFERENCE.ddpm.p_sample(oracle, schedule, x, torch.full((1000,), step), z)
    rule = ddpm_rule(schedule, clip_denoised=True, variance="fixed_small")
    sampling = Sampling(
        "p_sample_loop", "a test run", list(range(99, -1, -1)), 1000, rule, "its update", "a hint", start
    )
    with pytest.raises(CheckFailed, match="correlation of 1"):
        verify(oracle, x, sampling)


ENDLESS = """

def p_sample_loop(model, schedule, shape, **kwargs):
    x = torch.zeros(tuple(shape))
    while True:
        try:
            model(x, torch.zeros(shape[0], dtype=torch.long))
        except Exception:
            return x
"""


@pytest.fixture(scope="module", params=RUNNERS)
def endless(request, tmp_path_factory):
    root = reference_with(tmp_path_factory.mktemp("endless"), "ddpm", ENDLESS)
    with submission(request.param, root) as endless:
        yield endless


def test_a_denoiser_called_past_its_limit_fails_the_check_even_when_the_code_catches_the_refusal(endless):
    model = SmoothDenoiser(10)
    model.max_calls = 40
    with pytest.raises(RecordingLimit, match="called more than the grader records") as raised:
        endless.function("ddpm", "p_sample_loop")(model, ScheduleSpec("linear", 10).build(), (3, 2))
    assert model.num_calls == 40 and "hint: " in str(raised.value)
    endless.next_check()  # a sandboxed submission refuses the rest of a check that hit the limit
    model = SmoothDenoiser(10)
    model.max_values = 100  # 3 timesteps a call: the 34th call is refused
    with pytest.raises(RecordingLimit, match="100 values"):
        endless.function("ddpm", "p_sample_loop")(model, ScheduleSpec("linear", 10).build(), (3, 2))
    assert model.num_calls == 33


def test_a_check_whose_denoiser_hit_its_limit_fails_with_that_message(tmp_path):
    root = tmp_path / "submission"
    shutil.copytree(SOLUTIONS / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "diffusion" / "ddpm.py").write_text((root / "diffusion" / "ddpm.py").read_text() + ENDLESS)
    report = grade(root, parts={"ddpm"}, sandboxed=False)
    oracle = next(r for r in report.results if r.check.name == "p_sample_loop_oracle")
    assert oracle.score == 0 and oracle.failure == "check"
    assert "called more than the grader records" in oracle.output and "60,000,000 values" in oracle.output
