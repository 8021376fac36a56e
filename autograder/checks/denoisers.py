"""The denoisers the hidden checks hand to the student's code, and the exact denoiser of a Gaussian mixture.

The grader never trains a network (DESIGN.md, principle 4): every model the student's code gets is a
deterministic function of its inputs that records how it was called (:class:`Denoiser`), so a check can
count model evaluations and read the timesteps and keyword arguments a loss or a sampler passed, and, for a
sampler, the states it evaluated the model at and the answers it got (:mod:`autograder.checks.trajectory`
checks that the samples come from them). What a denoiser records is bounded (:data:`MAX_CALLS`,
:data:`MAX_RECORDED_VALUES`): student code that calls it past that fails the check (:class:`RecordingLimit`)
instead of filling the grader's memory.

- :class:`SmoothDenoiser`, :class:`AffineDenoiser`: fixed maps of every input they should get, for exact
  formula checks on any data shape;
- :class:`KnowsX0`, :class:`Constant`: they know the data (or the noise), so their ``x̂0`` is exact;
- :class:`MixtureOracle`: for data from a Gaussian mixture ``p = Σ_k w_k N(μ_k, Σ_k)`` the noised law at
  level ``ᾱ`` is again a mixture (means ``√ᾱ μ_k``, covariances ``ᾱ Σ_k + (1 − ᾱ) I``), and the optimal
  denoiser is exact (Tweedie's formula)::

      eps*(x_t, t) = E[eps | x_t] = −√(1 − ᾱ_t) · ∇ log p_t(x_t).

  With a label ``y < K`` it is the same formula for component ``y`` alone; the null label ``y = K``
  (classifier-free guidance) is the unconditional mixture. A sampler run with it must reproduce the data
  distribution, up to its own discretisation, which
  :func:`~autograder.scoring.energy.energy_distance` measures.

The oracle lives here, beside the other denoisers, rather than in a module of the grader's own: it is one
of the family (the same recording and contract), and only the checks use it.

The mixture the sampler checks use is the course's public one turned by a hidden angle
(:func:`hidden_mixture`), drawn per submission: HMAC-SHA256 of the submission's fingerprint under the
grader's secret (:mod:`autograder.secret`: ``AUTOGRADER_SECRET``, else the file
``~/.cache/diffusion-autograder/secret``, mode 0600, made on first use and never shipped). The same
submission always gets the same angle; no grading, and not this code, tells another submission's.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from autograder.checks.framework import CheckFailed
from autograder.isolation.errors import WorkLimit, refuse
from autograder.reference import load_reference
from autograder.secret import derive

REFERENCE = load_reference()
data = importlib.import_module("diffusion.data")  # the reference's provided data module (after load_reference)
GaussianMixture = data.GaussianMixture
expand_like = REFERENCE.schedules.expand_like


SECTOR = 2 * math.pi / 8
"""The public ring's symmetry: turned by a multiple of 45° its 8 equal components land on each other."""
OFFSET_DEGREES = (15.0, 30.0)
"""The hidden angle is a multiple of 45° plus an offset drawn in this range: at least 15° from every turn
that maps the public ring onto itself, so the public mixture never passes for the hidden one."""


def hidden_angle(fingerprint: str) -> float:
    """The angle (radians) the course's mixture is turned by for the submission with ``fingerprint``.

    ``k · 45° + δ`` with ``k`` in ``0..7`` and ``δ`` in :data:`OFFSET_DEGREES`, both from the first 8 bytes of
    :func:`autograder.secret.derive`: the same submission, the same angle; another submission's is unrelated.
    """
    word = int.from_bytes(derive("hidden mixture rotation", fingerprint)[:8], "big")
    low, high = OFFSET_DEGREES
    offset = math.radians(low + (high - low) * (word >> 3) / 2**61)
    return (word % 8) * SECTOR + offset


def hidden_mixture(fingerprint: str) -> GaussianMixture:
    """The course's 2-D mixture (:func:`diffusion.data.default_mixture`) turned by :func:`hidden_angle`.

    The student's code can build the public mixture; a "sampler" that ignores the model and draws from it
    lands between this mixture's components and fails the oracle checks, and one that learns the angle
    from the model learns nothing about another submission's (and still fails the checks of its
    trajectory, :mod:`autograder.checks.trajectory`). Energy distance does not change under a rotation, so
    the thresholds calibrated on the public mixture hold.
    """
    public = data.default_mixture()
    angle = hidden_angle(fingerprint)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[cos, -sin], [sin, cos]], dtype=public.means.dtype)
    return GaussianMixture(public.means @ rotation.T, public.covariances, public.weights)


def mixture_truth(mixture: GaussianMixture, n: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` true samples of ``mixture`` drawn with ``seed``: of the components ``labels`` ``(n,)`` if given, else
    with the classes in exact proportion, ``labels = (0, 1, ..., K − 1, 0, 1, ...)`` (less noise than i.i.d.)."""
    if labels is None:
        labels = torch.arange(n, dtype=torch.long) % mixture.num_classes
    return mixture.sample(n, generator=torch.Generator().manual_seed(seed), y=labels)[0]


@dataclass(frozen=True)
class Call:
    """One evaluation of a denoiser: the timesteps it got (a CPU copy), the batch size, the keyword
    arguments (tensors as CPU copies) and, if the denoiser records them, its input ``x`` (a CPU copy) and
    its answer ``eps``."""

    t: torch.Tensor
    batch: int
    kwargs: dict
    eps: torch.Tensor | None = None
    x: torch.Tensor | None = None


MAX_CALLS = 20_000
"""The most calls a denoiser records: 20 times the most a check needs (a 1000-step sampler)."""
MAX_RECORDED_VALUES = 60_000_000
"""The most values (timesteps, labels, inputs and answers) a denoiser keeps: 3 times the most a check needs
(1000 steps on 4000 2-D points, 20 million), some 480 MB in float64."""


class RecordingLimit(CheckFailed, WorkLimit):
    """The student's code called a check's denoiser past :data:`MAX_CALLS` or :data:`MAX_RECORDED_VALUES`: the
    check fails with this message, whatever the student's code did with the error it got."""


class Denoiser:
    """A denoiser ``model(x_t, t, **kwargs) -> eps`` that records every call; subclasses define :meth:`eps`.

    A call that breaks the denoiser contract raises ``TypeError`` with a message for the student (it
    surfaces as an error of the student's function that made the call). The answer is computed without
    gradients. A denoiser that depends on the sample (it knows each sample's x0 or noise) is given the
    check's ``batch`` of ``x_t`` when the student passes it in, so that it also answers a call on some of
    its samples (e.g. a loop over the batch), see :meth:`rows`.

    What it records is bounded: the call past :data:`MAX_CALLS` calls, or past :data:`MAX_RECORDED_VALUES`
    values recorded, raises :class:`RecordingLimit`, and so does every call after it.

    Args:
        batch: the ``x_t`` the check passes the student, for :meth:`rows`.
        record_outputs: also keep a copy of each answer in :attr:`calls`.
        record_inputs: also keep a copy of each ``x_t`` in :attr:`calls`.
    """

    max_calls = MAX_CALLS
    max_values = MAX_RECORDED_VALUES

    def __init__(
        self, batch: torch.Tensor | None = None, record_outputs: bool = False, record_inputs: bool = False
    ) -> None:
        self.calls: list[Call] = []
        self.batch = batch
        self.record_outputs = record_outputs
        self.record_inputs = record_inputs
        self.recorded_values = 0
        self.exceeded: RecordingLimit | None = None

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        self._validate(x_t, t)
        self._admit(x_t, t, kwargs)
        recorded = {k: (v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        x = x_t.detach().cpu().clone() if self.record_inputs else None
        self.calls.append(Call(t.detach().cpu().clone(), int(x_t.shape[0]), recorded, x=x))
        with torch.no_grad():
            eps = self.eps(x_t, t, **kwargs)
        if self.record_outputs:
            self.calls[-1] = replace(self.calls[-1], eps=eps.detach().cpu().clone())
        return eps

    def _admit(self, x_t: torch.Tensor, t: torch.Tensor, kwargs: dict) -> None:
        """Count what this call records; raise :class:`RecordingLimit` past the limits (and ever after)."""
        if self.exceeded is None:
            values = t.numel() + sum(v.numel() for v in kwargs.values() if isinstance(v, torch.Tensor))
            values += x_t.numel() * (int(self.record_inputs) + int(self.record_outputs))
            if len(self.calls) >= self.max_calls or self.recorded_values + values > self.max_values:
                self.exceeded = RecordingLimit(
                    f"the model the check handed to your code was called more than the grader records: "
                    f"{len(self.calls)} calls holding {self.recorded_values:,} values so far (the limits are "
                    f"{self.max_calls:,} calls and {self.max_values:,} values)",
                    detail=f"this call had a batch of {x_t.shape[0]} ({x_t.numel():,} values)",
                    hint="a sampler evaluates the model once per step on its batch; an endless loop, a loop per "
                    "sample or repeated sampling runs past any budget",
                )
            self.recorded_values += values
        if self.exceeded is not None:
            raise refuse(self.exceeded)

    def reset(self) -> None:
        """Forget the calls recorded so far (the limits count afresh)."""
        self.calls.clear()
        self.recorded_values = 0
        self.exceeded = None

    @property
    def num_calls(self) -> int:
        return len(self.calls)

    @property
    def timesteps(self) -> list[torch.Tensor]:
        """The ``t`` of every call, in call order."""
        return [call.t for call in self.calls]

    def rows(self, x_t: torch.Tensor) -> torch.Tensor | slice:
        """The samples of :attr:`batch` that ``x_t`` holds: all of them, or the rows it equals."""
        if self.batch is None or x_t.shape == self.batch.shape or x_t.shape[1:] != self.batch.shape[1:]:
            return slice(None)
        # (B, features) for data of any shape, (B,) included
        flat = x_t.detach().to(torch.float64).reshape(len(x_t), -1)
        batch = self.batch.to(torch.float64).reshape(len(self.batch), -1)
        same = (flat[:, None] == batch[None]).all(-1)  # (rows of x_t, samples of the batch)
        return same.to(torch.int8).argmax(1) if bool(same.any(1).all()) else slice(None)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        """The prediction of the noise in ``x_t`` at the 0-based timesteps ``t``."""
        raise NotImplementedError

    @staticmethod
    def _validate(x_t: object, t: object) -> None:
        """Reject a call that breaks the denoiser contract, with a message the student can act on."""
        if not (isinstance(x_t, torch.Tensor) and x_t.is_floating_point() and x_t.dim() >= 1):
            raise TypeError(
                f"the model must be called as model(x_t, t) with x_t a floating tensor of shape (B, ...); "
                f"got {x_t!r:.80}"
            )
        if not (isinstance(t, torch.Tensor) and t.dtype == torch.long and tuple(t.shape) == (x_t.shape[0],)):
            got = f"{t.dtype} of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(
                f"the model must be called as model(x_t, t) with t a long tensor of shape (B,) = ({x_t.shape[0]},), "
                f"one 0-based timestep per sample; got {got}"
            )


class SmoothDenoiser(Denoiser):
    """A fixed smooth nonlinear ``eps(x_t, t, y=None, scale=1.0)`` for exact formula checks, any data shape.

    ``eps = scale · ((0.5 + u) · sin(1.3 x + 2u) + 0.2 x + c_y · cos(0.7 x + y))`` with ``u = (t + 1) / T``
    and a per-label weight ``c_y = 0.3 · (y + 1) / (K + 1)`` (no label term without ``y``);
    ``K = num_classes``, and ``y = K`` is the null label like any other. Computed in float64.
    ``record_outputs``, ``record_inputs``: see :class:`Denoiser`.
    """

    def __init__(
        self, T: int, num_classes: int = 10, record_outputs: bool = False, record_inputs: bool = False
    ) -> None:
        super().__init__(record_outputs=record_outputs, record_inputs=record_inputs)
        self.T, self.num_classes = T, num_classes

    def eps(
        self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None, scale: float = 1.0
    ) -> torch.Tensor:
        x = x_t.detach().cpu().double()
        u = expand_like((t.cpu().double() + 1) / self.T, x)
        eps = (0.5 + u) * torch.sin(1.3 * x + 2 * u) + 0.2 * x
        if y is not None:
            label = expand_like(y.cpu(), x)
            eps = eps + 0.3 * (label + 1) / (self.num_classes + 1) * torch.cos(0.7 * x + label)
        return (float(scale) * eps).to(device=x_t.device, dtype=x_t.dtype)


class AffineDenoiser(Denoiser):
    """``eps = 0.5·x_t + 0.3·t/T + 0.2·y``: a fixed map that depends on every input it should get (in ``x_t``'s
    dtype)."""

    def __init__(self, T: int) -> None:
        super().__init__()
        self.T = T

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        out = 0.5 * x_t + 0.3 * expand_like(t, x_t) / self.T
        return out if y is None else out + 0.2 * expand_like(y, x_t)


class KnowsX0(Denoiser):
    """The denoiser that knows the data: ``eps = (x_t − √ᾱ_t·x0)/√(1 − ᾱ_t)`` in float64 (its ``x̂0`` is
    ``x0`` exactly), plus ``bias(x_t)`` if given.

    Args:
        schedule: the reference schedule of ``ᾱ``.
        x0: the data, one sample per row of ``x_t``.
        bias: a fixed error ``bias(x_t)`` added to the exact answer.
        batch, record_outputs, record_inputs: see :class:`Denoiser`.
    """

    def __init__(
        self,
        schedule,
        x0: torch.Tensor,
        bias: Callable[[torch.Tensor], torch.Tensor] | None = None,
        batch: torch.Tensor | None = None,
        record_outputs: bool = False,
        record_inputs: bool = False,
    ) -> None:
        super().__init__(batch, record_outputs, record_inputs)
        self.schedule, self.x0, self.bias = schedule, x0, bias

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        x = x_t.detach().to(device="cpu", dtype=torch.float64)
        x0 = self.x0[self.rows(x_t)].to(device="cpu", dtype=torch.float64)
        eps = REFERENCE.posterior.predict_eps_from_x0(self.schedule, x, t.cpu(), x0).to(x_t)
        return eps if self.bias is None else eps + self.bias(x_t)


class Constant(Denoiser):
    """Always the same prediction (e.g. the true noise, or zeros), one row per sample."""

    def __init__(self, value: torch.Tensor, batch: torch.Tensor | None = None) -> None:
        super().__init__(batch)
        self.value = value

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.value[self.rows(x_t)]


class MixtureOracle(Denoiser):
    """The exact ``E[eps | x_t]`` for data from a :class:`~diffusion.data.GaussianMixture` under ``schedule``.

    ``model(x_t, t, y=None)``: ``x_t`` ``(B, D)``, ``t`` long ``(B,)`` (per-sample timesteps are
    grouped by value), ``y`` long ``(B,)`` in ``0..K`` where ``K`` (the null label) means unconditional.
    Computed in float64; the answer is in the dtype and on the device of ``x_t``. It records every call's
    input and answer, for the checks of a sampler's trajectory.
    """

    def __init__(self, schedule, mixture: GaussianMixture) -> None:
        super().__init__(record_outputs=True, record_inputs=True)
        self.schedule = schedule
        self.mixture = mixture
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
