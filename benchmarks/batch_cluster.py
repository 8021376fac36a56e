"""The cluster engine's cost: ``python benchmarks/batch_cluster.py [--runs 3] [--batch 8] [--parts PART ...]``.

``python -m autograder batch`` on ``--batch`` copies of the reference (one zip each), fresh output each run,
with today's pool (``--jobs 2``) and on a local Dask cluster of two worker processes (``--cluster local
--jobs 2``: the cluster's start and stop included), the two alternating so that a change in the machine's
load falls on both. Prints every run's wall time, the medians, the throughput of each and the ratio of the
medians (cluster / pool; the target is under 1.10). Needs the extra ``cluster``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from grade_reference import batch_seconds, make_class

ENGINES = {"--jobs 2": ["--jobs", "2"], "--cluster local --jobs 2": ["--cluster", "local", "--jobs", "2"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="submissions in the batch")
    parser.add_argument("--parts", nargs="+", default=[], help="grade only these parts (default: all)")
    args = parser.parse_args()
    parts = ["--parts", *args.parts] if args.parts else []
    print(f"load average before: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        submissions = make_class(Path(tmp) / "class", args.batch)
        walls: dict[str, list[float]] = {engine: [] for engine in ENGINES}
        for run in range(args.runs):
            for number, (engine, options) in enumerate(ENGINES.items()):
                out = Path(tmp) / f"out-{number}-{run}"
                walls[engine].append(batch_seconds(submissions, out, *options, *parts))
                print(f"run {run + 1}, {engine}: {walls[engine][-1]:.1f} s", flush=True)
    medians = {engine: statistics.median(seconds) for engine, seconds in walls.items()}
    for engine, median in medians.items():
        each = ", ".join(f"{seconds:.1f}" for seconds in walls[engine])
        rate = args.batch / median * 60
        print(f"batch of {args.batch}, {engine}: {each} s; median {median:.1f} s ({rate:.1f} a minute)")
    pool, cluster = medians.values()
    print(f"local cluster / pool wall time (medians): {cluster / pool:.3f} (target under 1.10)")
    print(f"load average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
