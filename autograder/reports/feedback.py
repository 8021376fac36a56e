"""``students/<id>/feedback.md``: what a student reads of their grading, in Markdown.

Their total, a table of points per part (and the harness's), each failed check's name and message (the
test's ``output``), the harness's verdicts when it ran, and the notes on their hand-in. Nothing of the
grader's internals: not the sandbox's description, timings, fingerprints or versions, and never a grader's
log (a grader error only says that the submission will be graded again).
"""

from __future__ import annotations

import re
from pathlib import Path

from autograder.files import write_atomically
from autograder.parts import PART_BY_NAME
from autograder.reports.records import MISSING, StudentRecord, Test, points_text
from autograder.results import GRADED, GRADER_ERROR, HARNESS_TAG, NOT_GRADED

TITLE = "Diffusion models assignment: your results"
GRADER_FAILED = (
    "Your submission could not be graded this time because of a problem on the grader's side, not in your "
    "code. It will be graded again; there is nothing for you to do."
)


def write_feedback(record: StudentRecord, path: Path) -> Path:
    """Write ``record``'s feedback to ``path`` atomically and return ``path``."""
    write_atomically(path, feedback_markdown(record))
    return path


def feedback_markdown(record: StudentRecord) -> str:
    """The feedback of ``record`` (see the module)."""
    lines = [f"# {TITLE}", "", f"Student: {code(record.student)}", ""]
    if record.status == GRADER_ERROR:
        return "\n".join([*lines, GRADER_FAILED, ""])
    if record.status == MISSING:
        return "\n".join([*lines, "There is no result for your submission yet.", ""])
    if record.status == NOT_GRADED:
        lines += ["Your submission could not be graded:", "", fenced(record.problem), ""]
    lines += [f"**Total: {points_text(record.total)} / {points_text(record.possible_total)} points**", ""]
    lines += [*points_table(record), ""]
    if record.notes:
        lines += ["## Notes on your hand-in", "", fenced("\n".join(record.notes)), ""]
    if record.status == GRADED:
        failed = [test for part in record.parts for test in record.tests_of(part) if test.failed]
        lines += ["## Failed checks", ""]
        lines += [line for test in failed for line in verdict(test)] if failed else ["Every check passed.", ""]
    if record.harness_ran:
        lines += ["## Training and sampling (harness)", ""]
        lines += [line for test in record.tests_of(HARNESS_TAG) for line in verdict(test)]
        if not record.tests_of(HARNESS_TAG):
            lines += ["The harness ran without points to give.", ""]
    return "\n".join(lines)


def points_table(record: StudentRecord) -> list[str]:
    """The points and checks passed per part (and for the harness), then the total."""
    lines = ["| part | points | checks passed |", "|:--|--:|--:|"]
    for tag in record.columns():
        label = f"{PART_BY_NAME[tag].number} {tag}" if tag in PART_BY_NAME else tag
        tests = record.tests_of(tag)
        passed = sum(not test.failed for test in tests)
        points = f"{points_text(record.points(tag))} / {points_text(record.possible(tag))}"
        lines.append(f"| {label} | {points} | {passed} / {len(tests)} |")
    lines.append(f"| **total** | **{points_text(record.total)} / {points_text(record.possible_total)}** | |")
    return lines


def verdict(test: Test) -> list[str]:
    """A test's heading (its name, points, and whether it passed) and its output."""
    outcome = "failed" if test.failed else "passed"
    heading = f"### {code(test.name)}: {points_text(test.score)} / {points_text(test.max_score)}, {outcome}"
    return [heading, "", fenced(test.output), ""]


def code(text: str) -> str:
    """``text`` as a Markdown code span on one line, which shows it as it is (any backticks in it included)."""
    text = re.sub(r"[\r\n]+", " ", text)
    ticks = "`" * (1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{ticks} {text} {ticks}" if text.startswith("`") or text.endswith("`") else f"{ticks}{text}{ticks}"


def fenced(text: str) -> str:
    """``text`` as a fenced block of plain text, fenced by more backticks than any run in it."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text.rstrip()}\n{fence}"
