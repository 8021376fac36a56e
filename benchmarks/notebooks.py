"""Time the notebooks: ``python benchmarks/notebooks.py [--size ci|full] [--runs 3]``.

Each solution notebook is executed top to bottom with nbclient (the reference package, one thread,
a fresh kernel and a fresh working directory per run), as the kit's tests do; the script prints
every run's wall time, kernel start included, and the median per notebook.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.notebooks import SIZES, execute, notebook_paths  # noqa: E402
from autograder.reference import SOLUTIONS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="ci")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for path in notebook_paths(SOLUTIONS):
        seconds = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as workdir:
                start = time.perf_counter()
                execute(path, SOLUTIONS, args.size, Path(workdir), timeout=1800)
                seconds.append(time.perf_counter() - start)
        runs = ", ".join(f"{s:.1f}" for s in seconds)
        median = statistics.median(seconds)
        print(f"{path.stem:<22} size {args.size}: median {median:6.1f} s  (runs: {runs})", flush=True)


if __name__ == "__main__":
    main()
