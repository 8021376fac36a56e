"""How a call the grader names is run on the student's code: which callable it is, with gradients, and
where in the student's files an error arose.

Used inside the sandbox by the worker, and by the grader's in-process runner for trusted code
(:class:`autograder.isolation.submission.LocalSubmission`), so both run a call the same way.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch


def resolve(module: ModuleType, name: str, instance: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The callable a call names: ``module.<name>``, or with ``instance`` the method ``name`` of a fresh
    ``module.<cls>(*args, **kwargs)`` whose weights are ``state`` (a state dict; ``None`` keeps its own).

    Raises:
        AttributeError: the module lacks the function, the class or the method.
        RuntimeError: the weights do not load (the provided architecture was changed).
    """
    part = module.__name__.rpartition(".")[2]
    if "." in name:  # ``module.function`` of the package loaded whole
        inner, _, name = name.rpartition(".")
        module = importlib.import_module(f"{module.__name__}.{inner}")
        part = inner
    if instance is None:
        function = getattr(module, name, None)
        if not callable(function):
            raise AttributeError(f"{part}.py defines no function {name}")
        return function
    cls = getattr(module, instance["cls"], None)
    if not isinstance(cls, type):
        raise AttributeError(f"{part}.py defines no class {instance['cls']}")
    obj = cls(*instance.get("args", ()), **instance.get("kwargs", {}))
    if instance.get("state") is not None:
        try:
            obj.load_state_dict(instance["state"])
        except (RuntimeError, AttributeError) as error:
            raise RuntimeError(
                f"{instance['cls']}'s weights do not load into yours: keep the provided architecture "
                f"(its __init__) as it is ({str(error)[:300]})"
            ) from None
    method = getattr(obj, name, None)
    if not callable(method):
        raise AttributeError(f"{instance['cls']} defines no method {name}")
    return method


def with_gradients(
    function: Callable[..., Any], args: list, kwargs: dict, wrt: list[int], cotangent: torch.Tensor | dict[str, Any]
) -> tuple[Any, list[torch.Tensor | None]]:
    """``(value, grads)``: ``function(*args, **kwargs)`` and the vector-Jacobian products
    ``cotangentᵀ · ∂value/∂args[i]`` for each ``i`` in ``wrt`` (``None`` where the value does not depend
    on ``args[i]`` through autograd). For a value that is a dict of tensors (a loss and its terms), ``cotangent``
    is a dict too, its keys the entries differentiated: ``Σₖ cotangent[k]ᵀ · ∂value[k]/∂args[i]``."""
    args = list(args)
    inputs = []
    for index in wrt:
        args[index] = args[index].detach().clone().requires_grad_(True)
        inputs.append(args[index])
    with torch.enable_grad():
        value = function(*args, **kwargs)
        keyed = isinstance(cotangent, dict)
        if keyed and not isinstance(value, dict):
            return value, [None] * len(inputs)
        outputs = [value.get(key) for key in cotangent] if keyed else [value]
        if not all(isinstance(output, torch.Tensor) and output.requires_grad for output in outputs):
            return value, [None] * len(inputs)
        grads = torch.autograd.grad(
            outputs, inputs, list(cotangent.values()) if keyed else cotangent, allow_unused=True
        )
    if keyed:
        return {key: v.detach() if isinstance(v, torch.Tensor) else v for key, v in value.items()}, list(grads)
    return value.detach(), list(grads)


def through_callbacks(
    function: Callable[..., Any], args: list, kwargs: dict, outputs: list[torch.Tensor]
) -> tuple[Any, list[torch.Tensor | None]]:
    """``(value, grads)``: ``function(*args, **kwargs)`` and the vector-Jacobian products ``1ᵀ · ∂value/∂o``
    for each tensor ``o`` of ``outputs``, the results of the callbacks the call made, in order (``None``
    where the value does not depend on ``o`` through autograd).

    ``outputs`` fills while the call runs: the caller's callback proxies append each tensor they return,
    made a leaf that requires grad (see :class:`autograder.sandbox.worker.Worker`). So a loss computed from a
    model that lives on the other side comes back with what the model's owner needs to backpropagate.
    """
    with torch.enable_grad():
        value = function(*args, **kwargs)
        grads: list[torch.Tensor | None] = [None] * len(outputs)
        if not (isinstance(value, torch.Tensor) and value.requires_grad):
            return value, grads
        live = [i for i, output in enumerate(outputs) if output.requires_grad]
        if live:
            found = torch.autograd.grad(value, [outputs[i] for i in live], torch.ones_like(value), allow_unused=True)
            for i, grad in zip(live, found, strict=True):
                grads[i] = grad
    return value.detach(), grads


def student_frame(error: BaseException, package: Path) -> str:
    """Where in the student's files ``error`` arose: ``file.py:line in function`` (``file.py:line``
    for a syntax error), from the innermost traceback frame inside ``package``; ``""`` if none is."""
    if isinstance(error, SyntaxError) and error.filename and _inside(error.filename, package):
        return f"{Path(error.filename).name}:{error.lineno}"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _inside(f.filename, package)]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""


def _inside(filename: str, directory: Path) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(directory)
    except (OSError, ValueError):
        return False


def same_bits(before: torch.Tensor, after: torch.Tensor) -> bool:
    """Whether ``after`` holds exactly ``before``'s shape, dtype and bytes (NaN included, unlike ``==``)."""
    if before.shape != after.shape or before.dtype != after.dtype:
        return False
    as_bytes = [t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8) for t in (before, after)]
    return torch.equal(*as_bytes)
