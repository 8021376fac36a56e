"""Options several commands share, spelled the same everywhere."""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import fields, replace
from pathlib import Path

from autograder.parts import PART_NAMES
from autograder.sandbox.limits import Limits


def add_parts_option(parser: argparse.ArgumentParser, help: str = "grade only these parts") -> None:
    """``--parts NAME ...``: only these parts (a regrade of one part, a quick trial run)."""
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PART_NAMES,
        metavar="PART",
        help=f"{help}: " + ", ".join(PART_NAMES) + " (default: all)",
    )


def add_limits_option(parser: argparse.ArgumentParser) -> None:
    """``--limits FILE.toml``: the workers' limits, a ``[default]`` table and one per part."""
    parser.add_argument(
        "--limits",
        type=Path,
        help="TOML file of worker limits: a [default] table and one per part, with keys "
        + ", ".join(f.name for f in fields(Limits)),
    )


def read_limits(path: Path) -> dict[str, Limits]:
    """Per-part limits from a TOML file (``[default]`` and ``[<part>]`` tables).

    Raises:
        ValueError: naming the table or key that is not a part or not a limit.
    """
    tables = tomllib.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Limits)}
    limits = {}
    for table, values in tables.items():
        if table != "default" and table not in PART_NAMES:
            raise ValueError(f"{path}: [{table}] is neither [default] nor a part ({', '.join(PART_NAMES)})")
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"{path}: [{table}] has unknown limits {sorted(unknown)}; known: {sorted(known)}")
        limits[table] = replace(Limits(), **values)
    return limits


def read_limits_option(args: argparse.Namespace) -> dict[str, Limits] | None:
    """The limits ``--limits`` names (``None`` without it); exits with status 2 and a message when the
    file cannot be read."""
    if args.limits is None:
        return None
    try:
        return read_limits(args.limits)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as error:
        print(f"error: cannot read the limits: {error}", file=sys.stderr)
        raise SystemExit(2) from None
