"""The processes that run student code: one sandboxed :class:`Zygote` per submission, which has
imported torch once and forks a :class:`WorkerProcess` per part in milliseconds (instead of the
second ``import torch`` takes), so a batch running several graders at once does not spend its
cores importing.

A worker talks to the grader over two pipes (the channel of :mod:`autograder.sandbox.channel`); a
worker that crashes, hangs past its wall-time limit or answers garbage becomes a
:class:`~autograder.isolation.submission.StudentError` of the call in flight, with the end of what
it printed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

import autograder.sandbox
from autograder.isolation import launcher
from autograder.isolation.budget import tree_budget
from autograder.isolation.errors import StudentError
from autograder.reference import ASSIGNMENTS
from autograder.sandbox.channel import ChannelError, read_message, write_message
from autograder.sandbox.limits import Limits
from autograder.sandbox.worker import WHOLE

PUBLIC = ASSIGNMENTS / "diffusion"
"""The public modules the worker imports the other parts from (no solution in them)."""
SANDBOX_PACKAGE = Path(autograder.sandbox.__file__).parent
"""What is staged into the sandbox as the grader's code: this package, whole."""
STDERR_TAIL = 2000
ZYGOTE_POLL_SECONDS = 0.1
"""How often a wait for the zygote looks whether it died (it cannot answer then: no need to wait on)."""


PIPE_BYTES = 1 << 20
"""Pipe capacity asked for: a batch of samples fits, so a writer rarely waits for the reader to wake up."""


def _pipe() -> tuple[int, int]:
    """``os.pipe()``, enlarged where Linux allows it (the default 64 KiB holds one 90x90 float64 batch)."""
    read_fd, write_fd = os.pipe()
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return read_fd, write_fd


class _Timeout(Exception):
    pass


class _Deadline:
    """A buffered binary reader over a pipe that gives up at a deadline (the worker may hang or never
    answer). One ``read`` system call usually brings in a whole message."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.deadline = float("inf")
        self.buffer = b""

    def read(self, size: int) -> bytes:
        if not self.buffer:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                raise _Timeout
            self.buffer = os.read(self.fd, PIPE_BYTES)
        chunk, self.buffer = self.buffer[:size], self.buffer[size:]
        return chunk


class Zygote:
    """The sandboxed process that imports torch once for a submission and forks a worker per part.

    It stages the worker code, the public modules and a copy of the submission once, starts
    :func:`autograder.sandbox.worker.zygote` in the sandbox (with the largest of the parts' limits; each
    worker lowers them to its part's) and talks to it over a datagram socket. Student code can kill
    it (it is the workers' parent): :meth:`alive` says so and the submission starts another.
    """

    def __init__(self, package: Path, limits: Limits) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="autograder-worker-"))
        stage, scratch = self.tmp / "stage", self.tmp / "scratch"
        (stage / "autograder").mkdir(parents=True)
        (stage / "autograder" / "__init__.py").write_text("")
        shutil.copytree(SANDBOX_PACKAGE, stage / "autograder" / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(PUBLIC, stage / "public", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(package, scratch / "submission", ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
        self.uid = launcher.worker_user()
        launcher.prepare(self.tmp, stage, scratch, self.uid)
        self.outputs = self.tmp / "outputs"
        self.outputs.mkdir()
        sandboxed = launcher.isolation().sandboxed
        self.package_inside = (Path("/scratch") if sandboxed else scratch) / "submission"
        self.public_inside = (Path("/sandbox") if sandboxed else stage) / "public"
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.budget = tree_budget(limits.tree_memory_bytes, limits.processes)
        self.processes = launcher.nproc(limits, self.uid)
        """The zygote's RLIMIT_NPROC: a worker's may be lower, never higher (a hard limit cannot be raised)."""
        self.output = open(self.outputs / "zygote.txt", "wb")  # noqa: SIM115 - lives as long as the zygote
        self.process = subprocess.Popen(
            launcher.command(stage, scratch, self.uid),
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=self.output,
            pass_fds=(theirs.fileno(),),
            env={**launcher.environment(scratch), "AUTOGRADER_ZYGOTE": str(theirs.fileno())},
            cwd=scratch,
            start_new_session=True,
            preexec_fn=launcher.limiter(limits, self.processes, self.budget, self.uid),
        )
        theirs.close()
        self.closed = False

    def alive(self) -> bool:
        return not self.closed and self.process.poll() is None

    def _ask(self, request: dict[str, Any], fds: list[int], seconds: float) -> dict[str, Any]:
        """Send ``request`` (with ``fds``) and wait ``seconds`` for the answer; :class:`ChannelError` if none."""
        deadline = time.monotonic() + seconds
        reply = None
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()], fds)
            while self.process.poll() is None and (remaining := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([self.control], [], [], min(remaining, ZYGOTE_POLL_SECONDS))
                if ready:
                    reply = json.loads(self.control.recv(1 << 16))
                    break
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict):
            self.close()  # a late answer must never be taken for the next request's: this zygote is done
            raise ChannelError("the sandbox's process that starts workers is gone or did not answer")
        return reply

    def spawn(self, limits: Limits, fds: list[int]) -> int:
        """Fork a worker on ``fds`` (its requests pipe, answers pipe, output file); its pid in the sandbox."""
        processes = min(launcher.nproc(limits, self.uid), self.processes)
        request = {"op": "spawn", "limits": asdict(limits), "processes": processes}
        return int(self._ask(request, fds, limits.import_seconds)["pid"])

    def stop(self, pid: int) -> int | None:
        """Kill worker ``pid``; how it ended (exit code or −signal), or ``None`` if the zygote is gone."""
        if not self.alive():
            return None
        try:
            return int(self._ask({"op": "kill", "pid": pid}, [], 10.0)["status"])
        except (ChannelError, KeyError, TypeError, ValueError):
            return None

    def close(self) -> None:
        """Kill the zygote and with it every worker (its process group, their parent-death signal; bubblewrap's
        PID namespace; every process left in its control group or of its user, a daemon that left the process
        group included)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.budget is not None:
            self.budget.close()
        if self.uid is not None:
            launcher.end_user(self.uid)
        self.control.close()
        self.output.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class WorkerProcess:
    """One worker serving one part of one submission, forked by the submission's :class:`Zygote`."""

    def __init__(self, zygote: Zygote, part: str, limits: Limits) -> None:
        self.zygote, self.part, self.limits = zygote, part, limits
        requests_r, requests_w = _pipe()
        answers_r, answers_w = _pipe()
        self.output_path = zygote.outputs / f"{part}-{time.monotonic_ns()}.txt"
        output = os.open(self.output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.writer = os.fdopen(requests_w, "wb", buffering=0)
        self.reader = _Deadline(answers_r)
        self.killed = False
        self.status: int | None = None
        try:
            self.pid = zygote.spawn(limits, [requests_r, answers_w, output])
        except ChannelError:
            self.pid = None  # the first message to the worker fails and reports it
        finally:
            for fd in (requests_r, answers_w, output):
                os.close(fd)

    # -- protocol ------------------------------------------------------------------------------
    def send(self, header: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None) -> None:
        try:
            write_message(self.writer, header, tensors)
        except OSError as error:  # the worker is gone
            raise ChannelError(f"the worker closed its channel ({error})") from None

    def _receive(self, seconds: float) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        self.reader.deadline = time.monotonic() + seconds
        return read_message(self.reader)

    def load(self, proxied: dict[str, list[str]], public: bool = False, whole: bool = False) -> None:
        """Import the student's module of this part in the worker (with ``public``, the kit's public one; with
        ``whole``, the submission's whole package, as it is, its parts importing each other).

        Raises:
            StudentError: the import failed (syntax error, missing module, error at import time...).
        """
        request = {
            "op": "load",
            "part": WHOLE if whole else self.part,
            "package": str(self.zygote.public_inside if public else self.zygote.package_inside),
            "public": str(self.zygote.public_inside),
            "proxied": proxied,
        }
        try:
            self.send(request)
        except ChannelError as error:
            raise self.failure("(import)", str(error)) from None
        reply, _ = self.answer("(import)", self.limits.import_seconds)
        if reply.get("op") != "loaded":
            raise self.failure("(import)", f"the worker answered {reply.get('op')!r} to the import")

    def answer(self, function: str, seconds: float) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The worker's next message; a ``raise`` becomes a :class:`StudentError`; death, hang, garbage too."""
        try:
            reply, blob = self._receive(max(seconds, 0.0))
        except _Timeout:
            self.kill()
            limit = self.limits.import_seconds if function == "(import)" else self.limits.wall_seconds
            raise StudentError(
                self.part, function, "TimeoutError",
                f"no answer within the wall-time limit of {limit:g} s (an infinite loop? "
                "far too many steps?); the worker was stopped",
            ) from None  # fmt: skip
        except ChannelError as error:
            raise self.failure(function, str(error)) from None
        if reply.get("op") == "raise":
            raise StudentError(
                self.part, function, str(reply.get("type", "Exception"))[:80],
                str(reply.get("message", ""))[:2000], str(reply.get("where", ""))[:200],
            )  # fmt: skip
        return reply, blob

    def failure(self, function: str, what: str) -> StudentError:
        """The worker died or broke the protocol: stop it and describe what happened."""
        self.kill()
        code = self.status
        if code is None:
            status = "the sandbox was stopped"
        else:
            status = f"exit code {code}" if code >= 0 else f"killed by signal {-code}"
        tail = self.output_tail()
        if code == -signal.SIGXCPU or code == -signal.SIGKILL and "cpu" in tail.lower():
            status += f" (the CPU-time limit of {self.limits.cpu_seconds} s)"
        output = f"; its last output:\n{tail}" if tail else ""
        return StudentError(self.part, function, "WorkerDied", f"{what} ({status}){output}")

    def alive(self) -> bool:
        return not self.killed and self.zygote.alive()

    def kill(self) -> None:
        """Kill the worker's whole process group (once) and keep how it ended."""
        if self.killed:
            return
        self.killed = True
        if self.pid is not None:
            self.status = self.zygote.stop(self.pid)
        self.last_output = self._read_output()
        self.writer.close()
        os.close(self.reader.fd)

    def output_tail(self) -> str:
        """The end of what the worker printed."""
        return self.last_output if self.killed else self._read_output()

    def _read_output(self) -> str:
        try:
            return self.output_path.read_bytes()[-STDERR_TAIL:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
