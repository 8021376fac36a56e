"""Hypothesis strategies for the hidden checks: schedules, timesteps, shapes, dtypes and data.

Strategies draw small *specifications* (a schedule's kind and length, a shape, a seed) whose repr
is short, so the smallest counterexample Hypothesis finds reads well in the student's feedback;
the tensors are built from the specification with the reference package.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from autograder.reference import load_reference

REFERENCE = load_reference()
schedules_module = REFERENCE.schedules


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule to build: ``kind`` in linear, cosine, scaled_linear or given ``betas``."""

    kind: str
    T: int
    betas: tuple[float, ...] = ()

    def betas_tensor(self) -> torch.Tensor:
        # Endpoints scaled by 1000 / T (as improved-diffusion does) so short schedules still reach noise.
        scale = 1000 / self.T
        if self.kind == "linear":
            return schedules_module.linear_betas(self.T, min(1e-4 * scale, 0.1), min(0.02 * scale, 0.999))
        if self.kind == "cosine":
            return schedules_module.cosine_betas(self.T)
        if self.kind == "scaled_linear":
            return schedules_module.scaled_linear_betas(self.T, min(0.00085 * scale, 0.1), min(0.012 * scale, 0.5))
        if self.kind == "random":
            return torch.tensor(self.betas, dtype=torch.float64)
        raise ValueError(f"unknown schedule kind {self.kind!r}")

    def build(self):
        """The reference :class:`NoiseSchedule` of this specification."""
        return schedules_module.make_schedule(self.betas_tensor())

    def __repr__(self) -> str:
        if self.kind == "random":
            return f"betas({', '.join(f'{b:.3g}' for b in self.betas)})"
        return f"{self.kind}(T={self.T})"


def schedule_specs(min_T: int = 1, max_T: int = 20) -> st.SearchStrategy[ScheduleSpec]:
    """Linear, cosine, scaled-linear and random valid schedules with ``min_T ≤ T ≤ max_T``."""
    named = st.builds(
        ScheduleSpec,
        kind=st.sampled_from(["linear", "cosine", "scaled_linear"]),
        T=st.integers(min_T, max_T),
    )
    random = st.integers(min_T, min(max_T, 12)).flatmap(
        lambda T: st.lists(st.floats(1e-4, 0.6), min_size=T, max_size=T).map(
            lambda betas: ScheduleSpec("random", len(betas), tuple(betas))
        )
    )
    return st.one_of(named, random)


@dataclass(frozen=True)
class Case:
    """A drawn input: a schedule, a batch shape, a dtype, one timestep per sample and a data seed."""

    spec: ScheduleSpec
    shape: tuple[int, ...]
    dtype: torch.dtype
    t: tuple[int, ...]
    seed: int
    spread: float = 1.0
    """:meth:`data` lies in ``[−spread, spread]``: the data's range [−1, 1] by default; wider for inputs such as
    latents, which no function may clamp to the data's range."""

    def __repr__(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        spread = "" if self.spread == 1 else f", data in [−{self.spread:g}, {self.spread:g}]"
        return f"schedule={self.spec!r}, shape={self.shape}, dtype={dtype}, t={list(self.t)}, seed={self.seed}{spread}"

    @property
    def schedule(self):
        return self.spec.build()

    def timesteps(self) -> torch.Tensor:
        return torch.tensor(self.t, dtype=torch.long)

    def randn(self, stream: int = 0) -> torch.Tensor:
        """Standard normal data of the case's shape and dtype; ``stream`` picks an independent draw."""
        generator = torch.Generator().manual_seed(self.seed * 1009 + stream)
        return torch.randn(self.shape, generator=generator, dtype=torch.float64).to(self.dtype)

    def data(self, stream: int = 0) -> torch.Tensor:
        """Data in ``[−spread, spread]`` ([−1, 1] by default) of the case's shape and dtype."""
        generator = torch.Generator().manual_seed(self.seed * 1009 + 500 + stream)
        return (self.spread * (torch.rand(self.shape, generator=generator, dtype=torch.float64) * 2 - 1)).to(self.dtype)


WIDE_DATA = Case(ScheduleSpec("linear", 10), (3, 2), torch.float64, (0, 5, 9), 3, spread=4.0)
"""A case whose data leave [−1, 1] (as latents do): a formula that clamps its inputs to the data's range fails it."""


def shapes(min_dims: int = 1, max_dims: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Batch shapes ``(B, ...)`` of 1–4 dimensions with small sizes."""
    return st.tuples(st.integers(1, 4), st.lists(st.integers(1, 3), min_size=min_dims - 1, max_size=max_dims - 1)).map(
        lambda pair: (pair[0], *pair[1])
    )


def timesteps_for(T: int, batch: int, min_t: int = 0) -> st.SearchStrategy[tuple[int, ...]]:
    """One timestep per sample, the boundaries ``min_t`` and ``T − 1`` drawn often."""
    one = st.one_of(st.just(min_t), st.just(T - 1), st.integers(min_t, T - 1))
    return st.lists(one, min_size=batch, max_size=batch).map(tuple)


@st.composite
def cases(draw, min_T: int = 1, max_T: int = 20, min_t: int = 0, dtypes=(torch.float32, torch.float64)) -> Case:
    """A full drawn input; ``min_t = 1`` excludes the t = 0 boundary where a term is undefined there."""
    spec = draw(schedule_specs(max(min_T, min_t + 1), max_T))
    shape = draw(shapes())
    return Case(
        spec=spec,
        shape=shape,
        dtype=draw(st.sampled_from(dtypes)),
        t=draw(timesteps_for(spec.T, shape[0], min_t)),
        seed=draw(st.integers(0, 2**16)),
    )


def schedule_lengths(max_T: int = 1000) -> st.SearchStrategy[int]:
    """Schedule lengths ``1 ≤ T ≤ max_T``, the boundaries ``T = 1``, ``T = 2`` and ``T = max_T`` drawn often."""
    return st.one_of(st.sampled_from([1, 2, max_T]), st.integers(1, max_T))


@st.composite
def mixed_t_cases(draw, min_T: int = 2, max_T: int = 20, dtypes=(torch.float32, torch.float64)) -> Case:
    """A case whose batch mixes ``t = 0`` with ``t > 0`` (at least one of each), for the t = 0 boundary."""
    spec = draw(schedule_specs(max(min_T, 2), max_T))
    batch = draw(st.integers(2, 4))
    rest = draw(st.lists(st.integers(1, 3), max_size=2))
    t = list(draw(timesteps_for(spec.T, batch)))
    zero_at = draw(st.integers(0, batch - 1))
    t[zero_at] = 0
    t[(zero_at + 1) % batch] = draw(st.integers(1, spec.T - 1))
    return Case(
        spec=spec,
        shape=(batch, *rest),
        dtype=draw(st.sampled_from(dtypes)),
        t=tuple(t),
        seed=draw(st.integers(0, 2**16)),
    )


@dataclass(frozen=True)
class StepCase:
    """A jump from ``case.t`` to ``t_prev`` (``−1 ≤ t_prev < t``, −1 is the data) with noise scale ``eta``."""

    case: Case
    t_prev: tuple[int, ...]
    eta: float

    def __repr__(self) -> str:
        return f"{self.case!r}, t_prev={list(self.t_prev)}, eta={self.eta}"

    def prev_timesteps(self) -> torch.Tensor:
        return torch.tensor(self.t_prev, dtype=torch.long)


@st.composite
def step_cases(
    draw, max_T: int = 20, etas=(0.0, 0.3, 1.0), consecutive: bool = False, dtypes=(torch.float32, torch.float64)
) -> StepCase:
    """A :class:`StepCase`: ``t_prev = t − 1`` when ``consecutive``, else drawn in ``[−1, t − 1]`` (−1 often)."""
    case = draw(cases(max_T=max_T, dtypes=dtypes))
    if consecutive:
        t_prev = tuple(t - 1 for t in case.t)
    else:
        t_prev = tuple(draw(st.one_of(st.just(-1), st.just(t - 1), st.integers(-1, t - 1))) for t in case.t)
    return StepCase(case=case, t_prev=t_prev, eta=draw(st.sampled_from(etas)))


@dataclass(frozen=True)
class SubsequenceSpec:
    """A DDIM run: ``num_steps`` timesteps of ``T`` with ``spacing``, noise scale ``eta`` and a seed."""

    T: int
    num_steps: int
    spacing: str
    eta: float = 0.0
    seed: int = 0

    def __repr__(self) -> str:
        return f"T={self.T}, num_steps={self.num_steps}, spacing={self.spacing!r}, eta={self.eta}, seed={self.seed}"


def subsequence_specs(
    max_T: int = 1000, max_steps: int | None = None, etas=(0.0,), spacings=("uniform", "linspace", "trailing")
) -> st.SearchStrategy[SubsequenceSpec]:
    """Schedules lengths, step counts in ``1..T`` (``≤ max_steps``), spacings, noise scales and seeds."""
    return st.integers(1, max_T).flatmap(
        lambda T: st.builds(
            SubsequenceSpec,
            T=st.just(T),
            num_steps=st.one_of(st.just(1), st.just(min(T, max_steps or T)), st.integers(1, min(T, max_steps or T))),
            spacing=st.sampled_from(spacings),
            eta=st.sampled_from(etas),
            seed=st.integers(0, 2**16),
        )
    )
