"""nbgrader's configuration for the course (nbgrader reads this file from the course root).

``solutions/`` is nbgrader's source directory and ``assignments/`` its release directory: the
notebooks of ``solutions/notebooks/`` are the assignment ``notebooks``, and
``nbgrader generate_assignment notebooks`` (which ``python -m autograder release`` runs in a
temporary copy of the course) writes the student's copies to ``assignments/notebooks/``.

``nbgrader autograde`` runs the notebooks with the kit's guarded execution step
(:mod:`autograder.notebook_guard`): a student's cells cannot stop the autograded test cells from
running as written or hide their failures. Each student's kernel imports that student's own
``diffusion`` package, found in their submission (:mod:`autograder.notebook_package`). The kit's
root is found through this file's real path (a temporary course links its config to this file).
"""

import os
import sys
from pathlib import Path

KIT = Path(__file__).resolve().parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from autograder.notebook_package import StudentPackageExecute  # noqa: E402

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"

# A local course: the exchange (where `nbgrader release_assignment` puts the notebooks, `nbgrader fetch_assignment`
# and `submit` find them, `collect` takes the submissions) is NBGRADER_EXCHANGE, or else `exchange/` in the course
# root, made on first use writable by everyone on the machine (sticky, as /tmp); `nbgrader list` lists it.
EXCHANGE = Path(os.environ.get("NBGRADER_EXCHANGE") or Path.cwd() / "exchange")
if not EXCHANGE.exists():
    EXCHANGE.mkdir(parents=True)
    EXCHANGE.chmod(0o1777)
c.CourseDirectory.course_id = "diffusion"
c.Exchange.root = str(EXCHANGE)

# Autograding: tracebacks without source lines, so that a failing test cell never shows the lines
# of its hidden tests; a cell may train a small network (the notebooks' full size takes minutes).
c.Execute.extra_arguments = ["--InteractiveShell.xmode=Minimal"]
c.Execute.timeout = 900

# nbgrader's autograding steps, with the guarded execution in place of nbgrader's Execute; each student's kernel
# imports the student's own diffusion package from their submission (autograder/notebook_package.py).
c.Autograde.autograde_preprocessors = [
    StudentPackageExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Feedback shows each test cell without its hidden tests (nbgrader's default shows them).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
