"""The handle through which checks call a student's functions.

Checks never import student code themselves: they ask a :class:`Submission` for
``function(part, name)`` and call what it returns. :class:`LocalSubmission` loads the student's
module in this process; a sandboxed runner implements the same interface over a channel to a
worker process, without any change to the checks.

Part isolation: the student's module for part ``P`` is loaded on its own, and every
``diffusion.<Q>`` it imports for another part ``Q`` is the reference's module, so a bug in one
part costs points in that part only.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import torch

from autograder.isolation.arguments import Snapshot, changed_in_place, describe_call, reference_signature
from autograder.isolation.errors import StudentError, WorkLimit, refusals
from autograder.isolation.intake import find_package, package_fingerprint
from autograder.parts import PART_NAMES
from autograder.reference import load_reference
from autograder.sandbox.calls import resolve, student_frame, with_gradients

REFERENCE = load_reference()


@dataclass(frozen=True)
class Instance:
    """A fresh object of the student's class: ``cls(*args, **kwargs)``, then the weights ``state`` loaded
    (a state dict; ``None`` keeps the object's own). Its methods are what a check calls."""

    cls: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"cls": self.cls, "args": list(self.args), "kwargs": self.kwargs, "state": self.state}


class Submission(Protocol):
    """What a check may ask of a submission. Every callable it returns raises :class:`StudentError`
    when the student's code fails."""

    fingerprint: str
    """The SHA-256 of the package graded (:func:`~autograder.isolation.intake.package_fingerprint`): the same
    files, the same fingerprint; the hidden checks key what they draw per submission with it."""

    def function(self, part: str, name: str) -> Callable[..., Any]:
        """A callable for the student's ``diffusion.<part>.<name>``."""
        ...

    def method(self, part: str, instance: Instance, name: str) -> Callable[..., Any]:
        """A callable for the method ``name`` of a fresh ``instance`` of the student's class (one per call)."""
        ...

    def gradient(self, part: str, name: str, wrt: Sequence[int]) -> Callable[..., Any]:
        """``g(*args, cotangent=v, **kwargs) -> (value, grads)``: the student's ``name`` and the
        vector-Jacobian products ``vᵀ · ∂value/∂args[i]`` for ``i`` in ``wrt`` (``None`` where no gradient
        flows), taken where the student's code runs."""
        ...

    def next_check(self) -> None:
        """Called before each check (a sandboxed submission may restart a worker stopped in the last one)."""
        ...


class LocalSubmission:
    """A submission loaded into this process, one part at a time (no sandbox: for trusted code and tests)."""

    def __init__(self, root: Path) -> None:
        self.package = find_package(Path(root)).resolve()
        self.fingerprint = package_fingerprint(self.package)
        self._modules: dict[str, ModuleType | StudentError] = {}

    def module(self, part: str) -> ModuleType:
        """The student's module for ``part``, loaded against the reference's other parts."""
        if part not in self._modules:
            self._modules[part] = self._load(part)
        loaded = self._modules[part]
        if isinstance(loaded, StudentError):
            raise loaded
        return loaded

    def _load(self, part: str) -> ModuleType | StudentError:
        path = self.package / f"{part}.py"
        if not path.is_file():
            return StudentError(part, "(module)", "FileNotFoundError", f"the submission has no {part}.py")
        # A private package per graded part: relative imports of other parts reach the reference.
        package_name = f"_submission_{id(self):x}_{part}"
        package = ModuleType(package_name)
        package.__path__ = [str(self.package)]
        sys.modules[package_name] = package
        for other in PART_NAMES:
            if other != part:
                sys.modules[f"{package_name}.{other}"] = getattr(REFERENCE, other)
        spec = importlib.util.spec_from_file_location(f"{package_name}.{part}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as error:  # noqa: BLE001 - any failure to import is the student's, reported
            if isinstance(error, KeyboardInterrupt):
                raise
            return StudentError(part, "(import)", type(error).__name__, str(error), student_frame(error, self.package))
        return module

    def next_check(self) -> None:
        """Nothing to reset in-process."""

    def _guarded(self, part: str, label: str, run: Callable[[], Any]) -> Any:
        """``run()``, with any failure of the student's code as a :class:`StudentError` of ``part.label``."""
        try:
            return run()
        except (StudentError, WorkLimit):
            raise
        except BaseException as error:  # noqa: BLE001 - student code may raise anything, even SystemExit
            if isinstance(error, KeyboardInterrupt):
                raise
            raise StudentError(
                part, label, type(error).__name__, str(error), student_frame(error, self.package)
            ) from None

    def _protected(self, part: str, label: str, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """``fn(*args, **kwargs)`` guarded (:meth:`_guarded`), with every tensor and generator of the arguments
        restored afterwards, as the sandbox leaves them; a change in place is the call's failure, and so is a
        refusal of the grader's (:class:`~autograder.isolation.errors.WorkLimit`), caught or not."""
        snapshot = Snapshot(args, kwargs)
        try:
            with refusals() as refused:
                try:
                    result = self._guarded(part, label, lambda: fn(*args, **kwargs))
                except StudentError as error:
                    if refused:  # the grader's refusal is why the student's code failed: its message is clearer
                        raise refused[0] from None
                    raise error.noting_inputs(describe_call(args, kwargs, reference_signature(part, label))) from None
        finally:
            changed = snapshot.restore()
        if refused:  # the student's code caught the grader's refusal: the check is over all the same
            raise refused[0]
        if changed:
            raise changed_in_place(part, label, changed)
        return result

    def function(self, part: str, name: str) -> Callable[..., Any]:
        module = self.module(part)
        fn = getattr(module, name, None)
        if not callable(fn):
            raise StudentError(part, name, "AttributeError", f"{part}.py defines no function {name}")

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._protected(part, name, fn, args, kwargs)

        return call

    def method(self, part: str, instance: Instance, name: str) -> Callable[..., Any]:
        label = f"{instance.cls}.{name}"

        def build() -> Callable[..., Any]:
            with torch.random.fork_rng(devices=[]):  # building draws initial weights: not from the caller's RNG
                return resolve(self.module(part), name, instance.as_dict())

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._protected(part, label, self._guarded(part, label, build), args, kwargs)

        return call

    def gradient(self, part: str, name: str, wrt: Sequence[int]) -> Callable[..., Any]:
        def call(*args: Any, cotangent: torch.Tensor, **kwargs: Any) -> Any:
            fn = self._guarded(part, name, lambda: resolve(self.module(part), name))
            return self._protected(
                part, name, lambda *a, **k: with_gradients(fn, list(a), k, list(wrt), cotangent), args, kwargs
            )

        return call
