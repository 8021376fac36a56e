"""``python -m autograder harness SUBMISSION --profile P --out DIR``: train briefly with the submission's code,
sample with its samplers and score the samples against the reference's on this machine
(:mod:`autograder.harness.pipeline`); ``python -m autograder harness calibrate --profile P`` measures the
reference's scores (:mod:`autograder.harness.calibration`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from autograder.harness.budget import choose_threads
from autograder.harness.calibration import cache_root
from autograder.harness.pipeline import calibrate, harness, harness_results, table
from autograder.harness.profiles import PROFILES
from autograder.isolation import intake
from autograder.isolation.errors import GraderError
from autograder.results import read_results, write_results


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harness SUBMISSION --profile P --out DIR``."""
    parser = subparsers.add_parser(
        "harness", help="train briefly with the submission's code, sample with its samplers, score the samples"
    )
    parser.add_argument(
        "submission",
        type=Path,
        help="a submission: a directory, a .zip or the .py files' folder; or the word calibrate: measure the "
        "reference's scores for --profile on this machine (a directory named calibrate: ./calibrate)",
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci", help="how much to train (default: ci)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="directory for results.json and figures")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads to train and sample with (default: OMP_NUM_THREADS, else the cores left idle)",
    )
    parser.add_argument(
        "--device",
        help="torch device to train and sample on, e.g. cuda, cuda:1, cpu (default: cuda when a GPU is visible)",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="measure the reference's scores again even when cached (in $DIFFUSION_CACHE/calibration)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the profile, add its points to ``results.json``, print its verdicts; 1 when nothing could be run, 2 on
    bad arguments, 3 on a grader error (nothing written: run it again). ``calibrate`` instead of a submission
    measures the reference's scores and prints where they are cached."""
    try:
        threads = choose_threads(args.threads)
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA device is visible here (use --device cpu)")
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if str(args.submission) == "calibrate":
        try:
            stored = calibrate(args.profile, threads, device, force=True).stored
        except GraderError as error:
            print(f"grader error: {error}")
            return 3
        print(f"calibrated profile {args.profile} on {stored['key']['device']} (torch {stored['key']['torch']}): "
              f"{cache_root()}")  # fmt: skip
        return 0
    with intake.staged([args.submission]) as staged:
        if staged.package is None:
            print(f"not run: {staged.problem}")
            return 1
        report = harness(staged.package, args.profile, args.out, threads, device, args.recalibrate)
    if "grader_error" in report:
        print(f"grader error, not the submission's: {report['grader_error']}\nresults.json is unchanged")
        return 3
    path = args.out / "results.json"
    write_results(path, harness_results(read_results(path), report, intake.fingerprint([args.submission])))
    print(table(report))
    print(f"wrote {args.out / 'results.json'} and the figures in {args.out}/")
    return 0
