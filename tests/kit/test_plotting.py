"""The plotting helpers write readable PNGs of the expected size, into directories they create."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from autograder.harness.plots import caption
from diffusion.plotting import DPI, MIN_GRID_WIDTH, plot_points, plot_schedules, plot_trajectory, save_image_grid
from tests.public.helpers import schedule


def read_png(path: Path) -> Image.Image:
    assert path.is_file(), f"{path} was not written"
    image = Image.open(path)
    image.load()
    assert image.format == "PNG"
    return image


def distinct_colours(image: Image.Image) -> int:
    return len(image.convert("RGB").getcolors(maxcolors=1 << 24))


def test_image_grid_layout_and_value_range(tmp_path: Path) -> None:
    """10 images of 16×16, 5 per row, 2-pixel padding: 5·18 + 2 wide, 2·18 + 2 high, each pixel enlarged to a
    6×6 block (the smallest factor that reaches 480 pixels across); −1 → black, +1 → white."""
    x = -torch.ones(10, 1, 16, 16)
    x[:, :, 4:12, 4:12] = 1.0
    path = save_image_grid(x, tmp_path / "new" / "dir" / "grid.png", nrow=5)
    assert path == tmp_path / "new" / "dir" / "grid.png"
    image = read_png(path).convert("L")
    assert image.size == (6 * (5 * 18 + 2), 6 * (2 * 18 + 2)) and MIN_GRID_WIDTH <= 6 * (5 * 18 + 2)
    assert image.getpixel((6 * (2 + 8), 6 * (2 + 8))) == 255, "+1 must map to white"
    assert image.getpixel((6 * (2 + 1), 6 * (2 + 1))) == 0, "−1 must map to black"


def test_image_grid_default_is_square(tmp_path: Path) -> None:
    image = read_png(save_image_grid(torch.rand(9, 3, 8, 8) * 2 - 1, tmp_path / "grid.png"))
    assert image.size == (15 * (3 * 10 + 2), 15 * (3 * 10 + 2))


def test_a_labelled_grid_keeps_the_grid_whole_and_adds_its_labels_around_it(tmp_path: Path) -> None:
    x = torch.rand(12, 1, 16, 16) * 2 - 1
    plain = read_png(save_image_grid(x, tmp_path / "plain.png", nrow=6))
    labels = [f"t = {t}" for t in range(6)]
    path = save_image_grid(x, tmp_path / "grid.png", nrow=6, column_labels=labels, row_labels=["a", "b"], title="T")
    labelled = read_png(path)
    assert labelled.width > plain.width and labelled.height > plain.height  # room for the labels, none cut off
    with pytest.raises(ValueError, match="one column label per column: 6, got 5"):
        save_image_grid(x, tmp_path / "bad.png", nrow=6, column_labels=labels[:5])


def test_image_grid_rejects_points(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        save_image_grid(torch.zeros(10, 2), tmp_path / "grid.png")


def test_plot_schedules(tmp_path: Path) -> None:
    path = plot_schedules({"linear": schedule(100), "cosine": schedule(100, "cosine")}, tmp_path / "a" / "s.png")
    image = read_png(path)
    assert image.size == (10 * DPI, 4 * DPI)
    assert distinct_colours(image) > 10
    with pytest.raises(ValueError, match="at least one schedule"):
        plot_schedules({}, tmp_path / "empty.png")


@pytest.mark.parametrize("labelled", [True, False])
def test_plot_points(tmp_path: Path, labelled: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=generator) * 0.5
    y = torch.randint(0, 8, (300,), generator=generator) if labelled else None
    image = read_png(plot_points(x, y, tmp_path / "p" / "points.png", title="points"))
    assert image.size == (5 * DPI, 5 * DPI)
    assert distinct_colours(image) > (8 if labelled else 2)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        plot_points(torch.zeros(5, 3), None, tmp_path / "bad.png")


@pytest.mark.parametrize(("shape", "height"), [((50, 2), 2.4), ((6, 1, 16, 16), 4.4)], ids=["points", "images"])
def test_plot_trajectory(tmp_path: Path, shape: tuple[int, ...], height: float) -> None:
    generator = torch.Generator().manual_seed(0)
    states = [torch.randn(shape, generator=generator) * (1 - k / 10) for k in range(11)]
    image = read_png(plot_trajectory(states, tmp_path / "t" / "trajectory.png", num_frames=4))
    assert image.size == (4 * 2 * DPI, round(height * DPI))
    assert distinct_colours(image) > 2


def test_plot_trajectory_with_fewer_states_than_frames(tmp_path: Path) -> None:
    states = [torch.zeros(10, 2), torch.ones(10, 2)]
    image = read_png(plot_trajectory(states, tmp_path / "short.png", num_frames=8))
    assert image.size == (2 * 2 * DPI, round(2.4 * DPI))


def test_the_harness_captions_what_looks_odd_in_its_image_grids():
    """A grid whose look is known to mislead says why in its title; the others carry the run's name alone."""
    assert "speckles" in caption("ddim_50_0") and caption("ddim_50_0").startswith("ddim_50_0")
    assert "unconditional" in caption("cfg_0")
    assert caption("ddpm") == "ddpm" and caption("ddim_50_1") == "ddim_50_1"
