"""The harness's ci profile on the reference while other processes keep every core busy.

    python benchmarks/harness_loaded.py [--threads N]

Starts one spinning process per core, waits until they are running, then runs
``python -m autograder harness solutions --profile ci`` with the harness's default thread choice (or
``--threads``) and prints its progress lines, its verdicts, the harness's total and the wall time. The reference
must get full points (exit 0); a grader error (exit 3) means the limits did not fit the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spin(seconds: float) -> None:
    """Keep one core busy for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="passed to the harness (default: its own choice)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds the load runs before the harness starts")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    load = [multiprocessing.Process(target=spin, args=(3600.0,), daemon=True) for _ in range(cores)]
    for process in load:
        process.start()
    try:
        time.sleep(args.warmup)
        with tempfile.TemporaryDirectory(prefix="harness-loaded-") as out:
            command = [sys.executable, "-m", "autograder", "harness", "solutions", "--profile", "ci", "--out", out]
            command += ["--threads", str(args.threads)] if args.threads else []
            env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
            start = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, check=False)
            seconds = time.perf_counter() - start
    finally:
        for process in load:
            process.kill()
    print(result.stdout + result.stderr)
    print(
        f"{cores} cores kept busy by {len(load)} spinning processes; harness ci: exit {result.returncode}, "
        f"{seconds:.1f} s"
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
