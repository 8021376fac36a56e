"""Run a harness plan on a submission's whole package in the sandbox.

The package the worker imports is the kit's public one (provided modules, stubs) with the student's
part modules laid over it, so the harness always trains and samples with the kit's own UNet,
training loop and :func:`diffusion.evaluate.run_plan`, and with the student's maths. The worker
returns samples and timings; nothing of the grader (scoring, thresholds, truth) enters the sandbox.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from autograder import sandbox
from autograder.channel import ChannelError
from autograder.remote import PUBLIC, WorkerProcess, Zygote, student_functions
from autograder.submission import find_package
from autograder.worker import WHOLE

PLAN_FUNCTION = "evaluate.run_plan"


def stage_package(submission: Path, dest: Path, parts: tuple[str, ...]) -> list[str]:
    """Write the kit's public package with the submission's part modules over it into ``dest``; return the
    parts the submission lacks (their stubs stay)."""
    package = find_package(submission, parts)
    shutil.copytree(PUBLIC, dest, ignore=shutil.ignore_patterns("__pycache__"))
    missing = []
    for part in parts:
        source = package / f"{part}.py"
        if source.is_file():
            shutil.copyfile(source, dest / f"{part}.py")
        else:
            missing.append(part)
    return missing


def unfinished_functions(submission: Path, parts: tuple[str, ...]) -> dict[str, list[str]]:
    """Per part, the functions of the submission that are still stubs (a missing module: all of its part's)."""
    with tempfile.TemporaryDirectory(prefix="autograder-harness-") as tmp:
        package = Path(tmp) / "diffusion"
        stage_package(submission, package, parts)
        return {part: names for part, names in student_functions(package).items() if names}


def run_plan(submission: Path, plan: dict[str, Any], parts: tuple[str, ...], limits: sandbox.Limits) -> dict[str, Any]:
    """``diffusion.evaluate.run_plan(plan)`` on the submission's package, sandboxed under ``limits``.

    Raises:
        autograder.submission.StudentError: the package could not be imported, or the run crashed, hung or
            broke the limits.
    """
    with tempfile.TemporaryDirectory(prefix="autograder-harness-") as tmp:
        package = Path(tmp) / "diffusion"
        stage_package(submission, package, parts)
        zygote = Zygote(package, limits)
        try:
            worker = WorkerProcess(zygote, WHOLE, limits)
            try:
                worker.load({})
                return worker.call(PLAN_FUNCTION, (plan,), {}, _no_reference)
            finally:
                worker.kill()
        finally:
            zygote.close()


def _no_reference(part: str, name: str):
    raise ChannelError(f"the worker asked for the reference's {part}.{name}; the harness runs the package alone")
