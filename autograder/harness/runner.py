"""Run a harness plan on a submission's whole package in the sandbox.

The package the worker imports is the kit's public one (provided modules, stubs) with the student's
part modules laid over it, so the harness always trains and samples with the kit's own UNet,
training loop and :func:`diffusion.evaluate.run_plan`, and with the student's maths. The worker
returns samples and timings; nothing of the grader (scoring, thresholds, truth) enters the sandbox.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autograder.isolation import calls
from autograder.isolation.intake import find_package
from autograder.isolation.processes import PUBLIC, WorkerProcess, Zygote
from autograder.isolation.remote import student_functions
from autograder.parts import PART_NAMES
from autograder.sandbox.limits import Limits
from autograder.sandbox.worker import WHOLE

PLAN_FUNCTION = "evaluate.run_plan"


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


def run_plan(package: Path, plan: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """``diffusion.evaluate.run_plan(plan)`` on an :func:`overlay` package, sandboxed under ``limits``.

    Raises:
        autograder.isolation.submission.StudentError: the package could not be imported, or the run crashed, hung or
            broke the limits.
    """
    zygote = Zygote(package, limits)
    try:
        worker = WorkerProcess(zygote, WHOLE, limits)
        try:
            worker.load({})
            return calls.call(
                worker, PLAN_FUNCTION, (plan,), {}, calls.no_reference("the harness runs the package alone")
            )
        finally:
            worker.kill()
    finally:
        zygote.close()
