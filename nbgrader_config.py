"""nbgrader's configuration for the course (nbgrader reads this file from the course root).

``solutions/`` is nbgrader's source directory and ``assignments/`` its release directory: the
notebooks of ``solutions/notebooks/`` are the assignment ``notebooks``, and
``nbgrader generate_assignment notebooks`` (which ``python -m autograder release`` runs in a
temporary copy of the course) writes the student's copies to ``assignments/notebooks/``.
"""

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"

# Autograding: tracebacks without source lines, so that a failing test cell never shows the lines
# of its hidden tests; a cell may train a small network (the notebooks' full size takes minutes).
c.Execute.extra_arguments = ["--InteractiveShell.xmode=Minimal"]
c.Execute.timeout = 900

# Feedback shows each test cell without its hidden tests (nbgrader's default shows them).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
