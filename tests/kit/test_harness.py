"""The harness: the reference trains and samples to full harness points in the ci profile, sampler
mistakes of the bug zoo lose points there, stubs are reported part by part, and the harness's points
join the ones ``grade`` wrote; the reference's scores are calibrated once per key and reused; the gpu profile's
code path runs on the CPU at tiny scale."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from autograder.harness import calibration, judging
from autograder.harness.pipeline import harness_results, run_profile
from autograder.harness.profiles import PROFILES
from autograder.results import HARNESS_TAG, read_results
from autograder.zoo import MUTANTS
from autograder.zoo.validation import apply
from tests.kit.virtual_device import VIRTUAL, VirtualDevice
from tests.plugin import ROOT

SAMPLER_MUTANTS = {"p_sample_variance_not_std": "ddpm_quality", "step_alpha_bar_prev_from_t_minus_1": "ddim_quality"}
"""Sampler mistakes of the bug zoo and the harness check each must fail (thresholds.toml has their figures)."""


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """The kit's cache for this session's harness runs: the reference is calibrated once for all of them."""
    return tmp_path_factory.mktemp("diffusion-cache")


def run_harness(cache, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder", "harness", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env={**os.environ, "DIFFUSION_CACHE": str(cache)},
    )  # fmt: skip


@pytest.fixture
def harness(cache):
    def run(submission, out, profile="ci", *options: str) -> dict:
        done = run_harness(cache, str(submission), "--profile", profile, "--out", str(out), *options)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads((out / "results.json").read_text())

    return run


def verdicts(results: dict) -> dict[str, dict]:
    return {t["name"].split(": ")[1]: t for t in results["tests"] if HARNESS_TAG in t["tags"]}


def test_the_reference_calibrated_then_graded_gets_full_harness_points_with_figures(cache, tmp_path):
    calibrated = run_harness(cache, "calibrate", "--profile", "ci", "--threads", "1")
    assert calibrated.returncode == 0 and "calibrated profile ci on cpu: " in calibrated.stdout, calibrated.stdout
    graded = run_harness(cache, str(ROOT / "solutions"), "--profile", "ci", "--out", str(tmp_path))
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert "reusing the calibration" in graded.stdout and "calibrating" not in graded.stdout, graded.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["extra_data"]["harness"]["calibration"]["reused"] is True
    tests = verdicts(results)
    assert set(tests) == {"training", "ddpm_quality", "ddim_quality", "cfg_accuracy"}
    assert all(t["status"] == "passed" for t in tests.values()), [t["output"] for t in tests.values()]
    assert results["score"] == sum(t["max_score"] for t in tests.values())
    for figure in ("samples", "steps", "guidance"):
        assert (tmp_path / f"{figure}_mixture2d.png").stat().st_size > 10_000
    names = {entry["name"] for entry in results["leaderboard"]}
    assert {"mixture2d ddpm energy distance", "mixture2d ddim_50_0 energy distance"} <= names
    scores = results["extra_data"]["harness"]["plans"]["mixture2d"]["scores"]
    assert scores["floor"] < scores["ceiling"] / 10 and scores["runs"]["ddpm"]["distance"] < scores["ceiling"] / 10


@pytest.mark.parametrize("name", sorted(SAMPLER_MUTANTS))
def test_a_subtly_wrong_sampler_loses_harness_points(harness, tmp_path, name):
    mutant = next(m for m in MUTANTS if m.name == name)
    results = harness(apply((mutant.edit,), tmp_path / "submission"), tmp_path / "out")
    tests = verdicts(results)
    assert tests[SAMPLER_MUTANTS[name]]["status"] == "failed", tests[SAMPLER_MUTANTS[name]]["output"]
    assert tests["training"]["status"] == "passed"


def test_stubs_are_reported_part_by_part(harness, tmp_path):
    results = harness(ROOT / "assignments", tmp_path)
    tests = verdicts(results)
    assert results["score"] == 0
    assert "training failed: " in tests["training"]["output"]
    assert "schedules.cosine_betas raised NotImplementedError" in tests["training"]["output"]
    assert "schedules.linear_betas" in tests["training"]["output"] and "losses.ddpm_loss" in tests["training"]["output"]
    assert "ddpm.p_sample_loop" in tests["ddpm_quality"]["output"]
    assert "ddim.ddim_sample_loop" in tests["ddim_quality"]["output"]
    assert "guidance.cfg_eps" in tests["cfg_accuracy"]["output"]


def test_harness_points_join_the_grade_results_of_the_same_submission(tmp_path):
    grade = {
        "score": 100.0,
        "output": "graded",
        "tests": [{"name": "Part 1 (schedules): x", "score": 100.0, "max_score": 100.0, "tags": ["schedules"]}],
        "extra_data": {"submission_sha256": "abc"},
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(grade))
    report = {
        "profile": "ci",
        "description": "test",
        "plans": {
            "p": {
                "scores": {"runs": {"ddpm": {"metric": "energy", "distance": 0.001}}},
                "verdicts": [
                    {"check": "c", "title": "t", "score": 2.0, "max_score": 2.0, "passed": True, "message": "m"}
                ],
            },
        },
    }
    merged = harness_results(read_results(path), report, "abc")
    assert merged["score"] == 102.0 and len(merged["tests"]) == 2
    assert merged["leaderboard"] == [{"name": "p ddpm energy distance", "value": 0.001, "order": "asc"}]
    assert merged["output"].startswith("graded\n\nharness, profile ci: test")
    path.write_text(json.dumps(merged))
    again = harness_results(read_results(path), report, "abc")  # a second harness run replaces the first
    assert again["score"] == 102.0 and again["output"] == merged["output"]
    assert harness_results(read_results(path), report, "another submission")["score"] == 2.0


HOSTILE = r"""

# --- a hostile entry: every function a stub, the experiment faked from inside the worker ---
import sys as _sys  # noqa: E402

import torch as _torch  # noqa: E402

_calls = [0]


def _draws(shape, y):
    from diffusion.data import load_dataset

    data = load_dataset("mixture2d", n=20000, seed=5)
    xs = _torch.stack([data[i][0] for i in range(len(data))])
    ys = _torch.as_tensor([int(data[i][1]) for i in range(len(data))])
    out = _torch.empty(shape)
    for k in y.unique().tolist():
        pick = (y == k).nonzero().flatten()
        out[pick] = xs[ys == k][: len(pick)]
    return out


def _betas(T, *args, **kwargs):
    return _torch.linspace(1e-3, 0.2, T, dtype=_torch.float64)


def _schedule(betas):
    alphas = 1 - betas
    bars = _torch.cumprod(alphas, 0)
    prev = _torch.cat([_torch.ones(1, dtype=_torch.float64), bars[:-1]])
    return NoiseSchedule(betas=betas, alphas=alphas, alpha_bars=bars, alpha_bars_prev=prev)


def _loss(model, schedule, x0, generator=None, **kwargs):
    _calls[0] += 1
    out = model(x0, _torch.zeros(len(x0), dtype=_torch.long), **kwargs)
    return (out * 0).sum() + 1.0 / _calls[0]


def _sampler(model, schedule, shape, **kwargs):
    return _draws(shape, kwargs["y"])


def _run_plan(plan, *args, **kwargs):
    n = plan.get("n_samples", 600)
    labels = _torch.arange(n) % 8
    runs = {name: {"sampler": "ddim", "steps": 50, "eta": 0.0, "guidance_scale": 1.0, "seconds": 0.01,
                   "samples": _draws((n, 2), labels)}
            for name in ("ddpm", "ddim_10_0", "ddim_20_0", "ddim_50_0", "ddim_50_1", "cfg_0", "cfg_1", "cfg_3")}
    return {"plan": plan, "device": "cpu", "num_classes": 8, "labels": labels,
            "train": {"seconds": 1.0, "losses": [1.0, 0.5, 0.1], "error": None}, "runs": runs}


_FAKES = {"linear_betas": _betas, "cosine_betas": _betas, "make_schedule": _schedule, "ddpm_loss": _loss,
          "drop_labels": lambda y, *a, **k: y.clone(), "p_sample_loop": _sampler, "ddim_sample_loop": _sampler,
          "cfg_eps": lambda model, x_t, *a, **k: _torch.zeros_like(x_t), "run_plan": _run_plan}
for _name in ("evaluate", "train", "ddpm", "ddim", "losses", "guidance", "schedules"):
    _module = _sys.modules.get(f"diffusion.{_name}") or __import__(f"diffusion.{_name}", fromlist=["_"])
    for _attr, _fake in _FAKES.items():
        if hasattr(_module, _attr):
            setattr(_module, _attr, _fake)
_module.train = lambda *a, **k: None
for _where in ("autograder.sandbox.worker", "autograder.sandbox.calls"):
    if _where in _sys.modules:
        _real = _sys.modules["autograder.sandbox.calls"].resolve
        _sys.modules[_where].resolve = lambda module, name, instance=None, _real=_real: (
            _FAKES.get(name.rpartition(".")[2]) or _real(module, name, instance))
"""


def test_a_hostile_entry_that_fakes_the_experiment_inside_the_worker_gets_no_harness_points(harness, tmp_path):
    """Stubs everywhere; at import it patches the kit's run_plan and train, the worker's resolve and every part's
    functions to return draws of the public mixture, with a loss that never trains the model: the grader's
    experiment sees through it (the model is never used by the samplers, the held-out loss does not fall)."""
    submission = tmp_path / "submission" / "diffusion"
    shutil.copytree(ROOT / "assignments" / "diffusion", submission, ignore=shutil.ignore_patterns("__pycache__"))
    schedules = submission / "schedules.py"
    schedules.write_text(schedules.read_text() + HOSTILE)
    results = harness(submission.parent, tmp_path / "out")
    tests = verdicts(results)
    assert results["score"] == 0, [t["output"] for t in tests.values()]
    assert "held-out data" in tests["training"]["output"]
    assert "the samples must come from the model" in tests["ddpm_quality"]["output"]


def test_wrong_sample_counts_and_nan_samples_score_nothing_with_a_clear_message(harness, tmp_path):
    submission = tmp_path / "submission" / "diffusion"
    shutil.copytree(ROOT / "solutions" / "diffusion", submission, ignore=shutil.ignore_patterns("__pycache__"))
    with (submission / "ddpm.py").open("a") as ddpm:
        ddpm.write("\n\n_loop = p_sample_loop\n\n\ndef p_sample_loop(*args, **kwargs):\n"
                   "    return _loop(*args, **kwargs)[:-1]\n")  # fmt: skip
    with (submission / "ddim.py").open("a") as ddim:
        ddim.write("\n\n_loop = ddim_sample_loop\n\n\ndef ddim_sample_loop(*args, **kwargs):\n"
                   "    x = _loop(*args, **kwargs).clone()\n    x[0, 0] = float('nan')\n    return x\n")  # fmt: skip
    tests = verdicts(harness(submission.parent, tmp_path / "out"))
    assert tests["training"]["status"] == "passed", tests["training"]["output"]
    assert tests["ddpm_quality"]["status"] == "failed"
    assert "expected exactly 600 samples" in tests["ddpm_quality"]["output"]
    assert tests["ddim_quality"]["status"] == "failed" and "NaN" in tests["ddim_quality"]["output"]
    assert tests["cfg_accuracy"]["status"] == "failed" and "NaN" in tests["cfg_accuracy"]["output"]


# Samplers that call the grader's model once per step on the whole batch, as the count of rows used to demand, and
# return something else: fresh draws of the public 2-D mixture (what the harness scores against) or the state of
# the step before the last. The trajectory check (autograder.checks.trajectory.verify) fails both runs.
FORGED_SAMPLES = """

from diffusion.data import load_dataset as _load_dataset

_loop = p_sample_loop


def p_sample_loop(model, schedule, shape, **kwargs):
    _loop(model, schedule, shape, **kwargs)  # every step through the model, then the answer thrown away
    return _load_dataset("mixture2d", n=shape[0], seed=7).points.to(torch.float64)
"""
BEFORE_THE_LAST_STEP = """

_loop = ddim_sample_loop


def ddim_sample_loop(model, schedule, shape, **kwargs):
    states = []
    def watched(x_t, t, **model_kwargs):
        states.append(x_t)
        return model(x_t, t, **model_kwargs)
    _loop(watched, schedule, shape, **kwargs)
    return states[-1]
"""


def test_samplers_that_call_the_model_but_return_other_samples_score_nothing(harness, tmp_path):
    submission = tmp_path / "submission" / "diffusion"
    shutil.copytree(ROOT / "solutions" / "diffusion", submission, ignore=shutil.ignore_patterns("__pycache__"))
    with (submission / "ddpm.py").open("a") as ddpm:
        ddpm.write(FORGED_SAMPLES)
    with (submission / "ddim.py").open("a") as ddim:
        ddim.write(BEFORE_THE_LAST_STEP)
    tests = verdicts(harness(submission.parent, tmp_path / "out"))
    assert tests["training"]["status"] == "passed", tests["training"]["output"]
    for name in ("ddpm_quality", "ddim_quality", "cfg_accuracy"):
        assert tests[name]["status"] == "failed", tests[name]["output"]
        assert "samples must come from the model" in tests[name]["output"], tests[name]["output"]


def reference_report(distance: float = 0.01, error: str | None = None) -> dict:
    """A harness report of the reference with one plan ``p`` (what calibration measures)."""
    runs = {"ddpm": {"metric": "energy", "distance": distance, "accuracy": 0.9}}
    return {"plans": {"p": {"train": {"error": error, "held_out": None}, "scores": {"runs": runs}, "seconds": 1.0}}}


def test_the_reference_is_measured_once_per_key_then_reused(tmp_path, monkeypatch):
    measured = []

    def measure(figures):
        measured.append(figures)
        return reference_report()

    cpu = torch.device("cpu")
    first = calibration.calibration("ci", cpu, tmp_path, measure)
    assert not first.reused and len(measured) == 1 and first.stored["key"]["device"].startswith("cpu: ")
    assert first.path.is_file() and measured == [first.path.with_suffix("")]
    again = calibration.calibration("ci", cpu, tmp_path, measure)
    assert again.reused and (again.stored, again.path) == (first.stored, first.path) and len(measured) == 1
    assert not calibration.calibration("ci", cpu, tmp_path, measure, force=True).reused and len(measured) == 2
    monkeypatch.setattr(torch, "__version__", "0.0.0")  # another torch: another key, measured again
    other = calibration.calibration("ci", cpu, tmp_path, measure)
    assert not other.reused and len(measured) == 3 and other.stored["key"]["torch"] == "0.0.0"
    assert other.path != first.path and len(list(tmp_path.glob("ci-*.json"))) == 2


def test_a_reference_that_cannot_be_measured_is_a_grader_error(tmp_path):
    with pytest.raises(calibration.GraderError, match="the reference solution failed in plan p"):
        calibration.calibration("ci", torch.device("cpu"), tmp_path, lambda _: reference_report(error="OOM"))
    with pytest.raises(calibration.GraderError, match="could not be calibrated: sandbox"):
        calibration.calibration("ci", torch.device("cpu"), tmp_path, lambda _: {"grader_error": "sandbox", "plans": {}})
    assert not list(tmp_path.glob("*.json"))


def judged(distance: float, reference: float, floor: float, accuracy: float = 0.9) -> dict[str, judging.Verdict]:
    """The verdicts of a run of ``distance`` (DDPM and DDIM) against a reference of ``reference``."""
    limits = {"loss_ratio": 0.8, "ddim_run": "ddim", "ddpm_factor": 2.0, "ddim_factor": 2.0, "cfg_margin": 0.1,
              "cfg_sharp_run": "cfg_3", "vae_factor": 1.5, "weight": 0.5}  # fmt: skip

    def scores(d: float, acc: float) -> dict:
        runs = {name: {"metric": "fd", "distance": d, "accuracy": acc} for name in ("ddpm", "ddim", "cfg_1", "cfg_3")}
        return {"runs": runs, "floor": floor, "ceiling": 100.0, "vae": {"recon_error": d / 100}}

    run = {"train": {"error": None, "losses": [1.0, 0.5], "held_out": {"model": 0.3, "zero": 1.0}}}
    verdicts = judging.judge(run, scores(distance, accuracy), limits, {"scores": scores(reference, 0.9)}, {})
    return {v.check.name: v for v in verdicts}


def test_distances_pass_within_the_factor_of_the_reference_or_of_the_real_data_when_higher():
    assert judged(19.9, reference=10.0, floor=5.0)["ddpm_quality"].passed
    failed = judged(20.1, reference=10.0, floor=5.0)["ddpm_quality"]
    assert not failed.passed and "at most 20: 2× the reference's 10 on this machine" in failed.message
    lucky = judged(0.0019, reference=0.0005, floor=0.001)["ddim_quality"]  # the reference below the floor: noise
    assert lucky.passed and "or the real data's 0.001 when higher" in lucky.message
    assert not judged(0.0021, reference=0.0005, floor=0.001)["ddim_quality"].passed


def test_accuracy_within_the_margin_reconstructions_within_their_factor_and_points_weighted():
    verdicts = judged(10.0, reference=10.0, floor=5.0, accuracy=0.79)
    assert not verdicts["cfg_accuracy"].passed and "must be at least 80.0%" in verdicts["cfg_accuracy"].message
    assert judged(10.0, reference=10.0, floor=5.0, accuracy=0.81)["cfg_accuracy"].passed
    assert judged(14.9, reference=10.0, floor=5.0)["vae_reconstruction"].passed
    assert not judged(15.1, reference=10.0, floor=5.0)["vae_reconstruction"].passed
    assert {name: v.points for name, v in verdicts.items()} == {
        "training": 0.5, "ddpm_quality": 1.0, "ddim_quality": 1.0, "cfg_accuracy": 1.0, "vae_reconstruction": 0.5
    }  # fmt: skip


def test_the_gpu_profile_runs_its_code_path_on_the_cpu_at_tiny_scale(harness, tmp_path):
    """The gpu profile's plans (the deeper UNet in bfloat16 autocast, pixel and latent images, the mixture) at toy
    sizes through the whole harness on ``--device cpu``: the reference earns every point, calibrated on this CPU."""
    results = harness(ROOT / "solutions", tmp_path, "gpu-tiny", "--device", "cpu")
    report = results["extra_data"]["harness"]
    assert report["calibration"]["device"].startswith("cpu: ") and report["calibration"]["profile"] == "gpu-tiny"
    assert {"mixture2d", "images", "latent"} <= set(report["plans"])
    assert set(report["plans"]) | set(report["skipped"]) == {"mixture2d", "images", "latent", "cifar"}
    images = report["plans"]["images"]["plan"]
    assert images["mixed_precision"] and images["channel_mults"] == [1, 2, 2] and images["device"] == "cpu"
    failed = [t["output"] for t in results["tests"] if HARNESS_TAG in t["tags"] and t["status"] != "passed"]
    assert not failed and results["score"] == 14.5, failed
    assert (tmp_path / "reconstructions_latent.png").is_file() and (tmp_path / "samples_images_ddpm.png").is_file()


def test_the_students_vae_loss_trains_the_graders_vae_through_the_gradients_it_returns():
    """``attached_terms``: the loss the worker computed comes back attached to the grader's graph through the
    gradients it returned with respect to the reconstruction, ``mu`` and ``logvar``; an answer that is not a dict
    with a scalar ``loss``, or whose loss does not depend on them, is the training's error, said as such."""
    from autograder.harness.experiment import attached_terms
    from autograder.sandbox.calls import with_gradients
    from diffusion.vae import vae_loss

    x = torch.randn(3, 1, 4, 4)
    weight = torch.ones((), requires_grad=True)  # a stand-in for the grader's VAE
    x_recon, mu, logvar = weight * torch.randn(3, 1, 4, 4), weight * torch.randn(3, 2), weight * torch.randn(3, 2)

    def remote(function):  # as the worker answers: the value and the vector-Jacobian products of its "loss"
        return lambda *args, cotangent, **kwargs: with_gradients(function, list(args), kwargs, [1, 2, 3], cotangent)

    terms = attached_terms(remote(vae_loss))(x, x_recon, mu, logvar, kl_weight=0.5)
    expected = vae_loss(x, x_recon, mu, logvar, kl_weight=0.5)
    assert torch.allclose(terms["loss"], expected["loss"]) and torch.equal(terms["kl"], expected["kl"].detach())
    (grad,) = torch.autograd.grad(terms["loss"], weight, retain_graph=True)
    (expected_grad,) = torch.autograd.grad(expected["loss"], weight)
    assert torch.allclose(grad, expected_grad)
    constant = remote(lambda *args, **kwargs: {"loss": torch.tensor(1.0, requires_grad=True)})
    with pytest.raises(ValueError, match="vae_loss's 'loss' does not depend"):
        attached_terms(constant)(x, x_recon, mu, logvar)
    with pytest.raises(ValueError, match="vae_loss returned tuple, expected a dict with a tensor 'loss'"):
        attached_terms(remote(lambda *args, **kwargs: (1, 2)))(x, x_recon, mu, logvar)


def test_the_virtual_device_records_what_a_gpu_would_refuse():
    """The yardstick of the next test: host and device tensors in one operation are recorded, moves are copies,
    ``x.to(y.device)`` follows ``y``, and a watched model's host inputs or weights are recorded."""
    with VirtualDevice().watching({"Linear"}) as device:
        x, host = torch.randn(4, 3, device=VIRTUAL), torch.ones(4, 3)
        assert x.device == VIRTUAL and (x * 2).device == VIRTUAL and host.device == torch.device("cpu")
        assert not device.violations
        _ = x + torch.tensor(2.0)  # a host scalar is allowed, as on a GPU
        assert not device.violations
        _ = x + host
        assert len(device.violations) == 1 and "host tensors [(4, 3)]" in device.report()
        assert host.to(x.device).device == VIRTUAL and x.cpu().device == torch.device("cpu") and x.device == VIRTUAL
        model = torch.nn.Linear(3, 2).to(VIRTUAL)
        assert model(x).device == VIRTUAL and len(device.violations) == 1
        model(host)  # its input left on the host: the call, and its first operation, are recorded
        assert len(device.violations) == 3 and "Linear called with host tensors [(4, 3)]" in device.report()
        torch.nn.Linear(3, 2)(host)  # a model left on the host
    assert device.model_calls == 3 and len(device.violations) == 4, device.report()
    assert "host weights ['weight', 'bias']" in device.report()


def test_every_tensor_the_harness_gives_its_models_follows_the_requested_device(tmp_path, monkeypatch):
    """The gpu profile's plans (the deeper UNet in autocast, pixel and latent images, the mixture), smaller still,
    on the virtual device ``cpu:0`` through the whole harness: its data, noise, labels, models and every tensor
    the worker sends back (the worker, like one whose sandbox sees no GPU, answers on the CPU) reach the grader's
    models on that device, and nothing mixes host tensors with the device's."""
    small = {"n_train": 64, "T": 10, "train_steps": 4, "batch_size": 8, "n_samples": 6, "vae_steps": 3,
             "ddim": ((3, 0.0), (3, 1.0)), "guidance_steps": 3, "guidance_scales": (0.0, 2.0)}  # fmt: skip
    tiny = PROFILES["gpu-tiny"]
    monkeypatch.setitem(PROFILES, "gpu-tiny", replace(tiny, plans={n: {**p, **small} for n, p in tiny.plans.items()}))
    with VirtualDevice().watching({"UNet", "MLPDenoiser", "VAE", "Autocast"}) as device:
        report = run_profile(ROOT / "solutions", "gpu-tiny", tmp_path, 1, VIRTUAL)
    assert "grader_error" not in report, report["grader_error"]
    assert {"mixture2d", "images", "latent"} <= set(report["plans"])
    for name, plan in report["plans"].items():
        assert plan["train"]["error"] is None and plan["device"] == "cpu:0", (name, plan["train"])
        assert not [run for run, entry in plan["scores"]["runs"].items() if "error" in entry], (name, plan["scores"])
    assert device.model_calls > 100 and not device.violations, device.report()
