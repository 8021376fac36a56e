"""``python -m autograder batch SUBMISSIONS --out DIR [--jobs N] [--only ID ...] [--force] [--harness PROFILE]``:
grade a class (see :mod:`autograder.batch`), on this machine or on a Dask cluster (``--scheduler ADDRESS``,
``--cluster KIND``: see :mod:`autograder.cluster`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from autograder import batch, cluster
from autograder.cli.options import add_limits_option, add_parts_option
from autograder.harness.profiles import PROFILES
from autograder.parts import PART_NAMES
from autograder.reports.canvas import ASSIGNMENT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``batch SUBMISSIONS --out DIR [--jobs N] [--only ID ...] [--force]``."""
    parser = subparsers.add_parser(
        "batch",
        help="grade a directory of submissions (one folder or .zip per student), resumably",
        description=batch.__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", type=Path, help="directory with one folder or .zip per student")
    parser.add_argument("--out", type=Path, required=True, help="directory for the results, gradebook and reports")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="students graded at once on this machine (default 1); with --cluster, the workers to start",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on the Dask cluster whose scheduler is at ADDRESS (tcp://HOST:8786); its workers need the kit "
        "(the same commit) and the submissions at the same path",
    )
    parser.add_argument(
        "--cluster",
        choices=cluster.KINDS,
        help="start a Dask cluster to grade on: local (--jobs worker processes here), or slurm, pbs, sge "
        "(--jobs workers as jobs; dask-jobqueue)",
    )
    parser.add_argument(
        "--cluster-config",
        type=Path,
        metavar="FILE.toml",
        help="the cluster's settings: dask-jobqueue's arguments (cores, memory, queue, account, walltime, "
        "job_extra_directives, worker_extra_args, ...)",
    )
    parser.add_argument(
        "--print-job-script", action="store_true", help="print the job script --cluster would submit, and stop"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds one student's grading may take in all (default 3600)"
    )
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="STUDENT", help="grade only these students (the reports list all)"
    )
    parser.add_argument("--force", action="store_true", help="grade again even the results that are up to date")
    parser.add_argument(
        "--harness",
        choices=sorted(PROFILES),
        metavar="PROFILE",
        help="after the hidden checks, run the harness's PROFILE on each submission and add its points (on a "
        "cluster, on workers with the profile's resources: a GPU for gpu); the reference's scores are measured once "
        "per host (or reused from its cache: `python -m autograder harness calibrate --profile PROFILE` first)",
    )
    parser.add_argument(
        "--canvas-assignment",
        default=ASSIGNMENT,
        metavar="NAME",
        help=f"canvas.csv's assignment column, e.g. 'Diffusion assignment (1234)' with the assignment's Canvas id "
        f"(default {ASSIGNMENT!r}: Canvas creates a new assignment)",
    )
    add_limits_option(parser)
    add_parts_option(parser)
    parser.add_argument("--in-process", action="store_true", help="no sandbox: for trusted code only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Grade what is missing, write the gradebook and reports, print a summary; 0 when the batch ran."""
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a directory of submissions", file=sys.stderr)
        return 2
    if args.out.resolve().is_relative_to(args.submissions.resolve()):
        print(f"error: --out {args.out} is inside {args.submissions}: its folders would be taken for students; "
              "write the results elsewhere", file=sys.stderr)  # fmt: skip
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.scheduler and args.cluster:
        print("error: --scheduler and --cluster: grade on an existing cluster or start one, not both", file=sys.stderr)
        return 2
    if args.cluster_config and args.cluster in (None, "local"):
        print("error: --cluster-config is for --cluster slurm, pbs or sge", file=sys.stderr)
        return 2
    options = ["--limits", str(args.limits.resolve())] if args.limits else []
    options += ["--in-process"] if args.in_process else []
    try:
        if args.print_job_script:
            return print_job_script(args)
        with engine(args) as running:
            tally, written = batch.run(
                args.submissions,
                args.out,
                args.parts or list(PART_NAMES),
                options,
                engine=running,
                timeout=args.timeout,
                only=args.only,
                force=args.force,
                assignment=args.canvas_assignment,
                harness=args.harness,
            )
    except batch.UnknownStudents as error:
        print(f"error: --only: {error}", file=sys.stderr)
        return 2
    except cluster.ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"this run: {tally}; wrote {', '.join(str(path) for path in written)}")
    return 0


def engine(args: argparse.Namespace) -> contextlib.AbstractContextManager[batch.Engine]:
    """Where the tasks run: a Dask cluster (``--scheduler``, ``--cluster``), else this machine (``--jobs``)."""
    if args.scheduler or args.cluster:
        return cluster.dask_engine(args.scheduler, args.cluster, args.jobs, args.cluster_config)
    return contextlib.nullcontext(batch.LocalPool(args.jobs))


def print_job_script(args: argparse.Namespace) -> int:
    """Print the job script of ``--cluster`` (slurm, pbs, sge) with ``--cluster-config``; submit nothing."""
    if args.cluster not in cluster.JOB_QUEUES:
        print("error: --print-job-script needs --cluster slurm, pbs or sge", file=sys.stderr)
        return 2
    with cluster.job_queue(args.cluster, cluster.read_config(args.cluster_config)) as queue:
        print(queue.job_script())
    return 0
