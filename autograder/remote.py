"""The grader's side of the sandboxed worker: a :class:`~autograder.submission.Submission` whose calls
run in another process.

The parent draws every input and does every comparison; the worker only runs the student's
function. For each call the parent sends the arguments (and its global RNG state, so a function
that draws from ``torch``'s global generator behaves as it would in-process), serves the worker's
requests to run a denoiser the check passed (counted here, never sent) or the reference's version
of another part, and takes back the answer, the arguments the call changed in place and the
generators' new states. A worker that crashes, hangs past its wall-time limit or answers garbage
fails the call in flight with a :class:`StudentError`, and the next call starts a fresh worker.

Workers are forked by a :class:`Zygote`, one sandboxed process per submission that has imported
torch: a worker starts in milliseconds instead of the second ``import torch`` takes, so a batch
running several graders at once does not spend its cores importing.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from autograder import sandbox
from autograder.channel import ChannelError, Codec, read_message, write_message
from autograder.reference import ASSIGNMENTS, load_reference
from autograder.submission import Instance, StudentError, find_package

REFERENCE = load_reference()
PUBLIC = ASSIGNMENTS / "diffusion"
WORKER_CODE = ("channel.py", "sandbox.py", "worker.py")
STDERR_TAIL = 2000


def student_functions(public: Path = PUBLIC) -> dict[str, list[str]]:
    """Per part, the functions the modules in ``public`` leave as stubs (they raise ``NotImplementedError``);
    none for a module that does not parse."""
    functions = {}
    for part in REFERENCE.PARTS:
        try:
            tree = ast.parse((public / f"{part}.py").read_text(encoding="utf-8"))
        except (SyntaxError, ValueError, UnicodeDecodeError):
            functions[part] = []
            continue
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


class Zygote:
    """The sandboxed process that imports torch once for a submission and forks a worker per part.

    It stages the worker code, the public modules and a copy of the submission once, starts
    :func:`autograder.worker.zygote` in the sandbox (with the largest of the parts' limits; each
    worker lowers them to its part's) and talks to it over a datagram socket. Student code can kill
    it (it is the workers' parent): :meth:`alive` says so and the submission starts another.
    """

    def __init__(self, package: Path, limits: sandbox.Limits) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="autograder-worker-"))
        stage, scratch = self.tmp / "stage", self.tmp / "scratch"
        (stage / "autograder").mkdir(parents=True)
        (stage / "autograder" / "__init__.py").write_text("")
        for name in WORKER_CODE:
            shutil.copy(Path(__file__).with_name(name), stage / "autograder" / name)
        shutil.copytree(PUBLIC, stage / "public", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(package, scratch / "submission", ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
        sandbox.prepare_scratch(scratch)
        self.outputs = self.tmp / "outputs"
        self.outputs.mkdir()
        sandboxed = sandbox.isolation().sandboxed
        self.package_inside = (Path("/scratch") if sandboxed else scratch) / "submission"
        self.public_inside = (Path("/sandbox") if sandboxed else stage) / "public"
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.output = open(self.outputs / "zygote.txt", "wb")  # noqa: SIM115 - lives as long as the zygote
        self.process = subprocess.Popen(
            sandbox.command(stage, scratch),
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=self.output,
            pass_fds=(theirs.fileno(),),
            env={**sandbox.environment(scratch), "AUTOGRADER_ZYGOTE": str(theirs.fileno())},
            cwd=scratch,
            start_new_session=True,
            preexec_fn=sandbox.limiter(limits),
        )
        theirs.close()
        self.closed = False

    def alive(self) -> bool:
        return not self.closed and self.process.poll() is None

    def _ask(self, request: dict[str, Any], fds: list[int], seconds: float) -> dict[str, Any]:
        """Send ``request`` (with ``fds``) and wait ``seconds`` for the answer; :class:`ChannelError` if none."""
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()], fds)
            ready, _, _ = select.select([self.control], [], [], seconds)
            reply = json.loads(self.control.recv(1 << 16)) if ready else None
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict):
            self.close()  # a late answer must never be taken for the next request's: this zygote is done
            raise ChannelError("the sandbox's process that starts workers is gone or did not answer")
        return reply

    def spawn(self, limits: sandbox.Limits, fds: list[int]) -> int:
        """Fork a worker on ``fds`` (its requests pipe, answers pipe, output file); its pid in the sandbox."""
        request = {"op": "spawn", "limits": asdict(limits), "processes": sandbox.nproc(limits)}
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
        """Kill the zygote and with it every worker (its process group; bubblewrap's PID namespace)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.control.close()
        self.output.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class WorkerProcess:
    """One worker serving one part of one submission, forked by the submission's :class:`Zygote`."""

    def __init__(self, zygote: Zygote, part: str, limits: sandbox.Limits) -> None:
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

    def load(self, proxied: dict[str, list[str]]) -> None:
        """Import the student's module of this part in the worker.

        Raises:
            StudentError: the import failed (syntax error, missing module, error at import time...).
        """
        request = {
            "op": "load",
            "part": self.part,
            "package": str(self.zygote.package_inside),
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

    def call(
        self,
        name: str,
        args: tuple,
        kwargs: dict,
        reference: Callable[..., Any],
        instance: Instance | None = None,
        wrt: Sequence[int] | None = None,
        cotangent: torch.Tensor | None = None,
    ) -> Any:
        """Run ``name(*args, **kwargs)`` in the worker (a method of a fresh ``instance``; with its gradients
        with respect to the arguments ``wrt``, see :func:`autograder.worker.with_gradients`); serve its
        callbacks and reference calls meanwhile."""
        label = name if instance is None else f"{instance.cls}.{name}"
        request = {"name": name, "wrt": None if wrt is None else list(wrt)}
        payload = {"instance": None if instance is None else instance.as_dict(), "cotangent": cotangent}
        return _Call(self, label, reference).run(request, args, kwargs, payload)

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

    def run(self, request: dict[str, Any], args: tuple, kwargs: dict, payload: dict[str, Any]) -> Any:
        """Send the call ``request`` with its arguments and ``payload`` (more values for the worker), then converse."""
        sources: dict[str, Any] = {}
        tree, tensors = self.codec.encode({"args": list(args), "kwargs": kwargs, **payload}, sources)
        rng = f"k{len(tensors)}"
        tensors[rng] = torch.get_rng_state()
        self.worker.send({"op": "call", **request, **tree["$dict"], "rng": rng}, tensors)
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

    The workers are forked from one :class:`Zygote` per submission, which imports torch once; a
    part's worker starts when a check first asks for that part, and the previous part's stops.

    Args:
        root: the submission (a ``diffusion/`` package or its ``.py`` files laid flat).
        limits: the workers' limits, per part name, with ``"default"`` for the others.
    """

    def __init__(self, root: Path, limits: dict[str, sandbox.Limits] | None = None) -> None:
        self.package = find_package(Path(root), REFERENCE.PARTS).resolve()
        self.limits = limits or {}
        self.proxied = student_functions()
        self.zygote = Zygote(self.package, self._widest())
        self.workers: dict[str, WorkerProcess] = {}
        self.import_errors: dict[str, StudentError] = {}
        self.stopped: dict[str, StudentError] = {}
        """Parts whose worker died or was stopped during the current check: it fails at once from then on."""

    def next_check(self) -> None:
        """A new check starts: a worker stopped in the previous one may be started afresh."""
        self.stopped.clear()

    def _limits(self, part: str) -> sandbox.Limits:
        return self.limits.get(part, self.limits.get("default", sandbox.Limits()))

    def _widest(self) -> sandbox.Limits:
        """The largest of every limit over the parts: the zygote's (a worker can lower a limit, not raise it)."""
        configured = [*self.limits.values(), self._limits("")]
        return sandbox.Limits(**{f.name: max(getattr(c, f.name) for c in configured) for f in fields(sandbox.Limits)})

    def _worker(self, part: str) -> WorkerProcess:
        if part in self.import_errors:
            raise self.import_errors[part]
        if not (self.package / f"{part}.py").is_file():
            raise StudentError(part, "(module)", "FileNotFoundError", f"the submission has no {part}.py")
        worker = self.workers.get(part)
        if worker is not None and worker.alive():
            return worker
        for other in list(self.workers):
            self.workers.pop(other).kill()
        if not self.zygote.alive():  # student code killed it: a new one
            self.zygote.close()
            self.zygote = Zygote(self.package, self._widest())
        worker = WorkerProcess(self.zygote, part, self._limits(part))
        try:
            worker.load(self.proxied)
        except StudentError as error:
            worker.kill()
            self.import_errors[part] = error
            raise
        self.workers[part] = worker
        return worker

    def _run(self, part: str, name: str, args: tuple, kwargs: dict, **options: Any) -> Any:
        if part in self.stopped:  # no fresh worker (and its start-up) per Hypothesis example after a crash
            raise self.stopped[part]
        worker = self._worker(part)
        try:
            return worker.call(name, args, kwargs, self._reference_for(part), **options)
        except StudentError as error:
            if worker.killed:
                self.stopped[part] = error
            raise

    def function(self, part: str, name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: self._run(part, name, args, kwargs)

    def method(self, part: str, instance: Instance, name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: self._run(part, name, args, kwargs, instance=instance)

    def gradient(self, part: str, name: str, wrt: Sequence[int]) -> Callable[..., Any]:
        def call(*args: Any, cotangent: torch.Tensor, **kwargs: Any) -> Any:
            return self._run(part, name, args, kwargs, wrt=wrt, cotangent=cotangent)

        return call

    def _reference_for(self, graded: str) -> Callable[[str, str], Callable[..., Any]]:
        """The reference's other parts, on request of the worker grading ``graded`` (never ``graded`` itself)."""

        def reference(part: str, name: str) -> Callable[..., Any]:
            if part == graded or name not in self.proxied.get(part, ()):
                raise ChannelError(f"the worker asked for the reference's {part}.{name}, which it may not use")
            return getattr(importlib.import_module(f"diffusion.{part}"), name)

        return reference

    def close(self) -> None:
        """Stop every worker and the zygote."""
        for worker in self.workers.values():
            worker.kill()
        self.workers.clear()
        self.zygote.close()

    def __enter__(self) -> RemoteSubmission:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
