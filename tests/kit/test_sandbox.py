"""Hostile submissions: a catalogue of attempts to cheat or break the grader, each with the most it may score.

Most entries are the reference with ``forward.py`` replaced by code whose functions attack (then
answer garbage, or the attack's own value): their ceiling is 0 points in ``forward``, and
``schedules`` (the reference's) must keep its full marks in the same run, so the grader survived
and went on. Samplers that do not sample attack the oracle checks of ``ddpm`` (one also those of
``ddim`` and ``latent``) instead. Attacks that only the bubblewrap sandbox can stop are skipped where
it cannot run; a fork bomb also needs the process limit, which Linux does not apply to root outside
the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from autograder.grading import grade
from autograder.isolation import launcher
from autograder.isolation.budget import tree_budget
from autograder.isolation.launcher import isolation
from autograder.parts import PART_BY_NAME
from autograder.results import results_json
from autograder.sandbox.limits import Limits
from autograder.secret import secret_file
from tests.plugin import ROOT

SANDBOXED = isolation().sandboxed
FAST = Limits(wall_seconds=20.0, cpu_seconds=60, memory_bytes=6 << 30)
SECRET_VALUE = "s3cr3t-token-of-the-grader"
HIDDEN_CHECKS = ROOT / "autograder" / "checks" / "forward.py"
REFERENCE_FORWARD = ROOT / "solutions" / "diffusion" / "forward.py"

FORWARD = """
import os, sys, time, socket, pathlib
import torch

def attack(x):
{attack}

def q_sample(schedule, x0, t, noise):
    result = attack(x0)
    return result if {returns} else x0 * 0.5

def q_step(schedule, x_prev, t, noise):
    result = attack(x_prev)
    return result if {returns} else x_prev * 0.5

def q_mean_variance(schedule, x0, t):
    result = attack(x0)
    return result if {returns} else (x0 * 0.5, x0 * 0.5)
"""


@dataclass(frozen=True)
class Hostile:
    """One hostile ``forward.py``: ``attack(x)`` runs in every function (``x`` is the data argument)."""

    attack: str
    returns: bool = False
    """Whether the functions answer what ``attack`` returns (else a wrong value)."""
    sandbox_only: bool = False
    budget_only: bool = False
    """Only a control group stops it (the grader's budget for the whole worker tree)."""
    limits: Limits = FAST
    absent: tuple[str, ...] = ()
    """Text that must not appear anywhere in the results (a leaked secret)."""
    present: tuple[str, ...] = ()
    """Text the feedback must contain."""
    outside: tuple[Path, ...] = field(default=())
    """Files the attack tries to create: they must not exist afterwards."""


CATALOGUE = {
    "sys.exit(0)": Hostile("sys.exit(0)"),
    "os._exit(0)": Hostile("os._exit(0)", present=("WorkerDied",)),
    "os.abort()": Hostile("os.abort()"),
    "kill the parent": Hostile("os.kill(os.getppid(), 9)\nos.kill(1, 9)", sandbox_only=True),
    "monkeypatch torch comparisons": Hostile(
        """
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        torch.testing.assert_close = lambda *a, **k: None
        torch.Tensor.__eq__ = lambda *a, **k: True
        """
    ),
    "monkeypatch numpy": Hostile("import numpy; numpy.allclose = lambda *a, **k: True; numpy.testing = None"),
    "monkeypatch pytest and Hypothesis": Hostile(
        """
        import pytest, hypothesis
        pytest.approx = lambda *a, **k: a[0]
        hypothesis.given = lambda *a, **k: (lambda f: (lambda *b, **c: None))
        hypothesis.settings.register_profile("x", max_examples=0)
        """
    ),
    "always-equal object": Hostile(
        """
        class Anything:
            def __eq__(self, other): return True
            def __getattr__(self, name): return lambda *a, **k: self
        return Anything()
        """,
        returns=True,
        present=("cannot cross the channel",),
    ),
    "tensor subclass that equals everything": Hostile(
        """
        class Liar(torch.Tensor):
            def __eq__(self, other): return True
        return x.as_subclass(Liar)
        """,
        returns=True,
    ),
    "write results.json and files outside scratch": Hostile(
        f"""
        for path in {str(ROOT / "results.json")!r}, {str(ROOT / "autograder" / "pwned.py")!r}, "/tmp/pwned":
            try:
                pathlib.Path(path).write_text('{{"score": 100}}')
            except OSError:
                pass
        """,
        sandbox_only=True,
        outside=(ROOT / "results.json", ROOT / "autograder" / "pwned.py", Path("/tmp/pwned")),
    ),
    "read the hidden checks and the solutions": Hostile(
        f"""
        leaked = []
        for path in {str(HIDDEN_CHECKS)!r}, {str(REFERENCE_FORWARD)!r}:
            try:
                leaked.append(pathlib.Path(path).read_text()[:3000])
            except OSError as error:
                leaked.append(f"no view of {{path}}")
        raise RuntimeError(" | ".join(leaked))
        """,
        sandbox_only=True,
        absent=("@check(", "### BEGIN SOLUTION"),
        present=("no view of",),
    ),
    "environment secrets": Hostile(
        "raise RuntimeError('env: ' + repr(dict(os.environ)))", absent=(SECRET_VALUE,), present=("env: ",)
    ),
    "the grader's environment through /proc": Hostile(
        """
        found = []
        for pid in os.listdir("/proc"):
            try:
                found.append(pathlib.Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace"))
            except (OSError, ValueError):
                pass
        raise RuntimeError("proc: " + " ".join(found)[:1500])
        """,
        sandbox_only=True,
        absent=(SECRET_VALUE,),
    ),
    "network socket": Hostile(
        """
        try:
            socket.create_connection(("127.0.0.1", 22), timeout=2)
            raise RuntimeError("network reachable")
        except OSError:
            pass
        """,
        sandbox_only=True,
        absent=("network reachable",),
    ),
    "print a fake score": Hostile('print(\'{"score": 100, "tests": []}\'); sys.stdout.flush()'),
    "infinite loop": Hostile("while True: pass", limits=Limits(wall_seconds=2.0), present=("wall-time limit of 2 s",)),
    "sleep past the limit": Hostile("time.sleep(3600)", limits=Limits(wall_seconds=2.0), present=("wall-time limit",)),
    "fork bomb": Hostile(
        """
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        limits=Limits(wall_seconds=3.0, processes=32),
        present=("wall-time limit",),
    ),
    "forked children hold the memory limit many times": Hostile(
        """
        children = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                block = bytearray(400 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(2)
                os._exit(0)
            children.append(pid)
        held = sum(os.waitpid(pid, 0)[1] == 0 for pid in children)
        raise RuntimeError(f"children held: {held} of 4")
        """,
        budget_only=True,
        limits=Limits(wall_seconds=30.0, cpu_seconds=60, memory_bytes=6 << 30, tree_memory_bytes=1 << 30),
        absent=("children held: 4 of 4",),
    ),
    "zero the inputs in place and answer zeros": Hostile(
        "x.zero_()\nreturn torch.zeros_like(x)", returns=True, present=("in place",)
    ),
    "allocate 50 GiB": Hostile("return torch.empty(50 << 30, dtype=torch.uint8)", returns=True),
    "NaN": Hostile("return torch.full_like(x, float('nan'))", returns=True),
    "wrong shape": Hostile("return torch.zeros(1, 2, 3, 4)", returns=True),
    "wrong dtype": Hostile("return x.to(torch.float16)", returns=True),
    "wrong device": Hostile("return x.to('meta')", returns=True),
}
FORK_NEEDS = SANDBOXED or os.geteuid() != 0
BUDGET = tree_budget(1 << 30, 8)
if BUDGET is not None:
    BUDGET.close()


def hostile(tmp_path: Path, entry: Hostile) -> Path:
    """The reference package with a hostile ``forward.py``."""
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    body = textwrap.indent(textwrap.dedent(entry.attack).strip(), "    ")
    (root / "diffusion" / "forward.py").write_text(FORWARD.format(attack=body, returns=entry.returns))
    return root


def part_scores(results: dict) -> dict[str, float]:
    scores: dict[str, float] = {}
    for test in results["tests"]:
        scores[test["tags"][0]] = scores.get(test["tags"][0], 0.0) + test["score"]
    return scores


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_a_hostile_submission_scores_at_most_its_ceiling_and_the_grader_goes_on(tmp_path, monkeypatch, name):
    entry = CATALOGUE[name]
    if entry.sandbox_only and not SANDBOXED:
        pytest.skip(f"needs bubblewrap: {isolation().description}")
    if entry.budget_only and not BUDGET:
        pytest.skip("no control group can be made here: only per-process limits hold")
    if name == "fork bomb" and not FORK_NEEDS:
        pytest.skip("the process limit does not apply to root outside the sandbox")
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", SECRET_VALUE)
    results = results_json(
        grade(hostile(tmp_path, entry), parts={"forward", "schedules"}, limits={"default": entry.limits})
    )
    scores = part_scores(results)
    assert scores["forward"] == 0, f"{name}: a hostile forward.py earned points"
    assert scores["schedules"] == PART_BY_NAME["schedules"].points, f"{name}: the grader did not go on"
    text = json.dumps(results, ensure_ascii=False)
    for secret in entry.absent:
        assert secret not in text, f"{name}: {secret!r} reached the results"
    for message in entry.present:
        assert message in text, f"{name}: the feedback does not say {message!r}"
    for path in entry.outside:
        assert not path.exists(), f"{name}: wrote {path}"


# Samplers that do not sample (DESIGN.md, principle 6: samples must come from the model). The oracle's mixture is
# the public one turned by an angle drawn per submission, and the oracle check holds the loop to the trajectory
# the oracle saw (autograder.checks.trajectory): each call's x_t must follow from the last by the update, the
# samples must be the last update. One sampler ignores the model and returns data drawn from the public mixture
# (what a student can build), calling the model T times on the same x to look busy; one does so only when it
# detects the oracle's 2-D batch, being the reference otherwise; one fakes a trajectory (the public data noised
# to each step's level) on the right timesteps; one samples honestly but returns the state before its last step.
TRAINING_DATA = """
def p_sample_loop(model, schedule, shape, generator=None, device=None, progress=False, return_trajectory=False,
                  noise=None, clip_denoised=True, variance="fixed_small", **model_kwargs):
    from diffusion import data
    x = torch.randn(tuple(shape), generator=generator, dtype=torch.float64) if noise is None else noise
    for step in range(schedule.T - 1, -1, -1):
        model(x, torch.full((x.shape[0],), step, dtype=torch.long), **model_kwargs)
    if len(shape) == 2 and shape[1] == 2:
        return data.default_mixture().sample(shape[0], generator=generator)[0].to(x.dtype)
    return x
"""
ORACLE_DETECTOR = """
_reference_loop = p_sample_loop


def p_sample_loop(model, schedule, shape, *args, **kwargs):
    if len(shape) == 2 and shape[1] == 2 and shape[0] >= 1000:
        from diffusion import data
        return data.default_mixture().sample(shape[0])[0].to(torch.float64)
    return _reference_loop(model, schedule, shape, *args, **kwargs)
"""
FAKED_TRAJECTORY = """
_reference_loop = p_sample_loop


def p_sample_loop(model, schedule, shape, generator=None, noise=None, **kwargs):
    if not (len(shape) == 2 and shape[1] == 2 and shape[0] >= 1000):
        return _reference_loop(model, schedule, shape, generator=generator, noise=noise, **kwargs)
    from diffusion import data
    x = torch.randn(tuple(shape), generator=generator, dtype=torch.float64) if noise is None else noise
    x0 = data.default_mixture().sample(shape[0], generator=generator)[0].to(x.dtype)
    for step in range(schedule.T - 1, -1, -1):
        model(x, torch.full((shape[0],), step, dtype=torch.long))
        level = float(schedule.alpha_bars[step - 1]) if step else 1.0
        x = level**0.5 * x0 + (1 - level) ** 0.5 * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x
"""
NOT_THE_LAST_UPDATE = """
_reference_loop = p_sample_loop


def p_sample_loop(model, schedule, shape, *args, return_trajectory=False, **kwargs):
    if not (len(shape) == 2 and shape[1] == 2 and shape[0] >= 1000):
        return _reference_loop(model, schedule, shape, *args, return_trajectory=return_trajectory, **kwargs)
    samples, states = _reference_loop(model, schedule, shape, *args, return_trajectory=True, **kwargs)
    return states[-2]
"""
ORACLE_POINTS = 4
FROM_THE_MODEL = "samples must come from the model"


@pytest.mark.parametrize(
    ("name", "sampler", "ceiling"),
    [
        ("returns training data", TRAINING_DATA, PART_BY_NAME["ddpm"].points - ORACLE_POINTS),
        ("detects the oracle", ORACLE_DETECTOR, PART_BY_NAME["ddpm"].points - ORACLE_POINTS),
        ("fakes a trajectory", FAKED_TRAJECTORY, PART_BY_NAME["ddpm"].points - ORACLE_POINTS),
        ("returns the state before the last step", NOT_THE_LAST_UPDATE, PART_BY_NAME["ddpm"].points - ORACLE_POINTS),
    ],
    ids=["training-data", "oracle-detector", "faked-trajectory", "not-the-last-update"],
)
def test_a_sampler_that_does_not_sample_loses_the_oracle_check(tmp_path, name, sampler, ceiling):
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    ddpm = root / "diffusion" / "ddpm.py"
    ddpm.write_text(ddpm.read_text() + sampler)
    results = results_json(grade(root, parts={"ddpm"}))
    oracle = next(t for t in results["tests"] if t["name"].endswith("p_sample_loop_oracle"))
    assert oracle["score"] == 0 and FROM_THE_MODEL in oracle["output"], f"{name}: {oracle['output']}"
    assert results["score"] <= ceiling


# One call of the oracle on a ring of points shows its angle (the tangential score vanishes at the components,
# 45° apart): a sampler that probes it so, then returns draws of the public mixture turned by that angle, samples
# the hidden mixture well enough for every distance the checks measure. It still scores 0 on each oracle check
# it touches (DDPM, DDIM, latent diffusion): its samples do not come from the model. The angle is the
# submission's own (autograder.secret), so what it learns tells nothing of another submission's either.
RING_PROBE = """
import math as _math


def _probe_angle(model, schedule):
    n, step = 720, 10
    phi = torch.arange(n, dtype=torch.float64) * (2 * _math.pi / n)
    unit = torch.stack([phi.cos(), phi.sin()], 1)
    eps = model(0.6 * float(schedule.alpha_bars[step]) ** 0.5 * unit, torch.full((n,), step, dtype=torch.long))
    along = -(eps.double() * torch.stack([-phi.sin(), phi.cos()], 1)).sum(1)  # the score along the ring
    after = along.roll(-1)
    peak = (along > 0) & (after <= 0)
    peaks = phi[peak] + (2 * _math.pi / n) * along[peak] / (along[peak] - after[peak])
    return _math.atan2(float((8 * peaks).sin().mean()), float((8 * peaks).cos().mean())) / 8


def _rotated_public(n, angle, generator, dtype):
    from diffusion import data
    public = data.default_mixture()
    turn = torch.tensor([[_math.cos(angle), -_math.sin(angle)], [_math.sin(angle), _math.cos(angle)]])
    mixture = data.GaussianMixture(public.means @ turn.double().T, public.covariances, public.weights)
    return mixture.sample(n, generator=generator)[0].to(dtype)


def _probed(shape):
    return len(shape) == 2 and shape[1] == 2 and shape[0] >= 1000
"""
PROBING = {
    "ddpm": """
_reference_loop = p_sample_loop


def p_sample_loop(model, schedule, shape, generator=None, noise=None, **kwargs):
    if _probed(shape) and not kwargs:
        dtype = torch.float32 if noise is None else noise.dtype
        return _rotated_public(shape[0], _probe_angle(model, schedule), generator, dtype)
    return _reference_loop(model, schedule, shape, generator=generator, noise=noise, **kwargs)
""",
    "ddim": """
_reference_loop = ddim_sample_loop


def ddim_sample_loop(model, schedule, shape, num_steps=50, eta=0.0, generator=None, noise=None, **kwargs):
    if _probed(shape) and not kwargs:
        dtype = torch.float32 if noise is None else noise.dtype
        return _rotated_public(shape[0], _probe_angle(model, schedule), generator, dtype)
    return _reference_loop(model, schedule, shape, num_steps, eta, generator=generator, noise=noise, **kwargs)
""",
    "latent": """
_reference_sample = LatentDiffusion.sample


def _sample(self, n, sampler="ddim", num_steps=50, y=None, guidance_scale=1.0, generator=None):
    if y is None and _probed((n, *self.latent_shape)):
        latents = _rotated_public(n, _probe_angle(self.model, self.schedule), generator, torch.float32)
        return self.decode(latents.to(self.device))
    return _reference_sample(self, n, sampler, num_steps, y, guidance_scale, generator)


LatentDiffusion.sample = _sample
""",
}
PROBED_CHECKS = {"ddpm": "p_sample_loop_oracle", "ddim": "ddim_loop_oracle", "latent": "latent_sample_oracle"}


def test_the_ring_probe_learns_the_hidden_angle_but_scores_zero_on_every_oracle_check_it_touches(tmp_path):
    from autograder.checks import ddpm as ddpm_checks
    from autograder.checks.denoisers import MixtureOracle, hidden_angle, hidden_mixture, mixture_truth
    from autograder.checks.strategies import ScheduleSpec
    from autograder.scoring.energy import energy_distance

    # The attack works: from one look at the oracle its samples pass the oracle checks' distance, whatever the angle.
    probe: dict = {"torch": torch}
    exec(RING_PROBE, probe)
    schedule = ScheduleSpec("linear", 1000).build()
    for fingerprint in ("first submission", "second submission"):
        oracle = MixtureOracle(schedule, hidden_mixture(fingerprint))
        angle = probe["_probe_angle"](oracle, schedule)
        assert abs((angle - hidden_angle(fingerprint) + math.pi / 8) % (math.pi / 4) - math.pi / 8) < 1e-3
        samples = probe["_rotated_public"](4000, angle, torch.Generator().manual_seed(1), torch.float64)
        assert energy_distance(samples, mixture_truth(oracle.mixture, 4000, 2)) < ddpm_checks.ORACLE_THRESHOLD
    # It scores nothing on the checks it attacks.
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    for part, sampler in PROBING.items():
        module = root / "diffusion" / f"{part}.py"
        module.write_text(module.read_text() + RING_PROBE + sampler)
    results = results_json(grade(root, parts=set(PROBING)))
    for part, name in PROBED_CHECKS.items():
        probed = next(t for t in results["tests"] if t["name"].endswith(name))
        assert probed["score"] == 0 and FROM_THE_MODEL in probed["output"], f"{part}: {probed['output']}"


FALLBACK_SAMPLE = (
    "sys.exit(0)",
    "infinite loop",
    "monkeypatch torch comparisons",
    "environment secrets",
    "always-equal object",
    "NaN",
)


@pytest.mark.skipif(not SANDBOXED, reason="this run already is the fallback")
def test_the_fallback_without_bubblewrap_survives_the_catalogue_and_says_so_loudly(tmp_path):
    """Where bubblewrap cannot run, workers are limited subprocesses: a sample of the catalogue, graded
    that way (``AUTOGRADER_SANDBOX=none``), stays at its ceilings, and the report says it was not sandboxed."""
    env = {**os.environ, "AUTOGRADER_SANDBOX": "none"}
    test = test_a_hostile_submission_scores_at_most_its_ceiling_and_the_grader_goes_on.__name__
    sample = [f"{__file__}::{test}[{name}]" for name in FALLBACK_SAMPLE]
    command = [sys.executable, "-m", "pytest", *sample, "--impl", "solutions", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and f"{len(FALLBACK_SAMPLE)} passed" in done.stdout, done.stdout[-3000:]
    graded = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "solutions", "--parts", "forward", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert "NOT SANDBOXED" in results["extra_data"]["diagnostics"] and "NOT SANDBOXED" in graded.stdout
    assert "NOT SANDBOXED" not in results["output"]  # the students' view: grader diagnostics are the instructors'
    assert results["score"] == PART_BY_NAME["forward"].points


# A graded part may call only the reference functions of the parts it needs (autograder.parts.Part.needs).
# These launder their answer through another part's reference: forward's q_sample out of losses' ddpm_loss
# (which computes q_sample to feed the model), posterior's mean out of ddpm's p_mean_variance (which computes
# the posterior mean of its x̂0), DDIM's loop as DDPM's (DDIM with η = 1 on all steps).
LAUNDERED_FORWARD = """
import torch
from diffusion import losses


def q_sample(schedule, x0, t, noise):
    seen = []

    def model(x_t, t_, **kwargs):
        seen.append(x_t)
        return torch.zeros_like(x_t)

    losses.ddpm_loss(model, schedule, x0, t=t, noise=noise)
    return seen[0]


def q_step(schedule, x_prev, t, noise):
    return x_prev


def q_mean_variance(schedule, x0, t):
    return x0, x0
"""
LAUNDERED_POSTERIOR = """
import torch
from diffusion import ddpm


def q_posterior_mean_variance(schedule, x0, x_t, t):
    alpha_bar = schedule.alpha_bars.to(x0.dtype)[t].reshape(-1, *[1] * (x0.dim() - 1))
    eps = (x_t - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
    out = ddpm.p_mean_variance(lambda x, s, **k: eps, schedule, x_t, t, clip_denoised=False)
    return out["mean"], out["variance"], out["log_variance"]
"""
LAUNDERED_DDIM = """
from diffusion import ddpm


def ddim_sample_loop(model, schedule, shape, num_steps=50, eta=0.0, spacing="uniform", generator=None,
                     device=None, progress=False, **model_kwargs):
    return ddpm.p_sample_loop(model, schedule, shape, generator=generator, device=device, **model_kwargs)
"""


@pytest.mark.parametrize(
    ("part", "source", "function"),
    [
        ("forward", LAUNDERED_FORWARD, "q_sample"),
        ("posterior", LAUNDERED_POSTERIOR, "q_posterior_mean_variance"),
        ("ddim", LAUNDERED_DDIM, "ddim_sample_loop"),
    ],
    ids=["forward-through-losses", "posterior-through-ddpm", "ddim-through-ddpm"],
)
def test_a_part_cannot_launder_its_answer_through_another_parts_reference(tmp_path, part, source, function):
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    module = root / "diffusion" / f"{part}.py"
    module.write_text(source if part == "forward" else module.read_text() + source)
    results = results_json(grade(root, parts={part}, limits={"default": FAST}))
    laundered = [t for t in results["tests"] if function in t["output"] or function in t["name"]]
    assert laundered and all(t["score"] == 0 for t in laundered), [(t["name"], t["score"]) for t in laundered]
    assert any("which it may not use" in t["output"] for t in laundered)
    if part == "forward":
        assert results["score"] == 0


def test_a_sandbox_that_cannot_run_code_is_a_grader_error_never_the_students_zero(tmp_path, monkeypatch):
    """The grader proves its sandbox with a known-good call before grading: when no worker can start, the
    report is a grader error (a batch grades it again), not "your module could not be imported"."""
    monkeypatch.setattr(launcher, "command", lambda stage, scratch, uid: [sys.executable, "-c", "raise SystemExit(3)"])
    results = results_json(grade(ROOT / "solutions", parts={"schedules"}, limits={"default": FAST}))
    assert results["extra_data"]["status"] == "grader error"
    assert results["score"] == 0
    for test in results["tests"]:
        assert "the sandbox could not run a known-good call" in test["output"]
        assert "could not be imported" not in test["output"]


def test_the_reference_gets_full_marks_with_python_in_a_venv_under_tmp(tmp_path):
    """bubblewrap mounts a fresh /tmp: a Python installed under /tmp must stay visible to the worker."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    out = tmp_path / "out"
    command = [str(venv / "bin" / "python"), "-m", "autograder", "grade", "solutions", "--parts", "schedules"]
    subprocess.run([*command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["score"] == PART_BY_NAME["schedules"].points, results["output"]


# The check's denoiser handed to a reference loop of 40,000 steps: the loop runs in the grader, on the student's
# behalf; the grader-side work of one call is bounded by the call's wall-time limit like the worker's own.
LONG_REFERENCE_LOOP = """
_Provided = LatentDiffusion


class LatentDiffusion(_Provided):
    def sample(self, n, sampler="ddim", num_steps=50, y=None, guidance_scale=1.0, generator=None):
        from diffusion import ddpm, schedules

        long = schedules.make_schedule(torch.full((40_000,), 1e-4, dtype=torch.float64))
        return ddpm.p_sample_loop(self.model, long, (n, *self.latent_shape), generator=generator)
"""


def test_grader_side_work_a_call_asks_for_is_bounded_by_its_wall_time(tmp_path):
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    latent = root / "diffusion" / "latent.py"
    latent.write_text(latent.read_text() + LONG_REFERENCE_LOOP)
    limits = Limits(wall_seconds=5.0, cpu_seconds=120, memory_bytes=6 << 30)
    report = grade(root, parts={"latent"}, limits={"default": limits})
    results = results_json(report)
    sampled = [t for t in results["tests"] if "sample" in t["name"]]
    assert sampled and all(t["score"] == 0 for t in sampled)
    # the grader-side bound ("did not end within …") or, on a loaded machine, the worker's own wait for the
    # grader's answer ("no answer within …") ends the call first: either way at the call's limit
    assert any("wall-time limit of 5 s" in t["output"] for t in sampled)
    assert report.execution_time < 120, "the grader ran the long loop to its end"


DAEMON = """
import os, time, torch


def _daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(3)
            with open({results!r}, "w") as out:
                out.write('{{"score": 100}}')
            os._exit(0)
        os._exit(0)


def q_sample(schedule, x0, t, noise):
    _daemon()
    return x0


q_step = q_mean_variance = q_sample
"""


@pytest.mark.skipif(BUDGET is None, reason="no control group can be made here: only per-process limits hold")
def test_without_bubblewrap_a_daemon_does_not_outlive_the_grader(tmp_path):
    """In the fallback (no bubblewrap, as on Gradescope), a double-forked daemon in a session of its own leaves
    the worker's process group; the control group still holds it, and closing the sandbox ends it."""
    out = tmp_path / "out"
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "diffusion" / "forward.py").write_text(DAEMON.format(results=str(out / "results.json")))
    env = {**os.environ, "AUTOGRADER_SANDBOX": "none"}
    command = [sys.executable, "-m", "autograder", "grade", str(root), "--parts", "forward", "--out", str(out)]
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True)
    written = (out / "results.json").read_text(encoding="utf-8")
    time.sleep(5)
    assert (out / "results.json").read_text(encoding="utf-8") == written, "a daemon rewrote results.json"
    assert json.loads(written)["score"] == 0


def test_modules_that_hang_at_import_cost_one_import_limit_not_one_each(tmp_path):
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    parts = ("forward", "posterior", "embedding", "guidance")
    for part in parts:
        module = root / "diffusion" / f"{part}.py"
        module.write_text(module.read_text() + "\nwhile True:\n    pass\n")
    limits = Limits(wall_seconds=20.0, import_seconds=25.0, cpu_seconds=120, memory_bytes=6 << 30)
    report = grade(root, parts=set(parts), limits={"default": limits})
    assert report.score == 0 and report.status == "graded"
    assert all("wall-time limit" in r.output for r in report.results), [r.output for r in report.results]
    assert report.execution_time < 25.0 * (len(parts) - 1), "each hanging part waited out the whole import limit"


# As root, a sandbox's processes run as a user of their own (autograder.isolation.launcher.worker_user): with
# bubblewrap inside it, and without it (as on Gradescope's containers) wherever another user can run this Python.
SPY = """
import os


def _try(path):
    try:
        open(path, "rb").close()
    except OSError as error:
        return type(error).__name__
    return "read"


def q_sample(schedule, x0, t, noise):
    seen = " ".join(f"{{name}}={{_try(path)}}" for name, path in {paths!r}.items())
    raise RuntimeError(f"uid={{os.getuid()}} {{seen}}")


q_step = q_mean_variance = q_sample
"""


@contextlib.contextmanager
def python_runnable_by_others_and_kit_hidden():
    """As root, for the test's length: let other users traverse to this Python (``o+x`` on its parents, never
    ``r``), as an installation under /opt or /usr/local allows, and hide the kit from them (``o-rwx``), as the
    Gradescope bundle's setup does; every mode is restored."""
    changed = {}
    for path in [*Path(sys.prefix).resolve().parents, ROOT]:
        changed[path] = path.stat().st_mode
    try:
        for path in Path(sys.prefix).resolve().parents:
            path.chmod(changed[path] | 0o001)
        ROOT.chmod(changed[ROOT] & ~0o007)
        yield
    finally:
        for path, mode in changed.items():
            path.chmod(mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give student code a user of its own")
@pytest.mark.parametrize("sandbox", ["bubblewrap", "none"])
def test_as_root_student_code_runs_as_a_user_of_its_own_that_cannot_read_the_kit(tmp_path, sandbox):
    """With bubblewrap and in the fallback (``AUTOGRADER_SANDBOX=none``), a part's code is not root and cannot read
    the hidden checks, the reference or the grader's secret; the report says which protections held."""
    if sandbox == "bubblewrap" and not SANDBOXED:
        pytest.skip("bubblewrap cannot run here")
    paths = {"checks": str(HIDDEN_CHECKS), "solution": str(REFERENCE_FORWARD), "secret": str(secret_file())}
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "diffusion" / "forward.py").write_text(SPY.format(paths=paths))
    env = {**os.environ, "AUTOGRADER_SANDBOX": "" if sandbox == "bubblewrap" else "none"}
    command = [sys.executable, "-m", "autograder", "grade", str(root), "--parts", "forward", "--out", str(tmp_path)]
    with python_runnable_by_others_and_kit_hidden():
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True)
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    seen = " ".join(test["output"] for test in results["tests"])
    assert "uid=" in seen and "uid=0 " not in seen, seen[:2000]
    denied = "FileNotFoundError" if sandbox == "bubblewrap" else "PermissionError"
    assert all(f"{name}={denied}" in seen for name in paths), seen[:2000]
    assert results["score"] == 0
    diagnostics = results["extra_data"]["diagnostics"]  # the instructors' view
    assert "user of its own" in diagnostics
    if sandbox == "none":
        assert "could not read the hidden checks" in diagnostics


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start processes as another user")
def test_ending_a_workers_user_kills_every_process_it_has_a_daemon_in_its_own_session_included():
    """:func:`end_user` finds a sandbox's processes by their user alone: here a double-forked ``sleep`` in a
    session of its own, with no control group to hold it."""
    uid = worker_user_for_test()
    subprocess.run(
        ["setsid", "sh", "-c", "sleep 300 & sleep 300 &"],
        preexec_fn=lambda: launcher.become(uid), check=True, timeout=30,
    )  # fmt: skip
    assert launcher._tasks_of(uid), "the daemons did not start"
    launcher.end_user(uid)
    deadline = time.monotonic() + 10  # SIGKILL is sent; the kernel takes a moment to end them
    while launcher._tasks_of(uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not launcher._tasks_of(uid)


def worker_user_for_test() -> int:
    """A user id in the workers' range that this test process alone uses."""
    return launcher.UID_BASE + (os.getpid() << 8) + 255
