"""The grader's side of the sandboxed workers: a :class:`~autograder.isolation.submission.Submission`
whose calls run in another process (:mod:`autograder.isolation.calls`).

The parent draws every input and does every comparison; the worker only runs the student's
function. A worker that crashes, hangs past its wall-time limit or answers garbage fails the call
in flight with a :class:`StudentError`, and the next call starts a fresh worker. Workers are forked
from one sandboxed :class:`~autograder.isolation.processes.Zygote` per submission.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from autograder.isolation import calls
from autograder.isolation.arguments import describe_call, reference_signature
from autograder.isolation.errors import GraderError, StudentError, WorkLimit
from autograder.isolation.intake import find_package, package_fingerprint
from autograder.isolation.launcher import isolation
from autograder.isolation.processes import PUBLIC, WorkerProcess, Zygote
from autograder.isolation.submission import Instance
from autograder.parts import PART_BY_NAME, PART_NAMES
from autograder.reference import reference_module
from autograder.sandbox.channel import ChannelError
from autograder.sandbox.limits import Limits


def student_functions(public: Path = PUBLIC) -> dict[str, list[str]]:
    """Per part, the functions the modules in ``public`` leave as stubs (they raise ``NotImplementedError``);
    none for a module that does not parse."""
    functions = {}
    for part in PART_NAMES:
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


PROOF_ARGS = (torch.arange(4, dtype=torch.float64), torch.tensor([1, 3]), torch.zeros(2, 3))
PROOF_ANSWER = torch.tensor([[1.0], [3.0]])
"""The known-good call: ``extract(a, t, x)`` of the public (provided) ``schedules`` module, and its answer."""
PROOF_ATTEMPTS = 3
IMPORT_SECONDS_AFTER_A_HANG = 5.0
"""The import limit of a submission's later parts once one of its modules hung at import (a module imports in
milliseconds in a worker forked from a zygote that has imported torch): ten hanging parts cost one limit, not ten."""
WORKER_FAILURES = ("WorkerDied", "TimeoutError")
"""How a worker that did not answer is reported (see :meth:`WorkerProcess.failure`): not an exception of the
student's code, so the sandbox is proven again before the student is told."""


class RemoteSubmission:
    """A submission whose functions run in sandboxed workers, one per part (see the module docstring).

    The workers are forked from one :class:`Zygote` per submission, which imports torch once; a
    part's worker starts when a check first asks for that part, and the previous part's stops.

    Args:
        root: the submission (a ``diffusion/`` package or its ``.py`` files laid flat).
        limits: the workers' limits, per part name, with ``"default"`` for the others.
    """

    keeps_workers = False
    """Whether a part's worker imports the whole package and stays up while another part's runs
    (:class:`WholeSubmission`)."""

    def __init__(self, root: Path, limits: dict[str, Limits] | None = None) -> None:
        self.package = find_package(Path(root)).resolve()
        self.fingerprint = package_fingerprint(self.package)
        self.limits = limits or {}
        self.proxied = student_functions()
        self.zygote = Zygote(self.package, self._widest())
        self.workers: dict[str, WorkerProcess] = {}
        self.prove_sandbox()
        self.import_errors: dict[str, StudentError] = {}
        self.import_hung = False
        """Whether a part's module hung at import (after the sandbox proved it runs code)."""
        self.stopped: dict[str, StudentError | WorkLimit] = {}
        """Parts whose worker died or was stopped, or whose code ran a check's denoiser past its limit, during the
        current check: it fails at once from then on."""

    def prove_sandbox(self, attempts: int = PROOF_ATTEMPTS) -> None:
        """Run a known-good call in a fresh worker (the public ``schedules.extract``), with a fresh zygote after
        each failure, up to ``attempts`` times.

        Raises:
            GraderError: no attempt succeeded: the sandbox cannot run code here, whatever the submission.
        """
        failure = ""
        for _ in range(attempts):
            if not self.zygote.alive():
                self.zygote.close()
                self.zygote = Zygote(self.package, self._widest())
            worker = WorkerProcess(self.zygote, "schedules", self._widest())
            try:
                worker.load({}, public=True)
                got = calls.call(worker, "extract", PROOF_ARGS, {}, calls.no_reference("the proof needs none"))
                if isinstance(got, torch.Tensor) and torch.equal(got, PROOF_ANSWER):
                    return
                failure = f"it answered {got!r:.200}"
            except StudentError as error:
                failure = f"{error.error_type}: {error.message}"
            finally:
                worker.kill()
            self.zygote.close()
        raise GraderError(
            f"the sandbox could not run a known-good call ({attempts} attempts; {isolation().description}): "
            f"{failure[:1500]}"
        )

    @property
    def protections(self) -> str:
        """What isolates the workers here, for the report."""
        budget = self.zygote.budget
        tree = budget.description if budget else "limits per process only (no control group could be made here)"
        return f"{isolation().description}; {tree}"

    def next_check(self) -> None:
        """A new check starts: a worker stopped in the previous one may be started afresh."""
        self.stopped.clear()

    def _limits(self, part: str) -> Limits:
        return self.limits.get(part, self.limits.get("default", Limits()))

    def _widest(self) -> Limits:
        """The largest of every limit over the parts: the zygote's (a worker can lower a limit, not raise it)."""
        configured = [*self.limits.values(), self._limits("")]
        return Limits(**{f.name: max(getattr(c, f.name) for c in configured) for f in fields(Limits)})

    def _worker(self, part: str) -> WorkerProcess:
        if part in self.import_errors:
            raise self.import_errors[part]
        if not (self.package / f"{part}.py").is_file():
            raise StudentError(part, "(module)", "FileNotFoundError", f"the submission has no {part}.py")
        worker = self.workers.get(part)
        if worker is not None and worker.alive():
            return worker
        for other in list(self.workers):
            if not self.keeps_workers or not self.workers[other].alive():
                self.workers.pop(other).kill()
        if not self.zygote.alive():  # student code killed it: a new one
            self.zygote.close()
            self.zygote = Zygote(self.package, self._widest())
        limits = self._limits(part)
        if self.import_hung:  # a module of this submission hung at import: the next ones get a few seconds
            limits = replace(limits, import_seconds=min(limits.import_seconds, IMPORT_SECONDS_AFTER_A_HANG))
        try:
            worker = self._start(part, limits)
        except StudentError as error:
            if error.error_type in WORKER_FAILURES:
                self.prove_sandbox()  # a sandbox that cannot run a known-good call is the grader's failure
            self.import_hung |= error.error_type == "TimeoutError"
            self.import_errors[part] = error
            raise
        self.workers[part] = worker
        return worker

    def _start(self, part: str, limits: Limits) -> WorkerProcess:
        """A worker for ``part``, its module imported (raises :class:`StudentError` as :meth:`WorkerProcess.load`)."""
        worker = WorkerProcess(self.zygote, part, limits)
        try:
            worker.load(self.proxied, whole=self.keeps_workers)
        except StudentError:
            worker.kill()
            raise
        return worker

    def _named(self, part: str, name: str) -> str:
        """What a call of ``part.name`` asks its worker for."""
        return name

    def _run(self, part: str, name: str, args: tuple, kwargs: dict, **options: Any) -> Any:
        if part in self.stopped:  # no fresh worker (and its start-up) per Hypothesis example after a crash
            raise self.stopped[part]
        worker = self._worker(part)
        try:
            named, reference = self._named(part, name), self._reference_for(part)
            label = None if named == name else name  # a whole-package call is named by its function only
            return calls.call(worker, named, args, kwargs, reference, label=label, **options)
        except StudentError as error:
            if worker.killed:
                self.stopped[part] = error
            raise error.noting_inputs(describe_call(args, kwargs, reference_signature(part, name))) from None
        except WorkLimit as error:  # the check failed: no more of the grader's work on it (Hypothesis would shrink)
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

    def differentiable(self, part: str, name: str) -> Callable[..., torch.Tensor]:
        """A callable for the student's ``part.name`` whose answer (a scalar: a loss) is attached to the graph of
        the tensors the grader's callables (a model) returned while it ran: ``backward()`` on it reaches the
        grader's parameters (:func:`autograder.isolation.calls.attach`)."""
        return lambda *args, **kwargs: self._run(part, name, args, kwargs, backward=True)

    def _reference_for(self, graded: str) -> Callable[[str, str], Callable[..., Any]]:
        """The reference's functions of the parts ``graded`` needs (:attr:`autograder.parts.Part.needs`), on
        request of its worker; a function of any other part is refused where the student's code called it.

        Raises:
            ChannelError: the worker asked for something that is not a student function of a part.
        """
        needs = PART_BY_NAME[graded].needs

        def reference(part: str, name: str) -> Callable[..., Any]:
            if name not in self.proxied.get(part, ()):
                raise ChannelError(f"the worker asked for the reference's {part}.{name}, which is not a function")
            if part not in needs:
                return _refused(graded, f"{part}.{name}", needs)
            return getattr(reference_module(part), name)

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


class WholeSubmission(RemoteSubmission):
    """A submission whose functions run with its whole package: the harness's experiment (no part isolation:
    the student's sampler uses the student's posterior). One worker per part imports the whole package; the
    workers stay up together, so a function may run while another part's waits on the grader (DDIM calls the
    grader's guided denoiser, which calls the student's ``cfg_eps`` in the ``guidance`` worker).

    ``root`` is the package as the harness lays it out (:func:`autograder.harness.runner.overlay`): the kit's
    provided modules with the submission's parts.
    """

    keeps_workers = True

    def _named(self, part: str, name: str) -> str:
        return f"{part}.{name}"

    def _reference_for(self, graded: str) -> Callable[[str, str], Callable[..., Any]]:
        return calls.no_reference("the whole package runs without the reference")


def _refused(graded: str, function: str, needs: tuple[str, ...]) -> Callable[..., Any]:
    """A stand-in for a function ``graded`` may not use: calling it raises, in the student's code, an error
    that says which parts it may use."""
    allowed = ", ".join(needs) or "none"

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(
            f"{graded}.py called {function}, which it may not use while {graded} is graded: it may use the "
            f"other parts {allowed} (write the rest yourself)"
        )

    return refused
