"""Against the student release, every part's public tests stop at a stub: "not implemented", never a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from diffusion import PARTS
from tests.plugin import NOT_IMPLEMENTED, ROOT


def test_public_tests_meet_only_not_implemented_stubs_in_the_release(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    command = [sys.executable, "-m", "pytest", "tests/public", "--impl", "assignments", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, "--summary-json", str(summary)], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    output = f"$ {' '.join(command)}\n{result.stdout}{result.stderr}"
    # 1: tests failed (on the stubs, as they should); anything else is a crash, a collection error or no tests.
    assert result.returncode == 1, f"expected exit code 1 (tests failing on stubs), got {result.returncode}\n{output}"
    counts: dict[str, dict[str, int]] = json.loads(summary.read_text())

    untested = [part for part in PARTS if not counts.get(part, {}).get(NOT_IMPLEMENTED)]
    failed = {part: c["failed"] for part, c in counts.items() if c.get("failed")}
    context = f"counts per part: {counts}\n{output}"
    assert not untested, f"parts with no check that reaches a NotImplementedError stub: {untested}\n{context}"
    assert not failed, f"checks that failed against the stubs other than by NotImplementedError: {failed}\n{context}"
    # A screen, not a traceback per test: the stubs listed once per part, the per-part table last.
    lines = result.stdout.splitlines()
    assert len(lines) < 60 and "FAILURES" not in result.stdout, f"{len(lines)} lines of output\n{output}"
    assert lines[-len(PARTS) - 2].startswith("part ") and "not implemented" in lines[-1], output
    assert any(line.startswith("schedules: linear_betas (") for line in lines), output
