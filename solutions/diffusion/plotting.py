"""Figures for the notebooks and the grading report (provided): sample grids, schedules, points, trajectories.

Figures are drawn with matplotlib's object API on the Agg canvas, never through ``pyplot``, so
importing this module changes no global backend and leaves a notebook's inline display alone.
Image tensors are ``(B, C, H, W)`` in [−1, 1]; points are ``(B, 2)``. Every function creates the
parent directories of ``path`` and returns the ``Path`` it wrote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchvision.utils import make_grid, save_image

from diffusion.schedules import NoiseSchedule

DPI = 100


def _prepare(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width × height`` inches on an Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` as PNG (creating its directory) and return the path."""
    path = _prepare(path)
    figure.savefig(path, dpi=DPI)
    return path


def _check_images(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"{what} must be images of shape (B, C, H, W) in [-1, 1]; got {getattr(x, 'shape', x)!r:.80}")


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in [−1, 1] → float32 CPU images in [0, 1] (clamped)."""
    return ((x.detach().to("cpu", torch.float32) + 1) / 2).clamp(0, 1)


MIN_GRID_WIDTH = 480
"""Image grids are enlarged (each pixel a square block) to at least this many pixels across, so they can be read."""


def save_image_grid(
    x: torch.Tensor,
    path: str | Path,
    nrow: int | None = None,
    column_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Save images ``(B, C, H, W)`` in [−1, 1] as one PNG grid with ``nrow`` images per row (default ``⌈√B⌉``).

    The grid has 2-pixel padding (torchvision's ``make_grid``), ``nrow · (W + 2) + 2`` pixels wide, enlarged
    by the smallest whole factor that makes it at least :data:`MIN_GRID_WIDTH` pixels wide (nearest neighbour:
    each pixel stays a sharp square). With ``column_labels`` (one per column, e.g. the class of each column),
    ``row_labels`` (one per row) or a ``title``, the grid is drawn with its labels around it.
    """
    _check_images(x, "save_image_grid's x")
    nrow = nrow or math.ceil(math.sqrt(x.shape[0]))
    rows = math.ceil(x.shape[0] / nrow)
    for labels, count, what in ((column_labels, min(nrow, x.shape[0]), "column"), (row_labels, rows, "row")):
        if labels is not None and len(labels) != count:
            raise ValueError(f"save_image_grid needs one {what} label per {what}: {count}, got {len(labels)}")
    grid = make_grid(_to_unit(x), nrow=nrow, padding=2)  # (C, H', W')
    factor = max(1, math.ceil(MIN_GRID_WIDTH / grid.shape[-1]))
    grid = grid.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)
    path = _prepare(path)
    if column_labels is None and row_labels is None and title is None:
        save_image(grid, path)
        return path
    height, width = grid.shape[1:]
    figure = new_figure(width / DPI, height / DPI)
    ax = figure.add_axes((0, 0, 1, 1))  # the grid at one image pixel per PNG pixel; the labels around it
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    for axis, labels, size in ((ax.xaxis, column_labels, x.shape[-1]), (ax.yaxis, row_labels, x.shape[-2])):
        pitch, first = (size + 2) * factor, (2 + size / 2) * factor - 0.5  # a cell, and the first cell's centre
        axis.set_ticks([first + k * pitch for k in range(len(labels or []))], labels or [])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, pad=20 if column_labels else 6)
    figure.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.1)  # "tight": no label is cut off
    return path


def plot_schedules(schedules: dict[str, NoiseSchedule], path: str | Path) -> Path:
    """Two panels against the 0-based timestep ``t``: ``ᾱ_t``, and ``log SNR(t) = log(ᾱ_t / (1 − ᾱ_t))``."""
    if not schedules:
        raise ValueError(
            "plot_schedules needs at least one schedule, e.g. {'linear': make_schedule(linear_betas(1000))}"
        )
    figure = new_figure(10, 4)
    ax_bar, ax_snr = figure.subplots(1, 2)
    for name, schedule in schedules.items():
        t = torch.arange(schedule.T)
        alpha_bars = schedule.alpha_bars.detach().cpu()
        ax_bar.plot(t, alpha_bars, label=name)
        ax_snr.plot(t, (alpha_bars / (1 - alpha_bars)).log(), label=name)
    ax_bar.set(xlabel="$t$", ylabel=r"$\bar\alpha_t$", title=r"signal kept: $\bar\alpha_t$")
    ax_snr.set(xlabel="$t$", ylabel=r"$\log \mathrm{SNR}(t)$", title=r"$\log(\bar\alpha_t / (1 - \bar\alpha_t))$")
    for ax in (ax_bar, ax_snr):
        ax.legend()
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def _scatter(ax, x: torch.Tensor, y: torch.Tensor | None, title: str | None, limit: float = 1.5) -> None:
    """Scatter points ``(B, 2)`` on ``ax`` within ``[−limit, limit]²``, coloured by label ``y`` ``(B,)`` when given.

    Up to 10 classes get tab10's distinct colours (label ``k`` is colour ``k``); more share viridis.
    """
    points = x.detach().to("cpu", torch.float64)
    if y is None:
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.6)
    elif int(y.max()) < 10:
        ax.scatter(points[:, 0], points[:, 1], c=y.detach().cpu(), cmap="tab10", vmin=-0.5, vmax=9.5, s=3, alpha=0.6)
    else:
        ax.scatter(points[:, 0], points[:, 1], c=y.detach().cpu(), cmap="viridis", s=3, alpha=0.6)
    ax.set_aspect("equal")
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit))
    if title:
        ax.set_title(title)


def plot_points(x: torch.Tensor, y: torch.Tensor | None, path: str | Path, title: str | None = None) -> Path:
    """A 2-D scatter of points ``(B, 2)``, coloured by class ``y`` (long ``(B,)``; ``None``: one colour)."""
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_points needs 2-D points of shape (B, 2); got {tuple(x.shape)}")
    figure = new_figure(5, 5)
    _scatter(figure.subplots(), x, y, title)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_point_grid(panels: dict[str, torch.Tensor], y: torch.Tensor | None, path: str | Path, ncols: int = 4) -> Path:
    """Scatters of several sets of 2-D points ``(B, 2)`` side by side, titled by their keys, coloured by ``y``."""
    if not panels:
        raise ValueError("plot_point_grid needs at least one set of points")
    nrows = math.ceil(len(panels) / ncols)
    figure = new_figure(3 * min(ncols, len(panels)), 3 * nrows)
    axes = figure.subplots(nrows, min(ncols, len(panels)), squeeze=False).flatten()
    for ax, (title, x) in zip(axes, panels.items(), strict=False):
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"plot_point_grid needs 2-D points of shape (B, 2); {title!r} has {tuple(x.shape)}")
        _scatter(ax, x, y, title)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_trajectory(states: Sequence[torch.Tensor], path: str | Path, num_frames: int = 8) -> Path:
    """A row of ``num_frames`` panels along a denoising trajectory, first and last state included.

    ``states`` is the list a sampler returns (``x_T`` first, the sample last), all of one shape:
    images ``(B, C, H, W)`` show the first (up to) 4 samples stacked in a column per panel; points
    ``(B, 2)`` show a scatter per panel.
    """
    if not states:
        raise ValueError("plot_trajectory needs a non-empty list of states")
    num_frames = min(num_frames, len(states))
    picks = torch.linspace(0, len(states) - 1, num_frames).round().long().tolist()
    figure = new_figure(2 * num_frames, 2.4 if states[0].dim() == 2 else 4.4)
    axes = figure.subplots(1, num_frames, squeeze=False)[0]
    limit = min(4.0, max(1.5, max(float(states[i].detach().abs().max()) for i in picks)))  # one scale for all panels
    for ax, index in zip(axes, picks, strict=True):
        state = states[index]
        title = f"state {index}/{len(states) - 1}"
        if state.dim() == 2 and state.shape[1] == 2:
            _scatter(ax, state, None, title, limit)
            ax.set(xticks=[], yticks=[])
            continue
        _check_images(state, "each trajectory state")
        column = make_grid(_to_unit(state[:4]), nrow=1, padding=1, pad_value=1.0)  # (3, h, w)
        ax.imshow(column.permute(1, 2, 0).numpy(), vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    figure.tight_layout()
    return save_figure(figure, path)
