"""The resource limits of a worker, and how a worker applies them to itself."""

from __future__ import annotations

import resource
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker (configurable per part)."""

    wall_seconds: float = 120.0
    """Per call: a call that takes longer is killed with its whole process group."""
    import_seconds: float = 60.0
    """To start the worker and import the student's module (``import torch`` alone takes seconds on a busy
    machine)."""
    cpu_seconds: int = 600
    """CPU time of the worker process over its life."""
    memory_bytes: int = 8 << 30
    """Address space (RLIMIT_AS); torch alone reserves about 3 GiB of it."""
    processes: int = 64
    """Processes and threads the worker may add (RLIMIT_NPROC, above what its user already runs)."""
    file_bytes: int = 256 << 20
    """Largest file the worker may write."""
    tree_memory_bytes: int = 8 << 30
    """Resident memory of the whole worker tree together (the zygote, its workers and every process they start),
    where the grader can make a control group (see ``autograder.isolation.budget``)."""


def apply_limits(limits: Limits, processes: int) -> None:
    """Apply ``limits`` to this process (``processes`` is the RLIMIT_NPROC value the grader computed)."""
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
