"""The bug zoo's catalogue: realistic student mistakes, and correct implementations written differently.

An :class:`Edit` changes one module of the reference: ``find`` must occur exactly once in
``solutions/diffusion/<part>.py`` and becomes ``replace``. A :class:`Mutant` is one edit that
makes a mistake students make; an :class:`Alternative` is a group of edits that rewrite
functions correctly but differently. :mod:`autograder.bugzoo` grades them.
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


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "q_sample_alpha_bar_prev",
        "ᾱ_prev where ᾱ_t belongs in q_sample (an off-by-one of the 0-based timesteps)",
        Edit(
            "forward",
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
            "return extract(schedule.alpha_bars_prev.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars_prev).sqrt(), t, x0) * noise",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "forward_by_gather",
        "q_sample and q_mean_variance with torch.gather and explicit reshapes instead of extract",
        (
            Edit(
                "forward",
                "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
                "alpha_bar = schedule.alpha_bars.gather(0, t.cpu()).to(x0).reshape(-1, *([1] * (x0.dim() - 1)))\n"
                "    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise",
            ),
        ),
    ),
)
