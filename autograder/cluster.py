"""Grading tasks on Dask distributed: an existing cluster (``--scheduler ADDRESS``), a local one, or one that
Slurm, PBS or SGE start through dask-jobqueue (``--cluster KIND --cluster-config FILE.toml``).

Dask rather than Ray: dask-jobqueue starts workers as Slurm, PBS or SGE jobs (what universities run), both
install with ``pip`` alone (the extra ``cluster``), and a task is a plain function call whose worker, when it
dies, has its task started again elsewhere by the scheduler.

A worker runs :func:`run_on_worker`: the same task as on this machine (:func:`autograder.tasks.run_task`), in
a temporary directory of the worker's, sandboxed as that host allows. The TA's process, the coordinator,
submits the tasks, takes their outcomes and alone writes the results (:func:`autograder.batch.record`); a task
the scheduler starts again after its worker died is counted once (:attr:`DaskEngine.retried` counts the
restarts). Every worker needs the same commit of the kit installed, and the submissions at the same path (a
shared file system): the coordinator refuses a result of another kit or of another copy of a submission.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from autograder.tasks import Outcome, Task, run_task, temp_root

Kind = Literal["local", "slurm", "pbs", "sge"]
KINDS: tuple[Kind, ...] = ("local", "slurm", "pbs", "sge")
JOB_QUEUES = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster"}
"""dask-jobqueue's cluster class of each job scheduler."""
STARTED = "autograder-task-started"
"""The topic of the event a worker logs when it starts a task (its key): a second start of a task is a retry."""
CONNECT_SECONDS = 20.0
"""How long the coordinator tries to reach a scheduler."""
HOW_TO_INSTALL = "Dask is not installed: pip install -e '.[cluster]' (distributed and dask-jobqueue)"


class ClusterError(RuntimeError):
    """No cluster to grade on: its message says what is wrong and how to fix it."""


WORKER_ONLY_ENVIRON = frozenset({"MALLOC_TRIM_THRESHOLD_"})
"""What Dask's nanny sets for its worker's own memory (``distributed.nanny.pre-spawn-environ``) and a grader must
not inherit: glibc returning freed memory at every 64 KiB made one grading of the reference (all parts, one thread)
1.18x slower on the kit's 2-core machine (62.3 and 55.5 s against 54.2 and 44.6 s, alternating)."""


def run_on_worker(task: Task) -> Outcome:
    """Run ``task`` on the Dask worker calling this: one grader per thread of the worker's, each with one OpenMP
    thread (a worker thread is a core, as dask-jobqueue counts them; a worker cannot see how many other workers
    share its host, so more threads per grader would oversubscribe a host that runs several)."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(STARTED, worker.get_current_task())
    environ = {name: value for name, value in os.environ.items() if name not in WORKER_ONLY_ENVIRON}
    with temp_root() as root:
        return run_task(task, root, threads=1, environ=environ)


class DaskEngine:
    """The tasks on a Dask cluster, each asking for its resources (a GPU for the harness's ``gpu`` profile)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.starts: Counter[str] = Counter()
        """How often each task (its key) was started, on the cluster's word: a batch on the same cluster counts
        its own tasks only."""
        self.keys: set[str] = set()
        """The keys of this engine's tasks."""

    @property
    def retried(self) -> int:
        """This engine's tasks started again because their worker died: the starts after each one's first."""
        return sum(count - 1 for key, count in self.starts.items() if key in self.keys)

    def started(self, event: tuple[float, str]) -> None:
        """A worker started the task whose key is ``event``'s message (called by the client for each event)."""
        self.starts[event[1]] += 1

    def submit(self, task: Task) -> Any:
        """Send ``task`` to a worker that has its resources; its future."""
        return self.client.submit(run_on_worker, task, resources=dict(task.resources) or None, pure=False)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | Exception]]:
        from distributed import as_completed

        self.client.subscribe_topic(STARTED, self.started)
        futures = {self.submit(task): task for task in tasks}
        self.keys |= {future.key for future in futures}
        for future in as_completed(futures):
            try:
                outcome: Outcome | Exception = future.result()
            except Exception as error:  # the task's, or KilledWorker: its workers died too often
                outcome = error
            future.release()
            yield futures[future], outcome


@contextlib.contextmanager
def dask_engine(
    scheduler: str | None, kind: Kind | None, jobs: int, config: Path | None = None
) -> Iterator[DaskEngine]:
    """An engine on the cluster at ``scheduler``, or on a new cluster of ``kind`` with ``jobs`` workers
    (one grader at a time each for ``local``; dask-jobqueue's ``config`` for the others); the cluster it
    started is closed at the end.

    Raises:
        ClusterError: Dask is not installed, no scheduler answers, or the cluster cannot start.
    """
    distributed = _import("distributed")
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(start(kind or "local", jobs, read_config(config)))
            scheduler = cluster.scheduler_address
        client = stack.enter_context(connect(distributed, scheduler))
        yield DaskEngine(client)


def connect(distributed: Any, address: str, timeout: float = CONNECT_SECONDS) -> Any:
    """A client of the scheduler at ``address``.

    Raises:
        ClusterError: no scheduler answers there within ``timeout`` seconds.
    """
    try:
        return distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        raise ClusterError(
            f"--scheduler {address}: no Dask scheduler answers there within {timeout:g} s ({error}). Start one "
            "with `dask scheduler` (it prints its address, such as tcp://10.0.0.5:8786) and workers with "
            "`dask worker ADDRESS` on hosts that have the kit, or leave out --scheduler to grade on this machine"
        ) from None


def start(kind: Kind, jobs: int, config: dict[str, Any]) -> Any:
    """A new cluster of ``kind``: ``jobs`` worker processes of one thread here (``local``), or ``jobs`` workers
    that the job scheduler starts as ``config`` says (dask-jobqueue's keyword arguments; none for ``local``).

    Raises:
        ClusterError: ``kind`` is unknown or the cluster cannot start with ``config``.
    """
    if kind == "local":
        return _import("distributed").LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None
        )
    if kind not in JOB_QUEUES:
        raise ClusterError(f"--cluster {kind}: not one of {', '.join(KINDS)}")
    cluster = job_queue(kind, config)
    cluster.scale(jobs)
    return cluster


def job_queue(kind: Kind, config: dict[str, Any]) -> Any:
    """dask-jobqueue's cluster for ``kind`` (``slurm``, ``pbs``, ``sge``) made from ``config``, no job submitted.

    Raises:
        ClusterError: ``config`` has a key the class does not take, or a value it refuses.
    """
    name = JOB_QUEUES[kind]
    try:
        return getattr(_import("dask_jobqueue"), name)(**{"scheduler_options": {"dashboard_address": None}, **config})
    except (TypeError, ValueError) as error:
        raise ClusterError(
            f"--cluster-config: dask_jobqueue.{name} refuses it ({error}); its keys are that class's arguments "
            "(cores, memory, processes, queue, account, walltime, job_extra_directives, worker_extra_args, ...)"
        ) from None


def read_config(path: Path | None) -> dict[str, Any]:
    """The keyword arguments of the cluster in the TOML file ``path`` (none without one).

    Raises:
        ClusterError: the file cannot be read or is not TOML.
    """
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ClusterError(f"--cluster-config {path}: cannot read it ({error})") from None


def _import(module: str) -> Any:
    """``module`` (``distributed``, ``dask_jobqueue``), or a :class:`ClusterError` saying how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise ClusterError(HOW_TO_INSTALL) from None
