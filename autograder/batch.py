"""Grade a class: ``python -m autograder batch SUBMISSIONS --out DIR [--jobs N]``.

``SUBMISSIONS`` holds one entry per student, a folder or a ``.zip``; the entry's name (without
``.zip``) is the student's id. Each student is graded by a grader process of its own
(``python -m autograder grade``), ``--jobs`` at a time, so nothing one submission does can stop
the others. Written under ``DIR``:

- ``<student>/results.json``: Gradescope's schema, written atomically (a reader never sees half of
  it), also when the grader itself failed (``extra_data.status == "grader error"``, with the end of
  its log);
- ``<student>/grader.log``: what the grader printed;
- ``gradebook.csv``: one row per student: points per part, total, status and notes.

Resumable: a student whose ``results.json`` was written by this version of the kit for the same
submission (its SHA-256) is not graded again, so a batch killed half-way and run again grades only
what is missing; grader errors are retried.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from autograder import intake
from autograder.grading import add_parts_option, kit_version, not_graded, results_json, write_json_atomically
from autograder.parts import PARTS
from autograder.reference import ROOT
from autograder.sandbox import parent_death_signal

GRADER_ERROR = "grader error"
LOG_TAIL = 3000


@dataclass(frozen=True)
class Entry:
    """One student's submission in the batch."""

    student: str
    path: Path

    def results(self, out: Path) -> Path:
        return out / self.student / "results.json"


def entries(submissions: Path) -> list[Entry]:
    """The students' submissions, sorted by student; hidden files are not submissions."""
    paths = sorted(p for p in submissions.iterdir() if not p.name.startswith("."))
    stems = [p.name.removesuffix(".zip") if p.suffix.lower() == ".zip" else p.name for p in paths]
    # alice/ next to alice.zip: both keep their full names rather than share one.
    return [Entry(stem if stems.count(stem) == 1 else path.name, path) for stem, path in zip(stems, paths, strict=True)]


def is_done(entry: Entry, out: Path, parts: Sequence[str]) -> bool:
    """Whether ``entry`` has a result from this kit version for this very submission and these parts
    (and no grader error)."""
    try:
        extra = json.loads(entry.results(out).read_text(encoding="utf-8"))["extra_data"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (
        extra.get("status") != GRADER_ERROR
        and extra.get("kit_version") == kit_version()
        and extra.get("parts") == sorted(parts)
        and extra.get("submission_sha256") == intake.fingerprint([entry.path])
    )


def grade_one(
    entry: Entry, out: Path, parts: Sequence[str], options: Sequence[str], threads: int, timeout: float
) -> dict:
    """Grade ``entry`` in a grader process of its own; its ``results.json`` exists afterwards, whatever happened."""
    folder = out / entry.student
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.tmp"), entry.results(out)]:  # a grader killed while writing; an outdated result
        stale.unlink(missing_ok=True)
    log = folder / "grader.log"
    command = [sys.executable, "-m", "autograder", "grade", str(entry.path.resolve()), "--out", str(folder)]
    command += ["--parts", *parts, *options]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with log.open("wb") as stream:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, env=env, preexec_fn=parent_death_signal
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
    with contextlib.suppress(OSError, ValueError):
        results = json.loads(entry.results(out).read_text(encoding="utf-8"))
        if code == 0:
            return results
    if code is None:
        what = f"did not finish within {timeout:g} s"
    else:
        what = f"stopped with exit code {code}" if code else "finished without writing results.json"
    tail = log.read_bytes()[-LOG_TAIL:].decode("utf-8", "replace").strip()
    report = not_graded(
        f"the grader {what} (its log: grader.log). Its last output:\n{tail}",
        time.perf_counter() - start,
        parts,
        status=GRADER_ERROR,
    )
    results = results_json(report)
    results["extra_data"]["submission_sha256"] = intake.fingerprint([entry.path])
    write_json_atomically(entry.results(out), results)
    return results


def gradebook(students: Sequence[Entry], out: Path) -> Path:
    """Write ``gradebook.csv`` from every student's ``results.json`` (atomically) and return its path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *(part.name for part in PARTS), "total", "max", "status", "notes"])
    for entry in students:
        try:
            results = json.loads(entry.results(out).read_text(encoding="utf-8"))
            extra, tests = results["extra_data"], results["tests"]
        except (OSError, ValueError, KeyError) as error:
            writer.writerow([entry.student, *([""] * len(PARTS)), "", "", "missing", str(error)])
            continue
        scores = extra.get("part_scores", {})
        notes = [extra["problem"]] if extra.get("problem") else []
        notes += extra.get("notes", [])
        writer.writerow(
            [
                entry.student,
                *(f"{scores.get(part.name, 0.0):g}" if part.name in extra.get("parts", ()) else "" for part in PARTS),
                f"{results['score']:g}",
                f"{sum(test['max_score'] for test in tests):g}",
                extra.get("status", ""),
                " | ".join(notes)[:500],
            ]
        )
    path = out / "gradebook.csv"
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    return path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``batch SUBMISSIONS --out DIR [--jobs N]``."""
    parser = subparsers.add_parser(
        "batch",
        help="grade a directory of submissions (one folder or .zip per student), resumably",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", type=Path, help="directory with one folder or .zip per student")
    parser.add_argument("--out", type=Path, required=True, help="directory for the results and gradebook.csv")
    parser.add_argument("--jobs", type=int, default=1, help="students graded at once (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds one student's grading may take in all (default 3600)"
    )
    parser.add_argument("--limits", type=Path, help="TOML file of worker limits per part (see grade --help)")
    add_parts_option(parser)
    parser.add_argument("--in-process", action="store_true", help="no sandbox: for trusted code only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Grade what is missing, write the gradebook, print a summary; 0 when the batch ran."""
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a directory of submissions", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    options = ["--limits", str(args.limits.resolve())] if args.limits else []
    options += ["--in-process"] if args.in_process else []
    parts = args.parts or [part.name for part in PARTS]
    students = entries(args.submissions)
    todo = [entry for entry in students if not is_done(entry, args.out, parts)]
    print(f"{len(students)} submission(s) in {args.submissions}; {len(students) - len(todo)} already graded")
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    statuses: dict[str, int] = {}
    with (
        ThreadPoolExecutor(max_workers=args.jobs) as pool,
        tqdm(total=len(todo), unit="submission", desc="grading", file=sys.stderr) as progress,
    ):
        futures = {pool.submit(grade_one, e, args.out, parts, options, threads, args.timeout): e for e in todo}
        for future in as_completed(futures):
            results = future.result()
            status = results["extra_data"]["status"]
            statuses[status] = statuses.get(status, 0) + 1
            progress.set_postfix_str(f"{futures[future].student}: {results['score']:g} ({status})")
            progress.update()
    path = gradebook(students, args.out)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "nothing to grade"
    print(f"this run: {summary}; wrote {path}")
    return 0
