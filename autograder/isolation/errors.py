"""How running a student's code can fail: the student's failure, or the grader's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

IN_PLACE = "ChangedInPlace"
"""The error type of a call that changed an argument in place (see :mod:`autograder.isolation.arguments`)."""


class StudentError(Exception):
    """The student's code failed: it raised, could not be imported, or lacks a function."""

    def __init__(self, part: str, function: str, error_type: str, message: str, where: str = "") -> None:
        self.part, self.function, self.error_type, self.message, self.where = part, function, error_type, message, where
        self.inputs = ""
        """The call's arguments, their shapes and dtypes (:func:`~autograder.isolation.arguments.describe_call`),
        once the caller has noted them."""
        super().__init__(str(self))

    def noting_inputs(self, inputs: str) -> StudentError:
        """This error, with the arguments of the call that raised it noted (the first call's, if noted already)."""
        self.inputs = self.inputs or inputs
        return self

    @property
    def not_implemented(self) -> bool:
        return self.error_type == "NotImplementedError"

    @property
    def changed_in_place(self) -> bool:
        return self.error_type == IN_PLACE

    def __str__(self) -> str:
        where = f" ({self.where})" if self.where else ""
        if self.function == "(module)":
            return self.message
        if self.function == "(import)":
            return f"{self.part}.py could not be imported: {self.error_type}: {self.message}{where}"
        if self.changed_in_place:
            return f"{self.part}.{self.function} {self.message}"
        called = f"\n  called with {self.inputs}" if self.inputs else ""
        return f"{self.part}.{self.function} raised {self.error_type}: {self.message}{where}{called}"


class GraderError(Exception):
    """The grader could not run the student's code (the sandbox does not start or cannot run a known-good
    call): never the student's zero; the report says so and a batch grades the submission again."""


class WorkLimit(Exception):
    """The grader refused to do more work on behalf of the student's code (a check's denoiser was called past its
    limit): the verdict of the check in progress, however the student's code handled the refusal. A call that
    saw one fails with it even if the student's code caught it and answered: a sandboxed call because the
    refusal happened in the grader, an in-process call because the refusal was raised through :func:`refuse`."""


_REFUSALS: ContextVar[list[WorkLimit] | None] = ContextVar("refusals", default=None)


def refuse(limit: WorkLimit) -> WorkLimit:
    """``limit``, noted for the in-process call in progress (:func:`refusals`): ``raise refuse(limit)``."""
    noted = _REFUSALS.get()
    if noted is not None:
        noted.append(limit)
    return limit


@contextmanager
def refusals() -> Iterator[list[WorkLimit]]:
    """The refusals (:func:`refuse`) raised while the block runs, whatever caught them."""
    noted: list[WorkLimit] = []
    token = _REFUSALS.set(noted)
    try:
        yield noted
    finally:
        _REFUSALS.reset(token)
