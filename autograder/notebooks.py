"""The course's notebooks: released with nbgrader, executed with nbclient.

The notebooks live in ``solutions/notebooks/`` (nbgrader's source directory is ``solutions/``, so
they are the nbgrader assignment ``notebooks``) and call the student's package ``diffusion``.
Their release in ``assignments/notebooks/`` is what ``nbgrader generate_assignment`` makes of them
(solutions, hidden tests and outputs cleared), run in a temporary copy of the course with the
kit's ``nbgrader_config.py``. A notebook reads its size from ``DIFFUSION_NOTEBOOK_SIZE``
(``ci``: well under a minute; ``full``, the default: a few minutes on a CPU).

Autograding integrity. ``nbgrader autograde`` puts the test cells' source back from the gradebook (a
student can neither edit nor delete what they check) and scores a test cell by its outputs, full
points unless they show an error or write to stderr; but it runs the test cells in the kernel that ran the student's
cells, so it does not guarantee that a test ran as written. Of the three ways to close that gap, the
kit takes a guarded execution step in nbgrader's pipeline
(:class:`autograder.notebook_guard.GuardedExecute`, with :mod:`autograder.kernel_guard` in the kernel):

* a fresh kernel that runs only the definitions of the answer cells cannot run these notebooks: their
  tests check what the other cells build (trained networks, samples, ``crossings``), and the answers'
  functions and the student's package, imported by the first cell, run in that kernel anyway as soon
  as a test calls them;
* grading the answers with the sandboxed grader (:mod:`autograder.grading`) would mean rewriting every
  hidden test as a grader-side check over proxies of the student's objects (schedules, networks,
  ``LatentDiffusion``): a second copy of the tests, out of reach of nbgrader's workflow;
* the guard keeps nbgrader's workflow and the notebooks as they are. Before each autograded test cell
  it restores what the student's cells changed in IPython, ipykernel, ``sys``, ``builtins`` and the
  testing modules, and proves with nonces that it ran, that the test ran to its end, and that nothing
  it restores changed while the test ran; otherwise the cell scores 0.

What the guard cannot guarantee: the student's code still runs in the grading kernel, namely the
package the notebook imports and the answer functions the tests call. Such a function can still
subvert the very test that calls it (patch a check and undo the patch before the cell ends, rewrite
the test's variables through its caller's frame, read the hidden tests from the cell's code and print
them, plainly or encoded), code written against the guard itself can defeat any in-kernel check, and
the kernel runs with the grader's rights on the file system (the gradebook, ``~/.ipython``). Grades
that must hold against such code come from the sandboxed grader (``python -m autograder grade``) for
the package, and from running ``nbgrader autograde`` in a throw-away container per submission.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from autograder.reference import ROOT

if TYPE_CHECKING:
    from nbformat import NotebookNode

ASSIGNMENT = "notebooks"
"""The nbgrader assignment id, and the notebooks' directory under ``solutions/`` and ``assignments/``."""
CONFIG = ROOT / "nbgrader_config.py"
"""nbgrader's configuration for the course: source ``solutions/``, release ``assignments/``."""
SIZE_VARIABLE = "DIFFUSION_NOTEBOOK_SIZE"
Size = Literal["ci", "full"]
SIZES: tuple[Size, ...] = ("ci", "full")
KERNEL = "python3"


class NotebookError(Exception):
    """nbgrader failed on the notebooks, or a notebook cannot be found."""


def notebook_paths(source: Path) -> list[Path]:
    """The notebooks of the assignment under ``source`` (e.g. ``solutions/``), sorted; empty without the directory."""
    return sorted((source / ASSIGNMENT).glob("*.ipynb"))


def make_course(course: Path, source: Path) -> Path:
    """Lay out an nbgrader course in ``course``: the kit's config and ``source``'s notebooks as its source.

    The config is a symbolic link to the kit's, through which it finds the kit's code (the guarded
    execution step). Only the notebooks are copied (not the figures a run leaves next to them).
    Returns ``course``.
    """
    notebooks = course / "solutions" / ASSIGNMENT
    notebooks.mkdir(parents=True)
    (course / CONFIG.name).symlink_to(CONFIG)
    for path in notebook_paths(source):
        shutil.copy2(path, notebooks / path.name)
    return course


def tool_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the running Python's scripts directories first on ``PATH``.

    nbgrader runs some of its tools by name (``alembic`` when it makes a gradebook): they must be the
    ones installed with this Python, found even when its virtual environment is not activated.
    """
    env = dict(os.environ if env is None else env)
    scripts = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    path = [*dict.fromkeys(scripts), *(p for p in env.get("PATH", "").split(os.pathsep) if p and p not in scripts)]
    return {**env, "PATH": os.pathsep.join(path)}


def run_nbgrader(course: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``python -m nbgrader ARGS`` in the course directory ``course``; return its log.

    nbgrader runs with this Python and finds its tools next to it (:func:`tool_environment`), whatever
    ``PATH`` says; ``env`` defaults to this process's environment.

    Raises:
        NotebookError: with nbgrader's log, when it exits with an error.
    """
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=tool_environment(env),
        capture_output=True,
        text=True,
        check=False,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise NotebookError(f"`nbgrader {' '.join(args)}` failed (exit {result.returncode}):\n{log}")
    return log


def release_notebooks(source: Path) -> dict[PurePosixPath, bytes]:
    """The student's notebooks (path under the release root → content), made by ``nbgrader generate_assignment``.

    Empty when ``source`` has no ``notebooks/`` directory.

    Raises:
        NotebookError: if nbgrader refuses a notebook (e.g. malformed markers or cell metadata).
    """
    if not notebook_paths(source):
        return {}
    with tempfile.TemporaryDirectory(prefix="nbgrader-release-") as tmp:
        course = make_course(Path(tmp), source)
        run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
        return {
            PurePosixPath(ASSIGNMENT, path.name): path.read_bytes() for path in notebook_paths(course / "assignments")
        }


def kernel_env(impl: Path, size: Size) -> dict[str, str]:
    """The environment of a kernel that imports ``impl/diffusion`` and runs the notebooks at ``size``.

    ``impl`` comes first on ``PYTHONPATH``; one intra-op thread, as in the kit's tests.

    Raises:
        ValueError: for an unknown size or an ``impl`` without ``diffusion/__init__.py``.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}; got {size!r}")
    if not (impl / "diffusion" / "__init__.py").is_file():
        raise ValueError(f"{impl} holds no diffusion/ package; pass the directory that contains it")
    path = os.pathsep.join(p for p in (str(impl.resolve()), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, SIZE_VARIABLE: size, "OMP_NUM_THREADS": "1"}


def ensure_kernel() -> None:
    """Make sure Jupyter knows the ``python3`` kernel, installing ipykernel's spec into ``sys.prefix`` if not."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)


def execute(path: Path, impl: Path, size: Size, workdir: Path, timeout: int = 600) -> NotebookNode:
    """Run the notebook ``path`` top to bottom in ``workdir`` with ``impl``'s package at ``size``; return it run.

    Raises:
        nbclient.exceptions.CellExecutionError: naming the cell and the error, when a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    ensure_kernel()
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=kernel_env(impl, size))
    return notebook
