"""The bug zoo's catalogue: realistic student mistakes, and correct implementations written differently.

Each entry edits one module of the reference (see :mod:`autograder.bugzoo` for how they are
graded). ``find`` must occur exactly once in ``solutions/diffusion/<part>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """A change to the reference's ``diffusion/<part>.py``: a mistake (``correct=False``) or a correct rewrite."""

    name: str
    part: str
    description: str
    find: str
    replace: str
    correct: bool = False


EDITS: tuple[Edit, ...] = (
    Edit(
        "q_sample uses alpha_bars_prev",
        "forward",
        "ᾱ_prev where ᾱ_t belongs (an off-by-one of the 0-based timesteps)",
        "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
        "return extract(schedule.alpha_bars_prev.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars_prev).sqrt(), t, x0) * noise",
    ),
)
