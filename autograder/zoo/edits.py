"""The bug zoo's vocabulary: an edit of the reference, a mutant (a mistake), an alternative (a correct rewrite).

An :class:`Edit` changes one module of the reference: ``find`` must occur exactly once in
``solutions/diffusion/<part>.py`` and becomes ``replace``. A :class:`Mutant` is one edit that
makes a mistake students make; an :class:`Alternative` is a group of edits that rewrite
functions correctly but differently. The catalogue is in the sibling modules, one per part;
:mod:`autograder.bugzoo` grades it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace ``find`` (exactly once) by ``replace`` in the reference's ``diffusion/<part>.py``."""

    part: str
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    """A student mistake: it must lose points in its own part."""

    name: str
    description: str
    edit: Edit


@dataclass(frozen=True)
class Alternative:
    """A correct implementation written differently: it must keep full marks."""

    name: str
    description: str
    edits: tuple[Edit, ...]
