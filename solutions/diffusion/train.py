"""Training a denoiser with the simple loss, an EMA of its weights and resumable checkpoints (provided).

Each step (Ho et al. 2020, Algorithm 1; Ho & Salimans 2022, Algorithm 1 for label dropout):

1. draw a batch of ``(x0, y)`` pairs, uniformly with replacement;
2. for a class-conditional model, replace each label by the null label with probability ``p_uncond``
   (:func:`diffusion.guidance.drop_labels`);
3. take an Adam step on :func:`diffusion.losses.ddpm_loss` (``t`` and ``eps`` drawn inside), with
   the gradient norm clipped;
4. update the exponential moving average of the weights, ``θ̄ ← d · θ̄ + (1 − d) · θ``.

One ``torch.Generator`` seeded with ``config.seed`` drives every random draw (batch indices, label
dropout, ``t``, ``eps``, and a per-step seed for dropout layers inside a forked global RNG), so a
run is reproducible, and a run resumed from a checkpoint ends with exactly the weights of an
uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from diffusion.guidance import drop_labels
from diffusion.losses import ddpm_loss
from diffusion.schedules import NoiseSchedule


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    steps: int = 2000  # optimiser steps in the whole run (a resumed run continues up to this count)
    batch_size: int = 128  # examples per step, drawn uniformly with replacement
    lr: float = 2e-4  # Adam learning rate
    ema_decay: float = 0.999  # d in θ̄ ← d · θ̄ + (1 − d) · θ
    p_uncond: float = 0.0  # label dropout for classifier-free guidance; 0 disables it
    grad_clip: float | None = 1.0  # max global gradient norm; None disables clipping
    seed: int = 0  # seeds the run's only generator
    device: str = "cpu"  # where the model and batches live; random numbers are drawn on the CPU
    log_every: int = 100  # refresh the progress bar's mean loss every this many steps
    checkpoint_path: str | None = None  # save here, and resume from here when the file exists
    checkpoint_every: int = 500  # steps between checkpoints (one is also written at the end)

    def __post_init__(self) -> None:
        checks = {
            "steps must be >= 0": self.steps >= 0,
            "batch_size must be >= 1": self.batch_size >= 1,
            "lr must be > 0": self.lr > 0,
            "ema_decay must lie in [0, 1]": 0 <= self.ema_decay <= 1,
            "p_uncond must lie in [0, 1]": 0 <= self.p_uncond <= 1,
            "grad_clip must be > 0 or None": self.grad_clip is None or self.grad_clip > 0,
            "log_every must be >= 1": self.log_every >= 1,
            "checkpoint_every must be >= 1": self.checkpoint_every >= 1,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid TrainConfig: {'; '.join(failed)} (got {self})")


RESUMABLE_FIELDS = ("batch_size", "lr", "ema_decay", "p_uncond", "grad_clip", "seed")
"""Config fields a resumed run must share with its checkpoint; the others may change."""


class EMA:
    """Exponential moving average of a model's parameters (Polyak averaging).

    ``shadow ← decay · shadow + (1 − decay) · param`` after every optimiser step; buffers are not
    averaged. The shadow starts as a copy of the model's parameters.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 <= decay <= 1:
            raise ValueError(f"EMA decay must lie in [0, 1]; got {decay}")
        self.decay = decay
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One averaging step towards the model's current parameters."""
        for name, p in model.named_parameters():
            self.shadow[name].mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's parameters with the averages."""
        for name, p in model.named_parameters():
            p.copy_(self.shadow[name])

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "shadow": {name: t.clone() for name, t in self.shadow.items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("EMA state does not match this model's parameters; was it saved from another model?")
        self.decay = state["decay"]
        for name, t in state["shadow"].items():
            self.shadow[name].copy_(t)


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, a copy holding the EMA weights, every step's loss."""

    model: nn.Module
    ema_model: nn.Module
    losses: list[float]
    steps: int


def train(
    model: nn.Module,
    schedule: NoiseSchedule,
    dataset: Dataset,
    config: TrainConfig,
    progress: bool = True,
    *,
    ddpm_loss_fn: Callable[..., torch.Tensor] | None = None,
    drop_labels_fn: Callable[..., torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` to predict the noise with :func:`diffusion.losses.ddpm_loss` (see the module docstring).

    The model is class-conditional when it has an integer ``num_classes`` attribute; then the
    labels go to the loss as ``y=``. With ``config.checkpoint_path`` set, a checkpoint (model, EMA,
    optimiser, step, generator state, losses, config) is written atomically every
    ``checkpoint_every`` steps and at the end, and an existing checkpoint there is resumed.

    Args:
        model: a denoiser ``model(x_t, t, y=None) -> eps_hat``; trained in place, moved to ``config.device``.
        dataset: ``(x0, y)`` pairs, ``x0`` in [−1, 1].
        ddpm_loss_fn, drop_labels_fn: the loss and the label dropout to train with (default: your
            :func:`~diffusion.losses.ddpm_loss` and :func:`~diffusion.guidance.drop_labels`).

    Returns:
        :class:`TrainResult`; both models are in eval mode.

    Raises:
        ValueError: if ``p_uncond > 0`` for an unconditional model, the data set is empty, or the
            checkpoint was written with a different ``batch_size``, ``lr``, ``ema_decay``,
            ``p_uncond``, ``grad_clip`` or ``seed``.
    """
    device = torch.device(config.device)
    ddpm_loss_fn = ddpm_loss if ddpm_loss_fn is None else ddpm_loss_fn
    drop_labels_fn = drop_labels if drop_labels_fn is None else drop_labels_fn
    num_classes = getattr(model, "num_classes", None)
    if config.p_uncond > 0 and num_classes is None:
        raise ValueError("p_uncond > 0 needs a class-conditional model: build it with num_classes=K, or set p_uncond=0")
    if len(dataset) == 0:
        raise ValueError("the data set is empty")
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    ema = EMA(model, config.ema_decay)
    generator = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    start = 0

    checkpoint = Path(config.checkpoint_path) if config.checkpoint_path else None
    if checkpoint is not None and checkpoint.exists():
        start = load_checkpoint(checkpoint, model, ema, optimizer, generator, losses, config)

    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, disable=not progress, desc="training")
    for step in bar:
        # 1. a batch, uniformly with replacement
        index = torch.randint(0, len(dataset), (config.batch_size,), generator=generator)
        x0, y = default_collate([dataset[i] for i in index.tolist()])
        x0 = x0.to(device)  # (B, ...)
        # 2. label dropout
        model_kwargs = {}
        if num_classes is not None:
            if config.p_uncond > 0:
                y = drop_labels_fn(y, config.p_uncond, num_classes, generator=generator)
            model_kwargs["y"] = y.to(device)  # (B,)
        # 3. the loss and an optimiser step; dropout layers draw from the global RNG, forked and seeded here
        dropout_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng():
            torch.manual_seed(dropout_seed)
            loss = ddpm_loss_fn(model, schedule, x0, generator=generator, **model_kwargs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        # 4. the moving average
        ema.update(model)
        losses.append(loss.item())

        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            recent = losses[-config.log_every :]
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
        if checkpoint is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            save_checkpoint(checkpoint, model, ema, optimizer, generator, losses, config, done)

    model.eval()
    ema_model = copy.deepcopy(model)
    ema.copy_to(ema_model)
    return TrainResult(model=model, ema_model=ema_model, losses=losses, steps=max(start, config.steps))


def save_checkpoint(
    path: Path,
    model: nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    losses: list[float],
    config: TrainConfig,
    step: int,
) -> None:
    """Write the run's full state to ``path`` atomically: to ``path.tmp``, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "losses": list(losses),
        "config": dataclasses.asdict(config),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path,
    model: nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    losses: list[float],
    config: TrainConfig,
) -> int:
    """Restore a run's state from ``path`` into the given objects (``losses`` is extended in place).

    Returns:
        the number of steps already taken.

    Raises:
        ValueError: if the checkpoint's config differs from ``config`` in a field of
            :data:`RESUMABLE_FIELDS`.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state["config"]
    different = [
        f"{name}: {saved[name]!r} there, {getattr(config, name)!r} now"
        for name in RESUMABLE_FIELDS
        if saved[name] != getattr(config, name)
    ]
    if different:
        raise ValueError(
            f"checkpoint {path} belongs to another run ({'; '.join(different)}); "
            f"use the same settings to resume, or another checkpoint_path to start afresh"
        )
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    losses.extend(state["losses"])
    return state["step"]
