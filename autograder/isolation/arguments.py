"""The grader's arguments stay the grader's: a student function that changes one in place fails, and
nothing it did to them reaches what the grader reads afterwards.

In the sandbox the worker has its own copies and reports which tensors the call changed
(:mod:`autograder.isolation.calls`); in the grader's process (trusted code, the bug zoo) a
:class:`Snapshot` restores every tensor and generator the call received, so both ways grade alike.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from autograder.isolation.errors import IN_PLACE, StudentError
from autograder.reference import reference_module
from autograder.sandbox.calls import same_bits


def leaves(value: Any) -> Iterator[torch.Tensor | torch.Generator]:
    """Every tensor and generator in ``value``: through tuples, lists, dicts and dataclasses (a schedule)."""
    if isinstance(value, torch.Tensor | torch.Generator):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from leaves(getattr(value, field.name))


def describe(value: Any) -> str:
    """A value as a student reads it in a failure: a tensor's shape and dtype, a schedule's length, a number."""
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, {str(value.dtype).removeprefix('torch.')}"
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)[:40]
    if dataclasses.is_dataclass(value) and type(value).__name__ == "NoiseSchedule":
        return f"NoiseSchedule of T = {len(value.betas)}"
    if isinstance(value, tuple | list) and len(value) <= 6:
        inner = ", ".join(describe(item) for item in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, torch.Generator):
        return "a torch.Generator"
    return "a callable (a model)" if callable(value) else "an object"  # the grader's own classes are not named


def describe_call(args: Sequence[Any], kwargs: dict[str, Any], signature_of: Callable | None = None) -> str:
    """The arguments of a call, each named (by ``signature_of``'s parameters where it has one, else by position)
    with its shape and dtype: what a student needs to reproduce an error their code raised."""
    names = [f"argument {i + 1}" for i in range(len(args))]
    if signature_of is not None:
        try:
            parameters = [name for name in inspect.signature(signature_of).parameters if name != "self"]
        except (TypeError, ValueError):
            parameters = []
        names = [parameters[i] if i < len(parameters) else name for i, name in enumerate(names)]
    pairs = [*zip(names, args, strict=True), *kwargs.items()]
    return "; ".join(f"{name}: {describe(value)}" for name, value in pairs)[:600]


def reference_signature(part: str, label: str) -> Callable | None:
    """The reference's function (or ``Class.method``) ``label`` of ``part``, whose parameters name a call's
    arguments; ``None`` when the reference has none of that name."""
    target: Any = reference_module(part)
    for attribute in label.split("."):
        target = getattr(target, attribute, None)
    return target if callable(target) else None


def label(tensor: torch.Tensor, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """How the student knows ``tensor``: ``x0``-style keyword, ``argument 2``, or ``the schedule's betas``."""
    for name, value in [*((f"argument {i + 1}", a) for i, a in enumerate(args)), *kwargs.items()]:
        if value is tensor:
            return name if not name.startswith("argument") else f"its {name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                if getattr(value, field.name) is tensor:
                    return f"the {type(value).__name__}'s {field.name}"
        if any(leaf is tensor for leaf in leaves(value)):
            return f"a tensor inside {name}"
    return "one of its arguments"


def changed_in_place(part: str, function: str, labels: Sequence[str]) -> StudentError:
    """The failure of a call that changed the tensors ``labels`` it was given."""
    return StudentError(
        part,
        function,
        IN_PLACE,
        f"changed {', '.join(dict.fromkeys(labels))} in place: a function must leave its arguments as they were "
        "(the caller still needs them); compute into new tensors instead of writing into the ones passed",
    )


class Snapshot:
    """Copies of every tensor's bytes and generator's state in a call's arguments, to restore afterwards."""

    def __init__(self, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        self.args, self.kwargs = args, kwargs
        found = {id(leaf): leaf for leaf in leaves((args, kwargs))}.values()
        self.tensors = [(t, t.detach().clone()) for t in found if isinstance(t, torch.Tensor)]
        self.generators = [(g, g.get_state()) for g in found if isinstance(g, torch.Generator)]

    def restore(self) -> list[str]:
        """Put every tensor and generator back as it was; the labels of the tensors the call had changed."""
        changed = []
        for tensor, copy in self.tensors:
            if not same_bits(copy, tensor):
                changed.append(label(tensor, self.args, self.kwargs))
                if tensor.shape == copy.shape and tensor.dtype == copy.dtype:
                    with torch.no_grad():
                        tensor.copy_(copy)
        for generator, state in self.generators:
            generator.set_state(state)
        return changed
