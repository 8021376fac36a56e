"""The problem of each part in a short phrase (``forward: syntax error (forward.py:1)``), read from the outputs
of its failed tests.

A failed check's output is its title, then the verdict :func:`autograder.grading._verdict` wrote:
``your code raised an error:`` (or ``... (this function is still the stub: implement it):``) and, on the
next line, the :class:`~autograder.isolation.errors.StudentError`: ``<part>.py could not be imported:
<type>: <message>``, ``the submission has no <part>.py``, ``<part>.<function> raised <type>: <message>``;
or ``<part>.<function> changed ... in place``, ``your function gave different results ...``, ``the
answer could not be checked: ...``. Anything else is a wrong answer, which the points already show: no
phrase. A part with several kinds of problems gets the most serious (an import error before a timeout
before a stub...), naming every function that has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from autograder.reports.records import StudentRecord, Test
from autograder.results import GRADED, HARNESS_TAG

MODULE, TIMEOUT, DIED, NO_FUNCTION, STUB, RAISED, IN_PLACE, UNSTABLE, UNCHECKED = range(9)
"""The kinds of problems, most serious first."""
PHRASES = {
    TIMEOUT: "timeout in {}",
    DIED: "the worker died in {}",
    NO_FUNCTION: "no function {}",
    STUB: "not implemented: {}",
    RAISED: "{}",
    IN_PLACE: "changes its arguments in place: {}",
    UNSTABLE: "different results for the same inputs",
    UNCHECKED: "a check failed on the grader's side",
}
"""How a part's phrase reads for each kind but :data:`MODULE` (whose detail is the phrase), given the
functions (or ``function raised Type``) that have it."""
MOST_NAMED = 3
"""Functions named in one phrase at the most."""
LONGEST = 80
"""Characters of an error's message quoted in a phrase at the most."""


@dataclass(frozen=True)
class Problem:
    """One failed test's problem: its kind and what it names (a function, or the module's whole phrase)."""

    kind: int
    detail: str = ""


def problems(record: StudentRecord) -> list[str]:
    """``part: phrase`` for each part of a graded ``record`` whose code failed, in handout order, then
    ``harness: ...`` when the harness's training failed; nothing for a result that is not a grading."""
    if record.status != GRADED:
        return []
    found = [f"{part}: {phrase}" for part in record.parts if (phrase := part_problem(part, record.tests_of(part)))]
    training = [t.message for t in record.tests_of(HARNESS_TAG) if t.failed and t.message.startswith("training failed")]
    return found + ([f"harness: {shorten(training[0].splitlines()[0])}"] if training else [])


def part_problem(part: str, tests: Iterable[Test]) -> str:
    """The phrase for ``part``'s most serious problem among its failed ``tests`` (``""``: none, or only wrong
    answers)."""
    found = [problem for test in tests if test.failed and (problem := classify(part, test))]
    if not found:
        return ""
    kind = min(problem.kind for problem in found)
    details = list(dict.fromkeys(problem.detail for problem in found if problem.kind == kind))
    if kind == MODULE:
        return details[0]
    named = ", ".join(details[:MOST_NAMED]) + (", ..." if len(details) > MOST_NAMED else "")
    return PHRASES[kind].format(named)


def classify(part: str, test: Test) -> Problem | None:
    """The problem ``test``'s output shows, or ``None`` for a wrong answer (or a submission not graded)."""
    lines = [line.strip() for line in test.message.splitlines() if line.strip()]
    if not lines or lines[0].startswith("not graded:"):
        return None
    first = lines[0]
    if first.startswith("your code raised an error") and len(lines) > 1:
        return _student_error(part, lines[1], stub="still the stub" in first)
    if match := re.match(rf"{re.escape(part)}\.(\S+) changed .* in place", first):
        return Problem(IN_PLACE, match.group(1))
    if first.startswith("your function gave different results"):
        return Problem(UNSTABLE)
    if first.startswith("the answer could not be checked"):
        return Problem(UNCHECKED)
    return None


def _student_error(part: str, line: str, *, stub: bool) -> Problem:
    """The problem of a :class:`~autograder.isolation.errors.StudentError` as its ``str`` reads (``line``)."""
    if match := re.match(rf"{re.escape(part)}\.py could not be imported: (\w+): ?(.*)$", line):
        kind, message = match.groups()
        where = re.search(r"\(([\w./-]+:\d+)\)$", message)
        if kind == "SyntaxError":
            return Problem(MODULE, f"syntax error ({where.group(1)})" if where else f"syntax error: {shorten(message)}")
        if kind == "TimeoutError":
            return Problem(MODULE, "its import timed out")
        if kind == "WorkerDied":
            return Problem(MODULE, "the worker died at its import")
        return Problem(MODULE, f"import error: {kind}: {shorten(message)}")
    if line.startswith("the submission has no "):
        return Problem(MODULE, f"no {part}.py")
    if match := re.match(rf"{re.escape(part)}\.(\S+) raised (\w+): ?(.*)$", line):
        function, kind, message = match.groups()
        if kind == "TimeoutError":
            return Problem(TIMEOUT, function)
        if kind == "WorkerDied":
            return Problem(DIED, function)
        if kind == "AttributeError" and "defines no function" in message:
            return Problem(NO_FUNCTION, function)
        if stub or kind == "NotImplementedError":
            return Problem(STUB, function)
        return Problem(RAISED, f"{function} raised {kind}")
    return Problem(RAISED, shorten(line))


def shorten(text: str, most: int = LONGEST) -> str:
    """``text`` cut to ``most`` characters, with ``...`` where it was cut."""
    return text if len(text) <= most else text[: most - 3].rstrip() + "..."
