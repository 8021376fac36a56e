"""Grade a class: ``python -m autograder batch SUBMISSIONS --out DIR [--jobs N] [--only ID ...] [--force]
[--harness PROFILE]``.

``SUBMISSIONS`` holds one entry per student, a folder or a ``.zip``; the entry's name (without
``.zip``) is the student's id. Each student is graded by a grader process of its own
(``python -m autograder grade``), a task (:mod:`autograder.tasks`) that runs on this machine, ``--jobs``
at a time, or on a Dask cluster (``--scheduler ADDRESS``, ``--cluster``: :mod:`autograder.cluster`), so
nothing one submission does can stop the others; with ``--harness PROFILE`` the same grader then runs the
harness's profile on the submission (``python -m autograder harness``) and adds its points, on a cluster's worker
that has the profile's resources (a GPU for ``gpu``), the reference's scores measured once per host and cached
(:mod:`autograder.harness.calibration`). This process, the coordinator, alone writes ``DIR``:
a task returns the bytes of the grader's ``results.json`` and log, and the coordinator checks them (this
kit's version, this submission's SHA-256, these parts) before it writes them. ``--only`` grades only the
students named (the gradebook still lists everyone), and
``--force`` grades again what is up to date. Written under ``DIR``:

- ``students/<student>/results.json``: Gradescope's schema, written atomically (a reader never sees
  half of it), also when the grader itself failed (``extra_data.status == "grader error"``, with the
  end of its log);
- ``students/<student>/grader.log``: what the grader printed;
- ``students/<student>/feedback.md``: what the student reads (:mod:`autograder.reports.feedback`),
  written after the student's grading, and for a student graded before when it is missing or older
  than their ``results.json`` (the harness added its points);
- ``gradebook.csv``: one row per student: points per part, the harness's, total, max, status and notes
  (:mod:`autograder.reports.gradebook`);
- ``report.md`` and ``report.png``: the class's totals, parts, checks and most common failure
  messages (:mod:`autograder.reports.class_report`);
- ``canvas.csv``: the totals in Canvas's gradebook import format (:mod:`autograder.reports.canvas`).

A text cell of a CSV file that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
``'`` in front, as OWASP recommends against formula injection: a spreadsheet shows it as text instead of
running it. Rows end with CRLF (RFC 4180), so a line break inside a cell is quoted and cannot start a row
of its own. The reports are written at the end of every run, from every student's ``results.json``.

The students' files live in ``students/``, one folder each, and the batch's own files beside that
folder, so a student id is never the name of a file of the batch, whatever it is (a student who
hands in ``gradebook.csv`` gets ``students/gradebook.csv/``). ``DIR`` may not lie inside
``SUBMISSIONS``, where it would be taken for a student.

A grader's temporary files go to a directory of its own under a temporary directory of the process that
runs its task, removed as soon as it has ended, whether it finished, failed or was killed at ``--timeout``
(:mod:`autograder.tasks`). A batch that is itself killed leaves its temporary directory to the next batch,
which removes it.

Resumable: a student whose ``results.json`` was written by this version of the kit for the same
submission (its SHA-256), these parts and (with ``--harness``) that profile's points is not graded again
(unless ``--force``), so a batch killed half-way and run again grades only what is missing; grader errors are
retried. A task whose worker died is started again
by the cluster and written once.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from autograder.files import write_atomically
from autograder.grading import not_graded
from autograder.harness.profiles import PROFILES
from autograder.isolation import intake
from autograder.reports.canvas import ASSIGNMENT, write_canvas
from autograder.reports.class_report import write_class_report
from autograder.reports.feedback import write_feedback
from autograder.reports.gradebook import write_gradebook
from autograder.reports.records import MISSING, StudentRecord, read_record
from autograder.results import GRADER_ERROR, NOT_GRADED, kit_version, read_results, results_json, write_results
from autograder.tasks import Engine, LocalPool, Outcome, Task

LOG_TAIL = 3000
STUDENTS = "students"
"""The folder of ``DIR`` that holds one folder per student, and nothing else."""
FEEDBACK = "feedback.md"
"""A student's feedback, in their folder beside ``results.json``."""


@dataclass(frozen=True)
class Entry:
    """One student's submission in the batch."""

    student: str
    path: Path

    def folder(self, out: Path) -> Path:
        """The student's folder of the batch's output directory ``out``."""
        return out / STUDENTS / self.student

    def results(self, out: Path) -> Path:
        """The student's ``results.json``."""
        return self.folder(out) / "results.json"

    def feedback(self, out: Path) -> Path:
        """The student's ``feedback.md``."""
        return self.folder(out) / FEEDBACK


def entries(submissions: Path) -> list[Entry]:
    """The students' submissions, sorted by student, each with an id of its own; hidden files are not
    submissions."""
    paths = sorted(p for p in submissions.iterdir() if not p.name.startswith("."))
    ids = [p.name[: -len(".zip")] if p.suffix.lower() == ".zip" else p.name for p in paths]
    # alice/ next to alice.zip: both keep their full names rather than share one; names are unique in a
    # folder, so repeating this until no id is shared ends (bob/, bob.zip and bob.zip.zip: bob, bob.zip...).
    while shared := {name for name, count in Counter(ids).items() if count > 1}:
        ids = [path.name if name in shared else name for name, path in zip(ids, paths, strict=True)]
    return [Entry(name, path) for name, path in zip(ids, paths, strict=True)]


class UnknownStudents(ValueError):
    """``--only`` named a student who has no submission."""


def select(students: Sequence[Entry], only: Sequence[str]) -> list[Entry]:
    """The students named in ``only`` (by id, or by the name of their folder or ``.zip``), in the order of
    ``students``; all of them when ``only`` is empty.

    Raises:
        UnknownStudents: naming every id of ``only`` that is no student's, with the closest ids.
    """
    if not only:
        return list(students)
    names = {name for entry in students for name in (entry.student, entry.path.name)}
    unknown = [name for name in dict.fromkeys(only) if name not in names]
    if unknown:
        ids = [entry.student for entry in students]
        close = sorted({match for name in unknown for match in difflib.get_close_matches(name, ids, n=3)})
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise UnknownStudents(
            f"no submission for {', '.join(map(repr, unknown))}{hint}: a student's id is the name of their folder "
            "or .zip (without .zip) in the submissions"
        )
    return [entry for entry in students if {entry.student, entry.path.name} & set(only)]


def is_done(entry: Entry, out: Path, parts: Sequence[str], harness: str | None = None) -> bool:
    """Whether ``entry`` has a result from this kit version for this very submission and these parts
    (and no grader error), with the harness's points of profile ``harness`` when one is asked for (unless the
    submission had nothing to run)."""
    extra = (read_results(entry.results(out)) or {}).get("extra_data")
    return isinstance(extra, dict) and (
        extra.get("status") != GRADER_ERROR
        and extra.get("kit_version") == kit_version()
        and extra.get("parts") == sorted(parts)
        and (harness is None or extra.get("status") == NOT_GRADED or _harness_profile(extra) == harness)
        and bool(sha := fingerprint(entry))  # the last test: it reads the whole submission
        and extra.get("submission_sha256") == sha
    )


def _harness_profile(extra: dict) -> str | None:
    """The profile of the harness's points in a result's ``extra_data``, if any."""
    report = extra.get("harness")
    return report.get("profile") if isinstance(report, dict) else None


def fingerprint(entry: Entry) -> str:
    """The SHA-256 of ``entry`` as handed in, or ``""`` when it cannot be read whole (it is graded again)."""
    try:
        return intake.fingerprint([entry.path])
    except (OSError, RecursionError, ValueError):
        return ""


def task_of(
    entry: Entry, parts: Sequence[str], options: Sequence[str], timeout: float, harness: str | None = None
) -> Task:
    """The task that grades ``entry`` on any host (:mod:`autograder.tasks`), with the harness's profile ``harness``
    after the hidden checks when given (on a worker with that profile's resources: a GPU for ``gpu``)."""
    resources = PROFILES[harness].resources if harness else {}
    return Task(entry.student, entry.path.resolve(), tuple(parts), tuple(options), timeout, resources, harness)


def record(entry: Entry, out: Path, task: Task, outcome: Outcome) -> dict:
    """Check what the grader of ``task`` left for ``entry`` and write its ``grader.log`` and ``results.json``
    (atomically), or a grader error that says what was wrong; return the results written.

    The results are the grader's when it ended well and they are this kit's (its version) for this submission
    (its SHA-256, read here) and these parts; they then say which host graded (``extra_data.host``)."""
    folder = entry.folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.tmp"), entry.results(out), entry.feedback(out)]:  # a killed writer's; outdated
        stale.unlink(missing_ok=True)
    write_atomically(folder / "grader.log", outcome.log)
    results = _results(outcome)
    problem = _problem(entry, task, outcome, results)
    if problem or results is None:
        return grader_error(entry, out, task.parts, problem, outcome.seconds)
    results["extra_data"]["host"] = outcome.host
    write_results(entry.results(out), results)
    return results


def _results(outcome: Outcome) -> dict | None:
    """The grader's results when it ended well and they have the kit's shape, else ``None``."""
    try:
        results = json.loads(outcome.results or b"")
    except ValueError:
        return None
    shaped = isinstance(results, dict) and isinstance(results.get("extra_data"), dict)
    return results if shaped and outcome.code == 0 else None


def _problem(entry: Entry, task: Task, outcome: Outcome, results: dict | None) -> str:
    """What is wrong with the grader's ``results`` for ``entry``, or ``""``."""
    if results is None:
        if outcome.code is None:
            what = f"did not finish within {task.timeout:g} s"
        elif outcome.code:
            what = f"stopped with exit code {outcome.code}"
        elif outcome.results is None:
            what = "finished without writing results.json"
        else:
            what = "wrote a results.json that is not the kit's"
        end = outcome.log[-LOG_TAIL:].decode("utf-8", "replace").strip()
        return f"the grader {what} (its log: grader.log). Its last output:\n{end}"
    extra, on = results["extra_data"], f"the grader on {outcome.host}"
    if extra.get("kit_version") != kit_version():
        return f"{on} runs another version of the kit: install the same commit on every host"
    if extra.get("submission_sha256") != fingerprint(entry):
        return f"{on} graded another copy of the submission: the workers must read it at the same path ({entry.path})"
    if extra.get("parts") != sorted(task.parts):
        return f"{on} graded parts {extra.get('parts')}, not {sorted(task.parts)}"
    return ""


def grader_error(entry: Entry, out: Path, parts: Sequence[str], problem: str, seconds: float = 0.0) -> dict:
    """Write ``entry``'s ``results.json`` for a grading that failed on the kit's side (``problem``: how), and
    return it; the next batch grades the student again."""
    results = results_json(not_graded(problem, seconds, parts, status=GRADER_ERROR))
    results["extra_data"]["submission_sha256"] = fingerprint(entry)
    with contextlib.suppress(OSError):  # else the gradebook says "missing"
        entry.folder(out).mkdir(parents=True, exist_ok=True)
        write_results(entry.results(out), results)
    return results


@dataclass
class Tally:
    """What a run did: how many gradings ended with each status, and how many tasks were started again."""

    statuses: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    """Tasks started again because the worker running them died (each still counted once in ``statuses``)."""

    def __str__(self) -> str:
        ended = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        return (ended or "nothing to grade") + (
            f"; {self.retried} retried after their worker died" if self.retried else ""
        )


def grade_all(todo: Sequence[Entry], out: Path, tasks: Sequence[Task], engine: Engine) -> Tally:
    """Grade ``todo`` (``tasks``, one per entry) on ``engine`` with a progress bar and a live count of the gradings
    done, failed (grader errors) and retried; write each result as it comes, once. One failure (of the batch, a
    worker, a results.json not the kit's) costs its student only: a grader error, graded again next run."""
    entry_of = {task.student: entry for entry, task in zip(todo, tasks, strict=True)}
    tally = Tally()
    with tqdm(total=len(todo), unit="submission", desc="grading", file=sys.stderr) as progress:
        for task, outcome in engine.run(tasks):
            entry = entry_of[task.student]
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                results = record(entry, out, task, outcome)
                status, score = str(results["extra_data"]["status"]), float(results["score"])
            except Exception as error:  # the batch's own failure, or a results.json not the kit's: this one only
                grader_error(entry, out, task.parts, f"the batch failed to grade it ({error!r})")
                status, score = GRADER_ERROR, 0.0
            tally.statuses[status] += 1
            tally.retried = engine.retried
            with contextlib.suppress(OSError):  # the reports at the end meet a full disk too, and say so
                update_feedback(entry, out)
            done, failed = tally.statuses.total(), tally.statuses[GRADER_ERROR]
            progress.set_postfix_str(
                f"{entry.student}: {score:g} ({status}); done {done}, failed {failed}, retried {tally.retried}"
            )
            progress.update()
    return tally


def update_feedback(entry: Entry, out: Path, *, when_stale: bool = False) -> None:
    """Write ``entry``'s ``feedback.md`` from its ``results.json`` (none when it has none); with ``when_stale``
    only when it is missing or older than ``results.json`` (the harness added its points since)."""
    path, results = entry.feedback(out), entry.results(out)
    with contextlib.suppress(OSError):
        if when_stale and path.stat().st_mtime_ns >= results.stat().st_mtime_ns:
            return
    record = read_record(entry.student, results)
    if record.status != MISSING:
        write_feedback(record, path)


def records(students: Sequence[Entry], out: Path) -> list[StudentRecord]:
    """Every student's record, read from their ``results.json`` (of status ``missing`` when there is none)."""
    return [read_record(entry.student, entry.results(out)) for entry in students]


def write_reports(students: Sequence[Entry], out: Path, assignment: str = ASSIGNMENT) -> list[Path]:
    """Write ``gradebook.csv``, ``report.md``, ``report.png`` and ``canvas.csv`` (its assignment column named
    ``assignment``) for every student; return their paths."""
    found = records(students, out)
    return [write_gradebook(found, out), *write_class_report(found, out), write_canvas(found, out, assignment)]


def run(
    submissions: Path,
    out: Path,
    parts: Sequence[str],
    options: Sequence[str],
    *,
    engine: Engine | None = None,
    timeout: float = 3600.0,
    only: Sequence[str] = (),
    force: bool = False,
    assignment: str = ASSIGNMENT,
    harness: str | None = None,
) -> tuple[Tally, list[Path]]:
    """Grade the students of ``submissions`` that ``only`` names (default: all) whose result is not up to date
    (with ``force``, all of them) on ``engine`` (default: this machine, one grader at a time), with the harness's
    profile ``harness`` after the hidden checks when given, bring every student's feedback up to date and write
    the class's reports; print what it grades. Returns what the run did, and the reports' paths.

    Raises:
        UnknownStudents: ``only`` names a student who has no submission (before anything is graded).
    """
    students = entries(submissions)
    chosen = select(students, only)
    todo = [entry for entry in chosen if force or not is_done(entry, out, parts, harness)]
    line = f"{len(students)} submission(s) in {submissions}"
    line += f"; {len(chosen)} chosen by --only" if only else ""
    line += f"; grading {len(todo)} again (--force)" if force else f"; {len(chosen) - len(todo)} already graded"
    print(line, flush=True)
    tasks = [task_of(entry, parts, options, timeout, harness) for entry in todo]
    tally = grade_all(todo, out, tasks, engine or LocalPool(1))
    graded = set(todo)
    for entry in students:
        if entry not in graded:
            with contextlib.suppress(OSError):
                update_feedback(entry, out, when_stale=True)
    return tally, write_reports(students, out, assignment)
