"""One student's grading as a task any host can run, and the local engine that runs tasks on this machine.

A task runs ``python -m autograder grade`` in a grader process of its own (then, for ``batch --harness``,
``python -m autograder harness``, which adds its points to the same ``results.json``) and writes nothing of the
batch's output: the grader writes into a temporary directory of the task's, and the task returns the bytes of
its ``results.json`` and of its log (an :class:`Outcome`). The batch's coordinator checks them and alone writes
``results/`` (:mod:`autograder.batch`). So the same task runs in a thread of the TA's process
(:class:`LocalPool`, ``--jobs N``) or on a Dask worker of a cluster (:mod:`autograder.cluster`), and a task
that ran twice (its worker died half-way) is written once.

A grader's temporary files (the staged submission, the copy of it its workers run in, which can be large) go
to a directory of its own (its ``TMPDIR``) under a root of the process that runs the task
(``autograder-batch-<pid>-*`` in the system's temporary directory), removed as soon as the grader has ended,
whether it finished, failed or was killed at the timeout. A root whose process was killed is removed by the
next one made on that host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from autograder.isolation.launcher import parent_death_signal
from autograder.reference import ROOT

LOG_LIMIT = 4 << 20
"""Bytes of a grader's log a task returns at the most: its end, after a line saying what was cut."""


@dataclass(frozen=True)
class Task:
    """What a host needs to grade one student: all of it plain data, sent to a cluster's worker as it is."""

    student: str
    path: Path
    """The submission as handed in, an absolute path: a cluster's workers read it on a shared file system."""
    parts: tuple[str, ...]
    options: tuple[str, ...]
    """``grade``'s options: ``--limits FILE``, ``--in-process``."""
    timeout: float
    """Seconds the grader may take in all; it is killed then."""
    resources: Mapping[str, float] = field(default_factory=dict)
    """What a cluster's worker must have to run the task (Dask worker resources, e.g. ``{"GPU": 1}``); the
    hidden checks need nothing."""
    harness: str | None = None
    """The harness's profile to run after the hidden checks (``batch --harness``); ``None``: the checks only."""

    def commands(self, out: Path, threads: int) -> list[Command]:
        """The grader's commands, run one after the other while each ends well: ``grade`` (with ``options``),
        then ``harness`` (with ``threads`` CPU threads) when the task has a profile; both write
        ``out/results.json``."""
        grader = [sys.executable, "-m", "autograder"]
        commands = [
            Command([*grader, "grade", str(self.path), "--out", str(out), "--parts", *self.parts, *self.options])
        ]
        if self.harness is not None:
            harness = [*grader, "harness", str(self.path), "--profile", self.harness, "--out", str(out)]
            commands.append(Command([*harness, "--threads", str(threads)], ok=frozenset({0, HARNESS_NOT_RUN})))
        return commands


HARNESS_NOT_RUN = 1
"""``harness``'s exit code when the submission has nothing it can run (:func:`autograder.cli.harness.run`): grade's
results already say why."""


class Command(NamedTuple):
    """One command of a grader, and the exit codes with which it ended well."""

    argv: list[str]
    ok: frozenset[int] = frozenset({0})


@dataclass(frozen=True)
class Outcome:
    """What a grader left: the coordinator checks it before it writes anything (:func:`autograder.batch.record`)."""

    results: bytes | None
    """Its ``results.json``; ``None`` when it wrote none."""
    log: bytes
    """What it printed (its end, at most :data:`LOG_LIMIT` bytes)."""
    code: int | None
    """Its exit code; ``None`` when it was killed at the timeout."""
    seconds: float
    host: str
    """The host that graded: the sandbox that held is the one this host has (the results' output says which)."""


def threads_per_grader(graders: int) -> int:
    """OpenMP threads for each of ``graders`` graders running at once on this host's CPUs."""
    return max(1, len(os.sched_getaffinity(0)) // graders)


def run_task(task: Task, temp_root: Path, threads: int, environ: Mapping[str, str] | None = None) -> Outcome:
    """Grade ``task``'s submission in grader processes of its own (:meth:`Task.commands`) with ``threads`` OpenMP
    threads and the environment ``environ`` (default: this process's), their temporary files in a directory of
    their own under ``temp_root`` (removed when the grader has ended, also when it was killed); return what they
    left."""
    temp = Path(tempfile.mkdtemp(prefix="grader-", dir=temp_root))
    out, log = temp / "result", temp / "grader.log"
    inherited = os.environ if environ is None else environ
    env = {**inherited, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1", "TMPDIR": str(temp)}
    start = time.perf_counter()
    try:
        with log.open("wb") as stream:
            for command in task.commands(out, threads):
                code = _run(command.argv, stream, env, start + task.timeout - time.perf_counter())
                code = 0 if code in command.ok else code
                if code != 0:
                    break
        results = (out / "results.json").read_bytes() if (out / "results.json").is_file() else None
        return Outcome(results, tail(log), code, time.perf_counter() - start, socket.gethostname())
    finally:
        remove_tree(temp)


def _run(command: list[str], stream: BinaryIO, env: dict[str, str], seconds: float) -> int | None:
    """Run ``command`` in the kit's folder, its output to ``stream``, for ``seconds`` at most; its exit code, or
    ``None`` when it was killed at that limit."""
    if seconds <= 0:
        return None
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, env=env, preexec_fn=parent_death_signal
    )
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()  # its sandbox goes with it (bubblewrap's --die-with-parent, a parent-death signal)
        process.wait()
        return None


def tail(log: Path) -> bytes:
    """The log's bytes; its last :data:`LOG_LIMIT` bytes, after a line saying how much was cut, when it is longer."""
    size = log.stat().st_size
    with log.open("rb") as handle:
        handle.seek(max(0, size - LOG_LIMIT))
        end = handle.read()
    return end if size <= LOG_LIMIT else f"[the first {size - LOG_LIMIT} bytes are cut]\n".encode() + end


class Engine(Protocol):
    """Where the tasks run: :class:`LocalPool`, or a Dask cluster (:class:`autograder.cluster.DaskEngine`)."""

    retried: int
    """Tasks started again because the worker running them died."""

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | Exception]]:
        """Each task with its outcome, or the exception that stopped it, as they end; each task once."""
        ...


class LocalPool:
    """This machine, ``jobs`` graders at once (threads of the TA's process that each wait for a grader)."""

    retried = 0

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome | Exception]]:
        threads = threads_per_grader(self.jobs)
        with temp_root() as root, ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(run_task, task, root, threads): task for task in tasks}
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], future.result() if error is None else error


@contextlib.contextmanager
def temp_root() -> Iterator[Path]:
    """A directory of this process's for its graders' temporary directories (``autograder-batch-<pid>-*``),
    removed at the end; those of processes killed before their end are removed first."""
    remove_stale_roots()
    root = Path(tempfile.mkdtemp(prefix=f"autograder-batch-{os.getpid()}-"))
    try:
        yield root
    finally:
        remove_tree(root)


def remove_stale_roots() -> None:
    """Remove the temporary directories of this user's batches that were killed (their process is gone)."""
    for root in Path(tempfile.gettempdir()).glob("autograder-batch-*-*"):
        pid = root.name.split("-")[2]
        with contextlib.suppress(OSError):
            info = root.lstat()
            if pid.isdigit() and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not _running(int(pid)):
                remove_tree(root)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


def remove_tree(path: Path) -> None:
    """Remove ``path`` and all it holds, never following a link, also folders a student's code made read-only.

    Those are made writable again only when the batch is not root: root needs no permission to remove them,
    and a permission it changed could, through a link a dying process swapped in, be a file's outside."""
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path) or os.geteuid() == 0:
        return
    folders = [path]
    while folders:
        folder = folders.pop()
        if folder.is_dir() and not folder.is_symlink():
            with contextlib.suppress(OSError):
                folder.chmod(0o700)
                folders += folder.iterdir()
    shutil.rmtree(path, ignore_errors=True)
