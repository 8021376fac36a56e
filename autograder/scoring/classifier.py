"""The small image classifier whose penultimate features the Fréchet distance is measured in.

Three 3×3 convolutions (16, 32, 64 channels, ReLU, 2×2 max-pooling after the first two), an adaptive
average pool to 2×2, then ``Linear(256, 128) + ReLU``: those 128 numbers are the features; a last
``Linear(128, K)`` gives the class logits. About 58 000 parameters (230 KB in float32); any image size
from 8×8 up works, so one design serves 16×16 shapes, 28×28 (Fashion-)MNIST and 32×32 CIFAR-10.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
from torch import nn


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


FEATURES = 128
"""Width of the penultimate layer, the feature space of the Fréchet distance."""


@dataclass(frozen=True)
class ClassifierConfig:
    """What builds a :class:`FeatureClassifier` (stored with its weights)."""

    dataset: str
    in_channels: int
    size: int
    num_classes: int

    def to_metadata(self) -> dict[str, str]:
        """The config as safetensors metadata: one key, so the file's bytes do not depend on a key order."""
        return {"config": json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ClassifierConfig:
        return cls(**json.loads(metadata["config"]))


class FeatureClassifier(nn.Module):
    """``x`` ``(B, C, H, W)`` in [−1, 1] → logits ``(B, K)``; :meth:`features` gives the ``(B, 128)`` before them."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.body = nn.Sequential(
            nn.Conv2d(config.in_channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 16, H/2, W/2)
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, H/4, W/4)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),  # (B, 64, 2, 2)
            nn.Flatten(),
            nn.Linear(256, FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations: ``(B, C, H, W)`` → ``(B, 128)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
