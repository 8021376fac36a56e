"""The provided MLP denoiser for vector data: shapes, conditioning on ``t`` and ``y``, the null label."""

from __future__ import annotations

import pytest
import torch

from diffusion.mlp import MLPDenoiser

NUM_CLASSES = 8


def inputs(batch: int, dim: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    return x, t, y


@pytest.mark.parametrize("dim", [2, 5])
@pytest.mark.parametrize("num_classes", [None, NUM_CLASSES], ids=["unconditional", "conditional"])
def test_output_has_the_shape_of_the_input(dim: int, num_classes: int | None) -> None:
    model = MLPDenoiser(dim=dim, num_classes=num_classes)
    x, t, y = inputs(7, dim)
    with torch.no_grad():
        out = model(x, t, y if num_classes else None)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_output_depends_on_t() -> None:
    model = MLPDenoiser(num_classes=NUM_CLASSES)
    x, t, y = inputs(16)
    with torch.no_grad():
        diff = (model(x, t, y) - model(x, (t + 100) % 1000, y)).abs().amax(dim=1)
    assert diff.min() > 1e-5, "changing t must change every sample's prediction"


def test_output_depends_on_y() -> None:
    model = MLPDenoiser(num_classes=NUM_CLASSES)
    x, t, y = inputs(16)
    with torch.no_grad():
        diff = (model(x, t, y) - model(x, t, (y + 1) % NUM_CLASSES)).abs().amax(dim=1)
    assert diff.min() > 1e-5, "changing y must change every sample's prediction"


def test_no_label_means_the_null_label() -> None:
    model = MLPDenoiser(num_classes=NUM_CLASSES)
    x, t, y = inputs(5)
    with torch.no_grad():
        assert torch.equal(model(x, t), model(x, t, torch.full_like(y, NUM_CLASSES)))
        assert not torch.allclose(model(x, t), model(x, t, y))


def test_samples_do_not_interact() -> None:
    model = MLPDenoiser(num_classes=NUM_CLASSES)
    x, t, y = inputs(6)
    with torch.no_grad():
        torch.testing.assert_close(model(x[:2], t[:2], y[:2]), model(x, t, y)[:2])


def test_every_parameter_gets_a_gradient() -> None:
    model = MLPDenoiser(num_classes=NUM_CLASSES)
    x, t, y = inputs(32)
    model(x, t, y).square().mean().backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not unused, f"parameters without gradient: {unused}"


def test_float64_model_accepts_float64_input() -> None:
    model = MLPDenoiser().double()
    x, t, _ = inputs(3)
    with torch.no_grad():
        assert model(x.double(), t).dtype == torch.float64


def test_unconditional_model_rejects_labels() -> None:
    x, t, y = inputs(3)
    with pytest.raises(ValueError, match="num_classes"):
        MLPDenoiser()(x, t, y)


@pytest.mark.parametrize(
    ("x_shape", "t_shape", "match"), [((3, 3), (3,), "expects vectors"), ((3, 2), (4,), "one timestep per sample")]
)
def test_bad_shapes_are_rejected_with_a_message(x_shape, t_shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        MLPDenoiser()(torch.zeros(x_shape), torch.zeros(t_shape, dtype=torch.long))
