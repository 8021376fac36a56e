"""Hostile submissions: each tries to cheat or break the grader and must score no more than it earns.

Every hostile submission is the reference with ``forward.py`` replaced by code whose functions
attack (then answer garbage), so the ceiling is 0 points in ``forward``; ``schedules`` stays the
reference's and must keep its full marks in the same run (the grader survives and goes on).
Attacks that only the bubblewrap sandbox can stop are skipped where it cannot run.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from autograder.grading import grade, results_json
from autograder.parts import PART_BY_NAME
from autograder.sandbox import Limits, isolation
from tests.plugin import ROOT

SANDBOXED = isolation().sandboxed
needs_sandbox = pytest.mark.skipif(not SANDBOXED, reason=f"needs bubblewrap: {isolation().description}")
FAST = {"default": Limits(wall_seconds=20.0, cpu_seconds=60, memory_bytes=6 << 30)}

FORWARD = """
import os, sys, time, socket, pathlib
import torch

def attack():
{attack}

def q_sample(schedule, x0, t, noise):
    result = attack()
    return result if {returns} else x0 * 0.5

def q_step(schedule, x_prev, t, noise):
    result = attack()
    return result if {returns} else x_prev * 0.5

def q_mean_variance(schedule, x0, t):
    result = attack()
    return result if {returns} else (x0 * 0.5, x0 * 0.5)
"""

SECRET = ROOT / "autograder" / "checks" / "forward.py"


def hostile(tmp_path: Path, attack: str, returns: bool = False) -> Path:
    """The reference package with a hostile ``forward.py``; ``returns`` uses the attack's value as the answer."""
    root = tmp_path / "submission"
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    body = textwrap.indent(textwrap.dedent(attack).strip(), "    ")
    (root / "diffusion" / "forward.py").write_text(FORWARD.format(attack=body, returns=returns))
    return root


def graded(root: Path, limits: dict | None = None) -> dict:
    results = results_json(grade(root, parts={"forward", "schedules"}, limits=limits or FAST))
    scores = {part: 0.0 for part in ("forward", "schedules")}
    for test in results["tests"]:
        scores[test["tags"][0]] += test["score"]
    assert scores["forward"] == 0, "a hostile forward.py earned points"
    assert scores["schedules"] == PART_BY_NAME["schedules"].points, "the grader did not go on with the next part"
    return results


def test_exit_and_crash_cost_only_the_checks_in_flight(tmp_path):
    for attack in ("sys.exit(0)", "os._exit(0)", "os.abort()"):
        results = graded(hostile(tmp_path / attack[:6], attack))
        assert all(t["status"] == "failed" for t in results["tests"] if t["tags"] == ["forward"])


def test_monkeypatching_comparisons_in_the_worker_changes_nothing(tmp_path):
    graded(
        hostile(
            tmp_path,
            """
            torch.allclose = lambda *a, **k: True
            torch.equal = lambda *a, **k: True
            torch.Tensor.__eq__ = lambda *a, **k: True
            import numpy; numpy.allclose = lambda *a, **k: True
            """,
        )
    )


def test_objects_that_claim_equality_cannot_cross_the_channel(tmp_path):
    results = graded(
        hostile(
            tmp_path,
            """
            class Anything:
                def __eq__(self, other): return True
                def __getattr__(self, name): return lambda *a, **k: self
            return Anything()
            """,
            returns=True,
        )
    )
    assert "cannot cross the channel" in json.dumps(results)


def test_nan_and_wrong_shapes_fail(tmp_path):
    graded(hostile(tmp_path / "nan", "return torch.full((3,), float('nan'))", returns=True))
    graded(hostile(tmp_path / "shape", "return torch.zeros(1, 2, 3, 4)", returns=True))


def test_an_infinite_loop_is_stopped_at_the_wall_time_limit(tmp_path):
    limits = {"default": Limits(wall_seconds=2.0)}
    results = graded(hostile(tmp_path, "while True: pass"), limits)
    assert "wall-time limit of 2 s" in json.dumps(results)


def test_a_huge_allocation_hits_the_memory_limit(tmp_path):
    results = graded(hostile(tmp_path, "return torch.empty(50 << 30, dtype=torch.uint8)", returns=True))
    assert "forward" in json.dumps(results)


def test_printing_a_fake_score_does_not_reach_the_results(tmp_path):
    results = graded(hostile(tmp_path, 'print(\'{"score": 100, "tests": []}\'); sys.stdout.flush()'))
    assert results["score"] == PART_BY_NAME["schedules"].points


@needs_sandbox
def test_the_sandbox_hides_the_kit_and_blocks_writes_outside_scratch(tmp_path):
    marker = tmp_path / "written-by-student"
    results = graded(
        hostile(
            tmp_path,
            f"""
            for path in ({str(marker)!r}, {str(ROOT / "results.json")!r}, "/tmp/pwned"):
                try:
                    pathlib.Path(path).write_text("pwned")
                except OSError:
                    pass
            try:
                leaked = pathlib.Path({str(SECRET)!r}).read_text()
            except OSError:
                leaked = "no view of the hidden checks"
            raise RuntimeError(leaked[:300] + " | " + os.environ.get("HOME", "") + " | " + str(os.getuid()))
            """,
        )
    )
    assert not marker.exists() and not (ROOT / "results.json").exists()
    text = json.dumps(results)
    assert "no view of the hidden checks" in text and "@check" not in text


@needs_sandbox
def test_the_sandbox_has_no_network_and_cannot_kill_the_grader(tmp_path):
    results = graded(
        hostile(
            tmp_path,
            """
            try:
                socket.create_connection(("127.0.0.1", 22), timeout=2)
                raise RuntimeError("network reachable")
            except OSError as error:
                pass
            os.kill(os.getppid(), 9)
            os.kill(1, 9)
            """,
        )
    )
    assert "network reachable" not in json.dumps(results)
