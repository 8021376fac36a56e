"""The energy distance between two samples: how the 2-D mixture's samples are scored, by the hidden
checks (samplers run with the exact denoiser) and by the harness (:func:`autograder.scoring.score_points`)."""

from __future__ import annotations

import torch


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The (squared) energy distance ``2 E|X − Y| − E|X − X′| − E|Y − Y′|`` between two samples.

    ``x`` ``(n, ...)`` and ``y`` ``(m, ...)`` are flattened to points and compared in float64 with
    Euclidean distances (``torch.cdist``). Expectations are means over all pairs (the V-statistic),
    so the value is ≥ 0, 0 only for equal samples, and for two samples of one distribution about
    ``E|X − X′| · (1/n + 1/m)``.
    """
    x = x.detach().cpu().reshape(x.shape[0], -1).double()
    y = y.detach().cpu().reshape(y.shape[0], -1).double()
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return float(2 * xy - xx - yy)
