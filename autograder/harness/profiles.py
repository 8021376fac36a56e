"""The harness's profiles: what each trains and samples (plans for :func:`diffusion.evaluate.run_plan`),
within what limits.

- ``ci``: the 2-D mixture with a cosine schedule of 100 steps; under a minute on two CPU cores.
- ``cpu``: the 2-D mixture with the linear schedule of 1000 steps (DDPM-1000 against DDIM at 10–100
  steps), and 28×28 images (Fashion-MNIST when installed, else shapes) in pixel space and in the
  latent space of a VAE (parts 9 and 10); the image plans are measured only (no points yet).
- ``gpu``: the same at a larger scale, on CUDA.

Who owns the experiment: the mixture plans and the pixel-space image plan run grader-side
(:mod:`autograder.harness.experiment`: data, labels, model, optimiser and clock are the grader's; only the
student's functions run sandboxed). The latent plan (``latent=True``) is NOT yet owned by the grader: it still
runs :func:`diffusion.evaluate.run_plan` whole inside the sandbox (:mod:`autograder.harness.runner`), so its
figures are the worker's word; it is measured only and carries no points. In grader-owned plans the model is
the grader's, internals included: its timestep embedding is the reference's (part 5 is graded by its checks).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from autograder.sandbox.limits import Limits


@dataclass(frozen=True)
class Profile:
    """A named set of plans and the worker's limits for them."""

    name: str
    plans: dict[str, dict[str, Any]]
    limits: Limits = field(default_factory=Limits)
    description: str = ""
    resources: dict[str, float] = field(default_factory=dict)
    """What a cluster's worker must have to run this profile (Dask worker resources, see
    :attr:`autograder.tasks.Task.resources`): a GPU for ``gpu``. The harness runs one submission at a time
    (``harness``); a class harness on a cluster would pass these with its tasks."""


MIXTURE_CI = {
    "data": "mixture2d",
    "T": 100,
    "schedule": "cosine",
    "width": 64,
    "train_steps": 800,
    "batch_size": 128,
    "lr": 2e-3,
    "n_samples": 600,
    "ddim": ((10, 0.0), (20, 0.0), (50, 0.0), (50, 1.0)),
    "guidance_scales": (0.0, 1.0, 3.0),
    "guidance_steps": 20,
}
MIXTURE_CPU = {
    "data": "mixture2d",
    "T": 1000,
    "schedule": "linear",
    "width": 128,
    "train_steps": 1500,
    "n_samples": 2000,
    "ddim": ((10, 0.0), (20, 0.0), (50, 0.0), (100, 0.0), (50, 1.0)),
    "guidance_scales": (0.0, 1.0, 2.0, 4.0),
    "guidance_steps": 50,
}

IMAGES_CPU = {
    "n_train": 10_000,
    "T": 1000,
    "schedule": "linear",
    "width": 16,
    "train_steps": 1500,
    "batch_size": 64,
    "lr": 2e-3,
    "n_samples": 100,
    "ddim": ((10, 0.0), (20, 0.0), (50, 0.0), (100, 0.0)),
    "guidance_scales": (0.0, 1.0, 2.0, 3.0, 5.0),
    "guidance_steps": 20,
}
LATENT_CPU = {**IMAGES_CPU, "latent": True, "width": 32, "train_steps": 2000, "vae_steps": 800}


@functools.cache
def image_data() -> str:
    """``fashion28`` where Fashion-MNIST is installed, else ``shapes28`` (probed once per process)."""
    from autograder.scoring.tensors import data

    try:
        data.load_dataset("fashion28", n=1)
    except FileNotFoundError:
        return "shapes28"
    return "fashion28"


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        "ci",
        {"mixture2d": MIXTURE_CI},
        Limits(wall_seconds=300, cpu_seconds=900),
        "2-D mixture, cosine schedule T=100, under a minute on the CPU",
    ),
    "cpu": Profile(
        "cpu",
        {"mixture2d": MIXTURE_CPU, "images": IMAGES_CPU, "latent": LATENT_CPU},
        Limits(wall_seconds=2400, cpu_seconds=7200),
        "2-D mixture and 28x28 images (pixel and latent space), linear schedule T=1000",
    ),
    "gpu": Profile(
        "gpu",
        {"mixture2d": {**MIXTURE_CPU, "width": 256, "train_steps": 6000, "n_samples": 8000}},
        Limits(wall_seconds=3600, cpu_seconds=14400, memory_bytes=64 << 30),
        "2-D mixture at a larger scale, on CUDA",
        resources={"GPU": 1},
    ),
}
