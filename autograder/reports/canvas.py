"""``canvas.csv``: the totals in Canvas's gradebook import format.

Columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one assignment column
holding each student's total (its name, e.g. ``Diffusion assignment (1234)``, where 1234 is the
assignment's Canvas id as the header of Canvas's own gradebook export shows it; a name without an id makes
Canvas create a new assignment). The second row is ``Points Possible``, with the class's points possible.

The student's id (their submission's name) is the ``SIS Login ID``; the other identity columns are left
empty for Canvas to match on that one. A result that is no grade (a grader error, a missing result) leaves
its cell empty, which Canvas does not import. Every cell is escaped as in the gradebook
(:func:`~autograder.reports.records.spreadsheet_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autograder.reports.records import StudentRecord, class_scale, points_text, write_csv

ASSIGNMENT = "Diffusion assignment"
"""The assignment column's name by default (a new assignment in Canvas)."""
IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def write_canvas(records: Sequence[StudentRecord], out: Path, assignment: str = ASSIGNMENT) -> Path:
    """Write ``out/canvas.csv`` (atomically) and return its path."""
    return write_csv(out / "canvas.csv", canvas_rows(records, assignment))


def canvas_rows(records: Sequence[StudentRecord], assignment: str = ASSIGNMENT) -> list[list[str]]:
    """The header, the ``Points Possible`` row and one row per student, before the cells are escaped."""
    rows = [[*IDENTITY, assignment], ["Points Possible", "", "", "", "", points_text(class_scale(records).total)]]
    rows += [["", "", "", r.student, "", points_text(r.total) if r.scored else ""] for r in records]
    return rows
