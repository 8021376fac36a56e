"""``python -m autograder bundle --out DIR_or_ZIP``: the student bundle, written only when it leaks nothing."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from autograder import bundle, release


def run(args: argparse.Namespace) -> int:
    """``bundle``: 0 when written, 1 when the release is stale or the bundle leaks, 2 on bad arguments."""
    out: Path = args.out
    if out.exists():
        print(f"error: {out} exists; pass a new path (a directory, or a file ending in .zip)", file=sys.stderr)
        return 2
    try:
        stale = release.compare(release.build_release(release.SOURCE), release.DEST)
    except release.ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if stale:
        print(f"assignments/ is out of date ({len(stale)} files); run `{release.RELEASE_COMMAND}` first")
        return 1
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        bundle_dir = Path(tmp) / "bundle"
        bundle.assemble(bundle_dir)
        leaks = bundle.find_leaks(bundle_dir)
        if leaks:
            print(f"refusing to write the bundle: {len(leaks)} leaks")
            for leak in leaks:
                print(f"  {leak.path}: {leak.reason}")
            return 1
        bundle.write(bundle_dir, out)
        count = sum(1 for p in bundle_dir.rglob("*") if p.is_file())
    print(f"{out}: the student bundle, {count} files, checked: no solution, hidden test, zoo file or output")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``bundle`` subcommand."""
    parser = subparsers.add_parser(
        "bundle",
        help="build the student bundle (assignments/, public tests, pyproject.toml, README) and check it leaks nothing",
        description=bundle.__doc__.split("\n\n")[1],
    )
    parser.add_argument("--out", type=Path, required=True, help="a new directory, or a file ending in .zip")
    parser.set_defaults(run=run)
