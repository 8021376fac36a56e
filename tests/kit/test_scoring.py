"""Scoring without downloads: the Fréchet distance against scipy, the shipped classifiers and their checksums,
the baselines (floor below ceiling), deterministic training and the ``classifier train`` command."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import scipy.linalg
import torch

from autograder.__main__ import main
from autograder.scoring import (
    ChecksumMismatch,
    ClassifierUnavailable,
    Gaussian,
    ImageScorer,
    frechet_distance,
    load_classifier,
    score_images,
    score_points,
    train_classifier,
)
from autograder.scoring.frechet import sqrtm_psd
from autograder.scoring.tensors import data, load_tensors
from autograder.scoring.training import accuracy
from autograder.scoring.weights import SHIPPED, read_record, save_classifier

SHIPPED_NAMES = ("shapes16", "shapes28", "fashion28")
ACCURACY_BOUNDS = {"shapes16": 0.97, "shapes28": 0.97, "fashion28": 0.85}
"""The least held-out accuracy each shipped classifier must reach (measured: see its NAME.json)."""


def random_gaussian(dim: int, generator: torch.Generator) -> Gaussian:
    """A random mean and a random full-rank covariance ``A Aᵀ / 2D`` with ``A`` ``(D, 2D)`` standard normal."""
    a = torch.randn(dim, 2 * dim, dtype=torch.float64, generator=generator)
    return Gaussian(torch.randn(dim, dtype=torch.float64, generator=generator), a @ a.T / (2 * dim))


@pytest.mark.parametrize("seed", range(5))
def test_frechet_distance_agrees_with_scipy_sqrtm(seed):
    generator = torch.Generator().manual_seed(seed)
    p, q = random_gaussian(12, generator), random_gaussian(12, generator)
    cross = scipy.linalg.sqrtm(p.covariance.numpy() @ q.covariance.numpy()).real.trace()  # tr (Σ_p Σ_q)^½
    expected = float((p.mean - q.mean).square().sum() + p.covariance.trace() + q.covariance.trace()) - 2 * cross
    assert frechet_distance(p, q) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert frechet_distance(q, p) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_the_square_root_squares_back_and_tolerates_singular_matrices():
    a = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    singular = a @ a.T  # rank 3
    root = sqrtm_psd(singular)
    torch.testing.assert_close(root @ root, singular, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(root, root.T)


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(Gaussian.fit(features), Gaussian.fit(features))) < 1e-9
    distances = [frechet_distance(Gaussian.fit(features), Gaussian.fit(features + s)) for s in (0.1, 0.3, 1.0, 3.0)]
    assert distances == pytest.approx([16 * s**2 for s in (0.1, 0.3, 1.0, 3.0)], rel=1e-6)  # ‖s·1‖² = D s²


def test_fitting_needs_a_matrix_of_two_rows_or_more():
    with pytest.raises(ValueError, match=r"shape \(N, D\) with N >= 2"):
        Gaussian.fit(torch.zeros(1, 4))


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_weights_are_small_and_match_their_recorded_checksum(name):
    record = read_record(SHIPPED / f"{name}.json")
    weights = (SHIPPED / record["weights"]).read_bytes()
    assert hashlib.sha256(weights).hexdigest() == record["sha256"] and len(weights) == record["bytes"] < 300_000
    assert record["fd_floor"] < record["fd_ceiling"] and record["test_accuracy"] >= ACCURACY_BOUNDS[name]
    model = load_classifier(name, device="cpu")
    assert model.config.dataset == name and not model.training


@pytest.fixture
def fashion_cache(tmp_path, monkeypatch):
    """A fresh data cache; Fashion-MNIST from Debian's package, or a skip where it is not installed."""
    monkeypatch.setenv("DIFFUSION_CACHE", str(tmp_path / "cache"))
    try:
        data.load_dataset("fashion28", n=1, split="test")
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_the_classifier_is_accurate_on_held_out_real_data(name, request):
    if name == "fashion28":
        request.getfixturevalue("fashion_cache")
    x, y = load_tensors(name, 2000, seed=7, split="test")
    assert accuracy(load_classifier(name, device="cpu"), x, y) >= ACCURACY_BOUNDS[name]


def test_real_images_score_near_the_floor_and_far_below_the_ceiling():
    scorer = ImageScorer(load_classifier("shapes16", device="cpu"), reference_size=2000)
    x, y = load_tensors("shapes16", 500, seed=5, split="test")  # not the floor's held-out set (seed 0)
    real = scorer.score(x, y)
    assert real.metric == "frechet" and real.n == 500 and real.floor < real.ceiling / 10
    assert real.distance < 2 * real.floor and real.relative < 0.05
    assert real.accuracy >= 0.97 and real.real_accuracy >= 0.97
    noisy = scorer.score((x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1))
    assert real.distance < noisy.distance < noisy.ceiling and noisy.accuracy is None
    wrong = scorer.score(x, (y + 1) % 6)
    assert wrong.accuracy < 0.05 and wrong.distance == real.distance


def test_score_images_uses_the_shipped_classifier_and_checks_shapes():
    x, y = load_tensors("shapes16", 200, seed=3, split="test")
    scores = score_images(x, "shapes16", y)
    assert scores.dataset == "shapes16" and scores.floor < scores.distance < scores.ceiling / 10
    with pytest.raises(ValueError, match=r"shapes16 images must be a tensor of shape \(n, 1, 16, 16\)"):
        score_images(torch.zeros(4, 1, 28, 28), "shapes16")
    with pytest.raises(ValueError, match=r"labels must be a long tensor of shape \(200,\)"):
        score_images(x, "shapes16", y.float())


def test_points_are_scored_by_energy_distance_to_the_mixture():
    mixture = data.default_mixture()
    points, labels = mixture.sample(500, generator=torch.Generator().manual_seed(11))
    scores = score_points(points, labels)
    assert scores.metric == "energy" and scores.floor < scores.ceiling / 10
    assert scores.distance < 3 * scores.floor and scores.accuracy > 0.99 and scores.real_accuracy > 0.99
    spread = score_points(1.5 * points, labels)
    assert scores.distance < spread.distance < spread.ceiling


def test_changed_weights_are_refused_with_a_message(tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(SHIPPED / f"shapes16{suffix}", tmp_path)
    weights = tmp_path / "shapes16.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumMismatch, match="has SHA-256 .*, but shapes16.json records .* retrain with"):
        load_classifier("shapes16", directories=(tmp_path,))


def test_a_missing_classifier_says_how_to_train_it(tmp_path):
    with pytest.raises(ClassifierUnavailable, match="python -m autograder classifier train --data mnist28"):
        load_classifier("mnist28", directories=(tmp_path,))


def test_training_is_deterministic_for_a_seed(tmp_path):
    first, again, other = (
        train_classifier("shapes16", seed, epochs=1, n_train=512, device="cpu") for seed in (1, 1, 2)
    )
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
    assert first.test_accuracy == again.test_accuracy
    hashes = {save_classifier(t.model, tmp_path / str(i), {})["sha256"] for i, t in enumerate((first, again))}
    assert len(hashes) == 1, "the same weights must make the same file"
    assert not torch.equal(first.model.head.weight, other.model.head.weight)


def test_the_train_command_prints_its_figures_and_saves_a_verified_classifier(tmp_path, capsys):
    argv = ["classifier", "train", "--data", "shapes16", "--out", str(tmp_path), "--epochs", "1", "--n-train", "512"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    record = read_record(tmp_path / "shapes16.json")
    for text in ("held-out accuracy", "floor (held-out real)", "ceiling", record["sha256"]):
        assert text in out, out
    assert record["n_train"] == 512 and record["fd_floor"] < record["fd_ceiling"]
    assert load_classifier("shapes16", directories=(tmp_path,), device="cpu").config.size == 16
