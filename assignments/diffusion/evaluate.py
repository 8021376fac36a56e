"""Train briefly and sample with every sampler setting of a plan, timing each (provided).

The grading harness runs :func:`run_plan` on your package in its sandbox and scores the samples it
returns; you can run the same plan yourself::

    python -c "from diffusion.evaluate import run_plan; print(run_plan({'train_steps': 300})['train'])"

1. The schedule from your ``make_schedule`` with your ``linear_betas`` or ``cosine_betas`` (part 1).
2. A class-conditional denoiser (:class:`~diffusion.mlp.MLPDenoiser` for 2-D points,
   :class:`~diffusion.unet.UNet` for images, both using your ``timestep_embedding``, part 5) trained
   by :func:`diffusion.train.train` with your ``ddpm_loss`` (part 4) and ``drop_labels`` (part 8),
   with an EMA of the weights, which is the model that samples.
3. Samples with labels ``0, 1, ..., K−1, 0, 1, ...``: your ``p_sample_loop`` over all ``T`` steps
   (part 6), your ``ddim_sample_loop`` at each ``(steps, η)`` (part 7), and classifier-free guidance
   at each scale through ``guided_denoiser`` and your ``cfg_eps`` (part 8) with DDIM; for images
   DDIM clips ``x̂0`` to [−1, 1] (``clip_denoised=True``) as DDPM does by default.

With ``latent=True`` (images only) the plan is latent diffusion (Rombach et al. 2022): first your
:class:`~diffusion.vae.VAE` is trained on your ``vae_loss`` (:func:`diffusion.vae_training.train_vae`,
part 9), the UNet then learns the latents ``f · mu(x)`` scaled by your ``latent_scale_factor``, and
every sampler runs through your :class:`~diffusion.latent.LatentDiffusion` (part 10; DDIM only with
η = 0), which decodes its latents into images.

A sampler that fails is reported by name and the others still run; a failed training run stops the plan.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from diffusion import PARTS, ddim, ddpm, guidance, latent, schedules
from diffusion.data import load_dataset
from diffusion.experiment import default_device, timed
from diffusion.mlp import MLPDenoiser
from diffusion.train import TrainConfig, train
from diffusion.unet import UNet
from diffusion.vae import VAE
from diffusion.vae_training import VAETrainConfig, train_vae


@dataclass(frozen=True)
class RunPlan:
    """What to train and how to sample. ``ddim`` lists ``(steps, η)`` pairs; ``guidance_scales`` the
    CFG scales sampled with DDIM at ``guidance_steps`` steps; ``threads`` sets torch's CPU threads."""

    data: str = "mixture2d"
    n_train: int = 10_000
    seed: int = 0
    T: int = 1000
    schedule: Literal["linear", "cosine"] = "linear"
    width: int = 128
    attention: bool = False
    train_steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    ema_decay: float = 0.995
    p_uncond: float = 0.1
    n_samples: int = 1000
    ddpm: bool = True
    ddim: tuple[tuple[int, float], ...] = ((10, 0.0), (20, 0.0), (50, 0.0), (100, 0.0), (50, 1.0))
    guidance_scales: tuple[float, ...] = (1.0, 2.0, 4.0)
    guidance_steps: int = 50
    device: str | None = None
    threads: int | None = None
    losses_every: int = 10
    latent: bool = False
    vae_width: int = 16
    latent_channels: int = 4
    vae_steps: int = 600
    vae_lr: float = 2e-3
    kl_weight: float = 1e-3

    def __post_init__(self) -> None:
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', got {self.schedule!r}")
        if min(self.T, self.train_steps + 1, self.n_samples, self.batch_size, self.width, self.losses_every) < 1:
            raise ValueError(f"T, n_samples, batch_size, width and losses_every must be >= 1 (got {self})")


def describe(error: BaseException) -> str:
    """``Type: message (file.py:line in function)``, at the innermost frame in a part's module."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).stem in PARTS]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"{type(error).__name__}: {str(error)[:500]}{where}"


def _denoiser(plan: RunPlan, example: torch.Tensor, num_classes: int) -> torch.nn.Module:
    if example.dim() == 1:
        return MLPDenoiser(dim=example.shape[0], hidden=plan.width, num_classes=num_classes)
    return UNet(
        in_channels=example.shape[0],
        base_channels=plan.width,
        channel_mults=(1, 2),
        num_classes=num_classes,
        attention=plan.attention,
    )


def run_plan(plan: dict[str, Any] | RunPlan) -> dict[str, Any]:
    """Train and sample as the module docstring says.

    Returns:
        ``{"plan", "device", "num_classes", "labels", "train": {"seconds", "losses", "error"}, "runs"}``:
        ``losses`` are means over ``losses_every`` steps; ``runs`` maps ``"ddpm"``, ``"ddim_<steps>_<η>"``
        and ``"cfg_<s>"`` to ``{"sampler", "steps", "eta", "guidance_scale", "seconds", "samples"}``
        (samples on the CPU, shape ``(n_samples, ...)``) or, for a sampler that failed, ``{"error"}``.
    """
    plan = plan if isinstance(plan, RunPlan) else RunPlan(**plan)
    if plan.threads is not None:
        torch.set_num_threads(plan.threads)
    device = torch.device(plan.device or default_device())
    dataset = load_dataset(plan.data, n=plan.n_train, seed=plan.seed)
    example, _ = dataset[0]
    num_classes = int(dataset.num_classes)
    labels = torch.arange(plan.n_samples) % num_classes
    report: dict[str, Any] = {
        "plan": asdict(plan),
        "device": str(device),
        "num_classes": num_classes,
        "labels": labels,
        "train": {"seconds": 0.0, "losses": [], "error": None},
        "runs": {},
    }
    torch.manual_seed(plan.seed)
    start = time.perf_counter()
    try:
        betas = (schedules.linear_betas if plan.schedule == "linear" else schedules.cosine_betas)(plan.T)
        schedule = schedules.make_schedule(betas)
        if plan.latent:
            vae, scale_factor, dataset = _latent_training_set(plan, dataset, device, report)
        config = TrainConfig(
            steps=plan.train_steps,
            batch_size=plan.batch_size,
            lr=plan.lr,
            ema_decay=plan.ema_decay,
            p_uncond=plan.p_uncond,
            seed=plan.seed,
            device=str(device),
        )
        result = train(_denoiser(plan, dataset[0][0], num_classes), schedule, dataset, config, progress=False)
    except Exception as error:  # noqa: BLE001 - the student's code may raise anything: reported, nothing sampled
        report["train"]["error"] = describe(error)
        return report
    report["train"]["seconds"] = time.perf_counter() - start
    report["train"]["losses"] = _means(result.losses, plan.losses_every)
    model = result.ema_model
    shape = (plan.n_samples, *example.shape)
    y = labels.to(device)

    pipeline = (
        latent.LatentDiffusion(vae, model, schedule, scale_factor, tuple(dataset[0][0].shape), num_classes=num_classes)
        if plan.latent
        else None
    )
    clip = example.dim() > 1  # images live in [−1, 1]: DDIM clips x̂0 there as DDPM does by default

    def draw(generator: torch.Generator, sampler: str, steps: int, eta: float, guidance_scale: float) -> torch.Tensor:
        """One run's samples: DDPM, DDIM, or DDIM with CFG (``"cfg"``); through LatentDiffusion in a latent plan."""
        if pipeline is not None:
            kind = "ddpm" if sampler == "ddpm" else "ddim"
            return pipeline.sample(
                plan.n_samples, kind, num_steps=steps, y=y, guidance_scale=guidance_scale, generator=generator
            )
        if sampler == "ddpm":
            return ddpm.p_sample_loop(model, schedule, shape, generator=generator, device=device, y=y)
        denoiser = guidance.guided_denoiser(model, guidance_scale, num_classes) if sampler == "cfg" else model
        return ddim.ddim_sample_loop(
            denoiser,
            schedule,
            shape,
            num_steps=steps,
            eta=eta,
            generator=generator,
            device=device,
            clip_denoised=clip,
            y=y,
        )

    def sample(name: str, settings: dict[str, Any]) -> None:
        generator = torch.Generator().manual_seed(plan.seed + 1 + len(report["runs"]))
        try:
            with torch.no_grad():
                samples, seconds = timed(lambda: draw(generator, **settings), device)
            if not isinstance(samples, torch.Tensor) or tuple(samples.shape) != shape:
                raise ValueError(
                    f"the sampler returned {getattr(samples, 'shape', type(samples).__name__)}, "
                    f"expected a tensor of shape {shape}"
                )
            report["runs"][name] = {**settings, "seconds": seconds, "samples": samples.detach().float().cpu()}
        except Exception as error:  # noqa: BLE001 - one failing sampler does not stop the others
            report["runs"][name] = {**settings, "error": describe(error)}

    if plan.ddpm:
        sample("ddpm", {"sampler": "ddpm", "steps": plan.T, "eta": 1.0, "guidance_scale": 1.0})
    for steps, eta in plan.ddim:
        sample(f"ddim_{steps}_{eta:g}", {"sampler": "ddim", "steps": steps, "eta": eta, "guidance_scale": 1.0})
    for scale in plan.guidance_scales:
        sample(f"cfg_{scale:g}", {"sampler": "cfg", "steps": plan.guidance_steps, "eta": 0.0, "guidance_scale": scale})
    return report


def _means(values: list[float], every: int) -> list[float]:
    """Means of consecutive groups of ``every`` values."""
    return [sum(values[i : i + every]) / len(values[i : i + every]) for i in range(0, len(values), every)]


def _latent_training_set(
    plan: RunPlan, images: Dataset, device: torch.device, report: dict[str, Any]
) -> tuple[VAE, float, TensorDataset]:
    """Train the VAE, record its reconstructions of held-out images in ``report["vae"]``, and return it with
    the scale factor and the data set of scaled latents ``(f · mu(x), y)``."""
    channels = images[0][0].shape[0]
    start = time.perf_counter()
    vae = VAE(in_channels=channels, latent_channels=plan.latent_channels, base_channels=plan.vae_width)
    config = VAETrainConfig(
        steps=plan.vae_steps, lr=plan.vae_lr, kl_weight=plan.kl_weight, seed=plan.seed, device=str(device)
    )
    history = train_vae(vae, images, config, progress=False)
    held_out = load_dataset(plan.data, n=plan.n_samples, seed=plan.seed, split="test")
    inputs = torch.stack([held_out[i][0] for i in range(len(held_out))])
    with torch.no_grad():
        mus, labels = [], []
        for x, y in DataLoader(images, batch_size=256):
            mus.append(vae.encode(x.to(device))[0].cpu())
            labels.append(y)
        reconstructions = vae.decode(vae.encode(inputs.to(device))[0]).cpu()
    mu = torch.cat(mus)
    scale_factor = float(latent.latent_scale_factor(mu))
    report["vae"] = {
        "seconds": time.perf_counter() - start,
        "losses": _means([h["loss"] for h in history], plan.losses_every),
        "inputs": inputs,
        "reconstructions": reconstructions,
        "recon_error": float(((reconstructions - inputs) ** 2).mean()),
        "scale_factor": scale_factor,
    }
    return vae, scale_factor, TensorDataset(scale_factor * mu, torch.cat(labels))
