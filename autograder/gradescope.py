"""Build a Gradescope autograder bundle: ``python -m autograder gradescope --out autograder.zip``.

The zip holds, at its root (as Gradescope's specification asks):

- ``setup.sh``, run once as root when Gradescope builds the image (base image Ubuntu 22.04, Gradescope's
  default, or 24.04): installs bubblewrap, makes a virtual environment at ``/autograder/venv`` with
  Python 3.11 or newer (the image's ``python3`` where it is new enough, else ``python3.11``, from the
  deadsnakes PPA where Ubuntu lacks it) and installs the CPU build of PyTorch and this kit's grader there
  (editable, so the kit stays in ``/autograder/source``, which it makes unreadable to other users: the grader
  runs as root and student code as a user of its own, see :mod:`autograder.isolation.launcher`);
- ``run_autograder``, run for every submission: grades ``/autograder/submission`` into
  ``/autograder/results/results.json``. ``AUTOGRADER_ROOT`` points it at another root and
  ``AUTOGRADER_PYTHON`` at another interpreter (so a test runs it here); its arguments go on to
  ``grade`` (e.g. ``--parts``);
- the kit: the grader with its hidden checks, the reference it computes expectations with and the
  public modules the sandboxed workers load (never the tests or the bug zoo's results);
- ``autograder-secret``: the grader's secret of the machine that built the bundle
  (:func:`autograder.secret.grader_secret`), which ``run_autograder`` hands to the grader as
  ``AUTOGRADER_SECRET`` unless that is set: what the checks draw per submission is then the same on
  Gradescope (a fresh container per submission) as in a local regrade.

Students see ``results.json``'s ``output`` and its tests, when the tests' ``visibility`` (``--visibility``:
``visible``, ``after_due_date``, ``after_published`` or ``hidden``) lets them; the grader's diagnostics (how the
student's code was isolated) go to its standard output and ``extra_data``, which only instructors see.

Students never see the bundle: Gradescope keeps ``/autograder/source`` to itself.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from autograder.reference import ROOT
from autograder.results import VISIBILITIES, Visibility
from autograder.secret import grader_secret

TORCH = "torch==2.14.1 torchvision==0.29.1"
"""The pinned PyTorch of the README's commands."""
CONTENTS = ("autograder", "solutions/diffusion", "assignments/diffusion", "pyproject.toml", "README.md")
SKIPPED = ("__pycache__", ".pyc")
SECRET = "autograder-secret"
"""The grader's secret in the bundle, for ``run_autograder``."""

CPU_WHEELS = "https://download.pytorch.org/whl/cpu"
"""PyPI's torch carries CUDA (several GB); Gradescope's containers have no GPU: the CPU build is enough."""
BASE_IMAGES = ("Ubuntu 22.04", "Ubuntu 24.04")
"""Gradescope's base images ``setup.sh`` is written for (22.04 is Gradescope's default)."""

SETUP = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image. Written for Gradescope's
# base images {" and ".join(BASE_IMAGES)} (22.04 is the default): Python 3.11 or newer comes from the image's
# python3 where it is new enough (24.04: 3.12), else from Ubuntu's python3.11 (22.04, universe), else
# from the deadsnakes PPA (older images). AUTOGRADER_ROOT points it at another root for a trial run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
root="${{AUTOGRADER_ROOT:-/autograder}}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap ca-certificates
if python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=python3
    apt-get install -y -qq --no-install-recommends python3-venv
else
    python=python3.11
    if ! apt-cache show python3.11-venv >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends software-properties-common
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update -qq
    fi
    apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv
fi
"$python" -m venv "$root/venv"
"$root/venv/bin/python" -m pip install --quiet --upgrade pip
"$root/venv/bin/python" -m pip install --quiet --index-url {CPU_WHEELS} {TORCH}
"$root/venv/bin/python" -m pip install --quiet -e "$root/source[grader]"
# The grader runs as root and student code as a user of its own: that user may run the venv's Python
# (the image's umask leaves it readable) but must not read the kit (hidden checks, reference, secret),
# which the editable install leaves in $root/source.
chmod o+x "$root"
chmod -R o-rwx "$root/source"
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission into
# /autograder/results/results.json, its tests shown to students as --visibility says. AUTOGRADER_ROOT
# and AUTOGRADER_PYTHON point it elsewhere; arguments go on to `python -m autograder grade`.
set -euo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
python="${{AUTOGRADER_PYTHON:-$root/venv/bin/python}}"
if [ -z "${{AUTOGRADER_SECRET:-}}" ] && [ -f "$root/source/autograder-secret" ]; then
    AUTOGRADER_SECRET="$(cat "$root/source/autograder-secret")"
    export AUTOGRADER_SECRET
fi
cd "$root/source"
exec "$python" -m autograder grade "$root/submission" --out "$root/results" --visibility {visibility} "$@"
"""


def _files(root: Path):
    for name in CONTENTS:
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in candidates:
            if file.is_file() and not any(part.endswith(SKIPPED) for part in file.relative_to(root).parts):
                yield file


def build(out: Path, root: Path = ROOT, visibility: Visibility = "visible") -> Path:
    """Write the bundle to ``out``, its tests shown to students as ``visibility`` says; return it.

    Raises:
        ValueError: for a visibility Gradescope does not know.
    """
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}; got {visibility!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN.format(visibility=visibility))):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            bundle.writestr(info, text)
        info = zipfile.ZipInfo(SECRET)
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        bundle.writestr(info, grader_secret().decode() + "\n")
        for file in _files(root):
            bundle.write(file, file.relative_to(root).as_posix())
    return out
