"""How running a student's code can fail: the student's failure, or the grader's."""

from __future__ import annotations

IN_PLACE = "ChangedInPlace"
"""The error type of a call that changed an argument in place (see :mod:`autograder.isolation.arguments`)."""


class StudentError(Exception):
    """The student's code failed: it raised, could not be imported, or lacks a function."""

    def __init__(self, part: str, function: str, error_type: str, message: str, where: str = "") -> None:
        self.part, self.function, self.error_type, self.message, self.where = part, function, error_type, message, where
        super().__init__(str(self))

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
        return f"{self.part}.{self.function} raised {self.error_type}: {self.message}{where}"


class GraderError(Exception):
    """The grader could not run the student's code (the sandbox does not start or cannot run a known-good
    call): never the student's zero; the report says so and a batch grades the submission again."""
