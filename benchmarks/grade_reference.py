"""Time the grader: ``python benchmarks/grade_reference.py [--runs 3] [--batch 8]``.

1. The whole hidden suite on the reference, each run a fresh process (``python -m autograder grade
   solutions``) as a TA would start it, once sandboxed (the default: workers, channel, proxies) and
   once ``--in-process``: every run's wall time, the grader's own per-part seconds, the medians and
   the sandbox's cost as a ratio of medians.
2. Batch throughput: ``python -m autograder batch`` on ``--batch`` copies of the reference (one zip
   each), with ``--jobs 1`` and ``--jobs 2``, fresh output each run: medians and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def batch_seconds(submissions: Path, out: Path, *options: str) -> float:
    """Wall seconds of ``python -m autograder batch`` on ``submissions`` with ``options``, a fresh ``out``."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "autograder", "batch", str(submissions), "--out", str(out), *options],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def make_class(submissions: Path, size: int) -> Path:
    """``size`` copies of the reference in ``submissions``, one zip each."""
    submissions.mkdir()
    for number in range(size):
        shutil.make_archive(str(submissions / f"student{number}"), "zip", ROOT / "solutions", "diffusion")
    return submissions


def measure_batch(runs: int, size: int, tmp: Path) -> None:
    submissions = make_class(tmp / "class", size)
    medians = {}
    for jobs in (1, 2):
        walls = [batch_seconds(submissions, tmp / f"batch-j{jobs}-{i}", "--jobs", str(jobs)) for i in range(runs)]
        medians[jobs] = statistics.median(walls)
        each = ", ".join(f"{w:.1f}" for w in walls)
        rate = size / medians[jobs] * 60
        print(f"batch of {size}, --jobs {jobs}: {each} s; median {medians[jobs]:.1f} s ({rate:.1f} a minute)")
    print(f"batch throughput --jobs 2 / --jobs 1: {medians[1] / medians[2]:.2f}x (target 1.7x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="submissions in the batch (0: skip the batch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sandboxed = measure(args.runs, [], "sandboxed", Path(tmp))
        in_process = measure(args.runs, ["--in-process"], "in-process", Path(tmp))
        print(f"sandboxed / in-process wall time: {sandboxed / in_process:.2f}x (target 1.3x)")
        if args.batch:
            measure_batch(args.runs, args.batch, Path(tmp))


if __name__ == "__main__":
    main()
