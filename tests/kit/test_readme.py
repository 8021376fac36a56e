"""The README's two set-up commands exist, and CI runs exactly the README's test command."""

from __future__ import annotations

import re

from tests.plugin import ROOT


def readme_commands() -> list[str]:
    """The one-line shell commands in the README's fenced bash blocks that start with ``pip install``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.startswith("pip install")]


def test_readme_has_a_grade_command_and_a_test_command():
    commands = readme_commands()
    assert any("python -m autograder grade solutions" in c for c in commands), commands
    assert any("python -m pytest --impl solutions" in c for c in commands), commands


def test_ci_runs_the_readme_test_command():
    test_command = next(c for c in readme_commands() if "python -m pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in [line.strip() for line in ci.splitlines()], (
        f".ci/run must run the README's test command:\n  {test_command}\n.ci/run has:\n{ci}"
    )


def test_the_students_table_gives_each_parts_points_as_the_grader_does() -> None:
    from autograder.parts import PARTS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for part in PARTS:
        row = re.search(rf"^\| {part.number} \| `{part.name}` \|.*\| (\d+) \|$", readme, re.M)
        assert row and int(row.group(1)) == part.points, f"README's row of part {part.number} ({part.name})"
