"""Scoring classifiers on disk: ``NAME.safetensors`` (weights, and the config in its metadata) beside
``NAME.json`` (the file's SHA-256 and the figures measured when it was trained), verified on load.

Looked for in :data:`SHIPPED` (the kit's own, committed for the small data sets), then in the cache
(``$DIFFUSION_CACHE/classifiers``, where ``python -m autograder classifier train`` writes by default).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from autograder.files import replacing, write_atomically
from autograder.reference import reference_module
from autograder.scoring.classifier import ClassifierConfig, FeatureClassifier, default_device

image_files = reference_module("image_files")

SHIPPED = Path(__file__).resolve().parent / "weights"
"""The classifiers that ship with the kit."""
TRAIN_COMMAND = "python -m autograder classifier train --data {dataset}"


class ClassifierUnavailable(FileNotFoundError):
    """No trained classifier for a data set; the message says how to train one."""


class ChecksumMismatch(ValueError):
    """A classifier's weights are not the file its record describes (edited, truncated or replaced)."""


def cached() -> Path:
    """Where trained classifiers are cached: ``<cache_dir()>/classifiers``."""
    return image_files.cache_dir() / "classifiers"


def save_classifier(model: FeatureClassifier, directory: Path, figures: dict) -> dict:
    """Write ``model`` to ``directory/NAME.safetensors`` and its record to ``NAME.json``; return the record.

    The record holds the weights' file name, ``sha256`` and ``bytes``, and ``figures`` (plain JSON values).
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = model.config.dataset
    weights = directory / f"{name}.safetensors"
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    with replacing(weights) as tmp:
        save_file(state, tmp, metadata=model.config.to_metadata())
    data = weights.read_bytes()
    record = {"weights": weights.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), **figures}
    write_atomically(directory / f"{name}.json", json.dumps(record, indent=2) + "\n")
    return record


def find_classifier(dataset: str, directories: tuple[Path, ...] | None = None) -> Path | None:
    """The first ``NAME.json`` record for ``dataset`` in ``directories`` (default: shipped, then cached)."""
    for directory in (SHIPPED, cached()) if directories is None else directories:
        if (directory / f"{dataset}.json").is_file():
            return directory / f"{dataset}.json"
    return None


def read_record(path: Path) -> dict:
    """A classifier's record (``NAME.json``)."""
    return json.loads(path.read_text())


def load_classifier(
    dataset: str, directories: tuple[Path, ...] | None = None, device: torch.device | str | None = None
) -> FeatureClassifier:
    """The trained classifier of ``dataset``, in eval mode on ``device`` (default: CUDA when present).

    Raises:
        ClassifierUnavailable: none is shipped or cached; the message gives the command that trains one.
        ChecksumMismatch: the weights' SHA-256 is not the one recorded beside them.
    """
    record_path = find_classifier(dataset, directories)
    searched = ", ".join(str(d) for d in ((SHIPPED, cached()) if directories is None else directories))
    if record_path is None:
        raise ClassifierUnavailable(
            f"no scoring classifier for {dataset!r} in {searched}; train one (a few minutes on a CPU) with "
            f"`{TRAIN_COMMAND.format(dataset=dataset)}`, which caches it in {cached()}"
        )
    record = read_record(record_path)
    weights = record_path.with_name(record["weights"])
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else "missing"
    if digest != record["sha256"]:
        raise ChecksumMismatch(
            f"{weights} has SHA-256 {digest}, but {record_path.name} records {record['sha256']}: the weights were "
            f"changed, truncated or replaced. Restore the file (the shipped ones: `git checkout {SHIPPED.name}/`) "
            f"or retrain with `{TRAIN_COMMAND.format(dataset=dataset)} --out {weights.parent}`"
        )
    with safe_open(weights, framework="pt") as file:
        config = ClassifierConfig.from_metadata(file.metadata())
        state = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    model = FeatureClassifier(config)
    model.load_state_dict(state)
    return model.to(default_device() if device is None else device).eval()
