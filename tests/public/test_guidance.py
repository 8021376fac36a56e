"""Part 8 — guidance: ``drop_labels``, ``cfg_eps``, ``classifier_guided_mean``, ``classifier_guided_eps``.

Classifier-free guidance (Ho & Salimans 2022): labels are long ``(B,)`` in ``0..num_classes−1`` and the null label
``num_classes`` means "unconditional"; ``cfg_eps = eps_u + s · (eps_c − eps_u)`` with ``s = guidance_scale``
(``s = 1`` is the conditional model; the paper's ``w`` is ``s − 1``), from ONE model call on a batch of ``2B``.
Classifier guidance (Dhariwal & Nichol 2021): ``mean + scale · variance · ∇ log p(y|x_t)`` (Algorithm 1) and
``eps − scale · √(1 − ᾱ_t) · ∇ log p(y|x_t)`` (Algorithm 2). Every test calls only part 8's functions.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffusion.guidance import cfg_eps, classifier_guided_eps, classifier_guided_mean, drop_labels
from diffusion.schedules import NoiseSchedule, expand_like, extract
from tests.public.helpers import PROPERTY, check_close, randn, schedule

PART = "part 8 (guidance)"
NUM_CLASSES = 10


def labels(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, NUM_CLASSES, (n,), generator=torch.Generator().manual_seed(seed))


def class_model(x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A made-up class-conditional denoiser: ``eps = (1 + y/10) · x_t + 0.01 · t − 0.05 · y``; the null label
    ``y = 10`` gives its unconditional prediction."""
    yf = expand_like(y.to(torch.float64), x_t)
    return (1 + yf / 10) * x_t + 0.01 * expand_like(t.to(torch.float64), x_t) - 0.05 * yf


class RecordingModel:
    """``class_model`` that also records the batch size, ``t`` and ``y`` of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls.append((x_t.shape[0], t.clone(), y.clone()))
        return class_model(x_t, t, y)


def cfg_inputs(shape=(3, 2, 4, 4)):
    x_t, t, y = randn(shape), torch.tensor([5, 40, 17])[: shape[0]], labels(shape[0])
    null = torch.full_like(y, NUM_CLASSES)
    return x_t, t, y, class_model(x_t, t, y), class_model(x_t, t, null)


# --- drop_labels ---------------------------------------------------------------------------------------------------


def test_drop_labels_keeps_shape_and_dtype():
    """``drop_labels(y, p, num_classes)`` returns a long tensor of ``y``'s shape, with values in ``0..num_classes``."""
    y = labels(50)
    out = drop_labels(y, 0.5, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, torch.Tensor) and out.shape == y.shape and out.dtype == torch.long, (
        f"{PART}: drop_labels(y of shape (50,), ...) must return a long tensor of shape (50,), got "
        f"{getattr(out, 'dtype', type(out).__name__)} of shape {tuple(getattr(out, 'shape', ()))}\n"
        f"  hint: torch.where(drop, torch.full_like(y, num_classes), y) keeps the shape and the long dtype"
    )
    assert bool(((out >= 0) & (out <= NUM_CLASSES)).all()), (
        f"{PART}: drop_labels returned labels outside 0..num_classes: {out.tolist()}\n"
        f"  hint: the null label is num_classes itself (not −1, not num_classes + 1)"
    )


def test_drop_labels_with_p_zero_keeps_every_label():
    """``p_uncond = 0``: no label is dropped, the output equals ``y``."""
    y = labels(200)
    out = drop_labels(y, 0.0, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, y), (
        f"{PART}: drop_labels(y, p_uncond=0) must return y unchanged; {int((out != y).sum())} of 200 labels changed\n"
        f"  hint: drop where uniform < p_uncond (strictly less), so p_uncond = 0 drops nothing"
    )


def test_drop_labels_with_p_one_drops_every_label():
    """``p_uncond = 1``: every label becomes the null label ``num_classes``."""
    y = labels(200)
    out = drop_labels(y, 1.0, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    assert bool((out == NUM_CLASSES).all()), (
        f"{PART}: drop_labels(y, p_uncond=1, num_classes={NUM_CLASSES}) must set every label to {NUM_CLASSES}; "
        f"{int((out != NUM_CLASSES).sum())} of 200 kept their label\n"
        f"  hint: drop with probability p_uncond (uniform < p_uncond), not with probability 1 − p_uncond"
    )


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_drop_labels_drops_at_rate_p_and_keeps_the_rest(p):
    """With 20 000 labels the fraction set to the null label is ``p`` within ±0.02 (more than 7 standard
    deviations of a binomial), and every label that is not dropped is unchanged."""
    y = labels(20_000)
    out = drop_labels(y, p, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    rate = (out == NUM_CLASSES).double().mean().item()
    assert abs(rate - p) < 0.02, (
        f"{PART}: drop_labels(y, p_uncond={p}) dropped a fraction {rate:.4f} of 20 000 labels, expected {p} ± 0.02\n"
        f"  hint: drop each label independently where torch.rand(y.shape, generator=generator) < p_uncond"
    )
    kept = out != NUM_CLASSES
    assert torch.equal(out[kept], y[kept]), (
        f"{PART}: drop_labels changed labels it did not drop\n  hint: keep y where a label is not dropped"
    )


def test_drop_labels_uses_the_generator_and_does_not_modify_its_input():
    """The same seed gives the same result, and ``y`` itself is not modified (the function returns a new tensor)."""
    y = labels(500)
    before = y.clone()
    first = drop_labels(y, 0.3, NUM_CLASSES, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y, before), (
        f"{PART}: drop_labels modified its input y in place ({int((y != before).sum())} labels changed)\n"
        f"  hint: build a new tensor (torch.where, or y.clone() before assigning)"
    )
    again = drop_labels(y, 0.3, NUM_CLASSES, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, again), (
        f"{PART}: drop_labels with two generators seeded alike gave different results\n"
        f"  hint: draw the uniforms with torch.rand(y.shape, generator=generator), not from the global RNG"
    )


# --- cfg_eps -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "expected", "what", "hint"),
    [
        pytest.param(
            1.0,
            "eps_c",
            "cfg_eps(guidance_scale = 1) = eps_c (the conditional model)",
            "s and w = s − 1 confused: the formula is eps_u + s·(eps_c − eps_u), not eps_c + s·(eps_c − eps_u); "
            "or the conditional and unconditional halves of the 2B batch were swapped",
            id="conditional",
        ),
        pytest.param(
            0.0,
            "eps_u",
            "cfg_eps(guidance_scale = 0) = eps_u (the null label num_classes)",
            "the unconditional half uses the null label num_classes for every sample; s and w = s − 1 confused",
            id="unconditional",
        ),
    ],
)
def test_cfg_eps_at_scale_one_or_zero_is_one_of_the_two_models(scale, expected, what, hint):
    """``s = 1``: ``eps_u + 1 · (eps_c − eps_u) = eps_c``, the conditional prediction ``model(x_t, t, y=y)``.
    ``s = 0``: ``eps_u``, the prediction with the null label ``model(x_t, t, y=num_classes)``."""
    x_t, t, y, eps_c, eps_u = cfg_inputs()
    check_close(
        cfg_eps(class_model, x_t, t, y, scale, NUM_CLASSES),
        {"eps_c": eps_c, "eps_u": eps_u}[expected],
        part=PART,
        what=what,
        hint=hint,
        rtol=1e-9,
        atol=1e-10,
    )


@PROPERTY
@given(s=st.floats(min_value=-2.0, max_value=10.0))
def test_cfg_eps_is_linear_in_the_scale(s):
    """For any ``s``: ``cfg_eps = eps_u + s · (eps_c − eps_u)`` (Ho & Salimans 2022, eq. 6, with ``w = s − 1``)."""
    x_t, t, y, eps_c, eps_u = cfg_inputs((2, 3))
    check_close(
        cfg_eps(class_model, x_t, t, y, s, NUM_CLASSES),
        eps_u + s * (eps_c - eps_u),
        part=PART,
        what=f"cfg_eps(guidance_scale = {s}) = eps_u + s·(eps_c − eps_u)",
        hint="s and w = s − 1 confused (eps_c + s·(eps_c − eps_u) is the w-form with w = s)",
        rtol=1e-9,
        atol=1e-9,
    )


def test_cfg_eps_calls_the_model_once_with_a_batch_of_2B():
    """One batched call of size ``2B``: inputs ``[x_t, x_t]``, timesteps ``[t, t]``, labels ``y`` and B null labels."""
    x_t, t, y, _, _ = cfg_inputs()
    model = RecordingModel()
    cfg_eps(model, x_t, t, y, 3.0, NUM_CLASSES)
    sizes = [size for size, _, _ in model.calls]
    assert sizes == [6], (
        f"{PART}: cfg_eps with B = 3 must call the model once with a batch of 2B = 6, got calls of sizes {sizes}\n"
        f"  hint: two model calls instead of one batch of 2B: concatenate [x_t, x_t], [t, t] and [y, null] first"
    )
    _, t_seen, y_seen = model.calls[0]
    assert sorted(t_seen.tolist()) == sorted(torch.cat([t, t]).tolist()), (
        f"{PART}: cfg_eps must pass the timesteps of both halves, [t, t] = {torch.cat([t, t]).tolist()}, "
        f"got {t_seen.tolist()}"
    )
    assert sorted(y_seen.tolist()) == sorted(y.tolist() + [NUM_CLASSES] * 3), (
        f"{PART}: cfg_eps must label one half with y = {y.tolist()} and the other with the null label "
        f"{NUM_CLASSES}, got {y_seen.tolist()}\n  hint: the null label is num_classes, e.g. torch.full_like(y, "
        f"num_classes)"
    )


def test_cfg_eps_keeps_shape_and_dtype():
    """``cfg_eps`` returns a tensor of ``x_t``'s shape and dtype (float32 here, ``B = 3``)."""
    x_t = randn((3, 1, 4, 4), dtype=torch.float32)
    out = cfg_eps(class_model, x_t, torch.tensor([1, 2, 3]), labels(3), 2.0, NUM_CLASSES)
    assert out.shape == x_t.shape and out.dtype == torch.float32, (
        f"{PART}: cfg_eps on float32 x_t of shape {tuple(x_t.shape)} returned {out.dtype} of shape "
        f"{tuple(out.shape)}\n  hint: split the 2B output back into two halves of B with eps.chunk(2)"
    )


# --- classifier guidance -------------------------------------------------------------------------------------------


def test_classifier_guided_mean_small_example():
    """``mean + scale · variance · ∇ log p``: mean = [1, 2], variance = 0.5, ∇ = [2, −4], scale = 3 → [4, −4]."""
    got = classifier_guided_mean(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5]]), torch.tensor([[2.0, -4.0]]), 3.0)
    check_close(
        got,
        torch.tensor([[4.0, -4.0]]),
        part=PART,
        what="classifier_guided_mean([1, 2], 0.5, [2, −4], 3) = [1 + 3·0.5·2, 2 + 3·0.5·(−4)] = [4, −4]",
        hint="multiply by the variance Σ (not its square root √Σ, not its log) and add (not subtract) the gradient",
    )


def test_classifier_guided_mean_broadcasts_a_per_sample_variance():
    """``variance`` of shape ``(B, 1, 1, 1)`` broadcasts against ``mean`` ``(B, C, H, W)``; float32 stays float32."""
    mean, grad = randn((3, 2, 4, 4), dtype=torch.float32), randn((3, 2, 4, 4), dtype=torch.float32, seed=1)
    variance = torch.tensor([0.1, 0.02, 0.3], dtype=torch.float32).reshape(3, 1, 1, 1)
    got = classifier_guided_mean(mean, variance, grad, 2.5)
    assert got.dtype == torch.float32, f"{PART}: classifier_guided_mean turned float32 into {got.dtype}"
    check_close(
        got,
        mean + 2.5 * variance * grad,
        part=PART,
        what="classifier_guided_mean = mean + scale·variance·∇ log p(y|x_t) (Dhariwal & Nichol, Algorithm 1)",
        hint="multiply by the variance Σ (not √Σ) and the scale; the variance broadcasts over every non-batch dim",
    )


def test_classifier_guided_eps_small_example():
    """``eps − scale · √(1 − ᾱ_t) · ∇ log p`` with ``ᾱ_t = 0.64`` (so √(1 − ᾱ_t) = 0.6): eps = [1, −1],
    ∇ = [1, 2], scale = 2 → [1 − 1.2, −1 − 2.4] = [−0.2, −3.4]."""
    betas = torch.tensor([0.2, 0.2], dtype=torch.float64)  # ᾱ = [0.8, 0.64]
    sched = NoiseSchedule(
        betas=betas,
        alphas=1 - betas,
        alpha_bars=torch.tensor([0.8, 0.64], dtype=torch.float64),
        alpha_bars_prev=torch.tensor([1.0, 0.8], dtype=torch.float64),
    )
    got = classifier_guided_eps(sched, torch.tensor([[1.0, -1.0]]), torch.tensor([1]), torch.tensor([[1.0, 2.0]]), 2.0)
    check_close(
        got,
        torch.tensor([[-0.2, -3.4]]),
        part=PART,
        what="classifier_guided_eps at ᾱ_t = 0.64: eps − 2·√(1 − 0.64)·∇ = [1, −1] − 2·0.6·[1, 2] = [−0.2, −3.4]",
        hint="missing square root (√(1 − ᾱ_t) = 0.6, not 1 − ᾱ_t = 0.36); subtract the gradient term; "
        "use ᾱ_t, not ᾱ_prev",
    )


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_classifier_guided_eps_matches_algorithm_2(kind):
    """``eps − scale · √(1 − ᾱ_t) · ∇ log p(y|x_t)`` per sample, for a batch of mixed ``t`` and image-shaped data."""
    sched = schedule(50, kind)
    eps, grad = randn((4, 3, 2, 2), dtype=torch.float32), randn((4, 3, 2, 2), dtype=torch.float32, seed=1)
    t = torch.tensor([0, 49, 12, 30])
    got = classifier_guided_eps(sched, eps, t, grad, 1.5)
    assert got.dtype == torch.float32, f"{PART}: classifier_guided_eps turned float32 into {got.dtype}"
    check_close(
        got,
        eps - 1.5 * extract((1 - sched.alpha_bars).sqrt(), t, eps) * grad,
        part=PART,
        what="classifier_guided_eps = eps − scale·√(1 − ᾱ_t)·∇ log p(y|x_t) (Dhariwal & Nichol, Algorithm 2)",
        hint="missing square root; ᾱ_t indexed per sample with extract(a, t, eps); minus sign (guidance lowers eps "
        "along the gradient)",
    )
