"""``python -m autograder batch SUBMISSIONS --out DIR [--jobs N] [--only ID ...] [--force]``: grade a class
(see :mod:`autograder.batch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import batch
from autograder.cli.options import add_limits_option, add_parts_option
from autograder.parts import PART_NAMES
from autograder.reports.canvas import ASSIGNMENT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``batch SUBMISSIONS --out DIR [--jobs N] [--only ID ...] [--force]``."""
    parser = subparsers.add_parser(
        "batch",
        help="grade a directory of submissions (one folder or .zip per student), resumably",
        description=batch.__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", type=Path, help="directory with one folder or .zip per student")
    parser.add_argument("--out", type=Path, required=True, help="directory for the results, gradebook and reports")
    parser.add_argument("--jobs", type=int, default=1, help="students graded at once (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds one student's grading may take in all (default 3600)"
    )
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="STUDENT", help="grade only these students (the reports list all)"
    )
    parser.add_argument("--force", action="store_true", help="grade again even the results that are up to date")
    parser.add_argument(
        "--canvas-assignment",
        default=ASSIGNMENT,
        metavar="NAME",
        help=f"canvas.csv's assignment column, e.g. 'Diffusion assignment (1234)' with the assignment's Canvas id "
        f"(default {ASSIGNMENT!r}: Canvas creates a new assignment)",
    )
    add_limits_option(parser)
    add_parts_option(parser)
    parser.add_argument("--in-process", action="store_true", help="no sandbox: for trusted code only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Grade what is missing, write the gradebook and reports, print a summary; 0 when the batch ran."""
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a directory of submissions", file=sys.stderr)
        return 2
    if args.out.resolve().is_relative_to(args.submissions.resolve()):
        print(f"error: --out {args.out} is inside {args.submissions}: its folders would be taken for students; "
              "write the results elsewhere", file=sys.stderr)  # fmt: skip
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    options = ["--limits", str(args.limits.resolve())] if args.limits else []
    options += ["--in-process"] if args.in_process else []
    try:
        statuses, written = batch.run(
            args.submissions,
            args.out,
            args.parts or list(PART_NAMES),
            options,
            jobs=args.jobs,
            timeout=args.timeout,
            only=args.only,
            force=args.force,
            assignment=args.canvas_assignment,
        )
    except batch.UnknownStudents as error:
        print(f"error: --only: {error}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "nothing to grade"
    print(f"this run: {summary}; wrote {', '.join(str(path) for path in written)}")
    return 0
