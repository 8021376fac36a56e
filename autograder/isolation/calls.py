"""One call of a student's function in a worker, from the grader's side: the conversation until it
answers.

The grader sends the arguments (and its global RNG state, so a function that draws from
``torch``'s global generator behaves as it would in-process), serves the worker's requests to run
a denoiser the check passed (counted here, never sent) or the reference's version of another
part, and takes back the answer and which tensors the call changed in place: their new values never
flow back (a change in place is the call's failure, see :mod:`autograder.isolation.arguments`), nor
do generators' states: the grader's arguments stay as it made them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from autograder.isolation.arguments import changed_in_place, label
from autograder.isolation.errors import StudentError, WorkLimit
from autograder.isolation.processes import WorkerProcess
from autograder.isolation.submission import Instance
from autograder.reference import load_reference
from autograder.sandbox.channel import ChannelError, Codec

REFERENCE = load_reference()


def no_reference(context: str) -> Callable[[str, str], Callable[..., Any]]:
    """A ``reference`` for :func:`call` that refuses every reference call, saying why (``context``)."""

    def reference(part: str, name: str) -> Callable[..., Any]:
        raise ChannelError(f"the worker asked for the reference's {part}.{name}; {context}")

    return reference


def call(
    worker: WorkerProcess,
    name: str,
    args: tuple,
    kwargs: dict,
    reference: Callable[..., Any],
    instance: Instance | None = None,
    wrt: Sequence[int] | None = None,
    cotangent: torch.Tensor | None = None,
) -> Any:
    """Run ``name(*args, **kwargs)`` in ``worker`` (a method of a fresh ``instance``; with its gradients
    with respect to the arguments ``wrt``, see :func:`autograder.sandbox.calls.with_gradients`); serve its
    callbacks and reference calls meanwhile."""
    label = name if instance is None else f"{instance.cls}.{name}"
    request = {"name": name, "wrt": None if wrt is None else list(wrt)}
    payload = {"instance": None if instance is None else instance.as_dict(), "cotangent": cotangent}
    return _Call(worker, label, reference).run(request, args, kwargs, payload)


def _call_arguments(request: Any) -> tuple[tuple, dict]:
    if not isinstance(request, dict) or not isinstance(request.get("args"), list | tuple):
        raise ChannelError("a malformed request from the worker")
    kwargs = request.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ChannelError("a malformed request from the worker")
    return tuple(request["args"]), kwargs


def _changed(changed: Any, sources: dict[str, Any], args: tuple, kwargs: dict) -> list[str]:
    """The labels of the tensors the worker says the call changed in place (none flows back)."""
    if not isinstance(changed, list) or not all(isinstance(sources.get(key), torch.Tensor) for key in changed):
        raise ChannelError("malformed argument changes")
    return [label(sources[key], args, kwargs) for key in changed]


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
        limits = [refusal for refusal in self.refusals if isinstance(refusal, WorkLimit)]
        if limits:  # the student's code caught the refusal and answered: the check is over all the same
            raise limits[0]
        if not isinstance(answer, dict) or {"value", "changed", "rng"} - answer.keys():
            raise self.worker.failure(self.name, "the worker's answer is malformed")
        try:
            changed = _changed(answer["changed"], sources, args, kwargs)
        except ChannelError as error:
            raise self.worker.failure(self.name, str(error)) from None
        torch.set_rng_state(answer["rng"])
        if changed:
            raise changed_in_place(self.worker.part, self.name, changed)
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
