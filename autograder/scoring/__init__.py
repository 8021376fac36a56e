"""Scoring generated samples without downloads: distances to the data with their floor and ceiling.

The harness calls:

- :func:`score_images` ``(images, dataset, labels=None) -> Scores``: the Fréchet distance in the
  penultimate features of the data set's small classifier and that classifier's accuracy on
  class-conditional samples, for ``shapes16``, ``shapes28``, ``fashion28``, ``mnist28``, ``cifar32``;
- :func:`score_points` ``(points, labels=None, mixture=None) -> Scores``: the energy distance to the
  true Gaussian mixture and the Bayes classifier's accuracy, for ``mixture2d``;
- :func:`load_classifier` and :func:`train_classifier` for the classifiers themselves
  (``python -m autograder classifier train --data NAME`` trains and saves one).

Every :class:`Scores` records its baselines at the same sample size: held-out real data (the floor)
and pure noise (the ceiling).
"""

from autograder.scoring.frechet import Gaussian, frechet_distance
from autograder.scoring.metrics import ImageScorer, Scores, image_scorer, score_images, score_points
from autograder.scoring.training import RECIPES, train_classifier
from autograder.scoring.weights import ChecksumMismatch, ClassifierUnavailable, load_classifier

__all__ = [
    "RECIPES",
    "ChecksumMismatch",
    "ClassifierUnavailable",
    "Gaussian",
    "ImageScorer",
    "Scores",
    "frechet_distance",
    "image_scorer",
    "load_classifier",
    "score_images",
    "score_points",
    "train_classifier",
]
