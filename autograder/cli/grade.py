"""``python -m autograder grade SUBMISSION --out DIR``: grade one submission with the hidden checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.cli.options import add_limits_option, add_parts_option, read_limits_option
from autograder.grading import grade_submission
from autograder.results import VISIBILITIES, part_table, results_json, with_visibility, write_results


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``grade SUBMISSION --out DIR``."""
    parser = subparsers.add_parser(
        "grade",
        help="grade one submission with the hidden checks",
        description="Grade SUBMISSION (a directory or .zip holding diffusion/ or its .py files laid flat, or the "
        ".py files themselves) and write DIR/results.json in Gradescope's schema. Exit code 0 whenever grading "
        "ran, whatever the score; a submission that cannot be graded gets a score-0 results.json saying why.",
    )
    parser.add_argument(
        "submission", type=Path, nargs="+", help="the submission: a directory, a .zip, or its .py files"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for results.json")
    add_limits_option(parser)
    add_parts_option(parser)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="import the submission into the grader's process, without a sandbox: for trusted code only",
    )
    parser.add_argument(
        "--visibility",
        choices=VISIBILITIES,
        default="visible",
        help="when Gradescope shows the tests to the student: visible (at once, the default), after_due_date, "
        "after_published (once grades are published) or hidden (never)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Grade, write ``results.json``, print the per-part table; 0 whenever grading ran."""
    missing = [str(path) for path in args.submission if not path.exists()]
    if missing:
        print(f"error: {', '.join(missing)} does not exist; pass one submission (a directory, a .zip or .py files)",
              file=sys.stderr)  # fmt: skip
        return 2
    limits = read_limits_option(args)
    report = grade_submission(args.submission, args.parts, sandboxed=not args.in_process, limits=limits)
    path = args.out / "results.json"
    write_results(path, with_visibility(results_json(report), args.visibility))
    if report.diagnostics:
        print(report.diagnostics)  # on Gradescope the grader's output is the instructors' only
    print(report.output)
    for note in report.notes:
        print(f"Note: {note}")
    print(part_table(report))
    print(f"wrote {path} ({report.execution_time:.1f} s)")
    return 0
