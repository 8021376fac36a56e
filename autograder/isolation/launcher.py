"""How the workers' sandbox is started: inside bubblewrap where it runs, else a limited subprocess.

One sandbox per submission runs the zygote (:func:`autograder.sandbox.worker.zygote`), which forks a
worker per part; "the worker" below is any process in it. The bubblewrap sandbox (Debian's
``bubblewrap``) gives the worker a new PID, network, IPC and UTS namespace (no network at all), a
read-only view of the system and of the Python installation, the staged :mod:`autograder.sandbox`
package and public modules at ``/sandbox`` (read-only) and one writable scratch directory at
``/scratch`` holding a copy of the submission. The kit's repository (solutions, hidden checks), the
output directory, home directories and the environment are not visible.

When the grader runs as root, each sandbox's processes run as an unprivileged user of their own
(:func:`worker_user`: a user id no file, no other process and no other submission has), so the
process limit binds them alone, they cannot read what only root may, and :func:`end_user` can find
and kill every one of them (a daemon that left the process group included) before the results are
written. Without bubblewrap that needs a Python installation other users can run (probed once;
:func:`isolation` says whether it held, and whether that user could read the hidden checks).

Everywhere: resource limits (CPU seconds, address space, processes, file size; each worker applies
its part's with :func:`autograder.sandbox.limits.apply_limits`), a session of its own so the whole
process group is killed at the wall-time limit. Where bubblewrap cannot run (macOS, a container
without user namespaces, as on Gradescope) the worker is a plain subprocess with those limits (and
the user of its own, as root), and :func:`isolation` says so, for the report.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
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
UID_BASE = 1 << 30
"""Workers' user ids (as root): ``UID_BASE + (grader pid << 8) + n``, unique on the machine while the grader lives."""
PROBE_UID = UID_BASE - 1
"""The user id that probes whether another user can run this Python (it runs nothing else)."""
PR_SET_PDEATHSIG = 1
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
BOOT = "import sys; sys.path.insert(0, {stage!r}); from autograder.sandbox.worker import zygote; zygote()"
PROBE = """
import sys
import torch
try:
    open(sys.argv[1], "rb").close()
except OSError:
    print("hidden")
else:
    print("readable")
"""
"""Run as another user: can it run this Python (and torch), and can it read the hidden checks?"""
_users = itertools.count()


@dataclass(frozen=True)
class Isolation:
    """How workers are isolated on this machine, for the report: in bubblewrap or not, and whether (as root)
    they run as a user of their own."""

    sandboxed: bool
    description: str
    own_user: bool = False


@functools.cache
def isolation() -> Isolation:
    """Probe once whether bubblewrap runs here (``AUTOGRADER_SANDBOX=none`` turns it off) and, where it does
    not, whether the workers can run as a user of their own."""
    if os.environ.get("AUTOGRADER_SANDBOX", "").lower() == "none":
        return _fallback("AUTOGRADER_SANDBOX=none")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return _fallback("bubblewrap is not installed (Debian: apt-get install bubblewrap)")
    probe = subprocess.run(
        [bwrap, *_namespaces(), "--ro-bind", "/", "/", "--die-with-parent", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.returncode}"
        return _fallback(f"bubblewrap cannot run here ({reason})")
    root = os.geteuid() == 0
    own = root and _can_become(PROBE_UID)
    user = "; as a user of its own" if own else "; as nobody (this machine maps no other user ids)" if root else ""
    return Isolation(True, f"sandboxed with bubblewrap: no network, read-only system, scratch only{user}", own)


def _can_become(uid: int) -> bool:
    """Whether root can switch to user ``uid`` here (a user namespace may map only some ids, e.g. up to 65535)."""
    try:
        return subprocess.run(["true"], preexec_fn=functools.partial(become, uid), timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _fallback(why: str) -> Isolation:
    """Without bubblewrap: a limited subprocess, as a user of its own where the grader is root and another user
    can run this Python; the description says which protections held."""
    head = f"NOT SANDBOXED: {why}; student code ran in a subprocess with resource limits"
    if os.geteuid() != 0:
        return Isolation(False, f"{head}, as the grader's own user (it could read what the grader can)")
    import autograder.checks  # the hidden checks: the file a worker's user must not be able to read

    try:
        probe = subprocess.run(
            [sys.executable, "-I", "-c", PROBE, autograder.checks.__file__],
            capture_output=True, text=True, timeout=300, cwd="/", env={"PATH": "/usr/bin:/bin"},
            preexec_fn=functools.partial(become, PROBE_UID),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):  # it cannot even start the interpreter, or hangs
        probe = None
    if probe is None or probe.returncode != 0:
        return Isolation(
            False,
            f"{head}, AS ROOT: another user cannot run the Python at {sys.prefix} (install it where every user "
            "may run it, e.g. under /opt or /usr/local, to give student code an unprivileged user of its own)",
        )
    kit = Path(autograder.checks.__file__).parents[2]
    checks = (
        f"which COULD READ the hidden checks (chmod -R o-rwx {kit} to hide them)"
        if probe.stdout.strip() == "readable"
        else "which could not read the hidden checks"
    )
    return Isolation(False, f"{head}, as an unprivileged user of its own {checks}", own_user=True)


def become(uid: int) -> None:
    """In a child before it runs anything: drop every privilege to user and group ``uid``, no other group."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def worker_user() -> int | None:
    """A fresh user id for one sandbox's processes, or ``None`` where they have none of their own."""
    if not isolation().own_user:
        return None
    return UID_BASE + (os.getpid() << 8) + next(_users) % 256


def runs_as(uid: int | None) -> int | None:
    """The user a sandbox's processes run as: ``uid`` (:func:`worker_user`), else ``nobody`` in bubblewrap as root
    where no other id can be used, else ``None`` (the grader's user)."""
    if uid is None and isolation().sandboxed and os.geteuid() == 0:
        return NOBODY
    return uid


def _namespaces() -> list[str]:
    """As root, no user namespace (so the worker can drop to its user of its own); else bubblewrap needs one."""
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


def command(stage: Path, scratch: Path, uid: int | None) -> list[str]:
    """The command line that starts a worker reading the staged code, in ``scratch``, as user ``uid`` (bubblewrap
    runs as root and drops to it inside; without bubblewrap :func:`limiter` drops before the worker starts)."""
    python = [sys.executable, "-I", "-c", BOOT.format(stage="/sandbox" if isolation().sandboxed else str(stage))]
    if not isolation().sandboxed:
        return python
    user = runs_as(uid)
    drop = [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]
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


def prepare(tmp: Path, stage: Path, scratch: Path, uid: int | None) -> None:
    """Make ``stage`` readable by the worker's user ``uid`` (whatever the kit's files' modes) and ``scratch`` its
    own: no other user, another submission's included, may enter it."""
    uid = runs_as(uid)
    if uid is None:
        return
    tmp.chmod(0o711)
    for path in (stage, *stage.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for path in (scratch, *scratch.rglob("*")):
        os.chown(path, uid, uid, follow_symlinks=False)
    scratch.chmod(0o700)


def end_user(uid: int) -> None:
    """Kill every process of user ``uid`` (they are all a sandbox's: the id is used for nothing else), so that
    nothing of the submission runs once the results are written: rounds of ``SIGKILL`` until one finds no process
    it has not signalled yet (a killed process never runs again, and a fork in flight fails or shows next round)."""
    signalled: set[int] = set()
    for _ in range(1000):
        fresh = set(_tasks_of(uid)) - signalled
        if not fresh:
            return
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        signalled |= fresh


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


def nproc(limits: Limits, uid: int | None) -> int:
    """RLIMIT_NPROC for ``limits``: it counts every task of the user, so as the grader's user the grader's own
    tasks come on top; a worker's user of its own (``uid``) runs nothing else."""
    own = runs_as(uid) is not None  # nobody, where it is the fallback, runs little else
    return limits.processes if own else sum(_tasks_of(os.getuid()).values()) + limits.processes


def limiter(limits: Limits, processes: int, budget: Budget | None, uid: int | None) -> Callable[[], None]:
    """A ``preexec_fn`` applying ``limits`` (and ``processes`` as RLIMIT_NPROC) in the child before it runs
    anything, in ``budget``'s control groups when there are some, then (without bubblewrap) becoming user ``uid``."""

    def apply() -> None:
        if budget is not None:
            budget.enter()
        apply_limits(limits, processes)
        if uid is not None and not isolation().sandboxed:
            become(uid)
        parent_death_signal()  # after the change of user, which clears it

    return apply


def _tasks_of(uid: int) -> dict[int, int]:
    """The live processes of user ``uid`` now (not zombies) and how many tasks (threads) each has: RLIMIT_NPROC
    counts them all."""
    tasks = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)] and fields.get("State", "").strip()[:1] not in ("Z", "X"):
            tasks[int(status.parent.name)] = int(fields.get("Threads", "1").strip() or 1)
    return tasks
