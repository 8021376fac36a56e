"""The training loop: it learns, it is reproducible from its seed, a killed run resumes exactly; EMA; label dropout."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from diffusion.data import load_dataset
from diffusion.losses import ddpm_loss
from diffusion.mlp import MLPDenoiser
from diffusion.train import EMA, TrainConfig, train
from diffusion.unet import UNet
from tests.public.helpers import schedule

SCHEDULE = schedule(T=100)
CONFIG = TrainConfig(steps=30, batch_size=64, lr=1e-3, ema_decay=0.9, seed=0)


@pytest.fixture(scope="module")
def mixture_data() -> Dataset:
    return load_dataset("mixture2d", n=2000, seed=0)


def small_mlp(**kwargs) -> MLPDenoiser:
    return MLPDenoiser(**({"hidden": 64, "num_blocks": 2, "num_classes": 8} | kwargs))


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), f"{name} differs"


def test_training_lowers_the_loss(mixture_data: Dataset) -> None:
    """200 steps on the 2-D mixture take the loss from ~1 to its plateau (~0.16 for this schedule)."""
    model = small_mlp(num_classes=None)
    initial = copy.deepcopy(model)
    config = dataclasses.replace(CONFIG, steps=200, batch_size=128, lr=2e-3, ema_decay=0.99)
    result = train(model, SCHEDULE, mixture_data, config, progress=False)
    assert len(result.losses) == result.steps == 200
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-50:]) / 50
    assert last < 0.5 * first, f"mean loss went from {first:.4f} (first 10 steps) to {last:.4f} (last 50)"

    # held-out: the same t and noise for both models
    generator = torch.Generator().manual_seed(123)
    x0 = load_dataset("mixture2d", n=1000, split="test").points
    t = torch.randint(0, SCHEDULE.T, (1000,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    with torch.no_grad():
        before = ddpm_loss(initial, SCHEDULE, x0, t=t, noise=noise).item()
        after = ddpm_loss(result.ema_model, SCHEDULE, x0, t=t, noise=noise).item()
    assert after < 0.3 * before, f"held-out loss of the EMA model: {before:.4f} before, {after:.4f} after"
    assert not result.model.training and not result.ema_model.training


def test_a_run_is_reproducible_from_its_seed(mixture_data: Dataset) -> None:
    model = small_mlp(dropout=0.2)  # dropout draws random numbers too
    a = train(copy.deepcopy(model), SCHEDULE, mixture_data, CONFIG, progress=False)
    b = train(copy.deepcopy(model), SCHEDULE, mixture_data, CONFIG, progress=False)
    c = train(copy.deepcopy(model), SCHEDULE, mixture_data, dataclasses.replace(CONFIG, seed=1), progress=False)
    assert a.losses == b.losses
    assert_same_weights(a.model, b.model)
    assert_same_weights(a.ema_model, b.ema_model)
    assert a.losses != c.losses


def test_training_leaves_the_global_rng_alone(mixture_data: Dataset) -> None:
    model = small_mlp(dropout=0.2)  # initialising a model draws from the global RNG; training must not
    state = torch.get_rng_state()
    train(model, SCHEDULE, mixture_data, dataclasses.replace(CONFIG, steps=5), progress=False)
    assert torch.equal(torch.get_rng_state(), state)


class DiesAfter(Dataset):
    """Wraps a data set and raises after ``limit`` items, like a run killed mid-way."""

    def __init__(self, data: Dataset, limit: int) -> None:
        self.data, self.limit, self.served = data, limit, 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        if self.served == self.limit:
            raise KeyboardInterrupt("killed")
        self.served += 1
        return self.data[index]


def test_a_killed_run_resumes_to_the_same_weights(mixture_data: Dataset, tmp_path: Path) -> None:
    model = small_mlp(dropout=0.1)
    config = dataclasses.replace(CONFIG, p_uncond=0.2, checkpoint_every=10)
    uninterrupted = train(copy.deepcopy(model), SCHEDULE, mixture_data, config, progress=False)

    path = tmp_path / "run" / "checkpoint.pt"
    resumable = dataclasses.replace(config, checkpoint_path=str(path))
    killed_during_step = 25  # 1-based; the last checkpoint is at step 20, steps 21–24 are lost
    dying = DiesAfter(mixture_data, limit=(killed_during_step - 1) * config.batch_size + 7)
    with pytest.raises(KeyboardInterrupt):
        train(copy.deepcopy(model), SCHEDULE, dying, resumable, progress=False)
    assert torch.load(path, weights_only=True)["step"] == 20
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"], "no temporary file may be left behind"

    resumed = train(copy.deepcopy(model), SCHEDULE, mixture_data, resumable, progress=False)
    assert resumed.steps == 30
    assert resumed.losses == uninterrupted.losses
    assert_same_weights(resumed.model, uninterrupted.model)
    assert_same_weights(resumed.ema_model, uninterrupted.ema_model)
    assert torch.load(path, weights_only=True)["step"] == 30


def test_resuming_with_other_settings_is_refused(mixture_data: Dataset, tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, steps=5, checkpoint_path=str(tmp_path / "checkpoint.pt"))
    train(small_mlp(), SCHEDULE, mixture_data, config, progress=False)
    with pytest.raises(ValueError, match="seed: 0 there, 1 now"):
        train(small_mlp(), SCHEDULE, mixture_data, dataclasses.replace(config, steps=10, seed=1), progress=False)


class RecordingMLP(MLPDenoiser):
    """Records the labels of every forward call."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seen: list[torch.Tensor] = []

    def forward(self, x, t, y=None):
        self.seen.append(y)
        return super().forward(x, t, y)


@pytest.mark.parametrize("p_uncond", [0.0, 0.3])
def test_labels_reach_the_model_with_dropout(mixture_data: Dataset, p_uncond: float) -> None:
    model = RecordingMLP(hidden=32, num_blocks=1, num_classes=8)
    train(model, SCHEDULE, mixture_data, dataclasses.replace(CONFIG, steps=10, p_uncond=p_uncond), progress=False)
    labels = torch.cat(model.seen)  # 10 steps × 64 labels
    null_fraction = (labels == 8).float().mean().item()
    if p_uncond == 0:
        assert null_fraction == 0 and labels.max() == 7
    else:
        # binomial with n = 640: standard error 0.018, tolerance 0.1
        assert abs(null_fraction - p_uncond) < 0.1, f"{null_fraction:.2f} of the labels were null"


def test_label_dropout_needs_a_conditional_model(mixture_data: Dataset) -> None:
    with pytest.raises(ValueError, match="p_uncond > 0 needs a class-conditional model"):
        train(small_mlp(num_classes=None), SCHEDULE, mixture_data, dataclasses.replace(CONFIG, p_uncond=0.1))


def test_unet_trains_on_shapes() -> None:
    data = load_dataset("shapes16", n=64)
    model = UNet(base_channels=8, channel_mults=(1, 2), num_classes=data.num_classes)
    before = copy.deepcopy(model)
    config = dataclasses.replace(CONFIG, steps=3, batch_size=8, p_uncond=0.1)
    result = train(model, SCHEDULE, data, config, progress=False)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert not torch.equal(before.out_conv.weight, result.model.out_conv.weight)


def test_ema_is_the_exponential_moving_average() -> None:
    model = nn.Linear(3, 2)
    start = copy.deepcopy(model.state_dict())
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    for name, p in model.named_parameters():
        torch.testing.assert_close(ema.shadow[name], 0.9 * start[name] + 0.1 * p.detach(), rtol=0, atol=1e-6)
    ema.update(model)  # second step: 0.81 · start + 0.19 · new
    for name, p in model.named_parameters():
        torch.testing.assert_close(ema.shadow[name], 0.81 * start[name] + 0.19 * p.detach(), rtol=0, atol=1e-6)

    restored = EMA(nn.Linear(3, 2), decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.decay == 0.9
    target = nn.Linear(3, 2)
    restored.copy_to(target)
    for name, p in target.named_parameters():
        assert torch.equal(p, ema.shadow[name])


@pytest.mark.parametrize(("decay", "follows"), [(0.0, "model"), (1.0, "start")])
def test_ema_decay_endpoints(decay: float, follows: str) -> None:
    model = nn.Linear(3, 2)
    start = copy.deepcopy(model.state_dict())
    ema = EMA(model, decay=decay)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-2.0).add_(0.5)
    ema.update(model)
    expected = dict(model.named_parameters()) if follows == "model" else start
    for name in ema.shadow:
        assert torch.equal(ema.shadow[name], expected[name].detach())


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps", -1), ("batch_size", 0), ("lr", 0.0), ("ema_decay", 1.5), ("p_uncond", -0.1), ("grad_clip", 0.0)],
)
def test_invalid_config_is_rejected_with_a_message(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})
