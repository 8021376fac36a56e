"""The sandboxed worker: imports one part of a student's submission and answers calls to it.

It runs in its own process, forked by :func:`zygote` (inside bubblewrap where available), and sees
only the submission, the kit's public modules (``assignments/diffusion``, with no solution in them)
and the package :mod:`autograder.sandbox`. It never sees the hidden checks, the reference or the
results.

Part isolation without the reference: the student's module ``diffusion.<P>`` imports the other
parts from the public modules, in which every student function is replaced by a proxy that asks
the grader to run the reference (``{"op": "reference"}``). A callable the grader passes (a
denoiser) is a proxy too (``{"op": "callback"}``), so the grader counts the calls.

Protocol, one request at a time (grader → worker, then worker → grader until the answer):
    load {part, package, public, proxied}   → loaded | raise
    call {name, args, kwargs, rng, instance?, wrt?, cotangent?, backward?}
                                            → (callback | reference)* → return | raise

A call names a module-level function, or with ``instance`` ``{cls, args, kwargs, state}`` the method
``name`` of a fresh ``cls(*args, **kwargs)`` with the weights ``state`` loaded; with ``wrt`` it also
returns the vector-Jacobian product of the answer (see :mod:`autograder.sandbox.calls`):
autograd cannot cross the channel, so gradients are taken where the student's function runs. With
``backward`` it returns ``(value, grads)``: the gradients of the answer with respect to each tensor the
grader's callables returned during the call (:func:`~autograder.sandbox.calls.through_callbacks`), for the
grader to backpropagate through its own model.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from autograder.sandbox.calls import resolve, same_bits, student_frame, through_callbacks, with_gradients
from autograder.sandbox.channel import ChannelError, Codec, read_message, write_message
from autograder.sandbox.limits import Limits, apply_limits

PR_SET_PDEATHSIG = 1
WHOLE = "*"
"""The part name that loads the whole package (a harness run of the student's pipeline)."""


class RemoteError(Exception):
    """The grader's side of a callback or reference call failed; the student's code sees this."""


class Worker:
    """The worker's end of the channel, serving one part of one submission."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.module: ModuleType | None = None
        self.package: Path | None = None
        self.codec = Codec(object, self._callback_proxy)
        self.outputs: list[torch.Tensor] | None = None
        """With ``backward``: the tensors the grader's callables returned during the call, in order."""

    # -- requests to the grader while a call runs -------------------------------------------
    def _ask(self, header: dict[str, Any], value: Any) -> Any:
        tree, tensors = self.codec.encode(value)
        write_message(self.writer, {**header, "value": tree}, tensors)
        while True:  # the grader may call back one of our callables (a lambda passed on) before it answers
            reply, blob = read_message(self.reader)
            op = reply.get("op")
            if op == "result":
                value = self.codec.decode(reply["value"], blob)
                if self.outputs is not None and header.get("op") == "callback" and isinstance(value, torch.Tensor):
                    if value.is_floating_point():
                        value = value.detach().requires_grad_(True)
                    self.outputs.append(value)
                return value
            if op == "error":
                raise RemoteError(str(reply.get("message", "the grader refused the call")))
            if op != "callback":
                raise ChannelError(f"expected a result from the grader, got {op!r}")
            self._run_callback(reply, blob)

    def _run_callback(self, request: dict[str, Any], blob: dict[str, torch.Tensor]) -> None:
        function = self.codec.callables.get(request.get("id"))
        if function is None:
            raise ChannelError(f"no callable {request.get('id')!r} was passed")
        call = self.codec.decode(request.get("value"), blob)
        try:
            result = function(*call["args"], **call["kwargs"])
        except ChannelError:
            raise
        except Exception as error:  # noqa: BLE001 - the student's callable failed: the grader reports it
            write_message(self.writer, {"op": "error", "message": f"{type(error).__name__}: {error}"[:2000]})
            return
        tree, tensors = self.codec.encode(result)
        write_message(self.writer, {"op": "result", "value": tree}, tensors)

    def _callback_proxy(self, number: int):
        def callback(*args: Any, **kwargs: Any) -> Any:
            return self._ask({"op": "callback", "id": number}, {"args": list(args), "kwargs": kwargs})

        return callback

    def _reference_proxy(self, part: str, name: str):
        def reference(*args: Any, **kwargs: Any) -> Any:
            return self._ask({"op": "reference", "part": part, "name": name}, {"args": list(args), "kwargs": kwargs})

        reference.__name__ = reference.__qualname__ = name
        return reference

    # -- loading -----------------------------------------------------------------------------
    def load(self, part: str, package: Path, public: Path, proxied: dict[str, list[str]]) -> None:
        """Build ``diffusion``: the public modules with proxies for other parts, the student's ``part``;
        for ``part`` :data:`WHOLE`, ``package`` is the whole package (the student's parts with the kit's
        provided modules), imported as it is, with no proxies."""
        if part == WHOLE:
            spec = importlib.util.spec_from_file_location(
                "diffusion", package / "__init__.py", submodule_search_locations=[str(package)]
            )
            self.module = importlib.util.module_from_spec(spec)
            sys.modules["diffusion"] = self.module
            spec.loader.exec_module(self.module)
            self.package = package
            self.codec.schedule_class = importlib.import_module("diffusion.schedules").NoiseSchedule
            return
        root = ModuleType("diffusion")
        root.__path__ = [str(public)]
        sys.modules["diffusion"] = root
        for other, names in proxied.items():
            if other == part:
                continue
            # A public module another one imported already is the one to patch: it is what importers hold.
            module = sys.modules.get(f"diffusion.{other}") or _load_file(f"diffusion.{other}", public / f"{other}.py")
            for name in names:
                setattr(module, name, self._reference_proxy(other, name))
        self.package = package
        self.module = _load_file(f"diffusion.{part}", package / f"{part}.py")
        self.codec.schedule_class = sys.modules["diffusion.schedules"].NoiseSchedule

    # -- serving -----------------------------------------------------------------------------
    def call(self, request: dict[str, Any], blob: dict[str, torch.Tensor]) -> None:
        received: dict[str, Any] = {}
        self.codec.reset()
        decoded = {
            key: self.codec.decode(request.get(key), blob, received)
            for key in ("args", "kwargs", "instance", "cotangent")
        }
        function = resolve(self.module, request["name"], decoded["instance"])
        args, kwargs = decoded["args"], decoded["kwargs"]
        before = {key: obj.clone() for key, obj in received.items() if isinstance(obj, torch.Tensor)}
        if request.get("rng") is not None:
            torch.set_rng_state(blob[request["rng"]])
        self.outputs = [] if request.get("backward") else None
        if self.outputs is not None:
            value = through_callbacks(function, args, kwargs, self.outputs)
            self.outputs = None
        elif request.get("wrt") is None:
            value = function(*args, **kwargs)
        else:
            value = with_gradients(function, args, kwargs, request["wrt"], decoded["cotangent"])
        # Which tensors the call changed in place travels back (never their values: the grader keeps its own).
        changed = [key for key, obj in received.items() if key in before and not same_bits(before[key], obj)]
        tree, tensors = self.codec.encode({"value": value, "changed": changed, "rng": torch.get_rng_state()})
        write_message(self.writer, {"op": "return", "value": tree}, tensors)

    def serve(self) -> None:
        while True:
            try:
                request, blob = read_message(self.reader)
            except ChannelError:
                return  # the grader closed the channel: done
            try:
                if request["op"] == "load":
                    self.load(request["part"], Path(request["package"]), Path(request["public"]), request["proxied"])
                    write_message(self.writer, {"op": "loaded"})
                elif request["op"] == "call":
                    self.call(request, blob)
                else:
                    raise ChannelError(f"unknown request {request['op']!r}")
            except ChannelError:
                raise
            except BaseException as error:  # noqa: BLE001 - the student's code may raise anything
                if isinstance(error, KeyboardInterrupt):
                    raise
                write_message(self.writer, self._error_report(error))

    def _error_report(self, error: BaseException) -> dict[str, Any]:
        where = student_frame(error, self.package) if self.package is not None else ""
        return {"op": "raise", "type": type(error).__name__, "message": str(error)[:2000], "where": where}


def _load_file(name: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"the submission has no {path.name}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    package, _, short = name.rpartition(".")
    if package in sys.modules:  # `from diffusion import ddpm` reads the package's attribute, not sys.modules
        setattr(sys.modules[package], short, module)
    return module


def zygote() -> None:
    """Fork one worker per request of the grader, from a process that has imported torch once.

    The grader sends datagrams on the socket named by ``AUTOGRADER_ZYGOTE``:
    ``spawn {limits, processes}`` with three descriptors (the worker's requests pipe, its
    answers pipe and its output file) → ``{"pid": ...}``; ``kill {pid}`` → ``{"status": exit code,
    or −signal}``. A worker gets a session of its own and its part's limits, then serves its pipes.
    Student code runs only in the workers; this process runs none.
    """
    control = socket.socket(fileno=int(os.environ.pop("AUTOGRADER_ZYGOTE")))
    sys.stdout = sys.stderr
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
        except OSError:
            return
        if not message:
            return  # the grader is gone
        request = json.loads(message)
        if request["op"] == "spawn":
            zygote_pid = os.getpid()
            pid = os.fork()
            if pid == 0:
                control.close()
                _die_with(zygote_pid)
                _serve_forked(fds, request)
            for fd in fds:
                os.close(fd)
            reply = {"pid": pid}
        else:
            reply = {"status": _stop(int(request["pid"]))}
        control.send(json.dumps(reply).encode())


def _stop(pid: int) -> int:
    """Kill worker ``pid`` with its process group and return how it ended (its exit code, or −signal)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        return -signal.SIGKILL


def _die_with(parent: int) -> None:
    """In a freshly forked worker: be killed when the zygote ``parent`` dies (Linux), or end now if it already has.

    The zygote dies with the grader; in bubblewrap the PID namespace then ends every worker, but outside it a
    worker (in a session of its own) would outlive them both, running the student's code on.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _serve_forked(fds: list[int], request: dict[str, Any]) -> None:
    """In a freshly forked worker: take the pipes and output file, apply the limits, serve; never return."""
    requests_fd, answers_fd, output_fd = fds
    try:
        os.setsid()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        apply_limits(Limits(**request["limits"]), int(request["processes"]))
        reader = os.fdopen(requests_fd, "rb", buffering=1 << 20)
        writer = os.fdopen(answers_fd, "wb", buffering=0)
        Worker(reader, writer).serve()
    finally:
        os._exit(0)
