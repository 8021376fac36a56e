"""The harness's figures: samples, quality and time against DDIM's steps, quality against the guidance scale."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from autograder.reference import load_reference

REFERENCE = load_reference()
plotting = importlib.import_module("diffusion.plotting")


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_samples(run: dict[str, Any], path: Path) -> Path:
    """Every sampler's samples, one panel each, coloured by their labels."""
    panels = {name: result["samples"] for name, result in run["runs"].items() if "samples" in result}
    return plotting.plot_point_grid(panels, run["labels"], path)


def plot_steps(scores: dict[str, Any], path: Path) -> Path:
    """Energy distance and seconds per sample against DDIM's steps (η = 0), with DDPM's point."""
    runs = scores["runs"]
    ddim = sorted(
        (r["steps"], r["energy_distance"], r["seconds_per_sample"])
        for r in runs.values()
        if r.get("sampler") == "ddim" and r.get("eta") == 0.0 and "energy_distance" in r
    )
    figure = _figure(10, 4)
    quality, speed = figure.subplots(1, 2)
    for ax, column, label in ((quality, 1, "energy distance to the data"), (speed, 2, "seconds per sample")):
        if ddim:
            ax.plot([d[0] for d in ddim], [d[column] for d in ddim], "o-", label="DDIM (η = 0)")
        ddpm = runs.get("ddpm", {})
        if "energy_distance" in ddpm:
            ax.plot(
                [ddpm["steps"]],
                [(None, ddpm["energy_distance"], ddpm["seconds_per_sample"])[column]],
                "s",
                color="C3",
                label="DDPM",
            )
        ax.set(xscale="log", yscale="log", xlabel="sampling steps", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    quality.axhline(scores["floor"], color="gray", linestyle="--", linewidth=1)
    quality.text(
        1.05, scores["floor"], " real data", color="gray", va="bottom", transform=quality.get_yaxis_transform()
    )
    figure.suptitle("Quality and cost against the number of sampling steps")
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_guidance(scores: dict[str, Any], path: Path) -> Path:
    """Energy distance and class accuracy against the guidance scale ``s``."""
    cfg = sorted(
        (r["guidance_scale"], r["energy_distance"], r["accuracy"])
        for r in scores["runs"].values()
        if r.get("sampler") == "cfg" and "energy_distance" in r
    )
    figure = _figure(10, 4)
    quality, accuracy = figure.subplots(1, 2)
    scales = [c[0] for c in cfg]
    quality.plot(scales, [c[1] for c in cfg], "o-")
    quality.set(xlabel="guidance scale s", ylabel="energy distance to the data", yscale="log")
    accuracy.plot(scales, [c[2] for c in cfg], "o-", color="C2")
    accuracy.set(xlabel="guidance scale s", ylabel="class accuracy", ylim=(0, 1.02))
    for ax in (quality, accuracy):
        ax.grid(True, alpha=0.3)
    figure.suptitle("Classifier-free guidance: quality and class accuracy against the scale")
    figure.tight_layout()
    figure.savefig(path)
    return path
