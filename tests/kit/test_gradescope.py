"""The Gradescope bundle, unpacked into a fake ``/autograder`` here, grades a submission into a
``results.json`` that validates against Gradescope's schema; so do the grader's other results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder import gradescope
from autograder.grading import not_graded
from autograder.parts import PART_BY_NAME
from autograder.results import results_json
from autograder.secret import grader_secret
from tests.plugin import ROOT

SCHEMA = json.loads((ROOT / "autograder" / "gradescope_results.schema.json").read_text(encoding="utf-8"))
PARTS = ("schedules", "forward")


def validate(results: dict) -> None:
    jsonschema.validate(results, SCHEMA, cls=jsonschema.Draft202012Validator)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return gradescope.build(tmp_path_factory.mktemp("bundle") / "autograder.zip")


def fake_root(tmp_path: Path, bundle: Path) -> Path:
    """``/autograder`` as Gradescope lays it out: source/ (the bundle), run_autograder, submission/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
        mode = archive.getinfo("run_autograder").external_attr >> 16
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", mode & 0o777)
    (root / "results").mkdir()
    return root


def test_the_bundle_has_the_scripts_at_its_root_and_no_tests(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        assert archive.getinfo("run_autograder").external_attr >> 16 & 0o111, "run_autograder is not executable"
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "autograder/checks/ddpm.py", "solutions/diffusion/ddpm.py"} <= set(names)
    assert "assignments/diffusion/ddpm.py" in names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    assert gradescope.TORCH in setup and subprocess.run(["bash", "-n"], input=setup.encode()).returncode == 0
    with zipfile.ZipFile(bundle) as archive:  # Gradescope draws per submission as this machine does
        assert archive.read(gradescope.SECRET).decode().strip().encode() == grader_secret()
        assert subprocess.run(["bash", "-n"], input=archive.read("run_autograder")).returncode == 0


def test_run_autograder_grades_the_submission_into_a_valid_results_json(tmp_path, bundle):
    root = fake_root(tmp_path, bundle)
    # Gradescope lays the uploaded files flat in submission/.
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    done = subprocess.run(
        [str(root / "run_autograder"), "--parts", *PARTS], env=env, cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    validate(results)
    assert results["score"] == sum(PART_BY_NAME[p].points for p in PARTS)
    assert not (ROOT / "results.json").exists()


def test_results_that_say_not_graded_validate_too():
    validate(results_json(not_graded("the zip is empty")))


@pytest.mark.parametrize(
    "broken",
    [{"tests": [{"status": "skipped", "score": 0}]}, {"score": "100"}, {"visibility": "always"}, {"scores": 1}],
    ids=["status", "score-type", "visibility", "unknown-key"],
)
def test_the_schema_refuses_what_gradescope_would(broken):
    with pytest.raises(jsonschema.ValidationError):
        validate({"score": 0.0, **broken})
