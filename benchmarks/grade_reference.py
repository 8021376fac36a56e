"""Time the whole hidden suite on the reference: ``python benchmarks/grade_reference.py [--runs 3]``.

Each run is a fresh process (``python -m autograder grade solutions``), as a TA would start it;
the script prints every run's wall time and the grader's own per-part seconds, then the median.
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


def one_run(out: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "solutions", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start, json.loads((out / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls, checks, parts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            wall, results = one_run(Path(tmp) / str(i))
            walls.append(wall)
            checks.append(results["execution_time"])
            parts.append(results["extra_data"]["part_seconds"])
            print(f"run {i + 1}: wall {wall:.1f} s, checks {results['execution_time']:.1f} s, score {results['score']}")
    print(
        "median seconds per part: " + ", ".join(f"{p} {statistics.median(r[p] for r in parts):.1f}" for p in parts[0])
    )
    print(
        f"median of {args.runs}: wall {statistics.median(walls):.1f} s, checks {statistics.median(checks):.1f} s "
        f"(budget 60 s)"
    )


if __name__ == "__main__":
    main()
