"""Where code runs and how long it takes (provided): the default device and a timer that waits for the GPU.

:mod:`diffusion.experiment` and :mod:`diffusion.evaluate` use both to time the samplers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def timed(sample: Callable[[], torch.Tensor], device: torch.device) -> tuple[torch.Tensor, float]:
    """Run ``sample()`` and return its result (e.g. samples ``(n, ...)``) and the wall time in seconds.

    On a GPU the time includes the queued work: ``device`` is synchronised before and after the call.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = sample()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start
