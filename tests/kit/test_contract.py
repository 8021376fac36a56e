"""The contract table (docs/contract.md) names, for every statement of the student contract, the hidden checks
that test it: every name is a registered check, no row is empty, and every check appears in some row."""

from __future__ import annotations

import re

from autograder.checks import all_checks
from autograder.reference import ROOT

TABLE = ROOT / "docs" / "contract.md"
UNTESTABLE = "untestable here:"


def rows() -> list[tuple[str, str]]:
    """``(statement, checks)`` for each row of the tables, header and separator rows left out."""
    found = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")] if line.startswith("|") else []
        if len(cells) >= 2 and cells[0] != "statement" and not set(cells[0]) <= {"-", "|"}:
            found.append((cells[0], cells[-1]))
    return found


def test_the_table_has_a_row_per_statement_and_none_is_empty():
    assert len(rows()) >= 60, f"{len(rows())} rows"
    unexplained = [
        statement
        for statement, checks in rows()
        if not re.findall(r"`(\w+)`", checks) and not checks.startswith(UNTESTABLE)
    ]
    assert not unexplained, f"rows without a check or a reason it cannot be tested: {unexplained}"


def test_every_check_named_in_the_table_exists():
    registered = {check.name for check in all_checks()}
    named = {name for _, checks in rows() for name in re.findall(r"`(\w+)`", checks)}
    assert named - registered == set(), f"not registered checks: {sorted(named - registered)}"
    assert registered - named == set(), f"checks no row names: {sorted(registered - named)}"
