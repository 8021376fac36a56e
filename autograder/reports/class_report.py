"""``report.md`` and ``report.png``: the class at a glance, for the TAs.

``report.md`` gives how many students have each status; the mean, median, lowest and highest total of the
results that are grades (``graded``, and ``not graded``: nothing to grade scores 0), out of the class's
points possible; the histogram of those totals (``report.png``); for each part, and the harness, the mean
points and the failure rate (the share of the graded students who lost points in it); the failure rate of
each check that failed for anyone; and the most common failure messages: the first line of each failed
test's verdict (the line after the check's title; see :attr:`~autograder.reports.records.Test.headline`),
counted over the failed tests of the graded students, with how many students got it.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.files import write_atomically
from autograder.reports.records import MISSING, StudentRecord, class_scale, points_text
from autograder.results import GRADED, GRADER_ERROR, HARNESS_TAG, NOT_GRADED

MOST_MESSAGES = 15
"""Failure messages listed at the most."""
LONGEST_MESSAGE = 200
"""Characters of a failure message shown at the most."""
BINS = 20


@dataclass(frozen=True)
class Rate:
    """How many of ``of`` students (or tests) failed ``name``."""

    name: str
    failed: int
    of: int

    @property
    def rate(self) -> float:
        return self.failed / self.of if self.of else 0.0


@dataclass(frozen=True)
class PartSummary:
    """One part's (or the harness's) mean points and failure rate over the graded students."""

    name: str
    possible: float
    mean: float
    failures: Rate


@dataclass(frozen=True)
class Message:
    """A failure message, how many failed tests gave it and to how many students."""

    text: str
    tests: int
    students: int


def write_class_report(records: Sequence[StudentRecord], out: Path) -> list[Path]:
    """Write ``out/report.md`` and ``out/report.png`` (atomically) and return their paths."""
    scale = class_scale(records)
    totals = [record.total for record in records if record.scored]
    figure = out / "report.png"
    write_atomically(figure, histogram_png(totals, scale.total))
    report = out / "report.md"
    write_atomically(report, report_markdown(records, figure.name))
    return [report, figure]


def report_markdown(records: Sequence[StudentRecord], figure: str = "report.png") -> str:
    """The report (see the module); ``figure`` is the histogram's file name beside it."""
    scale = class_scale(records)
    statuses = Counter(record.status for record in records)
    counts = ", ".join(f"{status} {statuses[status]}" for status in (GRADED, NOT_GRADED, GRADER_ERROR, MISSING))
    totals = [record.total for record in records if record.scored]
    graded = sum(record.status == GRADED for record in records)
    lines = ["# Class report", "", f"{len(records)} students: {counts}.", ""]
    if totals:
        lines += [
            f"Totals of the {len(totals)} results that are grades, out of {points_text(scale.total)}: "
            f"mean {statistics.mean(totals):.1f}, median {points_text(statistics.median(totals))}, "
            f"lowest {points_text(min(totals))}, highest {points_text(max(totals))}.",
            "",
        ]
    lines += [f"![histogram of the totals]({figure})", ""]
    lines += ["## Parts", "", f"Over the {graded} graded students; failure rate: the share who lost points in it.", ""]
    lines += ["| part | max | mean | failure rate |", "|:--|--:|--:|--:|"]
    lines += [
        f"| {part.name} | {points_text(part.possible)} | {part.mean:.2f} | {rate_text(part.failures)} |"
        for part in part_summaries(records)
    ]
    rates = check_rates(records)
    failing = [rate for rate in rates if rate.failed]
    lines += ["", "## Checks", "", "Failure rate of each check over the graded students, highest first.", ""]
    lines += ["| check | failure rate |", "|:--|--:|"]
    lines += [f"| {table_text(rate.name)} | {rate_text(rate)} |" for rate in failing]
    lines += ["", f"{len(rates) - len(failing)} more checks failed for no one."] if len(rates) > len(failing) else []
    lines += ["", "## Most common failure messages", "", "The first line of each failed check's verdict.", ""]
    lines += ["| failed checks | students | message |", "|--:|--:|:--|"]
    lines += [f"| {m.tests} | {m.students} | {table_text(m.text)} |" for m in common_messages(records)]
    return "\n".join(lines) + "\n"


def part_summaries(records: Sequence[StudentRecord]) -> list[PartSummary]:
    """Each part's (and the harness's) mean points and failure rate over the graded students who have it."""
    scale = class_scale(records)
    columns = {**scale.parts, **({HARNESS_TAG: scale.harness} if scale.harness is not None else {})}
    summaries = []
    for tag, possible in columns.items():
        having = [record for record in records if record.status == GRADED and tag in record.columns()]
        points = [record.points(tag) for record in having]
        failed = sum(record.points(tag) < record.possible(tag) for record in having)
        mean = statistics.mean(points) if points else 0.0
        summaries.append(PartSummary(tag, possible, mean, Rate(tag, failed, len(having))))
    return summaries


def check_rates(records: Sequence[StudentRecord]) -> list[Rate]:
    """Each test's failure rate over the graded students who ran it, highest first (then by name)."""
    failed: Counter[str] = Counter()
    ran: Counter[str] = Counter()
    for record in records:
        if record.status == GRADED:
            for test in record.tests:
                ran[test.name] += 1
                failed[test.name] += test.failed
    rates = [Rate(name, failed[name], ran[name]) for name in ran]
    return sorted(rates, key=lambda rate: (-rate.rate, rate.name))


def common_messages(records: Sequence[StudentRecord], most: int = MOST_MESSAGES) -> list[Message]:
    """The ``most`` most common first lines of the failed tests' verdicts of the graded students."""
    tests: Counter[str] = Counter()
    students: Counter[str] = Counter()
    for record in records:
        if record.status == GRADED:
            found = [test.headline for test in record.tests if test.failed]
            tests.update(found)
            students.update(set(found))
    ranked = sorted(tests, key=lambda text: (-tests[text], text))[:most]
    return [Message(text, tests[text], students[text]) for text in ranked]


def rate_text(rate: Rate) -> str:
    """``25% (1 of 4)``."""
    return f"{rate.rate:.0%} ({rate.failed} of {rate.of})"


def table_text(text: str) -> str:
    """``text`` as a cell of a Markdown table: one line, no column break, no HTML, cut to its first characters."""
    text = " ".join(text.split())
    if len(text) > LONGEST_MESSAGE:
        text = text[: LONGEST_MESSAGE - 3] + "..."
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def histogram_png(totals: Sequence[float], possible: float) -> bytes:
    """A PNG of the histogram of ``totals`` from 0 to ``possible`` points (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    top = max(possible, *totals, 1.0)
    axes.hist(totals, bins=[top * i / BINS for i in range(BINS + 1)], color="tab:blue", edgecolor="white")
    axes.set_xlim(0, top)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"total points (out of {points_text(possible)})")
    axes.set_ylabel("students")
    axes.set_title(f"Totals of {len(totals)} students")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
