"""Time the whole hidden suite on the reference: ``python benchmarks/grade_reference.py [--runs 3]``.

Each run is a fresh process (``python -m autograder grade solutions``), as a TA would start it,
once sandboxed (the default: workers, channel, proxies) and once ``--in-process``; the script
prints every run's wall time and the grader's own per-part seconds, the medians and the
sandbox's cost as a ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(out: Path, mode: list[str]) -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "solutions", "--out", str(out), *mode],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start, json.loads((out / "results.json").read_text())


def measure(runs: int, mode: list[str], label: str, tmp: Path) -> float:
    walls, checks, parts = [], [], []
    for i in range(runs):
        wall, results = one_run(tmp / f"{label}{i}", mode)
        walls.append(wall)
        checks.append(results["execution_time"])
        parts.append(results["extra_data"]["part_seconds"])
        seconds, score = results["execution_time"], results["score"]
        print(f"{label} run {i + 1}: wall {wall:.1f} s, checks {seconds:.1f} s, score {score}")
    print(
        f"{label} median seconds per part: "
        + ", ".join(f"{p} {statistics.median(r[p] for r in parts):.1f}" for p in parts[0])
    )
    print(f"{label} median of {runs}: wall {statistics.median(walls):.1f} s, checks {statistics.median(checks):.1f} s")
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sandboxed = measure(args.runs, [], "sandboxed", Path(tmp))
        in_process = measure(args.runs, ["--in-process"], "in-process", Path(tmp))
    print(f"sandboxed / in-process wall time: {sandboxed / in_process:.2f}x (budget 60 s for the sandboxed median)")


if __name__ == "__main__":
    main()
