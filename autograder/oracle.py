"""Denoisers with known answers for the hidden checks, and the energy distance between samples.

The grader never trains a network (DESIGN.md, principle 4). For data from a Gaussian mixture
``p = Σ_k w_k N(μ_k, Σ_k)`` the noised law at level ``ᾱ`` is again a mixture (means ``√ᾱ μ_k``,
covariances ``ᾱ Σ_k + (1 − ᾱ) I``), and the optimal denoiser is exact (Tweedie's formula):

    eps*(x_t, t) = E[eps | x_t] = −√(1 − ᾱ_t) · ∇ log p_t(x_t).

With a label ``y < K`` it is the same formula for component ``y`` alone; the null label ``y = K``
(classifier-free guidance) is the unconditional mixture. A sampler run with :class:`MixtureOracle`
must therefore reproduce the data distribution, up to its own discretisation, which
:func:`energy_distance` measures.

Every denoiser here records its calls (:class:`RecordingDenoiser`), so checks can count model
evaluations and read the timesteps a sampler used. All of them are deterministic functions of
their inputs, compute in float64 and answer in the dtype and on the device of ``x_t``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from autograder.reference import load_reference

REFERENCE = load_reference()
data = importlib.import_module("diffusion.data")  # the reference's provided data module (after load_reference)
GaussianMixture = data.GaussianMixture


HIDDEN_ANGLE = 0.39
"""Radians the course's mixture is turned by in the hidden checks (about half the ring's 45° spacing)."""


def hidden_mixture() -> GaussianMixture:
    """The course's 2-D mixture (:func:`diffusion.data.default_mixture`) turned by :data:`HIDDEN_ANGLE`.

    The student's code can build the public mixture; a "sampler" that ignores the model and draws
    from it lands between this mixture's components and fails the oracle checks. Energy distance
    does not change under a rotation, so the thresholds calibrated on the public mixture hold.
    """
    public = data.default_mixture()
    cos, sin = math.cos(HIDDEN_ANGLE), math.sin(HIDDEN_ANGLE)
    rotation = torch.tensor([[cos, -sin], [sin, cos]], dtype=public.means.dtype)
    return GaussianMixture(public.means @ rotation.T, public.covariances, public.weights)


@dataclass(frozen=True)
class Call:
    """One evaluation of a denoiser: the timesteps it got (a CPU copy), the batch size and the keyword names."""

    t: torch.Tensor
    batch: int
    kwargs: dict


class RecordingDenoiser:
    """A denoiser ``model(x_t, t, **kwargs) -> eps`` that records every call; subclasses define :meth:`eps`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        self._validate(x_t, t, kwargs)
        recorded = {k: (v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        self.calls.append(Call(t.detach().cpu().clone(), int(x_t.shape[0]), recorded))
        with torch.no_grad():
            return self.eps(x_t, t, **kwargs)

    @property
    def num_calls(self) -> int:
        return len(self.calls)

    @property
    def timesteps(self) -> list[torch.Tensor]:
        """The ``t`` of every call, in call order."""
        return [call.t for call in self.calls]

    def reset(self) -> None:
        self.calls.clear()

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def _validate(self, x_t: torch.Tensor, t: torch.Tensor, kwargs: dict) -> None:
        """Reject a call that breaks the denoiser contract, with a message the student can act on."""
        if not isinstance(x_t, torch.Tensor) or not x_t.is_floating_point() or x_t.dim() < 1:
            raise TypeError(
                f"the denoiser must be called with a floating tensor x_t of shape (B, ...); got {x_t!r:.80}"
            )
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or tuple(t.shape) != (x_t.shape[0],):
            got = f"{t.dtype} of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(
                f"the denoiser must be called as model(x_t, t) with t a long tensor of shape (B,) = "
                f"({x_t.shape[0]},), one timestep per sample; got {got}"
            )


class MixtureOracle(RecordingDenoiser):
    """The exact ``E[eps | x_t]`` for data from a :class:`~diffusion.data.GaussianMixture` under ``schedule``.

    ``model(x_t, t, y=None)``: ``x_t`` ``(B, D)``, ``t`` long ``(B,)`` (per-sample timesteps are
    grouped by value), ``y`` long ``(B,)`` in ``0..K`` where ``K`` (the null label) means unconditional.
    """

    def __init__(self, schedule, mixture: GaussianMixture | None = None) -> None:
        super().__init__()
        self.schedule = schedule
        self.mixture = hidden_mixture() if mixture is None else mixture
        self._noised: dict[int, GaussianMixture] = {}

    @property
    def num_classes(self) -> int:
        return self.mixture.num_classes

    def noised(self, step: int) -> GaussianMixture:
        """The law of ``x_t`` at 0-based timestep ``step`` (cached)."""
        if step not in self._noised:
            self._noised[step] = self.mixture.noised(float(self.schedule.alpha_bars[step]))
        return self._noised[step]

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        T, K = self.schedule.T, self.num_classes
        if x_t.dim() != 2 or x_t.shape[1] != self.mixture.dim:
            raise ValueError(f"this oracle denoises {self.mixture.dim}-D points of shape (B, {self.mixture.dim})")
        t_cpu = t.cpu()
        if int(t_cpu.min()) < 0 or int(t_cpu.max()) >= T:
            raise ValueError(
                f"the denoiser got timesteps {t_cpu.unique().tolist()[:8]}; they must lie in 0..T−1={T - 1}"
            )
        if y is not None:
            if not isinstance(y, torch.Tensor) or y.dtype != torch.long or tuple(y.shape) != (x_t.shape[0],):
                raise TypeError(f"y must be a long tensor of shape ({x_t.shape[0]},), got {y!r:.80}")
            y = y.cpu()
            if int(y.min()) < 0 or int(y.max()) > K:
                raise ValueError(f"labels must lie in 0..{K} ({K} is the null label), got {y.unique().tolist()[:8]}")
        x = x_t.detach().to(device="cpu", dtype=torch.float64)
        out = torch.empty_like(x)
        for step in t_cpu.unique().tolist():
            rows = t_cpu == step
            p_t = self.noised(step)
            if y is None:
                score = p_t.score(x[rows])
            else:
                labels = y[rows]
                conditional = labels < K
                score = torch.empty_like(x[rows])
                score[~conditional] = p_t.score(x[rows][~conditional])
                score[conditional] = p_t.score(x[rows][conditional], labels[conditional])
            out[rows] = -math.sqrt(1 - float(self.schedule.alpha_bars[step])) * score
        return out.to(device=x_t.device, dtype=x_t.dtype)


class KnowsX0(RecordingDenoiser):
    """The denoiser that knows the data: ``eps = (x_t − √ᾱ_t · x0) / √(1 − ᾱ_t)`` (its ``x̂0`` is ``x0`` exactly)."""

    def __init__(self, schedule, x0: torch.Tensor) -> None:
        super().__init__()
        self.schedule = schedule
        self.x0 = x0

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        alpha_bar = self.schedule.alpha_bars[t.cpu()].reshape(-1, *([1] * (x_t.dim() - 1)))
        x, x0 = x_t.detach().cpu().double(), self.x0.cpu().double()
        return ((x - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()).to(device=x_t.device, dtype=x_t.dtype)


class SmoothDenoiser(RecordingDenoiser):
    """A fixed smooth nonlinear ``eps(x_t, t, y=None, scale=1.0)`` for exact formula checks, any data shape.

    ``eps = scale · ((0.5 + u) · sin(1.3 x + 2u) + 0.2 x + c_y · cos(0.7 x + y))`` with ``u = (t + 1) / T``
    and a per-label weight ``c_y = 0.3 · (y + 1) / (K + 1)`` (no label term without ``y``);
    ``K = num_classes``, and ``y = K`` is the null label like any other.
    """

    def __init__(self, T: int, num_classes: int = 10) -> None:
        super().__init__()
        self.T, self.num_classes = T, num_classes

    def eps(
        self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None, scale: float = 1.0
    ) -> torch.Tensor:
        shape = (-1, *([1] * (x_t.dim() - 1)))
        x = x_t.detach().cpu().double()
        u = ((t.cpu().double() + 1) / self.T).reshape(shape)
        eps = (0.5 + u) * torch.sin(1.3 * x + 2 * u) + 0.2 * x
        if y is not None:
            label = y.cpu().double().reshape(shape)
            eps = eps + 0.3 * (label + 1) / (self.num_classes + 1) * torch.cos(0.7 * x + label)
        return (float(scale) * eps).to(device=x_t.device, dtype=x_t.dtype)


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The (squared) energy distance ``2 E|X − Y| − E|X − X′| − E|Y − Y′|`` between two samples.

    ``x`` ``(n, ...)`` and ``y`` ``(m, ...)`` are flattened to points and compared in float64 with
    Euclidean distances (``torch.cdist``). Expectations are means over all pairs (the V-statistic),
    so the value is ≥ 0, 0 only for equal samples, and for two samples of one distribution about
    ``E|X − X′| · (1/n + 1/m)``.
    """
    x = x.detach().cpu().reshape(x.shape[0], -1).double()
    y = y.detach().cpu().reshape(y.shape[0], -1).double()
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return float(2 * xy - xx - yy)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with one intra-op thread (then restore the setting).

    Sampling with the oracle is thousands of small tensor operations; on a loaded machine (a pool
    grading several submissions, or two cores shared) torch's thread pool makes them many times
    slower than one thread does.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
