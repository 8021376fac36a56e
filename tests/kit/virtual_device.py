"""A second device on a machine that has only the CPU, to test that code follows the device it is asked to use.

:data:`VIRTUAL` (``cpu:0``) is the device asked for. Its tensors are CPU tensors that :class:`VirtualDevice` (a
torch function mode) marks as living there: those made with ``device=cpu:0`` or moved there with ``.to(...)`` (or
``Module.to``), and every result of an operation on one of them; ``tensor.device`` answers ``cpu:0`` for them, so
``x.to(y.device)`` follows ``y``. A move to the host (``.cpu()``, ``.to("cpu")``) copies, as from a GPU. Each
operation that mixes a tensor on the device with one of more than one element on the host, which a GPU refuses
(``Expected all tensors to be on the same device``), is recorded with where it happened, and so is each call of a
watched module (the grader's models) whose tensor arguments or weights are not on the device.
"""

from __future__ import annotations

import traceback
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

VIRTUAL = torch.device("cpu", 0)
CROSSING = {"copy_", "__set__", "_has_compatible_shallow_copy_type"}
"""Operations that may take tensors of two devices (a copy between them; ``Module.to`` swapping a weight's data)."""


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]


def _asked(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> torch.device | torch.Tensor | None:
    """The device a call asks for (or the tensor whose device ``.to(other)`` asks for), if any."""
    name = getattr(func, "__name__", "")
    if kwargs.get("device") is not None:
        return torch.device(kwargs["device"])
    if name == "cpu":
        return torch.device("cpu")
    if name == "to":
        for arg in args[1:]:
            if isinstance(arg, torch.Tensor):
                return arg
            if isinstance(arg, str | torch.device):
                return torch.device(arg)
    return None


class VirtualDevice(TorchFunctionMode):
    """The mode that marks the tensors on :data:`VIRTUAL` and records what a GPU would refuse (``violations``)."""

    def __init__(self) -> None:
        super().__init__()
        self.marked: dict[int, weakref.ref] = {}
        self.violations: Counter[tuple[str, str]] = Counter()
        self.model_calls = 0

    def on(self, tensor: Any) -> bool:
        """Whether ``tensor`` is on the device."""
        ref = self.marked.get(id(tensor)) if isinstance(tensor, torch.Tensor) else None
        return ref is not None and ref() is tensor

    def mark(self, value: Any, on_device: bool = True) -> None:
        for tensor in _tensors(value):
            if on_device:
                key = id(tensor)
                self.marked[key] = weakref.ref(tensor, lambda _, key=key: self.marked.pop(key, None))
            elif self.on(tensor):
                del self.marked[id(tensor)]

    def record(self, what: str) -> None:
        self.violations[(what, "".join(traceback.format_stack(limit=14)[:-2]))] += 1

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        kwargs = kwargs or {}
        if getattr(func, "__self__", None) is torch._C.TensorBase.device:  # tensor.device
            return VIRTUAL if self.on(args[0]) else func(*args, **kwargs)
        asked, tensors = _asked(func, args, kwargs), _tensors((args, kwargs))
        on_device = any(self.on(t) for t in tensors)
        if asked is None and on_device and getattr(func, "__name__", "") not in CROSSING:
            host = [tuple(t.shape) for t in tensors if not self.on(t) and t.numel() > 1]
            if host:
                self.record(f"{getattr(func, '__name__', func)} of tensors on the device with host tensors {host}")
        to_device = asked == VIRTUAL if isinstance(asked, torch.device) else self.on(asked)
        if to_device and getattr(func, "__name__", "") == "to" and not self.on(args[0]):
            kwargs = {**kwargs, "copy": True}  # a move to the device copies
        out = func(*args, **kwargs)
        if asked is None:
            self.mark(out, on_device)
            return out
        if tensors and out is tensors[0] and self.on(out) and not to_device:
            out = out.clone()  # a move to the host copies: the tensor on the device stays there
        self.mark(out, to_device)
        return out

    @contextmanager
    def watching(self, model_classes: set[str]) -> Iterator[VirtualDevice]:
        """This mode, with ``Module.to(cpu:0)`` marking the module's weights and each call of a module whose class
        is named in ``model_classes`` checked: its tensor arguments and weights on the device."""
        move = torch.nn.Module.to

        def to(module: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
            out = move(module, *args, **kwargs)
            asked = kwargs.get("device", next((a for a in args if isinstance(a, str | torch.device)), None))
            if asked is not None and torch.device(asked) == VIRTUAL:
                self.mark([*module.parameters(), *module.buffers()])
            return out

        def check(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            if type(module).__name__ in model_classes:
                self.model_calls += 1
                host = [tuple(t.shape) for t in _tensors(args) if not self.on(t) and t.numel() > 1]
                weights = [name for name, w in module.named_parameters() if not self.on(w)]
                if host or weights:
                    self.record(f"{type(module).__name__} called with host tensors {host}, host weights {weights[:3]}")

        torch.nn.Module.to = to
        hook = torch.nn.modules.module.register_module_forward_pre_hook(check)
        try:
            with self:
                yield self
        finally:
            hook.remove()
            torch.nn.Module.to = move

    def report(self) -> str:
        return "\n".join(f"{count}x {what}\n{where}" for (what, where), count in self.violations.most_common(5))
