"""The graded parts, their handout numbers, their points (100 in all, weighted by difficulty) and the
parts each may use.

The one list of parts the grader uses (``tests/kit/test_grading.py`` checks that the reference
package's own ``diffusion.PARTS`` names the same modules in the same order).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One graded part: the student module ``diffusion.<name>``."""

    number: int
    name: str
    title: str
    points: int
    needs: tuple[str, ...] = ()
    """The other parts whose reference functions a student's module of this part may call while it is
    graded: those it builds on, never one that computes this part's answer internally (``losses``
    computes ``q_sample``) or an equivalent algorithm (``ddpm``'s loop is DDIM with η = 1)."""


PARTS: tuple[Part, ...] = (
    Part(1, "schedules", "Noise schedules", 7),
    Part(2, "forward", "Forward process", 8, needs=("schedules",)),
    Part(3, "posterior", "Posterior and reparameterisations", 12, needs=("schedules",)),
    Part(4, "losses", "Losses and the variational bound", 11, needs=("schedules", "forward", "posterior", "ddpm")),
    Part(5, "embedding", "Timestep embedding", 4),
    Part(6, "ddpm", "DDPM sampling", 16, needs=("schedules", "posterior")),
    Part(7, "ddim", "DDIM", 17, needs=("schedules", "posterior")),
    Part(8, "guidance", "Guidance", 13, needs=("schedules", "posterior")),
    Part(9, "vae", "Variational autoencoder", 7),
    Part(10, "latent", "Latent diffusion", 5, needs=("schedules", "posterior", "ddpm", "ddim", "guidance", "vae")),
)
PART_BY_NAME: dict[str, Part] = {part.name: part for part in PARTS}
PART_NAMES: tuple[str, ...] = tuple(part.name for part in PARTS)
"""The part modules, ``diffusion.<name>``, in handout order."""
