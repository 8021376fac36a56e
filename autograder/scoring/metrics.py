"""Scores of generated samples, each with the baselines that make it readable.

Images (:func:`score_images`): the Fréchet distance (:mod:`autograder.scoring.frechet`) between the
samples' features and those of real training images, in the penultimate layer of the data set's
scoring classifier, and that classifier's accuracy on class-conditional samples given the labels
they were drawn for. 2-D points (:func:`score_points`): the energy distance
(:func:`autograder.scoring.energy.energy_distance`) to a sample of the true mixture, and the accuracy of the
mixture's exact Bayes classifier ``argmax_k p(k | x)``.

Every score carries its baselines, computed with the same number of samples (both distances are
biased upwards at small sample sizes, by an amount that depends on the size):
the *floor*, the distance of held-out real data (the test split), which a perfect model reaches; and
the *ceiling*, the distance of pure noise: ``x ~ N(0, I)`` (the sampler's starting point ``x_T``), for
images clipped to the data's range [−1, 1] as samplers clip their predictions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch

from autograder.scoring.classifier import FeatureClassifier
from autograder.scoring.energy import energy_distance
from autograder.scoring.frechet import Gaussian, frechet_distance
from autograder.scoring.tensors import data, load_tensors
from autograder.scoring.training import accuracy
from autograder.scoring.weights import load_classifier


@dataclass(frozen=True)
class Scores:
    """A sample's distance to the data and its class accuracy, with the baselines at the same sample size.

    Attributes:
        dataset: the data set's registry name.
        n: number of samples scored.
        metric: ``"frechet"`` (images, classifier features) or ``"energy"`` (2-D points).
        distance: the samples' distance to the data.
        floor: the same distance for ``n`` held-out real examples.
        ceiling: the same distance for ``n`` draws of ``N(0, I)`` (images: clipped to [−1, 1]).
        accuracy: the fraction of samples classified as their intended label (``None`` without labels).
        real_accuracy: the classifier's accuracy on the ``n`` held-out real examples.
    """

    dataset: str
    n: int
    metric: Literal["frechet", "energy"]
    distance: float
    floor: float
    ceiling: float
    accuracy: float | None
    real_accuracy: float

    @property
    def relative(self) -> float:
        """``(distance − floor) / (ceiling − floor)``: 0 as good as real data, 1 as far as pure noise."""
        return (self.distance - self.floor) / (self.ceiling - self.floor)


def _check(samples: torch.Tensor, labels: torch.Tensor | None, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(samples, torch.Tensor) or tuple(samples.shape[1:]) != shape or samples.shape[0] < 2:
        got = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"{what} must be a tensor of shape (n, {', '.join(map(str, shape))}) with n >= 2; got {got}")
    if labels is not None and (labels.dtype != torch.long or tuple(labels.shape) != (samples.shape[0],)):
        raise ValueError(f"labels must be a long tensor of shape ({samples.shape[0]},); got {labels!r:.80}")


class ImageScorer:
    """Scores images of one data set with its classifier; reference features and baselines are computed once.

    Args:
        classifier: the data set's :class:`FeatureClassifier` (its ``config.dataset`` names the data set).
        reference_size: how many training images the reference Gaussian is fitted to.
        seed: draws the reference, the held-out sets and the noise.
    """

    def __init__(self, classifier: FeatureClassifier, reference_size: int = 10_000, seed: int = 0) -> None:
        self.classifier = classifier
        self.dataset = classifier.config.dataset
        self.shape = (classifier.config.in_channels, classifier.config.size, classifier.config.size)
        self.seed = seed
        self.reference = Gaussian.fit(self.features(load_tensors(self.dataset, reference_size, seed, "train")[0]))
        self._baselines: dict[int, tuple[float, float, float]] = {}

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The classifier's penultimate features: ``(N, C, H, W)`` → float64 ``(N, 128)`` on the CPU."""
        device = next(self.classifier.parameters()).device
        batches = [self.classifier.features(b.to(device, torch.float32)).cpu() for b in images.split(batch_size)]
        return torch.cat(batches).double()

    def frechet(self, images: torch.Tensor) -> float:
        """The Fréchet distance between ``images`` and the reference, in feature space."""
        return frechet_distance(Gaussian.fit(self.features(images)), self.reference)

    def baselines(self, n: int) -> tuple[float, float, float]:
        """``(floor, ceiling, real_accuracy)`` for ``n`` samples (computed once per ``n``)."""
        if n not in self._baselines:
            real, labels = load_tensors(self.dataset, n, self.seed, "test")
            if len(labels) < n:
                raise ValueError(f"{self.dataset}'s test split has {len(labels)} examples; score at most that many")
            noise = torch.randn((n, *self.shape), generator=torch.Generator().manual_seed(self.seed)).clamp(-1, 1)
            floor, ceiling = self.frechet(real), self.frechet(noise)
            self._baselines[n] = floor, ceiling, accuracy(self.classifier, real, labels)
        return self._baselines[n]

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> Scores:
        """Score ``images`` ``(n, C, H, W)`` in [−1, 1], drawn for ``labels`` (long ``(n,)``) if given."""
        _check(images, labels, self.shape, f"{self.dataset} images")
        floor, ceiling, real_accuracy = self.baselines(images.shape[0])
        correct = None if labels is None else accuracy(self.classifier, images.detach().float(), labels)
        return Scores(
            self.dataset, images.shape[0], "frechet", self.frechet(images), floor, ceiling, correct, real_accuracy
        )


@functools.cache
def image_scorer(dataset: str) -> ImageScorer:
    """The :class:`ImageScorer` of ``dataset`` with its shipped or cached classifier (built once per process)."""
    return ImageScorer(load_classifier(dataset))


def score_images(images: torch.Tensor, dataset: str, labels: torch.Tensor | None = None) -> Scores:
    """Score generated ``images`` ``(n, C, H, W)`` of ``dataset`` (class-conditional ones with their ``labels``).

    Raises:
        ClassifierUnavailable: the data set's classifier is neither shipped nor cached (the message says how
            to train it).
        ChecksumMismatch: its weights are not those recorded.
        DataUnavailable: the data set's files are not on this machine.
    """
    return image_scorer(dataset).score(images, labels)


def score_points(
    points: torch.Tensor,
    labels: torch.Tensor | None = None,
    mixture: data.GaussianMixture | None = None,
    seed: int = 0,
    reference_size: int = 2_000,
) -> Scores:
    """Score generated 2-D ``points`` ``(n, D)`` against ``mixture`` (default: that of ``load_dataset("mixture2d")``).

    The reference is ``reference_size`` draws of the mixture; the floor a fresh draw of ``n``; the ceiling
    ``n`` draws of ``N(0, I)``. The accuracy is that of the exact Bayes classifier ``argmax_k p(k | x)``.
    """
    mixture = data.default_mixture() if mixture is None else mixture
    _check(points, labels, (mixture.dim,), "points")
    n, generator = points.shape[0], torch.Generator().manual_seed(seed)
    reference, _ = mixture.sample(reference_size, generator=generator)
    real, real_labels = mixture.sample(n, generator=generator)
    noise = torch.randn(n, mixture.dim, dtype=torch.float64, generator=generator)

    def bayes_accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
        predicted = mixture.class_log_posterior(x.detach().cpu().double()).argmax(dim=1)
        return float((predicted == y.cpu()).double().mean())

    return Scores(
        "mixture2d",
        n,
        "energy",
        energy_distance(points, reference),
        energy_distance(real, reference),
        energy_distance(noise, reference),
        None if labels is None else bayes_accuracy(points, labels),
        bayes_accuracy(real, real_labels),
    )
