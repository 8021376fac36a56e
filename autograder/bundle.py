"""Build the student bundle and prove it leaks nothing: ``python -m autograder bundle --out DIR_or_ZIP``.

The bundle holds what a student gets: ``assignments/`` (the stubbed package, with the data-set
code, and the released notebooks), the public tests and their pytest plugin, ``pyproject.toml``,
a README made of the main README's introduction and its "For students" section, and a ``.gitignore``. Before
anything is written, :func:`find_leaks` checks the assembled bundle for every kind of leak: a
solution region, a hidden test, a file of the bug zoo, anything of the grader or the solutions, and
a notebook that carries outputs (reference results). The release must also be up to date.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autograder import release
from autograder.reference import ROOT

CONTENTS: tuple[str, ...] = (
    "assignments",
    "tests/__init__.py",
    "tests/plugin.py",
    "tests/public",
    "conftest.py",
    "pyproject.toml",
)
"""What the bundle copies from the kit (files, or directories taken whole without caches)."""
FORBIDDEN_DIRS = frozenset({"autograder", "solutions", "checks", "zoo"})
"""Directory names that belong to the grader or the reference, never to a student."""
ZOO = ROOT / "autograder" / "zoo"
STUDENT_SECTION = "## For students"
GITIGNORE = """\
# What running the tests, the notebooks and the experiments leaves behind: not part of your work.
__pycache__/
*.egg-info/
.pytest_cache/
.hypothesis/
.ipynb_checkpoints/
.venv/
venv/
runs/
results/
figures/
"""
"""The student's ``.gitignore``: caches, virtual environments and what the runs write, never their work."""


@dataclass(frozen=True)
class Leak:
    """Something of the bundle a student must not see."""

    path: str
    reason: str


def student_readme(readme: str) -> str:
    """The student's README: the main README up to its first section, then its "For students" section.

    Raises:
        ValueError: if the README has no "For students" section.
    """
    sections = re.split(r"(?m)^(?=## )", readme)
    students = [section for section in sections if section.startswith(STUDENT_SECTION)]
    if not students:
        raise ValueError(f"README.md has no '{STUDENT_SECTION}' section to give the students")
    return sections[0] + students[0].rstrip("\n") + "\n"


def _zoo_digests() -> set[str]:
    return {hashlib.sha256(path.read_bytes()).hexdigest() for path in ZOO.glob("*.py") if path.name != "__init__.py"}


def _notebook_outputs(data: bytes) -> bool:
    """Whether a notebook holds outputs or execution counts (or is not a readable notebook)."""
    try:
        cells = json.loads(data)["cells"]
    except (ValueError, KeyError, TypeError):
        return True
    return any(cell.get("outputs") or cell.get("execution_count") is not None for cell in cells)


def find_leaks(root: Path) -> list[Leak]:
    """Every leak in the bundle directory ``root``, sorted by path (empty when the bundle is clean)."""
    markers = release.markers()
    zoo = _zoo_digests()
    leaks: list[Leak] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace")
        if FORBIDDEN_DIRS.intersection(PurePosixPath(relative).parts[:-1]):
            leaks.append(Leak(relative, "a file of the grader or the reference solutions"))
        if hashlib.sha256(data).hexdigest() in zoo:
            leaks.append(Leak(relative, "a file of the bug zoo"))
        found = [marker for marker in markers if marker in text]
        if found:
            leaks.append(Leak(relative, f"holds {', '.join(found)} (a solution region or a hidden test)"))
        if path.suffix == ".ipynb" and _notebook_outputs(data):
            leaks.append(Leak(relative, "a notebook with outputs (reference results)"))
    return leaks


def assemble(dest: Path) -> None:
    """Copy the bundle's contents from the kit into the empty or new directory ``dest``."""
    ignore = shutil.ignore_patterns(*release.IGNORED_DIRS)
    for name in CONTENTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / "README.md").write_text(student_readme((ROOT / "README.md").read_text(encoding="utf-8")), "utf-8")
    (dest / ".gitignore").write_text(GITIGNORE, "utf-8")


def write(bundle: Path, out: Path) -> None:
    """Write the assembled ``bundle`` to ``out``: a zip when ``out`` ends in ``.zip``, else a new directory."""
    if out.suffix == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(bundle).as_posix())
    else:
        shutil.copytree(bundle, out)
