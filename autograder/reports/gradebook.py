"""``gradebook.csv``: one row per student, for the TAs.

Columns:

- ``student``: the student's id;
- one per part, in handout order: the points of its hidden checks, empty when it was not graded for that
  student;
- ``harness``: the harness's points, empty when it did not run for that student;
- ``total``: the points of the row (its parts and its harness);
- ``max``: the class's points possible, the same on every row: each part graded for any student, and the
  harness when it ran for any (:func:`~autograder.reports.records.class_scale`);
- ``status``: ``graded``, ``not graded``, ``grader error`` or ``missing``;
- ``notes``: why it was not graded, each part's problem (:mod:`autograder.reports.problems`), what staging
  the hand-in found, separated by `` | ``.

Every cell is escaped against formula injection (:func:`~autograder.reports.records.spreadsheet_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autograder.parts import PART_NAMES
from autograder.reports.problems import problems
from autograder.reports.records import MISSING, Scale, StudentRecord, class_scale, points_text, write_csv
from autograder.results import HARNESS_TAG

HEADER = ["student", *PART_NAMES, HARNESS_TAG, "total", "max", "status", "notes"]
NOTES_LENGTH = 500
"""Characters of the notes cell at the most."""


def write_gradebook(records: Sequence[StudentRecord], out: Path) -> Path:
    """Write ``out/gradebook.csv`` (atomically) and return its path."""
    return write_csv(out / "gradebook.csv", gradebook_rows(records))


def gradebook_rows(records: Sequence[StudentRecord]) -> list[list[str]]:
    """The header and one row per record, before the cells are escaped."""
    scale = class_scale(records)
    return [HEADER, *(gradebook_row(record, scale) for record in records)]


def gradebook_row(record: StudentRecord, scale: Scale) -> list[str]:
    """``record``'s row; ``scale`` gives the ``max`` column."""
    graded = record.status != MISSING
    points = [points_text(record.points(tag)) if tag in record.columns() else "" for tag in [*PART_NAMES, HARNESS_TAG]]
    total = points_text(record.total) if graded else ""
    return [record.student, *points, total, points_text(scale.total), record.status, notes(record)]


def notes(record: StudentRecord) -> str:
    """The problem, each part's problem and the staging notes of ``record``, cut to :data:`NOTES_LENGTH`."""
    found = [record.problem] if record.problem else []
    return " | ".join([*found, *problems(record), *record.notes])[:NOTES_LENGTH]
