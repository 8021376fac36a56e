"""``nbgrader autograde`` with the submitting student's own ``diffusion`` package.

The notebooks import ``diffusion``. Autograded with nbgrader's kernel as it is, they would import whatever package
the grading machine has installed (the stubs, or the reference), not the student's. :class:`StudentPackageExecute`
is the kit's guarded execution step (:class:`autograder.notebook_guard.GuardedExecute`) with one addition: the
kernel of each student's notebook starts with that student's package first on ``PYTHONPATH``, found in their
submission (:func:`find_student_package`), so the TA copies nothing by hand.

Where a student's package is looked for, in nbgrader's ``submitted/<student>/`` (the first that holds
``diffusion/__init__.py``):

1. ``submitted/<student>/<assignment>/``: the package handed in beside the notebooks;
2. ``submitted/<student>/``: the student's ``assignments/`` folder unpacked there (it holds ``diffusion/`` and
   ``notebooks/``);
3. ``submitted/<student>/assignments/``: the student's copy of the whole bundle unpacked there.

A student without a package is autograded with the installed one, and nbgrader's log says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nbgrader.coursedir import CourseDirectory

from autograder.notebook_guard import GuardedExecute

PACKAGE = "diffusion"


def find_student_package(submitted: Path) -> Path | None:
    """The directory holding the student's ``diffusion/`` package for the submission ``submitted`` (nbgrader's
    ``submitted/<student>/<assignment>``), or ``None`` when they handed in none (see the module for the order)."""
    for folder in (submitted, submitted.parent, submitted.parent / "assignments"):
        if (folder / PACKAGE / "__init__.py").is_file():
            return folder.resolve()
    return None


def package_environment(folder: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with ``folder`` first on ``PYTHONPATH``."""
    env = dict(os.environ if env is None else env)
    paths = [str(folder), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


class StudentPackageExecute(GuardedExecute):
    """The guarded execution step whose kernel imports the submitting student's package (see the module). Use it
    in place of nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``."""

    def start_new_kernel(self, **kwargs: Any) -> None:
        """Start the notebook's kernel with the student's package first on its ``PYTHONPATH``."""
        ids = self.resources.get("nbgrader", {})
        student, assignment = ids.get("student"), ids.get("assignment")
        if student and assignment:
            coursedir = CourseDirectory(config=self.config)
            submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
            folder = find_student_package(submitted)
            if folder is None:
                self.log.warning(
                    "%s handed in no %s/ package (looked in %s, its parent and %s): their notebooks import the "
                    "installed one",
                    student,
                    PACKAGE,
                    submitted,
                    submitted.parent / "assignments",
                )
            else:
                self.log.info("%s's notebooks import their own package from %s", student, folder / PACKAGE)
                kwargs["env"] = package_environment(folder, kwargs.get("env"))
        super().start_new_kernel(**kwargs)
