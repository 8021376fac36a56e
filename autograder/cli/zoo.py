"""``python -m autograder zoo [--parts PART ...]``: check the hidden checks against the bug zoo."""

from __future__ import annotations

import argparse
import time

from autograder.cli.options import add_parts_option
from autograder.zoo.validation import table, validate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``zoo [--parts PART ...]``."""
    parser = subparsers.add_parser(
        "zoo",
        help="check the hidden checks: reference full marks, stubs zero, every mutant caught, every variant passes",
    )
    add_parts_option(parser, help="only the mutants and alternatives of these parts")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate, print the table and the time; 0 when every expectation holds."""
    start = time.perf_counter()
    verdicts = validate(args.parts)
    print(table(verdicts))
    print(f"total time {time.perf_counter() - start:.1f} s")
    return 0 if all(v.ok for v in verdicts) else 1
