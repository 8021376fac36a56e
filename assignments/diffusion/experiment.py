"""End to end with your own code: train the UNet briefly, sample with DDPM and DDIM, save grids (provided).

    python -m diffusion.experiment --data shapes16 --steps 1500 --out runs/e2e --threads 1

1. Build the schedule with your ``make_schedule`` and ``linear_betas`` (part 1).
2. Train a class-conditional :class:`~diffusion.unet.UNet` with your ``ddpm_loss`` (part 4) and
   ``drop_labels`` (part 8), keeping an EMA of the weights; the checkpoint in ``--out`` resumes.
3. Sample the EMA model with your ``p_sample_loop`` (T steps, part 6) and ``ddim_sample_loop``
   (part 7), one row per class, and time both.
4. Write ``data.png``, ``ddpm_<T>.png``, ``ddim_<steps>.png`` and ``timings.json`` to ``--out``
   and print the seconds per sample of each sampler.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from diffusion.data import load_dataset
from diffusion.ddim import ddim_sample_loop
from diffusion.ddpm import p_sample_loop
from diffusion.plotting import save_image_grid
from diffusion.runtime import default_device, default_threads, timed
from diffusion.schedules import linear_betas, make_schedule
from diffusion.train import TrainConfig, train
from diffusion.unet import UNet


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Train, sample and time as described in the module docstring; return the timings."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)

    schedule = make_schedule(linear_betas(args.T))
    dataset = load_dataset(args.data, n=args.n_train, seed=args.seed)
    num_classes = dataset.num_classes
    images = torch.stack([dataset[i][0] for i in range(args.n_samples)])
    save_image_grid(images, out / "data.png", nrow=num_classes)

    model = UNet(
        in_channels=images.shape[1], base_channels=args.channels, channel_mults=(1, 2), num_classes=num_classes
    )
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        ema_decay=0.995,
        p_uncond=0.1,
        seed=args.seed,
        device=str(device),
        checkpoint_path=str(out / "checkpoint.pt"),
    )
    result = train(model, schedule, dataset, config, progress=not args.quiet)
    ema = result.ema_model

    shape = (args.n_samples, *images.shape[1:])
    y = (torch.arange(args.n_samples) % num_classes).to(device)  # one column per class
    kwargs = {"generator": torch.Generator().manual_seed(args.seed), "device": device, "progress": not args.quiet}
    ddpm, ddpm_seconds = timed(lambda: p_sample_loop(ema, schedule, shape, y=y, **kwargs), device)
    kwargs["generator"] = torch.Generator().manual_seed(args.seed)
    ddim, ddim_seconds = timed(
        lambda: ddim_sample_loop(ema, schedule, shape, num_steps=args.ddim_steps, y=y, **kwargs), device
    )
    grids = {
        f"ddpm_{args.T}": (ddpm, f"DDPM, {args.T} steps"),
        f"ddim_{args.ddim_steps}": (ddim, f"DDIM (η = 0), {args.ddim_steps} steps"),
    }
    classes = [f"class {k}" for k in range(num_classes)]
    for name, (samples, title) in grids.items():
        save_image_grid(samples, out / f"{name}.png", nrow=num_classes, column_labels=classes, title=title)

    timings = {
        f"ddpm_{args.T}": {"seconds": ddpm_seconds, "seconds_per_sample": ddpm_seconds / args.n_samples},
        f"ddim_{args.ddim_steps}": {"seconds": ddim_seconds, "seconds_per_sample": ddim_seconds / args.n_samples},
    }
    summary = {
        "data": args.data,
        "device": str(device),
        "train_steps": result.steps,
        "final_loss": sum(result.losses[-100:]) / max(len(result.losses[-100:]), 1),
        "samplers": timings,
    }
    (out / "timings.json").write_text(json.dumps(summary, indent=2))
    print(
        f"trained {result.steps} steps on {args.data} ({device}); mean loss of the last 100 steps "
        f"{summary['final_loss']:.4f}"
    )
    print(f"{'sampler':<12}{'seconds':>10}{'s / sample':>14}")
    for name, timing in timings.items():
        print(f"{name:<12}{timing['seconds']:>10.2f}{timing['seconds_per_sample']:>14.4f}")
    speedup = ddpm_seconds / ddim_seconds
    print(f"DDIM-{args.ddim_steps} is {speedup:.1f}x faster than DDPM-{args.T}; grids in {out}/")
    return timings


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m diffusion.experiment``."""
    p = argparse.ArgumentParser(prog="python -m diffusion.experiment", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="shapes16", help="shapes16 or shapes28 (default shapes16)")
    p.add_argument("--out", default="runs/e2e", help="output directory (grids, timings, checkpoint)")
    p.add_argument("--steps", type=int, default=1500, help="training steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--channels", type=int, default=32, help="UNet base channels")
    p.add_argument("--n-train", type=int, default=6000, help="training examples")
    p.add_argument("--n-samples", type=int, default=36, help="samples per sampler")
    p.add_argument("--T", type=int, default=1000, help="diffusion steps (DDPM samples with all of them)")
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=default_device(), help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--threads", type=int, default=default_threads(), help="CPU threads (default: half the cores, at least 1)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


if __name__ == "__main__":
    run(parser().parse_args())
