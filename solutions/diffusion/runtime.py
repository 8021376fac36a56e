"""Where code runs and how long it takes (provided): the default device, CPU threads, and a timer that waits
for the GPU.

:mod:`diffusion.experiment` and :mod:`diffusion.evaluate` use both to time the samplers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_threads() -> int:
    """CPU threads for training and sampling: half the cores (at least one). torch's own default, every core,
    oversubscribes a machine that runs anything else and can make a run several times slower."""
    return max(1, (os.cpu_count() or 2) // 2)


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


class Autocast(torch.nn.Module):
    """A denoiser run in bfloat16 autocast on its input's device, its answer float32 (mixed precision: the model's
    matrix products in bfloat16, the schedule's maths, the samplers and the loss in full precision as before).

    Args:
        model: ``model(x_t, t, **kwargs) -> eps_hat``, e.g. a :class:`~diffusion.unet.UNet`; its ``num_classes``
            (a class-conditional model's) is this one's too.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_classes = getattr(model, "num_classes", None)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs: object) -> torch.Tensor:
        """``model(x_t, t, **kwargs)`` under ``torch.autocast(x_t.device.type, torch.bfloat16)``, as float32."""
        with torch.autocast(x_t.device.type, dtype=torch.bfloat16):
            return self.model(x_t, t, **kwargs).float()
