"""``python -m autograder gradescope --out ZIP``: the Gradescope autograder bundle (:mod:`autograder.gradescope`)."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from autograder import gradescope


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gradescope --out ZIP``."""
    parser = subparsers.add_parser(
        "gradescope",
        help="build the Gradescope autograder bundle (setup.sh, run_autograder, the hidden checks)",
        description=gradescope.__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("autograder.zip"), help="the zip to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = gradescope.build(args.out)
    with zipfile.ZipFile(path) as bundle:
        count = len(bundle.namelist())
    print(f"wrote {path} ({count} files, {path.stat().st_size / 2**20:.1f} MiB); upload it as the autograder")
    return 0
