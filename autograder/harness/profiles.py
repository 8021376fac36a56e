"""The harness's profiles: what each trains and samples (plans for :func:`diffusion.evaluate.run_plan`),
within what limits.

- ``ci``: the 2-D mixture with a cosine schedule of 100 steps; under a minute on two CPU cores.
- ``cpu``: the 2-D mixture with the linear schedule of 1000 steps (DDPM-1000 against DDIM at 10–100
  steps), and 28×28 images (Fashion-MNIST when installed, else shapes) in pixel space and in the
  latent space of a VAE (parts 9 and 10); about 8.5 minutes on two quiet CPU cores (499 s measured on
  2026-12-05 with the calibration cached).
- ``gpu``: the 2-D mixture, Fashion-MNIST in pixel and latent space and CIFAR-10 (when installed) with a UNet of
  the DDPM paper's CIFAR-10 design scaled to a few minutes on one GPU, the model in bf16 autocast.
- ``gpu-tiny``: the ``gpu`` profile's plans at toy sizes: the same code path (autocast, the deeper UNet, every plan
  and check), for CI on a CPU (``--device cpu``).

Every plan is owned by the grader (:mod:`autograder.harness.experiment`): data, labels, models (the denoiser and
the VAE), optimisers and clock are the grader's, only the student's functions run sandboxed. In these plans the
model is the grader's, internals included: its timestep embedding is the reference's (part 5 is graded by its
checks), and so are the VAE's ``encode``/``decode`` and :class:`~diffusion.latent.LatentDiffusion`'s ``decode``
(parts 9 and 10 are graded by theirs; the plan uses the student's ``vae_loss`` and ``latent_scale_factor``).
A plan with ``optional`` data runs only where that data set is installed.
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
    "train_steps": 1000,
    "batch_size": 64,
    "lr": 2e-3,
    "n_samples": 100,
    "ddim": ((10, 0.0), (20, 0.0), (50, 0.0), (100, 0.0)),
    "guidance_scales": (0.0, 1.0, 2.0, 3.0, 5.0),
    "guidance_steps": 20,
}
LATENT_CPU = {**IMAGES_CPU, "latent": True, "width": 32, "train_steps": 1500, "vae_steps": 800}

UNET_GPU = {"width": 64, "channel_mults": (1, 2, 2), "num_res_blocks": 2, "attention": True, "dropout": 0.1}
"""The DDPM paper's CIFAR-10 UNet (Ho et al. 2020, App. B: 128 channels, multipliers (1, 2, 2, 2), two residual
blocks a level, attention, dropout 0.1) at half the width and one level fewer: minutes, not days, on one GPU."""
IMAGES_GPU = {
    **IMAGES_CPU,
    **UNET_GPU,
    "n_train": 60_000,
    "train_steps": 8000,
    "batch_size": 128,
    "lr": 2e-4,
    "n_samples": 2000,
    "ddim": ((10, 0.0), (20, 0.0), (50, 0.0), (100, 0.0), (50, 1.0)),
    "guidance_scales": (0.0, 1.0, 2.0, 3.0),
    "guidance_steps": 50,
    "mixed_precision": True,
}
LATENT_GPU = {**IMAGES_GPU, "latent": True, "vae_width": 32, "vae_steps": 4000}
CIFAR_GPU = {**IMAGES_GPU, "data": "cifar32", "optional": True, "n_train": 50_000, "channel_mults": (1, 2, 2, 2)}
TINY = {
    "n_train": 256,
    "T": 50,
    "width": 8,
    "train_steps": 30,
    "batch_size": 16,
    "n_samples": 24,
    "vae_width": 8,
    "vae_steps": 20,
    "ddim": ((5, 0.0), (10, 0.0), (10, 1.0)),
    "guidance_steps": 5,
}
"""The ``gpu`` plans' sizes for ``gpu-tiny``."""


TINY_POINTS = {"n_train": 2000, "width": 32, "train_steps": 400, "batch_size": 128, "n_samples": 400}
"""For the 2-D mixture, whose MLP costs little: enough to learn the mixture, so that the checks see a real model."""


def tiny(plan: dict[str, Any]) -> dict[str, Any]:
    """``plan`` at the sizes of :data:`TINY` (:data:`TINY_POINTS` too for the 2-D mixture): its structure, sampler
    runs and options kept."""
    points = TINY_POINTS if plan.get("data") == "mixture2d" else {}
    return {**plan, **TINY, **points, "mixed_precision": True}


MIXTURE_GPU = {**MIXTURE_CPU, "width": 256, "train_steps": 6000, "n_samples": 8000}
GPU_PLANS = {"mixture2d": MIXTURE_GPU, "images": IMAGES_GPU, "latent": LATENT_GPU, "cifar": CIFAR_GPU}


@functools.cache
def installed(dataset: str) -> bool:
    """Whether ``dataset`` can be loaded here (probed once per process)."""
    from autograder.scoring.tensors import data

    try:
        data.load_dataset(dataset, n=1)
    except FileNotFoundError:
        return False
    return True


def image_data() -> str:
    """``fashion28`` where Fashion-MNIST is installed, else ``shapes28``."""
    return "fashion28" if installed("fashion28") else "shapes28"


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
        GPU_PLANS,
        Limits(wall_seconds=3600, cpu_seconds=14400, memory_bytes=64 << 30),
        "2-D mixture, Fashion-MNIST (pixel and latent space) and CIFAR-10 when installed, bf16 autocast, on a GPU",
        resources={"GPU": 1},
    ),
    "gpu-tiny": Profile(
        "gpu-tiny",
        {name: tiny(plan) for name, plan in GPU_PLANS.items()},
        Limits(wall_seconds=600, cpu_seconds=1800),
        "the gpu profile's plans at toy sizes: its code path on any device (CI runs it on the CPU)",
    ),
}
