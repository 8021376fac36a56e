"""The package a harness run's workers import: the kit's public one (provided modules, stubs) with the student's part
modules laid over it, so a student's function that uses another part uses the student's own, and the provided
modules are the kit's whatever the submission holds (:mod:`autograder.harness.experiment` runs the plan itself).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from autograder.isolation.intake import find_package
from autograder.isolation.processes import PUBLIC
from autograder.isolation.remote import student_functions
from autograder.parts import PART_NAMES


@contextlib.contextmanager
def overlay(submission: Path) -> Iterator[Path]:
    """A temporary copy of the kit's public package with the submission's part modules laid over it (a part
    the submission lacks keeps its stub); removed afterwards."""
    source = find_package(submission)
    with tempfile.TemporaryDirectory(prefix="autograder-harness-") as tmp:
        package = Path(tmp) / "diffusion"
        shutil.copytree(PUBLIC, package, ignore=shutil.ignore_patterns("__pycache__"))
        for part in PART_NAMES:
            if (source / f"{part}.py").is_file():
                shutil.copyfile(source / f"{part}.py", package / f"{part}.py")
        yield package


def unfinished_functions(package: Path) -> dict[str, list[str]]:
    """Per part, the functions of an :func:`overlay` package that are still stubs (only parts that have some)."""
    return {part: names for part, names in student_functions(package).items() if names}
