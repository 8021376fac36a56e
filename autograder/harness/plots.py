"""The harness's figures: samples, quality and time against DDIM's steps, quality against the guidance scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from autograder.reference import reference_module

plotting = reference_module("plotting")
RUN_NOTES = {
    "cfg_0": "cfg_0: s = 0, the unconditional model alone (labels ignored)\nit learned only from the 10% "
    "of examples whose labels were dropped: blurrier",
}
"""A caption for a run whose samples look wrong but are not: shown as its grid's title."""
DDIM_NOTE = (
    "{name}: DDIM, η = 0: isolated speckles are most likely the briefly trained model's per-pixel errors,\n"
    "which DDPM's fresh noise at every step washes out and a deterministic DDIM step keeps"
)


def caption(name: str) -> str:
    """The title of a run's image grid: its name, and what is known to look odd in it."""
    if name in RUN_NOTES:
        return RUN_NOTES[name]
    return DDIM_NOTE.format(name=name) if name.startswith("ddim_") and name.endswith("_0") else name


def plot_samples(run: dict[str, Any], out: Path, plan: str) -> list[Path]:
    """Every sampler's samples: 2-D points in one figure of panels coloured by label
    (``samples_<plan>.png``), images as one grid per sampler with a column per class
    (``samples_<plan>_<run>.png``)."""
    panels = {name: result["samples"] for name, result in run["runs"].items() if "samples" in result}
    if not panels:
        return []
    if next(iter(panels.values())).dim() == 2:
        return [plotting.plot_point_grid(panels, run["labels"], out / f"samples_{plan}.png")]
    classes = [f"class {k}" for k in range(run["num_classes"])]
    return [
        plotting.save_image_grid(
            samples[:100],
            out / f"samples_{plan}_{name}.png",
            nrow=run["num_classes"],
            column_labels=classes[: len(samples[:100])],
            title=caption(name),
        )
        for name, samples in panels.items()
    ]


def plot_reconstructions(run: dict[str, Any], path: Path) -> Path:
    """Held-out images (odd rows) above their VAE reconstructions (even rows), ten a row."""
    inputs, reconstructions = run["vae"]["inputs"][:50], run["vae"]["reconstructions"][:50]
    rows = [torch.cat([inputs[i : i + 10], reconstructions[i : i + 10]]) for i in range(0, len(inputs), 10)]
    return plotting.save_image_grid(torch.cat(rows), path, nrow=min(10, len(inputs)))


def _metric(runs: dict[str, Any]) -> str:
    metrics = {r["metric"] for r in runs.values() if "metric" in r}
    return "Fréchet distance (classifier features)" if metrics == {"frechet"} else "energy distance"


def plot_steps(scores: dict[str, Any], path: Path) -> Path:
    """Energy distance and seconds per sample against DDIM's steps (η = 0), with DDPM's point."""
    runs = scores["runs"]
    ddim = sorted(
        (r["steps"], r["distance"], r["seconds_per_sample"])
        for r in runs.values()
        if r.get("sampler") == "ddim" and r.get("eta") == 0.0 and "distance" in r
    )
    figure = plotting.new_figure(10, 4)
    quality, speed = figure.subplots(1, 2)
    for ax, column, label in ((quality, 1, f"{_metric(runs)} to the data"), (speed, 2, "seconds per sample")):
        if ddim:
            ax.plot([d[0] for d in ddim], [d[column] for d in ddim], "o-", label="DDIM (η = 0)")
        ddpm = runs.get("ddpm", {})
        if "distance" in ddpm:
            ax.plot(
                [ddpm["steps"]],
                [(None, ddpm["distance"], ddpm["seconds_per_sample"])[column]],
                "s",
                color="C3",
                label="DDPM",
            )
        ax.set(xscale="log", yscale="log", xlabel="sampling steps", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    if "floor" in scores:  # no run was scored when every sampler failed
        quality.axhline(scores["floor"], color="gray", linestyle="--", linewidth=1)
        quality.text(  # inside the axes: a label right of them is cut off by the next panel
            0.02, scores["floor"], "real data", color="gray", va="bottom", transform=quality.get_yaxis_transform()
        )
    figure.suptitle(
        "Quality and cost against the number of sampling steps\n"
        "(near the real-data line the distance is mostly sampling noise: the curve flattens and may wiggle)"
    )
    figure.tight_layout()
    return plotting.save_figure(figure, path)


def plot_guidance(scores: dict[str, Any], path: Path) -> Path:
    """Energy distance and class accuracy against the guidance scale ``s``."""
    cfg = sorted(
        (r["guidance_scale"], r["distance"], r["accuracy"])
        for r in scores["runs"].values()
        if r.get("sampler") == "cfg" and "distance" in r
    )
    figure = plotting.new_figure(10, 4)
    quality, accuracy = figure.subplots(1, 2)
    scales = [c[0] for c in cfg]
    quality.plot(scales, [c[1] for c in cfg], "o-")
    quality.set(xlabel="guidance scale s", ylabel=f"{_metric(scores['runs'])} to the data")
    accuracy.plot(scales, [c[2] for c in cfg], "o-", color="C2")
    accuracy.set(xlabel="guidance scale s", ylabel="class accuracy", ylim=(0, 1.02))
    for ax in (quality, accuracy):
        ax.grid(True, alpha=0.3)
    figure.suptitle("Classifier-free guidance: quality and class accuracy against the scale")
    figure.tight_layout()
    return plotting.save_figure(figure, path)
