"""The grader's side of the sandboxed worker: a :class:`~autograder.submission.Submission` whose calls
run in another process.

The parent draws every input and does every comparison; the worker only runs the student's
function. For each call the parent sends the arguments (and its global RNG state, so a function
that draws from ``torch``'s global generator behaves as it would in-process), serves the worker's
requests to run a denoiser the check passed (counted here, never sent) or the reference's version
of another part, and takes back the answer, the arguments the call changed in place and the
generators' new states. A worker that crashes, hangs past its wall-time limit or answers garbage
fails the call in flight with a :class:`StudentError`, and the next call starts a fresh worker.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import importlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from autograder import sandbox
from autograder.channel import ChannelError, Codec, read_message, write_message
from autograder.reference import SOLUTIONS, load_reference
from autograder.submission import StudentError, find_package

REFERENCE = load_reference()
PUBLIC = SOLUTIONS.parent / "assignments" / "diffusion"
WORKER_CODE = ("channel.py", "worker.py")
STDERR_TAIL = 2000


def student_functions(public: Path = PUBLIC) -> dict[str, list[str]]:
    """Per part, the functions the public modules leave as stubs (they raise ``NotImplementedError``)."""
    functions = {}
    for part in REFERENCE.PARTS:
        tree = ast.parse((public / f"{part}.py").read_text(encoding="utf-8"))
        functions[part] = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and any(
                isinstance(inner, ast.Raise)
                and isinstance(inner.exc, ast.Call)
                and getattr(inner.exc.func, "id", "") == "NotImplementedError"
                for inner in ast.walk(node)
            )
        ]
    return functions


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


class WorkerProcess:
    """One worker serving one part of one submission."""

    def __init__(self, package: Path, part: str, limits: sandbox.Limits, threads: int = 1) -> None:
        self.part, self.limits = part, limits
        self.tmp = Path(tempfile.mkdtemp(prefix="autograder-worker-"))
        stage, scratch = self.tmp / "stage", self.tmp / "scratch"
        (stage / "autograder").mkdir(parents=True)
        (stage / "autograder" / "__init__.py").write_text("")
        for name in WORKER_CODE:
            shutil.copy(Path(__file__).with_name(name), stage / "autograder" / name)
        shutil.copytree(PUBLIC, stage / "public", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(package, scratch / "submission", ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
        sandbox.prepare_scratch(scratch)
        inside = Path("/sandbox") if sandbox.isolation().sandboxed else stage
        self.package_inside = (Path("/scratch") if sandbox.isolation().sandboxed else scratch) / "submission"
        requests_r, requests_w = _pipe()
        answers_r, answers_w = _pipe()
        self.stderr = open(self.tmp / "stderr.txt", "wb")  # noqa: SIM115 - lives as long as the worker
        self.process = subprocess.Popen(
            sandbox.command(stage, scratch),
            stdin=subprocess.DEVNULL,
            stdout=self.stderr,
            stderr=self.stderr,
            pass_fds=(requests_r, answers_w),
            env={**sandbox.environment(scratch, threads), "AUTOGRADER_CHANNEL": f"{requests_r},{answers_w}"},
            cwd=scratch,
            start_new_session=True,
            preexec_fn=sandbox.limiter(limits),
        )
        os.close(requests_r)
        os.close(answers_w)
        self.writer = os.fdopen(requests_w, "wb", buffering=0)
        self.reader = _Deadline(answers_r)
        self.public_inside = inside / "public"
        self.killed = False

    # -- protocol ------------------------------------------------------------------------------
    def send(self, header: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None) -> None:
        try:
            write_message(self.writer, header, tensors)
        except OSError as error:  # the worker is gone
            raise ChannelError(f"the worker closed its channel ({error})") from None

    def _receive(self, seconds: float) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        self.reader.deadline = time.monotonic() + seconds
        return read_message(self.reader)

    def start_loading(self, proxied: dict[str, list[str]]) -> None:
        """Ask the worker to import the student's module of this part; :meth:`loaded` waits for it."""
        self.send(
            {
                "op": "load",
                "part": self.part,
                "package": str(self.package_inside),
                "public": str(self.public_inside),
                "proxied": proxied,
            }
        )

    def loaded(self) -> None:
        """Wait until the import asked for by :meth:`start_loading` is done.

        Raises:
            StudentError: the import failed (syntax error, missing module, error at import time...).
        """
        reply, _ = self.answer("(import)", self.limits.import_seconds)
        if reply.get("op") != "loaded":
            raise self.failure("(import)", f"the worker answered {reply.get('op')!r} to the import")

    def call(self, name: str, args: tuple, kwargs: dict, reference: Callable[..., Any]) -> Any:
        """Run ``name(*args, **kwargs)`` in the worker; serve its callbacks and reference calls meanwhile."""
        return _Call(self, name, reference).run(args, kwargs)

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
        code = self.process.returncode
        status = f"exit code {code}" if code is not None and code >= 0 else f"killed by signal {-(code or 0)}"
        tail = self.output_tail()
        if code == -signal.SIGXCPU or code == -signal.SIGKILL and "cpu" in tail.lower():
            status += f" (the CPU-time limit of {self.limits.cpu_seconds} s)"
        output = f"; its last output:\n{tail}" if tail else ""
        return StudentError(self.part, function, "WorkerDied", f"{what} ({status}){output}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill the worker's whole process group and remove its files (once)."""
        if self.killed:
            return
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.last_output = self.output_tail()
        self.killed = True
        for stream in (self.writer, self.stderr):
            stream.close()
        os.close(self.reader.fd)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def output_tail(self) -> str:
        """The end of what the worker printed (read when it is stopped)."""
        if self.killed:
            return self.last_output
        self.stderr.flush()
        try:
            text = (self.tmp / "stderr.txt").read_bytes()[-STDERR_TAIL:].decode("utf-8", "replace")
        except OSError:
            return ""
        return text.strip()


def _call_arguments(request: Any) -> tuple[tuple, dict]:
    if not isinstance(request, dict) or not isinstance(request.get("args"), list | tuple):
        raise ChannelError("a malformed request from the worker")
    kwargs = request.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ChannelError("a malformed request from the worker")
    return tuple(request["args"]), kwargs


def _write_back(after: Any, sources: dict[str, Any], function: str, part: str) -> None:
    """Apply what the call did to its arguments: in-place changes of tensors, generators' new states."""
    if not isinstance(after, dict):
        raise ChannelError("malformed argument changes")
    for key, value in after.items():
        source = sources.get(key)
        if not isinstance(value, torch.Tensor) or source is None:
            raise ChannelError(f"an argument change for {key!r} that was not sent")
        if isinstance(source, torch.Generator):
            source.set_state(value)
        elif value.shape == source.shape and value.dtype == source.dtype:
            with torch.no_grad():
                source.copy_(value)
        else:
            raise StudentError(part, function, "ValueError", "changed the shape or dtype of an argument in place")


class _Call:
    """One call of a student function: the conversation with the worker until it answers.

    While the call runs, the worker may ask the grader to run a callable the check passed
    (``callback``: the check's denoiser, counted by the check) or the reference's version of
    another part (``reference``); a reference function may in turn call a callable of the
    worker's (a lambda the student wrapped around the model), which asks the worker back.
    """

    def __init__(self, worker: WorkerProcess, name: str, reference: Callable[..., Any]) -> None:
        self.worker, self.name, self.reference = worker, name, reference
        self.codec = Codec(REFERENCE.schedules.NoiseSchedule, self._worker_callable)
        self.deadline = time.monotonic() + worker.limits.wall_seconds
        self.refusals: list[BaseException] = []

    def run(self, args: tuple, kwargs: dict) -> Any:
        sources: dict[str, Any] = {}
        tree, tensors = self.codec.encode({"args": list(args), "kwargs": kwargs}, sources)
        rng = f"k{len(tensors)}"
        tensors[rng] = torch.get_rng_state()
        body = tree["$dict"]
        self.worker.send(
            {"op": "call", "name": self.name, "args": body["args"], "kwargs": body["kwargs"], "rng": rng}, tensors
        )
        try:
            answer = self._converse("return")
        except StudentError:
            if self.refusals:  # the check's denoiser refused what the student passed: its message is clearer
                raise self.refusals[0] from None
            raise
        if not isinstance(answer, dict) or {"value", "after", "rng"} - answer.keys():
            raise self.worker.failure(self.name, "the worker's answer is malformed")
        _write_back(answer["after"], sources, self.name, self.worker.part)
        torch.set_rng_state(answer["rng"])
        return answer["value"]

    def _worker_callable(self, number: int) -> Callable[..., Any]:
        def proxy(*args: Any, **kwargs: Any) -> Any:
            tree, tensors = self.codec.encode({"args": list(args), "kwargs": kwargs})
            self.worker.send({"op": "callback", "id": number, "value": tree}, tensors)
            return self._converse("result")

        return proxy

    def _converse(self, final: str) -> Any:
        """Serve the worker's requests until it sends ``final``; return that message's value."""
        while True:
            message, blob = self.worker.answer(self.name, self.deadline - time.monotonic())
            op = message.get("op")
            try:
                if op == final:
                    return self.codec.decode(message.get("value"), blob)
                if op == "error" and final == "result":
                    raise RemoteCallError(str(message.get("message", ""))[:2000])
                if op not in ("callback", "reference"):
                    raise ChannelError(f"unexpected message {op!r}")
                request = self.codec.decode(message.get("value"), blob)
                args, kwargs = _call_arguments(request)
                if op == "callback":
                    function = self.codec.callables.get(message.get("id"))
                    if function is None:
                        raise ChannelError(f"no callable {message.get('id')!r} was passed")
                else:
                    function = self.reference(str(message.get("part")), str(message.get("name")))
            except ChannelError as error:
                raise self.worker.failure(self.name, str(error)) from None
            try:
                result = function(*args, **kwargs)
            except StudentError:
                raise
            except Exception as error:  # noqa: BLE001 - the grader's side refused: the worker's code sees it
                if op == "callback":
                    self.refusals.append(error)
                self.worker.send({"op": "error", "message": f"{type(error).__name__}: {error}"[:2000]})
                continue
            tree, tensors = self.codec.encode(result)
            self.worker.send({"op": "result", "value": tree}, tensors)


class RemoteCallError(Exception):
    """A callable of the worker's, called by the reference on the worker's behalf, failed there."""


class RemoteSubmission:
    """A submission whose functions run in sandboxed workers, one per part (see the module docstring).

    Workers are started one part ahead: while the checks of one part run, the worker of the next
    part in ``order`` starts and imports the student's module (mostly ``import torch``), so its
    start-up overlaps the grading instead of adding to it. Workers of parts left behind are stopped.

    Args:
        root: the submission (a ``diffusion/`` package or its ``.py`` files laid flat).
        limits: the workers' limits, per part name, with ``"default"`` for the others.
        order: the parts in the order the checks will use them (default: handout order).
    """

    def __init__(
        self,
        root: Path,
        limits: dict[str, sandbox.Limits] | None = None,
        threads: int = 1,
        order: tuple[str, ...] = REFERENCE.PARTS,
    ) -> None:
        self.package = find_package(Path(root), REFERENCE.PARTS).resolve()
        self.limits = limits or {}
        self.threads = threads
        self.order = order
        self.proxied = student_functions()
        self.workers: dict[str, WorkerProcess] = {}
        """Started workers, by part; a worker is in ``pending`` until its import has been answered."""
        self.pending: set[str] = set()
        self.import_errors: dict[str, StudentError] = {}
        self.stopped: dict[str, StudentError] = {}
        """Parts whose worker died or was stopped during the current check: it fails at once from then on."""

    def next_check(self) -> None:
        """A new check starts: a worker stopped in the previous one may be started afresh."""
        self.stopped.clear()

    def _limits(self, part: str) -> sandbox.Limits:
        return self.limits.get(part, self.limits.get("default", sandbox.Limits()))

    def _start(self, part: str) -> None:
        """Start ``part``'s worker and its import, without waiting for either."""
        worker = WorkerProcess(self.package, part, self._limits(part), self.threads)
        self.workers[part] = worker
        self.pending.add(part)
        with contextlib.suppress(ChannelError):  # it died at once: reported when :meth:`_worker` waits for it
            worker.start_loading(self.proxied)

    def _worker(self, part: str) -> WorkerProcess:
        if part in self.import_errors:
            raise self.import_errors[part]
        if not (self.package / f"{part}.py").is_file():
            raise StudentError(part, "(module)", "FileNotFoundError", f"the submission has no {part}.py")
        worker = self.workers.get(part)
        if worker is None or not worker.alive() and part not in self.pending:
            self._start(part)
        self._look_ahead(part)
        worker = self.workers[part]
        if part in self.pending:
            self.pending.discard(part)
            try:
                worker.loaded()
            except StudentError as error:
                worker.kill()
                self.import_errors[part] = error
                raise
        return worker

    def _look_ahead(self, part: str) -> None:
        """Stop the workers of parts other than ``part`` and the next one; start the next one's."""
        following = self.order[self.order.index(part) + 1 :] if part in self.order else ()
        upcoming = next((p for p in following if (self.package / f"{p}.py").is_file()), None)
        for other in [p for p in self.workers if p not in (part, upcoming)]:
            self.workers.pop(other).kill()
            self.pending.discard(other)
        if upcoming is not None and upcoming not in self.workers and upcoming not in self.import_errors:
            self._start(upcoming)

    def function(self, part: str, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if part in self.stopped:  # no fresh worker (and its start-up) per Hypothesis example after a crash
                raise self.stopped[part]
            worker = self._worker(part)
            try:
                return worker.call(name, args, kwargs, self._reference_for(part))
            except StudentError as error:
                if worker.killed:
                    self.stopped[part] = error
                raise

        return call

    def _reference_for(self, graded: str) -> Callable[[str, str], Callable[..., Any]]:
        """The reference's other parts, on request of the worker grading ``graded`` (never ``graded`` itself)."""

        def reference(part: str, name: str) -> Callable[..., Any]:
            if part == graded or name not in self.proxied.get(part, ()):
                raise ChannelError(f"the worker asked for the reference's {part}.{name}, which it may not use")
            return getattr(importlib.import_module(f"diffusion.{part}"), name)

        return reference

    def close(self) -> None:
        """Stop every worker."""
        for worker in self.workers.values():
            worker.kill()
        self.workers.clear()
        self.pending.clear()

    def __enter__(self) -> RemoteSubmission:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
