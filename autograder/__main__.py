"""``python -m autograder COMMAND``: the TA and instructor command line.

Each command lives in its own module, which exposes ``add_parser(subparsers)``: it registers its
subparser and sets ``run`` (``args -> exit code``) as the parser's default. To add a command,
write such a module and list it in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from autograder import batch, bugzoo, bundle, gradescope, grading, release
from autograder.harness import command as harness
from autograder.scoring import command as classifier

COMMANDS = (grading, batch, harness, gradescope, release, bundle, bugzoo, classifier)
"""The command modules, in the order ``--help`` lists them."""


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
