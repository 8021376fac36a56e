"""The bug zoo: realistic student mistakes (mutants, one module per part) and correct rewrites (alternatives).

Every part that has a module here contributes its ``MUTANTS``; :mod:`autograder.bugzoo` grades them all.
"""

from __future__ import annotations

import importlib

from autograder.parts import PARTS
from autograder.zoo.alternatives import ALTERNATIVES
from autograder.zoo.edits import Alternative, Edit, Mutant


def _mutants() -> tuple[Mutant, ...]:
    mutants: list[Mutant] = []
    for part in PARTS:
        try:
            module = importlib.import_module(f"autograder.zoo.{part.name}")
        except ModuleNotFoundError as error:
            if error.name != f"autograder.zoo.{part.name}":
                raise
            continue
        wrong = [m.name for m in module.MUTANTS if m.edit.part != part.name]
        if wrong:
            raise ValueError(f"autograder/zoo/{part.name}.py holds mutants of other parts: {wrong}")
        mutants += module.MUTANTS
    names = [m.name for m in mutants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"bug-zoo mutant names must be unique; repeated: {duplicates}")
    return tuple(mutants)


MUTANTS = _mutants()

__all__ = ["ALTERNATIVES", "MUTANTS", "Alternative", "Edit", "Mutant"]
