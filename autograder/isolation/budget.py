"""A memory and process budget for a whole worker tree, not per process: a control group.

Resource limits (``setrlimit``) bind each process alone: a worker that forks may hold its memory
limit many times over. A control group holds the zygote and every process it or its workers start
(a double-forked daemon included), so its limits bind them together and :meth:`Budget.close` ends
every one of them. cgroup v2 where it has the memory and pids controllers, else v1's memory and
pids hierarchies; it needs the right to create groups (root here). Where neither can be made,
:func:`tree_budget` says so and the per-process limits alone hold.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
_names = itertools.count()


@dataclass(frozen=True)
class Budget:
    """The control groups of one worker tree (one for v2; one per controller for v1)."""

    groups: tuple[Path, ...]
    version: int

    def enter(self) -> None:
        """Move the calling process into the groups (in the child, before it runs anything)."""
        for group in self.groups:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    def close(self) -> None:
        """Kill every process left in the groups and remove them."""
        for group in self.groups:
            for _ in range(50):
                pids = _read(group / "cgroup.procs").split()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                with contextlib.suppress(OSError):
                    group.rmdir()
                    break
                time.sleep(0.02)

    @property
    def description(self) -> str:
        return f"a memory and process budget for the whole worker tree (cgroup v{self.version})"


def tree_budget(memory_bytes: int, processes: int) -> Budget | None:
    """Control groups holding at most ``memory_bytes`` of memory and ``processes`` tasks, or ``None`` where
    none can be made here (not root, no memory or pids controller)."""
    name = f"autograder-{os.getpid()}-{next(_names)}"
    try:
        return _v2(name, memory_bytes, processes) or _v1(name, memory_bytes, processes)
    except OSError:
        return None


def _own(controller: str) -> str:
    """This process's group in the hierarchy of ``controller`` (``""`` for v2's unified one)."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return ""


def _v2(name: str, memory_bytes: int, processes: int) -> Budget | None:
    parent = CGROUP / _own("").lstrip("/")
    if not {"memory", "pids"} <= set(_read(parent / "cgroup.controllers").split()):
        return None
    group = parent / name
    group.mkdir()
    try:
        (group / "memory.max").write_text(str(memory_bytes))
        (group / "pids.max").write_text(str(processes))
        if (group / "memory.swap.max").exists():
            (group / "memory.swap.max").write_text("0")
    except OSError:
        group.rmdir()
        raise
    return Budget((group,), 2)


def _v1(name: str, memory_bytes: int, processes: int) -> Budget | None:
    roots = {controller: CGROUP / controller for controller in ("memory", "pids")}
    if not all((root / "cgroup.procs").exists() for root in roots.values()):
        return None
    groups: list[Path] = []
    try:
        for controller, root in roots.items():
            group = root / _own(controller).lstrip("/") / name
            group.mkdir()
            groups.append(group)
        (groups[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
        (groups[1] / "pids.max").write_text(str(processes))
    except OSError:
        Budget(tuple(groups), 1).close()
        raise
    return Budget(tuple(groups), 1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
