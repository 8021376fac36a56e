"""One call of a student's function in a worker, from the grader's side: the conversation until it
answers.

The grader sends the arguments (and its global RNG state, so a function that draws from
``torch``'s global generator behaves as it would in-process), serves the worker's requests to run
a denoiser the check passed (counted here, never sent) or the reference's version of another
part, and takes back the answer and which tensors the call changed in place: their new values never
flow back (a change in place is the call's failure, see :mod:`autograder.isolation.arguments`), nor
do generators' states: the grader's arguments stay as it made them.

With ``backward`` the answer joins the grader's autograd graph: the worker returns the gradients of
its answer with respect to every tensor the grader's callables returned during the call (a model's
outputs), and :func:`attach` makes a tensor whose value is the worker's and whose gradient flows,
through those outputs, into the grader's parameters. So the grader trains its own model with the
student's loss, holding the weights, the optimiser and the graph.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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
    backward: bool = False,
    label: str | None = None,
) -> Any:
    """Run ``name(*args, **kwargs)`` in ``worker`` (a method of a fresh ``instance``; with its gradients
    with respect to the arguments ``wrt``, see :func:`autograder.sandbox.calls.with_gradients`); serve its
    callbacks and reference calls meanwhile. With ``backward``, the answer is a tensor attached to the
    graph of what the callbacks returned (:func:`attach`). ``label`` names the function in errors (default ``name``,
    or ``Class.name`` for a method)."""
    label = label or (name if instance is None else f"{instance.cls}.{name}")
    request = {"name": name, "wrt": None if wrt is None else list(wrt), "backward": backward}
    payload = {"instance": None if instance is None else instance.as_dict(), "cotangent": cotangent}
    conversation = _Call(worker, label, reference, record=backward)
    answer = conversation.run(request, args, kwargs, payload)
    if not backward:
        return answer
    try:
        value, grads = answer
        return attach(value, conversation.outputs, grads)
    except _NotALoss as error:
        raise StudentError(worker.part, label, "ValueError", f"{label} {error}") from None
    except (TypeError, ValueError) as error:
        raise worker.failure(label, f"malformed gradients ({error})") from None


def attach(value: Any, outputs: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """A tensor equal to ``value`` whose gradient with respect to each ``outputs[i]`` (tensors of the grader's
    graph) is ``grads[i]``: ``value + Σ (oᵢ · gᵢ).sum() − (the same, detached)``. ``backward()`` on it
    backpropagates the worker's vector-Jacobian products through the grader's own graph.

    Raises:
        StudentError: (raised by :func:`call`) the value is not a finite scalar tensor, or no gradient reaches
            any output (the value does not depend on them through autograd).
        ValueError: the gradients do not match the outputs (a malformed answer).
    """
    if not isinstance(grads, list) or len(grads) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs, {len(grads) if isinstance(grads, list) else 'no'} gradients")
    if not (isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point()):
        raise _NotALoss(f"returned {_describe(value)}, expected a scalar float tensor")
    if not bool(torch.isfinite(value).all()):
        raise _NotALoss(f"returned {value.item()}")
    link = value.new_zeros(())
    for output, grad in zip(outputs, grads, strict=True):
        if grad is None:
            continue
        if not isinstance(grad, torch.Tensor) or grad.shape != output.shape:
            raise ValueError(f"a gradient of shape {_describe(grad)} for an output of {tuple(output.shape)}")
        if not bool(torch.isfinite(grad).all()):
            raise _NotALoss("has NaN or inf gradients with respect to the model's outputs")
        if output.requires_grad:
            link = link + (output * grad.to(output.device, output.dtype)).sum()
    if not link.requires_grad:
        raise _NotALoss(
            "does not depend on the model's outputs through autograd: no gradient reaches the model "
            "(call the model on the noised data and keep the result in the graph)"
        )
    return value.reshape(()) + (link - link.detach())


class _NotALoss(ValueError):
    """The answer of a ``backward`` call cannot train anything (reported as the student's error by :func:`call`)."""


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


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

    def __init__(self, worker: WorkerProcess, name: str, reference: Callable[..., Any], record: bool = False) -> None:
        self.worker, self.name, self.reference = worker, name, reference
        self.outputs: list[torch.Tensor] | None = [] if record else None
        """With ``record``: every tensor a callback returned to the worker, in order (with its graph)."""
        self.codec = Codec(REFERENCE.schedules.NoiseSchedule, self._worker_callable)
        self.deadline = time.monotonic() + worker.limits.wall_seconds
        self.refusals: list[BaseException] = []
        self.depth = 0
        """How deep in grader-side work for this call we are (a reference function calling the worker back)."""

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

    @contextlib.contextmanager
    def _grader_side(self) -> Iterator[None]:
        """Bound the grader-side work of this call (the check's denoiser, the reference's functions, however
        nested) by the CPU time left before the call's deadline: past it, :class:`GraderSideTimeout`."""
        self.depth += 1
        try:
            if self.depth > 1 or threading.current_thread() is not threading.main_thread():
                yield
                return
            seconds = self.deadline - time.monotonic()
            if seconds <= 0:
                raise GraderSideTimeout
            previous = signal.signal(signal.SIGPROF, _raise_timeout)
            signal.setitimer(signal.ITIMER_PROF, seconds)
            try:
                yield
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
                signal.signal(signal.SIGPROF, previous)
        finally:
            self.depth -= 1

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
                with self._grader_side():
                    result = function(*args, **kwargs)
            except StudentError:
                raise
            except GraderSideTimeout:
                self.worker.kill()
                raise StudentError(
                    self.worker.part, self.name, "TimeoutError",
                    f"the work it asked of the grader (the check's model, the reference's functions) did not end "
                    f"within the wall-time limit of {self.worker.limits.wall_seconds:g} s (far too many steps?); "
                    "the worker was stopped",
                ) from None  # fmt: skip
            except Exception as error:  # noqa: BLE001 - the grader's side refused: the worker's code sees it
                if op == "callback":
                    self.refusals.append(error)
                self.worker.send({"op": "error", "message": f"{type(error).__name__}: {error}"[:2000]})
                continue
            if self.outputs is not None and op == "callback" and isinstance(result, torch.Tensor):
                self.outputs.append(result)
            tree, tensors = self.codec.encode(result)
            self.worker.send({"op": "result", "value": tree}, tensors)


class GraderSideTimeout(BaseException):
    """The grader-side work of a call ran past its deadline (a BaseException: no ``except Exception`` of the
    reference's or the check's code swallows it)."""


def _raise_timeout(signum: int, frame: Any) -> None:
    raise GraderSideTimeout


class RemoteCallError(Exception):
    """A callable of the worker's, called by the reference on the worker's behalf, failed there."""
