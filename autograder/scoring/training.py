"""Train the scoring classifier of an image data set: fixed seed, Adam, cross-entropy, a few epochs on the CPU.

On the CPU with one thread the result is bitwise reproducible (same seed, same weights' SHA-256);
``torch.use_deterministic_algorithms`` is switched on for the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.nn.functional import cross_entropy

from autograder.scoring.classifier import ClassifierConfig, FeatureClassifier, default_device
from autograder.scoring.tensors import load_tensors


@dataclass(frozen=True)
class Recipe:
    """How long to train on a data set: ``n_train`` examples (``None``: the registry's default), ``epochs`` passes."""

    n_train: int | None
    epochs: int
    batch_size: int = 128
    lr: float = 2e-3


RECIPES: dict[str, Recipe] = {
    "shapes16": Recipe(n_train=10_000, epochs=3),
    "shapes28": Recipe(n_train=10_000, epochs=3),
    "fashion28": Recipe(n_train=None, epochs=5),
    "mnist28": Recipe(n_train=None, epochs=3),
    "cifar32": Recipe(n_train=None, epochs=8),
}
"""The data sets that have a scoring classifier, and their training recipes."""


@dataclass(frozen=True)
class Trained:
    """A trained classifier, its held-out accuracy (on the test split) and the seconds training took."""

    model: FeatureClassifier
    test_accuracy: float
    seconds: float
    n_train: int
    epochs: int


@torch.no_grad()
def accuracy(model: FeatureClassifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """The fraction of ``x`` ``(N, C, H, W)`` whose arg-max logit is the label ``y`` ``(N,)``."""
    device = next(model.parameters()).device
    correct = sum(
        int((model(xb.to(device)).argmax(dim=1) == yb.to(device)).sum())
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True)
    )
    return correct / len(y)


def train_classifier(
    dataset: str,
    seed: int = 0,
    epochs: int | None = None,
    n_train: int | None = None,
    device: torch.device | str | None = None,
) -> Trained:
    """Train :class:`FeatureClassifier` on ``dataset``'s train split (``RECIPES`` gives the defaults).

    The initial weights come from ``torch.manual_seed(seed)`` inside :func:`torch.random.fork_rng`
    (the caller's global generator is left alone); the order of the minibatches from a generator seeded
    with ``seed``. Loss: ``−log softmax(f(x))_y``, the mean over a minibatch.

    Raises:
        ValueError: for a data set without a recipe.
        DataUnavailable: for a data set read from files that are not on this machine.
    """
    if dataset not in RECIPES:
        raise ValueError(f"no scoring classifier for {dataset!r}; known: {', '.join(RECIPES)}")
    recipe = RECIPES[dataset]
    epochs = recipe.epochs if epochs is None else epochs
    device = default_device() if device is None else torch.device(device)
    start = time.perf_counter()
    x, y = load_tensors(dataset, n_train or recipe.n_train, seed, "train")  # (N, C, H, W), (N,)
    config = ClassifierConfig(dataset, x.shape[1], x.shape[-1], int(y.max()) + 1)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FeatureClassifier(config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        order = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(y), generator=order).split(recipe.batch_size):
                loss = cross_entropy(model(x[batch].to(device)), y[batch].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        torch.use_deterministic_algorithms(deterministic)
    model.eval()
    seconds = time.perf_counter() - start
    test_x, test_y = load_tensors(dataset, None if recipe.n_train is None else 2_000, seed, "test")
    return Trained(model, accuracy(model, test_x, test_y), seconds, len(y), epochs)
