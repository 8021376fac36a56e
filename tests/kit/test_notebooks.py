"""Every solution notebook runs top to bottom with the reference package at the CI size, and writes its figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import execute, kernel_env, notebook_paths
from autograder.reference import SOLUTIONS

NOTEBOOKS = notebook_paths(SOLUTIONS)
FIGURES = {
    "01_forward_process": ["schedules.png", "noised_linear.png", "noised_cosine.png", "closed_vs_steps.png"],
    "02_ddpm": ["loss.png", "loss_by_t.png", "samples.png", "trajectory.png"],
    "03_ddim": ["quality_vs_speed.png", "samples_by_steps.png", "inversion.png"],
    "04_guidance": ["cfg_sweep.png", "cfg_tradeoff.png", "classifier_guidance.png"],
    "05_latent_diffusion": ["reconstructions.png", "latent_samples.png", "latent_cfg_sweep.png"],
}
"""The figures each notebook writes under ``figures/<notebook>/``."""


def test_every_notebook_is_listed() -> None:
    assert [path.stem for path in NOTEBOOKS] == sorted(FIGURES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_at_ci_size_and_writes_its_figures(path: Path, tmp_path: Path) -> None:
    notebook = execute(path, SOLUTIONS, "ci", tmp_path, timeout=300)

    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors, errors
    written = sorted(p.name for p in (tmp_path / "figures" / path.stem).glob("*.png"))
    assert written == sorted(FIGURES[path.stem])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_source_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: clear its outputs, then commit"


def test_kernel_env_rejects_an_unknown_size_and_a_directory_without_the_package(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size must be one of ci, full"):
        kernel_env(SOLUTIONS, "huge")
    with pytest.raises(ValueError, match="holds no diffusion/ package"):
        kernel_env(tmp_path, "ci")
    assert kernel_env(SOLUTIONS, "ci")["PYTHONPATH"].startswith(str(SOLUTIONS))
