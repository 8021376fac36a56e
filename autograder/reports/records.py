"""A student's ``results.json`` as the reports read it, the class's points possible, and spreadsheet cells.

A :class:`StudentRecord` holds what every report needs of one ``results.json`` (Gradescope's schema, see
:mod:`autograder.results`): the status, the problem and notes, the parts graded and every test with its
tag (a part's name, or ``harness``). A file that is missing or not the kit's becomes a record of status
:data:`MISSING` whose ``problem`` says why, so a report never stops at one student.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.files import write_atomically
from autograder.parts import PART_NAMES
from autograder.results import GRADED, HARNESS_TAG, NOT_GRADED, read_results

MISSING = "missing"
"""The status of a student whose ``results.json`` is missing or not the kit's."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""What makes a spreadsheet read a cell as a formula: OWASP's list, the null character (OWASP ASVS) and the
full-width ＝ ＋ － ＠ that some locales' spreadsheets take for their ASCII forms."""


@dataclass(frozen=True)
class Test:
    """One entry of ``tests[]``: a hidden check (tagged with its part) or a harness verdict."""

    name: str
    score: float
    max_score: float
    output: str
    """The check's title on the first line, then the verdict (empty when it passed)."""
    tag: str
    """The part's name, ``harness``, or ``""`` for a test without tags."""

    @property
    def failed(self) -> bool:
        return self.score < self.max_score

    @property
    def message(self) -> str:
        """The output without its first line (the check's title): the verdict, as the student reads it."""
        return self.output.partition("\n")[2].strip("\n")

    @property
    def headline(self) -> str:
        """The verdict's first line, with the next when it only announces it (``your code raised an error:``);
        the title when there is no verdict."""
        lines = [line.strip() for line in self.message.splitlines() if line.strip()]
        if not lines:
            return self.output.partition("\n")[0].strip()
        return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


@dataclass(frozen=True)
class StudentRecord:
    """What the reports read of one student's ``results.json``."""

    student: str
    status: str
    """``graded``, ``not graded``, ``grader error`` (see :data:`autograder.results.Status`) or :data:`MISSING`."""
    tests: tuple[Test, ...] = ()
    parts: tuple[str, ...] = ()
    """The parts graded, in handout order."""
    problem: str = ""
    """Why the submission was not graded (or, for :data:`MISSING`, why there is no result)."""
    notes: tuple[str, ...] = ()
    """What staging the submission skipped or found wrong."""
    harness_ran: bool = False

    @property
    def scored(self) -> bool:
        """Whether the result is a grade (``graded``, or ``not graded``: nothing to grade is a zero), unlike a
        grader error or a missing result."""
        return self.status in (GRADED, NOT_GRADED)

    def tests_of(self, tag: str) -> list[Test]:
        """The tests of a part (its name) or of the harness (``harness``)."""
        return [test for test in self.tests if test.tag == tag]

    def points(self, tag: str) -> float:
        return sum(test.score for test in self.tests_of(tag))

    def possible(self, tag: str) -> float:
        return sum(test.max_score for test in self.tests_of(tag))

    def columns(self) -> list[str]:
        """The tags this record has points for: its parts, then the harness when it ran."""
        return [*self.parts, *([HARNESS_TAG] if self.harness_ran else [])]

    @property
    def total(self) -> float:
        """The points of the parts graded and of the harness."""
        return sum(self.points(tag) for tag in self.columns())

    @property
    def possible_total(self) -> float:
        return sum(self.possible(tag) for tag in self.columns())


def read_record(student: str, path: Path) -> StudentRecord:
    """``student``'s record from the ``results.json`` at ``path``; of status :data:`MISSING` when there is none
    or it is not the kit's."""
    results = read_results(path)
    if results is None:
        what = "no results.json yet" if not path.exists() else "results.json is not a JSON object"
        return StudentRecord(student, MISSING, problem=what)
    try:
        return _record(student, results)
    except (KeyError, TypeError, ValueError) as error:
        what = f"results.json is not the kit's ({type(error).__name__}: {error})"
        return StudentRecord(student, MISSING, problem=what)


def _record(student: str, results: dict[str, Any]) -> StudentRecord:
    extra = results["extra_data"]
    if not isinstance(extra, dict) or not isinstance(results["tests"], list):
        raise TypeError("extra_data is not an object or tests is not a list")
    tests = tuple(_test(test) for test in results["tests"])
    graded = _strings(extra.get("parts", []))
    return StudentRecord(
        student=student,
        status=str(extra.get("status", "")),
        tests=tests,
        parts=tuple(part for part in PART_NAMES if part in graded),
        problem=str(extra.get("problem") or ""),
        notes=tuple(_strings(extra.get("notes", []))),
        harness_ran="harness" in extra or any(test.tag == HARNESS_TAG for test in tests),
    )


def _test(test: Any) -> Test:
    if not isinstance(test, dict):
        raise TypeError(f"a test is a {type(test).__name__}, not an object")
    tags = test.get("tags") or []
    tag = str(tags[0]) if isinstance(tags, list) and tags else ""
    name, output = test.get("name", ""), test.get("output", "")
    return Test(str(name), _number(test["score"]), _number(test["max_score"]), str(output), tag)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number of points")
    return float(value)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"{value!r} is not a list")
    return [str(item) for item in value]


@dataclass(frozen=True)
class Scale:
    """The class's points possible per column, the same for every student."""

    parts: dict[str, float]
    """Part -> its points possible, for the parts graded for any student, in handout order."""
    harness: float | None
    """The harness's points possible; ``None`` when it ran for no student."""

    @property
    def total(self) -> float:
        return sum(self.parts.values()) + (self.harness or 0.0)


def class_scale(records: Iterable[StudentRecord]) -> Scale:
    """The points possible of each column: the most any student's tests of that part (or of the harness) offer."""
    parts: dict[str, float] = {}
    harness: float | None = None
    for record in records:
        for part in record.parts:
            parts[part] = max(parts.get(part, 0.0), record.possible(part))
        if record.harness_ran:
            harness = max(harness or 0.0, record.possible(HARNESS_TAG))
    return Scale({part: parts[part] for part in PART_NAMES if part in parts}, harness)


def points_text(points: float) -> str:
    """Points as a spreadsheet cell: ``7``, ``6.5``."""
    return f"{round(points, 4):g}"


def spreadsheet_text(text: str) -> str:
    """``text`` as a cell a spreadsheet shows and never evaluates: a ``'`` in front of a formula (OWASP)."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def write_csv(path: Path, rows: Iterable[Sequence[str]]) -> Path:
    """Write ``rows`` to ``path`` atomically, every cell made safe by :func:`spreadsheet_text`; return ``path``.

    Excel's dialect, as RFC 4180: rows end with CRLF, so a cell holding a line break of either kind is quoted
    (ending rows with LF alone, the csv module would leave a lone CR unquoted, and Excel would start a row there).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel")
    writer.writerows([spreadsheet_text(cell) for cell in row] for row in rows)
    write_atomically(path, buffer.getvalue())
    return path
