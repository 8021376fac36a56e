"""The hidden checks, one module per part; importing this package registers them all."""

from __future__ import annotations

from autograder.checks import (
    ddim,  # noqa: F401 - registers the part's checks
    ddpm,  # noqa: F401 - registers the part's checks
    embedding,  # noqa: F401 - registers the part's checks
    forward,  # noqa: F401 - registers the part's checks
    guidance,  # noqa: F401 - registers the part's checks
    latent,  # noqa: F401 - registers the part's checks
    losses,  # noqa: F401 - registers the part's checks
    posterior,  # noqa: F401 - registers the part's checks
    schedules,  # noqa: F401 - registers the part's checks
    vae,  # noqa: F401 - registers the part's checks
)
from autograder.checks.framework import REGISTRY, Check
from autograder.parts import PARTS


def all_checks() -> list[Check]:
    """Every registered check, in handout order of the parts."""
    order = {part.name: part.number for part in PARTS}
    return sorted(REGISTRY, key=lambda c: order[c.part])
