"""The student bundle holds what a student needs and nothing more; each kind of leak is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from autograder import bundle
from autograder.__main__ import main
from autograder.reference import ROOT


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle the command writes, as a directory."""
    out = tmp_path_factory.mktemp("bundle") / "student"
    assert main(["bundle", "--out", str(out)]) == 0
    return out


def test_bundle_holds_the_release_the_public_tests_and_a_student_readme(built: Path) -> None:
    files = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    for expected in [
        "assignments/diffusion/forward.py",
        "assignments/diffusion/data.py",
        "assignments/notebooks/03_ddim.ipynb",
        "tests/public/test_ddim.py",
        "tests/public/helpers.py",
        "tests/plugin.py",
        "conftest.py",
        "pyproject.toml",
        "README.md",
        ".gitignore",
    ]:
        assert expected in files, expected
    ignored = (built / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"__pycache__/", ".venv/", "figures/", ".ipynb_checkpoints/"} <= set(ignored)
    assert not {"assignments/", "diffusion/", "*.py", "*.ipynb"} & set(ignored)  # the student's work is kept
    assert not any(f.startswith(("autograder/", "solutions/", "tests/kit/")) for f in files)
    readme = (built / "README.md").read_text(encoding="utf-8")
    assert "## For students" in readme and "## For TAs" not in readme and "## For instructors" not in readme


def test_the_built_bundle_has_no_leak(built: Path) -> None:
    assert bundle.find_leaks(built) == []


def plant_solution(root: Path) -> str:
    path = root / "assignments" / "diffusion" / "forward.py"
    path.write_text(path.read_text() + "\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n")
    return "assignments/diffusion/forward.py"


def plant_hidden_test(root: Path) -> str:
    path = root / "tests" / "public" / "test_forward.py"
    path.write_text(path.read_text() + "\n### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS\n")
    return "tests/public/test_forward.py"


def plant_zoo_file(root: Path) -> str:
    shutil.copy(ROOT / "autograder" / "zoo" / "ddim.py", root / "assignments" / "diffusion" / "ddim_variant.py")
    return "assignments/diffusion/ddim_variant.py"


def plant_grader_file(root: Path) -> str:
    (root / "autograder").mkdir()
    (root / "autograder" / "notes.txt").write_text("thresholds\n")
    return "autograder/notes.txt"


def plant_output(root: Path) -> str:
    path = root / "assignments" / "notebooks" / "02_ddpm.ipynb"
    notebook = json.loads(path.read_text())
    code = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["final loss 0.0312\n"]}]
    path.write_text(json.dumps(notebook))
    return "assignments/notebooks/02_ddpm.ipynb"


LEAKS: dict[str, tuple[Callable[[Path], str], str]] = {
    "solution region": (plant_solution, "BEGIN SOLUTION"),
    "hidden test": (plant_hidden_test, "hidden test"),
    "zoo file": (plant_zoo_file, "bug zoo"),
    "grader file": (plant_grader_file, "grader"),
    "output cell": (plant_output, "outputs"),
}


@pytest.mark.parametrize(("plant", "reason"), LEAKS.values(), ids=LEAKS.keys())
def test_each_kind_of_leak_is_found(built: Path, tmp_path: Path, plant: Callable[[Path], str], reason: str) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(built, copy)
    path = plant(copy)

    leaks = bundle.find_leaks(copy)

    assert [leak.path for leak in leaks] == [path], leaks
    assert reason in leaks[0].reason


def test_the_command_refuses_a_leaking_bundle_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assemble = bundle.assemble

    def leaky(dest: Path) -> None:
        assemble(dest)
        plant_output(dest)

    monkeypatch.setattr(bundle, "assemble", leaky)
    out = tmp_path / "student.zip"

    assert main(["bundle", "--out", str(out)]) == 1

    assert not out.exists()
    assert "assignments/notebooks/02_ddpm.ipynb: a notebook with outputs" in capsys.readouterr().out


def test_a_zip_bundle_holds_the_same_files(built: Path, tmp_path: Path) -> None:
    bundle.write(built, tmp_path / "student.zip")
    with zipfile.ZipFile(tmp_path / "student.zip") as archive:
        names = set(archive.namelist())
    assert names == {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}


def test_an_existing_destination_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "--out", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err


def test_student_readme_needs_a_student_section() -> None:
    assert bundle.student_readme("# Kit\n\nIntro.\n\n## For students\n\nRun it.\n\n## For TAs\n\nGrade.\n") == (
        "# Kit\n\nIntro.\n\n## For students\n\nRun it.\n"
    )
    with pytest.raises(ValueError, match="no '## For students' section"):
        bundle.student_readme("# Kit\n")


def test_a_new_student_gets_from_the_bundle_to_the_part_table_in_a_screen(tmp_path: Path) -> None:
    """The student README's steps on the unzipped bundle, in a new virtual environment (it sees this machine's
    torch, as after the README's CPU-only torch install): install quietly, run the public tests on the stubs."""
    archive = tmp_path / "student.zip"
    assert main(["bundle", "--out", str(archive)]) == 0
    course = tmp_path / "course"
    with zipfile.ZipFile(archive) as bundled:
        bundled.extractall(course)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"OMP_NUM_THREADS": "1"}
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-e", ".[test,notebooks]"], cwd=course, env=env, capture_output=True
    )
    assert install.returncode == 0, install.stderr.decode()[-3000:]
    run = subprocess.run([python, "-m", "pytest", "tests/public"], cwd=course, env=env, capture_output=True, text=True)
    lines = run.stdout.splitlines()
    assert run.returncode == 1 and f"{course / 'assignments' / 'diffusion'}" in run.stdout, run.stdout[-3000:]
    assert len(lines) <= 60 and lines[-2].startswith("latent ") and "not implemented" in lines[-1], run.stdout
