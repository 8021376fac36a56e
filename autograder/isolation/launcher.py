"""How the workers' sandbox is started: inside bubblewrap where it runs, else a limited subprocess.

One sandbox per submission runs the zygote (:func:`autograder.sandbox.worker.zygote`), which forks a
worker per part; "the worker" below is any process in it. The bubblewrap sandbox (Debian's
``bubblewrap``) gives the worker a new PID, network, IPC and UTS namespace (no network at all), a
read-only view of the system and of the Python installation, the staged :mod:`autograder.sandbox`
package and public modules at ``/sandbox`` (read-only) and one writable scratch directory at
``/scratch`` holding a copy of the submission. The kit's repository (solutions, hidden checks), the
output directory, home directories and the environment are not visible. When the grader runs as
root, the worker drops to the unprivileged user ``nobody`` inside the sandbox, so that the process
limit applies to it.

Everywhere: resource limits (CPU seconds, address space, processes, file size; each worker applies
its part's with :func:`autograder.sandbox.limits.apply_limits`), a session of its own so the whole
process group is killed at the wall-time limit. Where bubblewrap cannot run (macOS, a container
without user namespaces) the worker is a plain subprocess with those limits only, and
:func:`isolation` says so, for the report.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autograder.isolation.budget import Budget
from autograder.sandbox.limits import Limits, apply_limits

NOBODY = 65534
PR_SET_PDEATHSIG = 1
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
BOOT = "import sys; sys.path.insert(0, {stage!r}); from autograder.sandbox.worker import zygote; zygote()"


@dataclass(frozen=True)
class Isolation:
    """How workers are isolated on this machine, for the report."""

    sandboxed: bool
    description: str


@functools.cache
def isolation() -> Isolation:
    """Probe once whether bubblewrap runs here (``AUTOGRADER_SANDBOX=none`` turns it off)."""
    if os.environ.get("AUTOGRADER_SANDBOX", "").lower() == "none":
        return Isolation(False, "NOT SANDBOXED: AUTOGRADER_SANDBOX=none; student code ran in a limited subprocess")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Isolation(
            False,
            "NOT SANDBOXED: bubblewrap is not installed (Debian: apt-get install bubblewrap); "
            "student code ran in a subprocess with resource limits only",
        )
    probe = subprocess.run(
        [bwrap, *_namespaces(), "--ro-bind", "/", "/", "--die-with-parent", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.returncode}"
        return Isolation(
            False,
            f"NOT SANDBOXED: bubblewrap cannot run here ({reason}); student code ran in a subprocess "
            "with resource limits only",
        )
    return Isolation(True, "sandboxed with bubblewrap: no network, read-only system, scratch directory only")


def _namespaces() -> list[str]:
    """As root, no user namespace (so the worker can drop to ``nobody``); else bubblewrap needs one."""
    shared = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    return shared if os.geteuid() == 0 else ["--unshare-user", *shared]


def _system_binds() -> list[str]:
    args: list[str] = []
    for top in SYSTEM_DIRS:
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd", "group"):
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    # The Python installation and its site-packages, wherever they live (a venv, pyenv under /root, ...).
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["purelib"]}
    roots |= {sysconfig.get_paths()["platlib"], str(Path(sys.executable).resolve().parent)}
    made: set[Path] = set()
    for root in sorted(roots):
        if Path(root).is_dir() and not any(Path(root).is_relative_to(other) for other in roots - {root}):
            # Its parents are created traversable (a pyenv under /root would otherwise inherit /root's 0700).
            for parent in reversed(Path(root).parents[:-1]):
                if parent not in made and not any(parent.is_relative_to(top) for top in SYSTEM_DIRS):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            args += ["--ro-bind", root, root]
    for device in sorted(Path("/dev").glob("nvidia*")):
        args += ["--dev-bind", str(device), str(device)]
    return args


def command(stage: Path, scratch: Path) -> list[str]:
    """The command line that starts a worker reading the staged code, in ``scratch``."""
    python = [sys.executable, "-I", "-c", BOOT.format(stage="/sandbox" if isolation().sandboxed else str(stage))]
    if not isolation().sandboxed:
        return python
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"] if os.geteuid() == 0 else []
    return [
        shutil.which("bwrap"),
        *_namespaces(),
        "--die-with-parent",
        "--new-session",
        "--tmpfs", "/tmp",  # first: a Python installed under /tmp (a venv) is bound over it, not hidden by it
        *_system_binds(),
        "--proc", "/proc",
        "--dev", "/dev",
        "--ro-bind", str(stage), "/sandbox",
        "--bind", str(scratch), "/scratch",
        "--chdir", "/scratch",
        *drop,
        *python,
    ]  # fmt: skip


def prepare_scratch(scratch: Path) -> None:
    """Make ``scratch`` writable by the worker's user."""
    if isolation().sandboxed and os.geteuid() == 0:
        for path in (scratch, *scratch.rglob("*")):
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


def environment(scratch: Path) -> dict[str, str]:
    """The worker's whole environment: nothing of the grader's (no tokens, no secrets). One OpenMP thread
    until a worker sets its own number (``torch.set_num_threads``)."""
    home = "/scratch" if isolation().sandboxed else str(scratch)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp" if isolation().sandboxed else str(scratch),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }


def parent_death_signal() -> None:
    """In a child before it runs anything: be killed when the parent dies (Linux; a no-op elsewhere).

    A grader that is killed then takes its fallback workers (bubblewrap's have ``--die-with-parent``)
    and a batch its graders along, instead of leaving them running.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def nproc(limits: Limits) -> int:
    """RLIMIT_NPROC for ``limits``: it counts every task of the user, so outside the sandbox (same user as
    the grader) the grader's own tasks come on top; inside, the worker's user ``nobody`` runs nothing else."""
    return limits.processes if os.geteuid() == 0 else _processes_of_this_user() + limits.processes


def limiter(limits: Limits, budget: Budget | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` applying ``limits`` in the child before it runs anything, in ``budget``'s control
    groups when there are some."""
    processes = nproc(limits)

    def apply() -> None:
        parent_death_signal()
        if budget is not None:
            budget.enter()
        apply_limits(limits, processes)

    return apply


def _processes_of_this_user() -> int:
    """Tasks (processes and threads) this user runs now: RLIMIT_NPROC counts them all."""
    uid, count = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count
