"""The list of equivalent mutants (benchmarks/mutation_equivalent.toml) stays true to the reference: each entry
names a part, a line inside a student region whose text is the entry's original, a mutation that changes it,
and a reason. A reference edited under the list makes this fail before a mutation run (hours) would."""

from __future__ import annotations

import tomllib

from autograder.parts import PART_NAMES
from autograder.reference import ROOT, SOLUTIONS

LIST = ROOT / "benchmarks" / "mutation_equivalent.toml"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def student_lines(part: str) -> dict[int, str]:
    """The stripped lines strictly between the solution markers of ``part``'s reference, by 1-based number."""
    lines, inside = {}, False
    for number, line in enumerate((SOLUTIONS / "diffusion" / f"{part}.py").read_text().splitlines(), start=1):
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif inside:
            lines[number] = line.strip()
    return lines


def test_every_entry_names_a_student_line_of_the_reference_and_a_reason():
    listed = tomllib.loads(LIST.read_text(encoding="utf-8"))
    assert set(listed) <= set(PART_NAMES), f"unknown parts: {sorted(set(listed) - set(PART_NAMES))}"
    problems = []
    for part, entries in listed.items():
        lines = student_lines(part)
        for entry in entries:
            where = f"{part}.py:{entry['line']}"
            if lines.get(entry["line"]) != entry["original"]:
                problems.append(f"{where} is {lines.get(entry['line'])!r}, not {entry['original']!r}")
            if entry["mutated"] == entry["original"] or not entry["reason"].strip():
                problems.append(f"{where}: the entry needs a mutation that changes the line and a reason")
        keys = [(e["line"], e["mutated"]) for e in entries]
        problems += [f"{part}: {key} listed twice" for key in set(keys) if keys.count(key) > 1]
    assert not problems, "\n".join(problems)
