"""``python -m autograder COMMAND``: the TA and instructor command line (:mod:`autograder.cli`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from autograder.cli import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser, with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="python -m autograder", description="TA and instructor tools for the diffusion-models assignment."
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in ``argv`` (default: the process's arguments) and return its exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
