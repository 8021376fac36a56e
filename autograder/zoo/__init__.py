"""The bug zoo: realistic student mistakes (mutants) and correct rewrites (alternatives), one module per part.

``autograder/zoo/<part>.py`` defines ``MUTANTS`` (each edits that part) and may define
``ALTERNATIVES``; :mod:`autograder.bugzoo` grades them all.
"""

from __future__ import annotations

import importlib

from autograder.parts import PARTS
from autograder.zoo.edits import Alternative, Edit, Mutant


def _catalogue() -> tuple[tuple[Mutant, ...], tuple[Alternative, ...]]:
    mutants: list[Mutant] = []
    alternatives: list[Alternative] = []
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
        alternatives += getattr(module, "ALTERNATIVES", ())
    names = [m.name for m in mutants] + [a.name for a in alternatives]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"bug-zoo names must be unique; repeated: {repeated}")
    return tuple(mutants), tuple(alternatives)


MUTANTS, ALTERNATIVES = _catalogue()

__all__ = ["ALTERNATIVES", "MUTANTS", "Alternative", "Edit", "Mutant"]
