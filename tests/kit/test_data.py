"""The embedded data sets: the Gaussian mixture's exact density, score and noised law; the shapes; the registry.

Monte Carlo checks use a fixed generator and state their tolerance next to the standard error it covers.
"""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from diffusion.data import (
    DATASETS,
    GaussianMixture,
    MixtureDataset,
    ShapesDataset,
    default_mixture,
    load_dataset,
    register_dataset,
    split_seed,
)


def full_covariance_mixture() -> GaussianMixture:
    """Three 2-D components with unequal weights and correlated, anisotropic covariances."""
    means = torch.tensor([[-0.5, 0.2], [0.4, 0.4], [0.1, -0.6]], dtype=torch.float64)
    covariances = torch.tensor(
        [[[0.04, 0.01], [0.01, 0.02]], [[0.01, -0.006], [-0.006, 0.03]], [[0.05, 0.0], [0.0, 0.005]]],
        dtype=torch.float64,
    )
    return GaussianMixture(means, covariances, torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


MIXTURES = {"default": default_mixture, "full-covariance": full_covariance_mixture}


def points(n: int = 64, seed: int = 0) -> torch.Tensor:
    """float64 points spread over and around the data, where the densities differ a lot."""
    return 0.8 * torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


# --- GaussianMixture -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MIXTURES)
def test_log_prob_matches_torch_distributions(name: str) -> None:
    mixture = MIXTURES[name]()
    components = MultivariateNormal(mixture.means, covariance_matrix=mixture.covariances)
    reference = MixtureSameFamily(Categorical(probs=mixture.weights), components)
    x = points()
    torch.testing.assert_close(mixture.log_prob(x), reference.log_prob(x), rtol=1e-12, atol=1e-12)
    y = torch.arange(x.shape[0]) % mixture.num_classes
    conditional = components.log_prob(x[:, None, :]).gather(1, y[:, None]).squeeze(1)  # log N(x; μ_y, Σ_y)
    torch.testing.assert_close(mixture.log_prob(x, y), conditional, rtol=1e-12, atol=1e-12)


def test_density_integrates_to_one() -> None:
    """A midpoint Riemann sum over [−1.5, 1.5]², which holds all but ~1e−37 of the mass (12σ from the ring).

    The midpoint rule is spectrally accurate for Gaussians this well resolved (σ = 0.07, step 0.01):
    observed error ~1e−16; tolerance 1e−9.
    """
    mixture = default_mixture()
    n = 300
    axis = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 3 - 1.5
    grid = torch.cartesian_prod(axis, axis)  # (n², 2)
    total = mixture.log_prob(grid).exp().sum() * (3 / n) ** 2
    assert abs(total.item() - 1) < 1e-9


@pytest.mark.parametrize("name", MIXTURES)
def test_score_is_the_gradient_of_log_prob(name: str) -> None:
    mixture = MIXTURES[name]()
    x = points().requires_grad_(True)
    y = torch.arange(x.shape[0]) % mixture.num_classes
    (grad,) = torch.autograd.grad(mixture.log_prob(x).sum(), x)
    (grad_conditional,) = torch.autograd.grad(mixture.log_prob(x, y).sum(), x)
    with torch.no_grad():
        torch.testing.assert_close(mixture.score(x), grad, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(mixture.score(x, y), grad_conditional, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", MIXTURES)
def test_class_posterior_is_bayes_rule_and_its_gradient_is_exact(name: str) -> None:
    mixture = MIXTURES[name]()
    x = points().requires_grad_(True)
    y = torch.arange(x.shape[0]) % mixture.num_classes
    log_posterior = mixture.class_log_posterior(x)  # (B, K)
    torch.testing.assert_close(log_posterior.exp().sum(dim=1), torch.ones(x.shape[0], dtype=torch.float64))
    expected = mixture.log_prob(x, y) + mixture.weights[y].log() - mixture.log_prob(x)  # log p(x|y) p(y) / p(x)
    torch.testing.assert_close(log_posterior.gather(1, y[:, None]).squeeze(1), expected, rtol=1e-10, atol=1e-10)
    (grad,) = torch.autograd.grad(log_posterior.gather(1, y[:, None]).sum(), x)
    with torch.no_grad():
        torch.testing.assert_close(mixture.grad_log_prob_class(x, y), grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("alpha_bar", [0.9, 0.3, 0.02])
def test_noised_mixture_is_the_law_of_x_t(alpha_bar: float) -> None:
    """Moments of ``√ᾱ x0 + √(1 − ᾱ) eps`` (n = 200 000) against the noised mixture's exact ones.

    Tolerances: 0.01 for means (standard error ≤ 0.0023) and 0.015 for covariances (standard error
    ≤ 0.0032); per class (~40 000 points each) 0.02 and 0.03.
    """
    mixture = full_covariance_mixture()
    generator = torch.Generator().manual_seed(0)
    x0, y = mixture.sample(200_000, generator=generator)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    x_t = math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * eps
    noised = mixture.noised(alpha_bar)
    torch.testing.assert_close(x_t.mean(0), noised.mean(), rtol=0, atol=0.01)
    torch.testing.assert_close(x_t.T.cov(), noised.covariance(), rtol=0, atol=0.015)
    for k in range(mixture.num_classes):
        torch.testing.assert_close(x_t[y == k].mean(0), math.sqrt(alpha_bar) * mixture.means[k], rtol=0, atol=0.02)
        expected = alpha_bar * mixture.covariances[k] + (1 - alpha_bar) * torch.eye(2, dtype=torch.float64)
        torch.testing.assert_close(x_t[y == k].T.cov(), expected, rtol=0, atol=0.03)
        torch.testing.assert_close(noised.covariances[k], expected)
    torch.testing.assert_close(noised.weights, mixture.weights)


def test_noised_endpoints() -> None:
    mixture = full_covariance_mixture()
    same = mixture.noised(1.0)
    torch.testing.assert_close(same.means, mixture.means)
    torch.testing.assert_close(same.covariances, mixture.covariances)
    pure_noise = mixture.noised(0.0)
    assert torch.equal(pure_noise.means, torch.zeros_like(mixture.means))
    assert torch.equal(pure_noise.covariances, torch.eye(2, dtype=torch.float64).expand(3, 2, 2))
    with pytest.raises(ValueError, match=r"alpha_bar must lie in \[0, 1\]"):
        mixture.noised(1.5)


def test_sample_is_deterministic_and_honours_given_labels() -> None:
    mixture = default_mixture()
    a, ya = mixture.sample(1000, generator=torch.Generator().manual_seed(3))
    b, yb = mixture.sample(1000, generator=torch.Generator().manual_seed(3))
    c, _ = mixture.sample(1000, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c)
    y = torch.full((5000,), 2)
    x, y_out = mixture.sample(5000, generator=torch.Generator().manual_seed(0), y=y)
    assert torch.equal(y_out, y)
    # the class-2 mean, within 0.01 (standard error 0.07 / √5000 = 0.001)
    torch.testing.assert_close(x.mean(0), mixture.means[2], rtol=0, atol=0.01)


def test_sample_dtype_and_weights() -> None:
    mixture = full_covariance_mixture()
    x, y = mixture.sample(20_000, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    assert x.dtype == torch.float32 and y.dtype == torch.long
    # class frequencies within 0.015 of the weights (standard error ≤ 0.0036)
    torch.testing.assert_close(torch.bincount(y, minlength=3) / 20_000, mixture.weights.float(), rtol=0, atol=0.015)


def test_results_follow_the_dtype_of_x() -> None:
    mixture = default_mixture()
    x = points().float()
    for result in (mixture.log_prob(x), mixture.score(x), mixture.class_log_posterior(x)):
        assert result.dtype == torch.float32
    torch.testing.assert_close(mixture.score(x), mixture.score(x.double()).float(), rtol=1e-4, atol=1e-4)


def test_default_mixture_lies_in_the_unit_square() -> None:
    mixture = default_mixture()
    x, _ = mixture.sample(100_000, generator=torch.Generator().manual_seed(0))
    assert x.abs().max() <= 1
    assert mixture.num_classes == 8 and mixture.dim == 2


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: GaussianMixture(torch.zeros(2, 2), -torch.eye(2).expand(2, 2, 2)), "positive definite"),
        (lambda: GaussianMixture(torch.zeros(2, 2), torch.eye(2).expand(3, 2, 2)), r"shape \(K, D, D\)"),
        (lambda: GaussianMixture(torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2), torch.tensor([0.7, 0.7])), "sum"),
        (lambda: default_mixture().log_prob(torch.zeros(3, 2), torch.tensor([0, 1, 8])), r"0\.\.7"),
        (lambda: default_mixture().score(torch.zeros(3, 3)), r"shape \(B, 2\)"),
    ],
    ids=["not-positive-definite", "covariance-shape", "weights-sum", "label-range", "x-shape"],
)
def test_invalid_input_is_rejected_with_a_message(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


# --- ShapesDataset -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 28])
def test_shapes_are_images_in_range_with_balanced_labels(size: int) -> None:
    data = ShapesDataset(600, size=size, seed=0)
    assert data.images.shape == (600, 1, size, size) and data.images.dtype == torch.float32
    assert data.images.min() >= -1 and data.images.max() <= 1
    assert len(data.class_names) == data.num_classes >= 6
    counts = torch.bincount(data.labels, minlength=data.num_classes)
    assert counts.max() - counts.min() <= 1
    x, y = data[5]
    assert x.shape == (1, size, size) and int(y) == int(data.labels[5])


def test_shapes_have_a_background_and_a_shape() -> None:
    images = ShapesDataset(600, size=16, seed=0).images.flatten(1)  # (n, 256)
    assert (images.amax(dim=1) >= -0.6).all(), "every image shows a shape (foreground ≥ 0.2 where covered)"
    background = (images == -1).float().mean(dim=1)
    assert (background > 0.3).all(), "every image keeps at least 30% of pure background"


def test_shapes_are_deterministic_per_seed() -> None:
    a, b, c = ShapesDataset(300, seed=1), ShapesDataset(300, seed=1), ShapesDataset(300, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_shape_classes_look_different() -> None:
    """The per-class mean images differ pairwise by more than the within-class spread of those means would."""
    data = ShapesDataset(3000, size=16, seed=0)
    means = torch.stack([data.images[data.labels == k].mean(0).flatten() for k in range(data.num_classes)])
    distances = torch.cdist(means, means) + torch.eye(data.num_classes) * 1e9
    assert distances.min() > 1.0, f"closest pair of class means is only {distances.min():.3f} apart"


def test_shapes_render_fast() -> None:
    start = time.perf_counter()
    ShapesDataset(10_000, size=16, seed=0)
    assert time.perf_counter() - start < 5.0, "10 000 16×16 shapes should render in well under a few seconds"


# --- the registry --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape"), [("mixture2d", (2,)), ("shapes16", (1, 16, 16)), ("shapes28", (1, 28, 28))])
def test_load_dataset_gives_labelled_pairs(name: str, shape: tuple[int, ...]) -> None:
    data = load_dataset(name, n=120, seed=0)
    assert len(data) == 120
    x, y = data[0]
    assert x.shape == shape and x.dtype == torch.float32 and y.dtype == torch.long
    assert data.num_classes >= 6


@pytest.mark.parametrize("name", ["mixture2d", "shapes16"])
def test_load_dataset_seeds_and_splits(name: str) -> None:
    def tensor(data) -> torch.Tensor:
        return data.points if isinstance(data, MixtureDataset) else data.images

    train = tensor(load_dataset(name, n=50, seed=0))
    assert torch.equal(train, tensor(load_dataset(name, n=50, seed=0)))
    assert not torch.equal(train, tensor(load_dataset(name, n=50, seed=1)))
    assert not torch.equal(train, tensor(load_dataset(name, n=50, seed=0, split="test")))


def test_split_seeds_never_collide() -> None:
    train = {split_seed(s, "train") for s in range(1000)}
    test = {split_seed(s, "test") for s in range(1000)}
    assert not train & test and len(train) == len(test) == 1000


def test_mixture_dataset_keeps_its_true_distribution() -> None:
    data = load_dataset("mixture2d", n=10)
    assert isinstance(data.mixture, GaussianMixture)
    torch.testing.assert_close(data.mixture.means, default_mixture().means)


def test_unknown_names_and_splits_are_rejected_with_a_message() -> None:
    with pytest.raises(ValueError, match="known: cifar32, fashion28, mixture2d, mnist28, shapes16, shapes28"):
        load_dataset("fashion-mnist-typo")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_dataset("mixture2d", n=10, split="validation")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("mixture2d", DATASETS["mixture2d"])
