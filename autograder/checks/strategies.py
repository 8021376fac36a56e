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

    def __repr__(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return f"schedule={self.spec!r}, shape={self.shape}, dtype={dtype}, t={list(self.t)}, seed={self.seed}"

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
        """Data in [−1, 1] of the case's shape and dtype."""
        generator = torch.Generator().manual_seed(self.seed * 1009 + 500 + stream)
        return (torch.rand(self.shape, generator=generator, dtype=torch.float64) * 2 - 1).to(self.dtype)


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
