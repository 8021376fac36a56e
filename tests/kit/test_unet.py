"""The provided UNet: shapes at every supported size, conditioning on ``t`` and ``y``, the null label, size budget."""

from __future__ import annotations

import pytest
import torch

from diffusion.unet import UNet

NUM_CLASSES = 6


def small_unet(**kwargs) -> UNet:
    """A narrow UNet whose zero-initialised last conv is given random weights, so its output is not 0."""
    options = {"in_channels": 1, "base_channels": 16, "channel_mults": (1, 2, 2), "num_classes": NUM_CLASSES}
    model = UNet(**(options | kwargs)).eval()
    generator = torch.Generator().manual_seed(0)
    torch.nn.init.normal_(model.out_conv.weight, std=0.1, generator=generator)
    return model


def inputs(batch: int, size: int, channels: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    return x, t, y


@pytest.mark.parametrize("size", [16, 28, 32])
@pytest.mark.parametrize(
    "channel_mults",
    [(1, 2), (1, 2, 2), (1, 1, 2, 2)],  # 28 is padded to 32 inside with four levels
    ids=["2-levels", "3-levels", "4-levels"],
)
@pytest.mark.parametrize("num_classes", [None, NUM_CLASSES], ids=["unconditional", "conditional"])
def test_output_has_the_shape_of_the_input(size: int, channel_mults: tuple[int, ...], num_classes: int | None) -> None:
    model = small_unet(in_channels=3, channel_mults=channel_mults, num_classes=num_classes)
    x, t, y = inputs(2, size, channels=3)
    with torch.no_grad():
        out = model(x, t, y if num_classes else None)
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()


def test_fresh_model_predicts_zero_noise() -> None:
    model = UNet(num_classes=NUM_CLASSES).eval()
    x, t, y = inputs(2, 16)
    with torch.no_grad():
        assert torch.equal(model(x, t, y), torch.zeros_like(x)), "the last conv should be zero-initialised"


def test_output_depends_on_t() -> None:
    model = small_unet()
    x, t, y = inputs(2, 16)
    with torch.no_grad():
        a = model(x, t, y)
        b = model(x, (t + 100) % 1000, y)
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-4, "changing t must change every sample's prediction"


def test_output_depends_on_y() -> None:
    model = small_unet()
    torch.nn.init.normal_(model.cond.class_emb.weight, generator=torch.Generator().manual_seed(1))
    x, t, y = inputs(2, 16)
    with torch.no_grad():
        a = model(x, t, y)
        b = model(x, t, (y + 1) % NUM_CLASSES)
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-4, "changing y must change every sample's prediction"


def test_no_label_means_the_null_label() -> None:
    model = small_unet()
    x, t, y = inputs(3, 16)
    null = torch.full_like(y, NUM_CLASSES)
    with torch.no_grad():
        assert torch.equal(model(x, t), model(x, t, null))
        assert not torch.allclose(model(x, t), model(x, t, y))


def test_samples_do_not_interact() -> None:
    """GroupNorm and attention act per sample: a sample's prediction ignores the rest of the batch.

    In float64, so that the round-off of batch-size-dependent kernels stays far below the tolerance.
    """
    model = small_unet().double()
    x, t, y = inputs(4, 16)
    x = x.double()
    with torch.no_grad():
        torch.testing.assert_close(model(x[:2], t[:2], y[:2]), model(x, t, y)[:2], rtol=1e-9, atol=1e-12)


def test_every_parameter_gets_a_gradient() -> None:
    model = small_unet().train()
    x, t, y = inputs(4, 16)
    model(x, t, y).square().mean().backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not unused, f"parameters without gradient: {unused}"


def test_float64_model_accepts_float64_input() -> None:
    model = small_unet().double()
    x, t, y = inputs(2, 16)
    with torch.no_grad():
        assert model(x.double(), t, y).dtype == torch.float64


def test_unconditional_model_rejects_labels() -> None:
    model = small_unet(num_classes=None)
    x, t, y = inputs(2, 16)
    with pytest.raises(ValueError, match="num_classes"):
        model(x, t, y)


@pytest.mark.parametrize(
    ("x_shape", "t_shape", "match"),
    [((2, 3, 16, 16), (2,), "expects images"), ((2, 1, 16, 16), (3,), "one timestep per image")],
)
def test_bad_shapes_are_rejected_with_a_message(x_shape, t_shape, match) -> None:
    model = small_unet()
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(x_shape), torch.zeros(t_shape, dtype=torch.long))


def test_default_size_fits_the_cpu_budget() -> None:
    count = sum(p.numel() for p in UNet(num_classes=10).parameters())
    assert 500_000 <= count <= 2_000_000, f"default UNet has {count} parameters"
