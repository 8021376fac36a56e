"""``python -m autograder harness SUBMISSION --profile P --out DIR``: train briefly with the submission's code,
sample with its samplers and score the samples (:mod:`autograder.harness.pipeline`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.harness.budget import choose_threads
from autograder.harness.pipeline import harness_results, run_profile, table
from autograder.harness.profiles import PROFILES
from autograder.isolation import intake
from autograder.results import read_results, write_results


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harness SUBMISSION --profile P --out DIR``."""
    parser = subparsers.add_parser(
        "harness", help="train briefly with the submission's code, sample with its samplers, score the samples"
    )
    parser.add_argument("submission", type=Path, help="a submission: a directory, a .zip or the .py files' folder")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci", help="how much to train (default: ci)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="directory for results.json and figures")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads to train and sample with (default: OMP_NUM_THREADS, else the cores left idle)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the profile, add its points to ``results.json``, print its verdicts; 1 when nothing could be run, 2 on
    bad arguments, 3 on a grader error (nothing written: run it again)."""
    try:
        threads = choose_threads(args.threads)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with intake.staged([args.submission]) as staged:
        if staged.package is None:
            print(f"not run: {staged.problem}")
            return 1
        report = run_profile(staged.package, args.profile, args.out, threads)
    if "grader_error" in report:
        print(f"grader error, not the submission's: {report['grader_error']}\nresults.json is unchanged")
        return 3
    path = args.out / "results.json"
    write_results(path, harness_results(read_results(path), report, intake.fingerprint([args.submission])))
    print(table(report))
    print(f"wrote {args.out / 'results.json'} and the figures in {args.out}/")
    return 0
