"""``python -m autograder release [--check]``: regenerate the student release from ``solutions/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.notebooks import ASSIGNMENT
from autograder.release import (
    DEST,
    PACKAGES,
    RELEASE_COMMAND,
    SOURCE,
    ReleaseError,
    build_release,
    compare,
    write_release,
)


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    path = path.resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _files_count(n: int) -> str:
    """``"1 file"``, ``"3 files"``."""
    return f"{n} file" if n == 1 else f"{n} files"


def _command(args: argparse.Namespace) -> str:
    """The release command for these source and destination directories."""
    command = RELEASE_COMMAND
    if args.source.resolve() != SOURCE:
        command += f" --source {_display(args.source)}"
    if args.dest.resolve() != DEST:
        command += f" --dest {_display(args.dest)}"
    return command


def run(args: argparse.Namespace) -> int:
    """``release``: regenerate (or with ``--check`` compare) the release; 0 if up to date, 1 if not, 2 on an error."""
    try:
        release = build_release(args.source)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dest = _display(args.dest)
    if args.check:
        differences = compare(release, args.dest)
        if not differences:
            print(f"{dest}/ is up to date with {_display(args.source)}/ ({_files_count(len(release))})")
            return 0
        print(f"{dest}/ is out of date with {_display(args.source)}/ ({_files_count(len(differences))}):")
        for difference in differences:
            print(f"  {difference.change:<9} {difference.path}")
        print(f"Run `{_command(args)}` to regenerate it, then review and commit the result.")
        return 1
    differences = write_release(release, args.dest)
    for difference in differences:
        action = {"modified": "updated", "missing": "created", "extra": "removed"}[difference.change]
        print(f"  {action:<8} {dest}/{difference.path}")
    print(f"{dest}/: {_files_count(len(release))} released from {_display(args.source)}/, {len(differences)} changed")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``release`` subcommand."""
    parser = subparsers.add_parser(
        "release",
        help="regenerate assignments/ (the student release) from solutions/",
        description=(
            "Regenerate the student release: every ### BEGIN SOLUTION / ### END SOLUTION region of the "
            f"packages {', '.join(PACKAGES)} becomes a stub that raises NotImplementedError, and "
            f"`nbgrader generate_assignment` makes the student's copies of the {ASSIGNMENT}/."
        ),
    )
    parser.add_argument("--source", type=Path, default=SOURCE, help="the source of truth (default: solutions/)")
    parser.add_argument("--dest", type=Path, default=DEST, help="where the release goes (default: assignments/)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 listing every file that is out of date"
    )
    parser.set_defaults(run=run)
