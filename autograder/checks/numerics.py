"""Numerics shared by the hidden checks: float32 slack of ``1 − ᾱ``, the Monte Carlo KL of two Gaussians and
the calibrated thresholds of counting tests.

Tolerances of single comparisons are the framework's (:func:`~autograder.checks.framework.tolerances`,
:func:`~autograder.checks.framework.rtol_for`); this module holds what several parts' checks compute
alike to size those tolerances or to judge an answer without the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from autograder.checks.framework import tolerances
from autograder.checks.strategies import Case
from autograder.reference import load_reference

REFERENCE = load_reference()
extract = REFERENCE.schedules.extract


def coefficient(table: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``table[t]`` in float64, shaped ``(B, 1, ..., 1)`` to broadcast against ``x`` (for tolerances and identities)."""
    return extract(table, t, x.to(torch.float64))


FALSE_FAILURE = 1e-9
"""The largest probability with which one counting test may fail a correct implementation."""


def binomial_threshold(n: int, p: float, alpha: float = FALSE_FAILURE) -> int:
    """The smallest count ``k`` with ``P(Binomial(n, p) ≥ k) ≤ alpha``, summed exactly.

    A test that fails when a count of ``n`` independent events of probability ``p`` reaches ``k`` fails a
    correct implementation with probability at most ``alpha``.
    """
    tail = 0.0
    for k in range(n, -1, -1):
        term = math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if tail + term > alpha:
            return k + 1
        tail += term
    return 0


def float32_slack(case: Case, schedule, index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Factor (≥ 1, shaped like ``x``'s batch) by which a correct float32 answer's error may exceed the
    framework's float32 tolerance ``rtol``: ``1 − ᾱ`` formed from ᾱ rounded to float32 is off by ``2⁻²⁴/(1 − ᾱ)``
    relative, at the ``index`` whose ``1 − ᾱ`` the answer divides by, so

        slack = 1 + 4 · 2⁻²⁴ / (rtol · (1 − ᾱ_index)).

    Exactly 1 for float64."""
    if case.dtype == torch.float64:
        return torch.ones_like(coefficient(schedule.alpha_bars, index, x))
    rtol = tolerances(torch.float32)[0]
    return 1 + 4 * 2**-24 / (rtol * coefficient(1 - schedule.alpha_bars, index, x))


@dataclass(frozen=True)
class ScalarGaussians:
    """Two 1-D Gaussians ``p1 = N(mean1, e^logvar1)`` and ``p2 = N(mean2, e^logvar2)``; the repr is the
    ``normal_kl`` call on them."""

    mean1: float
    logvar1: float
    mean2: float
    logvar2: float

    def __repr__(self) -> str:
        return f"normal_kl({self.mean1:.3g}, {self.logvar1:.3g}, {self.mean2:.3g}, {self.logvar2:.3g}) (0-dim float64)"


MC_SAMPLES = 1_000_000
MC_STANDARD_ERRORS = 5.0
"""The Monte Carlo estimate is within 5 standard errors of the truth (deterministically: one fixed draw)."""
_z = torch.randn(MC_SAMPLES, generator=torch.Generator().manual_seed(2014), dtype=torch.float64)
MC_MOMENTS = tuple(float((_z**k).mean()) for k in (1, 2, 3, 4))
"""Sample moments E[z^k], k = 1..4, of one fixed draw of N standard normals."""
del _z


def monte_carlo_kl(g: ScalarGaussians) -> tuple[float, float]:
    """The Monte Carlo estimate of ``KL(p1 ‖ p2) = E_{x~p1}[log p1(x) − log p2(x)]`` and its standard error.

    With ``x = mean1 + σ1·z`` the log-ratio is the quadratic ``r(z) = a + b·z + c·z²`` (``a = ½(logvar2 −
    logvar1 + d²/σ2²)``, ``b = d·σ1/σ2²``, ``c = ½(σ1²/σ2² − 1)``, ``d = mean1 − mean2``), so its average and
    variance over the N draws follow exactly from the draws' first four sample moments.
    """
    var1, var2, d = math.exp(g.logvar1), math.exp(g.logvar2), g.mean1 - g.mean2
    a, b, c = 0.5 * (g.logvar2 - g.logvar1 + d * d / var2), d * math.sqrt(var1) / var2, 0.5 * (var1 / var2 - 1)
    m1, m2, m3, m4 = MC_MOMENTS
    mean = a + b * m1 + c * m2
    mean_square = a * a + b * b * m2 + c * c * m4 + 2 * a * b * m1 + 2 * a * c * m2 + 2 * b * c * m3
    return mean, math.sqrt(max(mean_square - mean * mean, 0.0) / MC_SAMPLES)
