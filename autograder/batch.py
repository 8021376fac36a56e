"""Grade a class: ``python -m autograder batch SUBMISSIONS --out DIR [--jobs N] [--only ID ...] [--force]``.

``SUBMISSIONS`` holds one entry per student, a folder or a ``.zip``; the entry's name (without
``.zip``) is the student's id. Each student is graded by a grader process of its own
(``python -m autograder grade``), ``--jobs`` at a time, so nothing one submission does can stop
the others. ``--only`` grades only the students named (the gradebook still lists everyone), and
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

A grader's temporary files (the staged submission, the copy of it its workers run in, which can be
large) go to a directory of its own (its ``TMPDIR``) under the batch's temporary directory, and are
removed as soon as it has ended, whether it finished, failed or was killed at ``--timeout``. A batch
that is itself killed leaves its temporary directory to the next batch, which removes it.

Resumable: a student whose ``results.json`` was written by this version of the kit for the same
submission (its SHA-256) is not graded again (unless ``--force``), so a batch killed half-way and run
again grades only what is missing; grader errors are retried.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from autograder.grading import not_graded
from autograder.isolation import intake
from autograder.isolation.launcher import parent_death_signal
from autograder.reference import ROOT
from autograder.reports.canvas import ASSIGNMENT, write_canvas
from autograder.reports.class_report import write_class_report
from autograder.reports.feedback import write_feedback
from autograder.reports.gradebook import write_gradebook
from autograder.reports.records import MISSING, StudentRecord, read_record
from autograder.results import GRADER_ERROR, kit_version, read_results, results_json, write_results

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


def is_done(entry: Entry, out: Path, parts: Sequence[str]) -> bool:
    """Whether ``entry`` has a result from this kit version for this very submission and these parts
    (and no grader error)."""
    extra = (read_results(entry.results(out)) or {}).get("extra_data")
    return isinstance(extra, dict) and (
        extra.get("status") != GRADER_ERROR
        and extra.get("kit_version") == kit_version()
        and extra.get("parts") == sorted(parts)
        and bool(sha := fingerprint(entry))  # the last test: it reads the whole submission
        and extra.get("submission_sha256") == sha
    )


def fingerprint(entry: Entry) -> str:
    """The SHA-256 of ``entry`` as handed in, or ``""`` when it cannot be read whole (it is graded again)."""
    try:
        return intake.fingerprint([entry.path])
    except (OSError, RecursionError, ValueError):
        return ""


def grade_one(
    entry: Entry,
    out: Path,
    parts: Sequence[str],
    options: Sequence[str],
    threads: int,
    timeout: float,
    temp_root: Path,
) -> dict:
    """Grade ``entry`` in a grader process of its own; its ``results.json`` exists afterwards, whatever happened.

    The grader's temporary files (the staged submission, its workers' scratch) go to a directory of its own
    under ``temp_root`` (its ``TMPDIR``), removed when the grader has ended, also when it was killed."""
    folder = entry.folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.tmp"), entry.results(out), entry.feedback(out)]:  # a killed writer's; outdated
        stale.unlink(missing_ok=True)
    log = folder / "grader.log"
    command = [sys.executable, "-m", "autograder", "grade", str(entry.path.resolve()), "--out", str(folder)]
    command += ["--parts", *parts, *options]
    temp = Path(tempfile.mkdtemp(prefix="grader-", dir=temp_root))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1", "TMPDIR": str(temp)}
    start = time.perf_counter()
    try:
        with log.open("wb") as stream:
            process = subprocess.Popen(
                command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, env=env, preexec_fn=parent_death_signal
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()  # its sandbox goes with it (bubblewrap's --die-with-parent, a parent-death signal)
                process.wait()
                code = None
    finally:
        remove_tree(temp)
    results = read_results(entry.results(out))
    if results is not None and code == 0:
        return results
    if code is None:
        what = f"did not finish within {timeout:g} s"
    else:
        what = f"stopped with exit code {code}" if code else "finished without writing results.json"
    tail = log.read_bytes()[-LOG_TAIL:].decode("utf-8", "replace").strip()
    problem = f"the grader {what} (its log: grader.log). Its last output:\n{tail}"
    return grader_error(entry, out, parts, problem, time.perf_counter() - start)


def grader_error(entry: Entry, out: Path, parts: Sequence[str], problem: str, seconds: float = 0.0) -> dict:
    """Write ``entry``'s ``results.json`` for a grading that failed on the kit's side (``problem``: how), and
    return it; the next batch grades the student again."""
    results = results_json(not_graded(problem, seconds, parts, status=GRADER_ERROR))
    results["extra_data"]["submission_sha256"] = fingerprint(entry)
    with contextlib.suppress(OSError):  # else the gradebook says "missing"
        entry.folder(out).mkdir(parents=True, exist_ok=True)
        write_results(entry.results(out), results)
    return results


def grade_all(
    todo: Sequence[Entry], out: Path, parts: Sequence[str], options: Sequence[str], *, jobs: int, timeout: float
) -> dict[str, int]:
    """Grade ``todo``, ``jobs`` students at once with a progress bar; how many ended with each status.

    The graders' temporary directories live under one of the batch's own (``autograder-batch-<pid>-*`` in
    the system's temporary directory), removed at the end; those of batches killed before their end go at
    the start of the next."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    statuses: dict[str, int] = {}
    remove_stale_roots()
    temp_root = Path(tempfile.mkdtemp(prefix=f"autograder-batch-{os.getpid()}-"))
    try:
        with (
            ThreadPoolExecutor(max_workers=jobs) as pool,
            tqdm(total=len(todo), unit="submission", desc="grading", file=sys.stderr) as progress,
        ):
            futures = {pool.submit(grade_one, e, out, parts, options, threads, timeout, temp_root): e for e in todo}
            for future in as_completed(futures):
                entry = futures[future]
                try:
                    results = future.result()
                    status, score = str(results["extra_data"]["status"]), float(results["score"])
                except Exception as error:  # the batch's own failure, or a results.json not the kit's: this one only
                    grader_error(entry, out, parts, f"the batch failed to grade it ({error!r})")
                    status, score = GRADER_ERROR, 0.0
                statuses[status] = statuses.get(status, 0) + 1
                with contextlib.suppress(OSError):  # the reports at the end meet a full disk too, and say so
                    update_feedback(entry, out)
                progress.set_postfix_str(f"{entry.student}: {score:g} ({status})")
                progress.update()
    finally:
        remove_tree(temp_root)
    return statuses


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
    jobs: int = 1,
    timeout: float = 3600.0,
    only: Sequence[str] = (),
    force: bool = False,
    assignment: str = ASSIGNMENT,
) -> tuple[dict[str, int], list[Path]]:
    """Grade the students of ``submissions`` that ``only`` names (default: all) whose result is not up to date
    (with ``force``, all of them), bring every student's feedback up to date and write the class's reports;
    print what it grades. Returns how many gradings ended with each status, and the reports' paths.

    Raises:
        UnknownStudents: ``only`` names a student who has no submission (before anything is graded).
    """
    students = entries(submissions)
    chosen = select(students, only)
    todo = [entry for entry in chosen if force or not is_done(entry, out, parts)]
    line = f"{len(students)} submission(s) in {submissions}"
    line += f"; {len(chosen)} chosen by --only" if only else ""
    line += f"; grading {len(todo)} again (--force)" if force else f"; {len(chosen) - len(todo)} already graded"
    print(line, flush=True)
    statuses = grade_all(todo, out, parts, options, jobs=jobs, timeout=timeout)
    graded = set(todo)
    for entry in students:
        if entry not in graded:
            with contextlib.suppress(OSError):
                update_feedback(entry, out, when_stale=True)
    return statuses, write_reports(students, out, assignment)


def remove_stale_roots() -> None:
    """Remove the temporary directories of this user's batches that were killed (their process is gone)."""
    for root in Path(tempfile.gettempdir()).glob("autograder-batch-*-*"):
        pid = root.name.split("-")[2]
        with contextlib.suppress(OSError):
            info = root.lstat()
            if pid.isdigit() and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not _running(int(pid)):
                remove_tree(root)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


def remove_tree(path: Path) -> None:
    """Remove ``path`` and all it holds, never following a link, also folders a student's code made read-only.

    Those are made writable again only when the batch is not root: root needs no permission to remove them,
    and a permission it changed could, through a link a dying process swapped in, be a file's outside."""
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path) or os.geteuid() == 0:
        return
    folders = [path]
    while folders:
        folder = folders.pop()
        if folder.is_dir() and not folder.is_symlink():
            with contextlib.suppress(OSError):
                folder.chmod(0o700)
                folders += folder.iterdir()
    shutil.rmtree(path, ignore_errors=True)
