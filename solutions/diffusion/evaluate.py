"""Train briefly and sample with every sampler setting of a plan, timing each (provided).

The grading harness runs :func:`run_plan` on your package and scores the samples it returns; you can run the same
plan yourself::

    python -c "from diffusion.evaluate import run_plan; print(run_plan({'train_steps': 300})['train'])"

:func:`run_plan` runs two phases, :func:`train_phase` (steps 1 and 2) and :func:`sample_phase` (step 3):

1. The schedule from your ``make_schedule`` with your ``linear_betas`` or ``cosine_betas`` (part 1).
2. A class-conditional denoiser (:class:`~diffusion.mlp.MLPDenoiser` for 2-D points,
   :class:`~diffusion.unet.UNet` for images, both using your ``timestep_embedding``, part 5) trained
   by :func:`diffusion.train.train` with your ``ddpm_loss`` (part 4) and ``drop_labels`` (part 8),
   with an EMA of the weights, which is the model that samples.
3. Samples with labels ``0, 1, ..., K−1, 0, 1, ...`` for each run of :func:`build_runs`, drawn and timed by
   :func:`sample_run`: your ``p_sample_loop`` over all ``T`` steps (part 6), your ``ddim_sample_loop`` at each
   ``(steps, η)`` (part 7), and classifier-free guidance at each scale through ``guided_denoiser`` and your
   ``cfg_eps`` (part 8) with DDIM; for images DDIM clips ``x̂0`` to [−1, 1] (``clip_denoised=True``) as DDPM
   does by default.

With ``latent=True`` (images only) the plan is latent diffusion (Rombach et al. 2022): first your
:class:`~diffusion.vae.VAE` is trained on your ``vae_loss`` (:func:`train_latents` with
:func:`diffusion.vae_training.train_vae`, part 9), the UNet then learns the latents ``f · mu(x)`` scaled by your
``latent_scale_factor`` (part 10), every sampler above runs on latents (``clip_denoised=False``: latents are not
confined to [−1, 1]) and your :meth:`~diffusion.latent.LatentDiffusion.decode` turns them into images.

A sampler that fails is reported by name and the others still run; a failed training run stops the plan.

Every function of your parts that a plan calls is looked up in ``parts`` (default :data:`PACKAGE_PARTS`: your
modules); the grader passes its own namespace, whose functions run your code in its sandbox while it keeps the
data, the model, the optimiser and the clock.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from diffusion import PARTS, ddim, ddpm, guidance, latent, losses, schedules, vae
from diffusion.data import load_dataset
from diffusion.mlp import MLPDenoiser
from diffusion.runtime import Autocast, default_device, timed
from diffusion.schedules import NoiseSchedule
from diffusion.train import TrainConfig, train
from diffusion.unet import UNet
from diffusion.vae import VAE
from diffusion.vae_training import VAETrainConfig, train_vae

Report = dict[str, Any]
"""What :func:`run_plan` returns (its docstring lists the keys)."""
PACKAGE_PARTS = SimpleNamespace(
    schedules=schedules, losses=losses, guidance=guidance, ddpm=ddpm, ddim=ddim, vae=vae, latent=latent
)
"""Where a plan finds the functions of your parts it calls: ``parts.schedules.linear_betas``,
``cosine_betas`` and ``make_schedule``, ``parts.losses.ddpm_loss``, ``parts.guidance.drop_labels`` and
``cfg_eps``, ``parts.ddpm.p_sample_loop``, ``parts.ddim.ddim_sample_loop``, and in a latent plan
``parts.vae.vae_loss`` and ``parts.latent.latent_scale_factor``. By default your modules, looked up at each
call."""


@dataclass(frozen=True)
class RunPlan:
    """What to train and how to sample. ``ddim`` lists ``(steps, η)`` pairs; ``guidance_scales`` the
    CFG scales sampled with DDIM at ``guidance_steps`` steps; ``threads`` sets torch's CPU threads. ``width``,
    ``channel_mults``, ``num_res_blocks``, ``attention`` and ``dropout`` shape the UNet (``width`` alone the MLP);
    ``mixed_precision`` runs the denoiser in bfloat16 autocast (:class:`~diffusion.runtime.Autocast`)."""

    data: str = "mixture2d"
    n_train: int = 10_000
    seed: int = 0
    T: int = 1000
    schedule: Literal["linear", "cosine"] = "linear"
    width: int = 128
    channel_mults: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    attention: bool = False
    dropout: float = 0.0
    mixed_precision: bool = False
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


@dataclass(frozen=True)
class SamplerRun:
    """One run of the sampling phase: its name in ``report["runs"]`` and the sampler's settings.

    ``sampler`` is ``"ddpm"`` (all ``T`` steps), ``"ddim"`` or ``"cfg"`` (DDIM with classifier-free guidance at
    ``guidance_scale``).
    """

    name: str
    sampler: Literal["ddpm", "ddim", "cfg"]
    steps: int
    eta: float
    guidance_scale: float

    def settings(self) -> dict[str, Any]:
        """``{"sampler", "steps", "eta", "guidance_scale"}``, the settings the report records with the run."""
        return {"sampler": self.sampler, "steps": self.steps, "eta": self.eta, "guidance_scale": self.guidance_scale}


@dataclass(frozen=True)
class Trained:
    """What :func:`train_phase` hands to :func:`sample_phase`.

    ``model`` is the EMA denoiser, ``data_shape`` the shape of one example of the data (an image's in a latent
    plan), and ``pipeline`` the :class:`~diffusion.latent.LatentDiffusion` that decodes a latent plan's samples
    (``None`` otherwise).
    """

    model: torch.nn.Module
    schedule: NoiseSchedule
    num_classes: int
    data_shape: tuple[int, ...]
    pipeline: latent.LatentDiffusion | None


def run_plan(plan: dict[str, Any] | RunPlan, parts: Any = PACKAGE_PARTS) -> Report:
    """Train and sample as the module docstring says: :func:`train_phase`, then :func:`sample_phase`, with the
    functions of ``parts`` (:data:`PACKAGE_PARTS`).

    Returns:
        ``{"plan", "device", "num_classes", "labels", "train": {"seconds", "losses", "error"}, "runs"}``:
        ``labels`` are ``(n_samples,)``; ``losses`` are means over ``losses_every`` steps; ``runs`` maps
        ``"ddpm"``, ``"ddim_<steps>_<η>"`` and ``"cfg_<s>"`` to ``{"sampler", "steps", "eta", "guidance_scale",
        "seconds", "samples"}`` (samples on the CPU, shape ``(n_samples, ...)``) or, for a sampler that failed,
        ``{"error"}``. A latent plan adds ``"vae"`` (:func:`train_latents`).
    """
    plan, device, dataset, report = prepare(plan)
    trained = train_phase(plan, dataset, device, report, parts)
    if trained is not None:  # a failed training run stops the plan
        sample_phase(plan, trained, device, report, parts)
    return report


def prepare(plan: dict[str, Any] | RunPlan) -> tuple[RunPlan, torch.device, Dataset, Report]:
    """The plan (checked), its device, its training data (``plan.n_train`` pairs ``(x, y)``) and its
    :func:`new_report`; sets torch's CPU threads to ``plan.threads`` when given."""
    plan = plan if isinstance(plan, RunPlan) else RunPlan(**plan)
    if plan.threads is not None:
        torch.set_num_threads(plan.threads)
    device = torch.device(plan.device or default_device())
    dataset = load_dataset(plan.data, n=plan.n_train, seed=plan.seed)
    return plan, device, dataset, new_report(plan, device, int(dataset.num_classes))


def new_report(plan: RunPlan, device: torch.device, num_classes: int) -> Report:
    """The report before training: the plan, the device, ``K = num_classes`` and the sample labels
    ``0, 1, ..., K−1, 0, 1, ...`` of shape ``(n_samples,)``; no losses and no runs yet."""
    return {
        "plan": asdict(plan),
        "device": str(device),
        "num_classes": num_classes,
        "labels": torch.arange(plan.n_samples) % num_classes,
        "train": {"seconds": 0.0, "losses": [], "error": None},
        "runs": {},
    }


def train_phase(
    plan: RunPlan, dataset: Dataset, device: torch.device, report: Report, parts: Any = PACKAGE_PARTS
) -> Trained | None:
    """Build the schedule and the training data, train the denoiser (after the VAE in a latent plan).

    ``dataset`` holds ``(x, y)`` pairs, ``x`` of shape ``(D,)`` for points or ``(C, H, W)`` for images. The global
    RNG is seeded with ``plan.seed`` first. Records ``report["train"]``'s seconds and losses (means over
    ``losses_every`` steps), and ``report["vae"]`` in a latent plan.

    Returns:
        the trained model and what sampling needs; ``None`` when training failed, with the error recorded in
        ``report["train"]["error"]``.
    """
    num_classes = report["num_classes"]
    data_shape = tuple(dataset[0][0].shape)
    torch.manual_seed(plan.seed)
    start = time.perf_counter()
    try:
        betas = (parts.schedules.linear_betas if plan.schedule == "linear" else parts.schedules.cosine_betas)(plan.T)
        schedule = parts.schedules.make_schedule(betas)
        if plan.latent:
            autoencoder, scale_factor, dataset = train_latents(plan, dataset, device, report, parts)
        denoiser = _denoiser(plan, dataset[0][0], num_classes)
        result = train(
            denoiser,
            schedule,
            dataset,
            _train_config(plan, device),
            progress=False,
            ddpm_loss_fn=parts.losses.ddpm_loss,
            drop_labels_fn=parts.guidance.drop_labels,
        )
    except Exception as error:  # noqa: BLE001 - the student's code may raise anything: reported, nothing sampled
        report["train"]["error"] = describe(error)
        return None
    report["train"]["seconds"] = time.perf_counter() - start
    report["train"]["losses"] = _means(result.losses, plan.losses_every)
    pipeline = (
        latent.LatentDiffusion(
            autoencoder, result.ema_model, schedule, scale_factor, tuple(dataset[0][0].shape), num_classes
        )
        if plan.latent
        else None
    )
    return Trained(result.ema_model, schedule, num_classes, data_shape, pipeline)


def build_runs(plan: RunPlan) -> list[SamplerRun]:
    """The sampler runs of a plan, in order: ``ddpm`` (if ``plan.ddpm``), ``ddim_<steps>_<η>`` for each pair of
    ``plan.ddim``, then ``cfg_<s>`` (DDIM, η = 0, ``guidance_steps`` steps) for each scale of
    ``plan.guidance_scales``."""
    runs = [SamplerRun("ddpm", "ddpm", plan.T, 1.0, 1.0)] if plan.ddpm else []
    runs += [SamplerRun(f"ddim_{steps}_{eta:g}", "ddim", steps, eta, 1.0) for steps, eta in plan.ddim]
    runs += [SamplerRun(f"cfg_{s:g}", "cfg", plan.guidance_steps, 0.0, s) for s in plan.guidance_scales]
    return runs


def sample_phase(
    plan: RunPlan, trained: Trained, device: torch.device, report: Report, parts: Any = PACKAGE_PARTS
) -> None:
    """Run every run of :func:`build_runs` with :func:`sample_run` into ``report["runs"]``, one after the other.

    Every run samples the report's labels ``(n_samples,)`` and draws its noise from its own generator, seeded
    ``plan.seed + 1 + i`` where ``i`` is the number of runs already in the report.
    """
    y = report["labels"].to(device)
    runs = report["runs"]
    for run in build_runs(plan):
        generator = torch.Generator().manual_seed(plan.seed + 1 + len(runs))
        runs[run.name] = sample_run(trained, run, y, generator, device, parts)


def sample_run(
    trained: Trained,
    run: SamplerRun,
    y: torch.Tensor,
    generator: torch.Generator,
    device: torch.device,
    parts: Any = PACKAGE_PARTS,
) -> dict[str, Any]:
    """Draw the samples of one run with :func:`draw`, timed, without gradients.

    Args:
        y: the labels ``(n,)`` on ``device``, one sample each.

    Returns:
        ``{"sampler", "steps", "eta", "guidance_scale", "seconds", "samples"}`` with the samples float32 on the
        CPU, shape ``(n, *trained.data_shape)``; or the settings and ``"error"`` (:func:`describe`) when the
        sampler raised or returned something else.
    """
    shape = (len(y), *trained.data_shape)
    try:
        with torch.no_grad():
            samples, seconds = timed(partial(draw, trained, run, y, generator, device, parts), device)
        if not isinstance(samples, torch.Tensor) or tuple(samples.shape) != shape:
            raise ValueError(
                f"the sampler returned {getattr(samples, 'shape', type(samples).__name__)}, "
                f"expected a tensor of shape {shape}"
            )
        return {**run.settings(), "seconds": seconds, "samples": samples.detach().float().cpu()}
    except Exception as error:  # noqa: BLE001 - one failing sampler does not stop the others
        return {**run.settings(), "error": describe(error)}


def draw(
    trained: Trained,
    run: SamplerRun,
    y: torch.Tensor,
    generator: torch.Generator,
    device: torch.device,
    parts: Any = PACKAGE_PARTS,
) -> torch.Tensor:
    """One run's samples ``(n, *trained.data_shape)`` for the labels ``y`` ``(n,)``, all noise from ``generator``:
    DDPM, DDIM, or DDIM with CFG; in a latent plan the sampler draws latents ``(n, *latent_shape)``, unclipped,
    and :meth:`~diffusion.latent.LatentDiffusion.decode` makes them images."""
    pipeline = trained.pipeline
    shape = (len(y), *(trained.data_shape if pipeline is None else pipeline.latent_shape))
    if run.sampler == "ddpm":
        samples = parts.ddpm.p_sample_loop(
            trained.model,
            trained.schedule,
            shape,
            generator=generator,
            device=device,
            clip_denoised=pipeline is None,
            y=y,
        )
    else:
        model = trained.model
        if run.sampler == "cfg":
            model = guidance.guided_denoiser(model, run.guidance_scale, trained.num_classes, parts.guidance.cfg_eps)
        samples = parts.ddim.ddim_sample_loop(
            model,
            trained.schedule,
            shape,
            num_steps=run.steps,
            eta=run.eta,
            generator=generator,
            device=device,
            clip_denoised=pipeline is None and len(shape) > 2,  # pixels live in [−1, 1]: clip x̂0 as DDPM does
            y=y,
        )
    return samples if pipeline is None else pipeline.decode(samples.to(device))  # wherever the sampler left them


def _denoiser(plan: RunPlan, example: torch.Tensor, num_classes: int) -> torch.nn.Module:
    """An untrained denoiser for examples like ``example``: an MLP for points ``(D,)``, a UNet for ``(C, H, W)``;
    in bfloat16 autocast with ``plan.mixed_precision``."""
    if example.dim() == 1:
        model: torch.nn.Module = MLPDenoiser(dim=example.shape[0], hidden=plan.width, num_classes=num_classes)
    else:
        model = UNet(
            in_channels=example.shape[0],
            base_channels=plan.width,
            channel_mults=plan.channel_mults,
            num_res_blocks=plan.num_res_blocks,
            num_classes=num_classes,
            dropout=plan.dropout,
            attention=plan.attention,
        )
    return Autocast(model) if plan.mixed_precision else model


def _train_config(plan: RunPlan, device: torch.device) -> TrainConfig:
    """The denoiser's training settings of a plan."""
    return TrainConfig(
        steps=plan.train_steps,
        batch_size=plan.batch_size,
        lr=plan.lr,
        ema_decay=plan.ema_decay,
        p_uncond=plan.p_uncond,
        seed=plan.seed,
        device=str(device),
    )


def _means(values: list[float], every: int) -> list[float]:
    """Means of consecutive groups of ``every`` values."""
    return [sum(values[i : i + every]) / len(values[i : i + every]) for i in range(0, len(values), every)]


def train_latents(
    plan: RunPlan, images: Dataset, device: torch.device, report: Report, parts: Any = PACKAGE_PARTS
) -> tuple[VAE, float, TensorDataset]:
    """Train the VAE on ``images`` ``(C, H, W)``, record its reconstructions of held-out images in ``report["vae"]``,
    and return it with the scale factor ``f`` and the data set of scaled latents ``(f · mu(x), y)``, each latent
    ``(latent_channels, H/4, W/4)``.

    ``report["vae"]`` holds ``{"seconds", "losses", "inputs", "reconstructions", "recon_error", "scale_factor"}``:
    ``n_samples`` held-out images ``(n_samples, C, H, W)`` and their reconstructions, their mean squared error.
    ``parts.vae.vae_loss`` trains it and ``parts.latent.latent_scale_factor`` gives ``f`` (:data:`PACKAGE_PARTS`).
    """
    channels = images[0][0].shape[0]
    start = time.perf_counter()
    autoencoder = VAE(in_channels=channels, latent_channels=plan.latent_channels, base_channels=plan.vae_width)
    config = VAETrainConfig(
        steps=plan.vae_steps, lr=plan.vae_lr, kl_weight=plan.kl_weight, seed=plan.seed, device=str(device)
    )
    history = train_vae(autoencoder, images, config, progress=False, vae_loss_fn=parts.vae.vae_loss)
    held_out = load_dataset(plan.data, n=plan.n_samples, seed=plan.seed, split="test")
    inputs = torch.stack([held_out[i][0] for i in range(len(held_out))])
    with torch.no_grad():
        mus, labels = [], []
        for x, y in DataLoader(images, batch_size=256):
            mus.append(autoencoder.encode(x.to(device))[0].cpu())
            labels.append(y)
        reconstructions = autoencoder.decode(autoencoder.encode(inputs.to(device))[0]).cpu()
    mu = torch.cat(mus)
    scale_factor = float(parts.latent.latent_scale_factor(mu))
    report["vae"] = {
        "seconds": time.perf_counter() - start,
        "losses": _means([h["loss"] for h in history], plan.losses_every),
        "inputs": inputs,
        "reconstructions": reconstructions,
        "recon_error": float(((reconstructions - inputs) ** 2).mean()),
        "scale_factor": scale_factor,
    }
    return autoencoder, scale_factor, TensorDataset(scale_factor * mu, torch.cat(labels))
