"""The graded parts, their handout numbers and their points (100 in all, weighted by difficulty)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One graded part: the student module ``diffusion.<name>``."""

    number: int
    name: str
    title: str
    points: int


PARTS: tuple[Part, ...] = (
    Part(1, "schedules", "Noise schedules", 8),
    Part(2, "forward", "Forward process", 8),
    Part(3, "posterior", "Posterior and reparameterisations", 14),
    Part(4, "losses", "Losses and the variational bound", 12),
    Part(5, "embedding", "Timestep embedding", 5),
    Part(6, "ddpm", "DDPM sampling", 18),
    Part(7, "ddim", "DDIM", 20),
    Part(8, "guidance", "Guidance", 15),
)
PART_BY_NAME: dict[str, Part] = {part.name: part for part in PARTS}
