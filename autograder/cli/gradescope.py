"""``python -m autograder gradescope --out ZIP``: the Gradescope autograder bundle (:mod:`autograder.gradescope`)."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from autograder import gradescope
from autograder.results import VISIBILITIES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gradescope --out ZIP``."""
    parser = subparsers.add_parser(
        "gradescope",
        help="build the Gradescope autograder bundle (setup.sh, run_autograder, the hidden checks)",
        description=gradescope.__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("autograder.zip"), help="the zip to write")
    parser.add_argument(
        "--visibility",
        choices=VISIBILITIES,
        default="visible",
        help="when students see the tests: visible (at once, the default), after_due_date, after_published "
        "(once grades are published) or hidden (never)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = gradescope.build(args.out, visibility=args.visibility)
    with zipfile.ZipFile(path) as bundle:
        count = len(bundle.namelist())
    print(
        f"wrote {path} ({count} files, {path.stat().st_size / 2**20:.1f} MiB; tests {args.visibility}); upload it as "
        f"the autograder of a programming assignment whose base image is {' or '.join(gradescope.BASE_IMAGES)}"
    )
    return 0
