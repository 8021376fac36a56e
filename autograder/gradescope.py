"""Build a Gradescope autograder bundle: ``python -m autograder gradescope --out autograder.zip``.

The zip holds, at its root (as Gradescope's specification asks):

- ``setup.sh``, run once as root when Gradescope builds the image: installs Python 3.11 and Debian's
  bubblewrap, makes a virtual environment at ``/autograder/venv`` and installs PyTorch and this
  kit's grader there;
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

Students never see the bundle: Gradescope keeps ``/autograder/source`` to itself.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from autograder.reference import ROOT
from autograder.secret import grader_secret

TORCH = "torch==2.14.1 torchvision==0.29.1"
"""The pinned PyTorch of the README's commands."""
CONTENTS = ("autograder", "solutions/diffusion", "assignments/diffusion", "pyproject.toml", "README.md")
SKIPPED = ("__pycache__", ".pyc")
SECRET = "autograder-secret"
"""The grader's secret in the bundle, for ``run_autograder``."""

SETUP = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap python3.11 python3.11-venv
python3.11 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet {TORCH}
/autograder/venv/bin/pip install --quiet "/autograder/source[grader]"
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission into
# /autograder/results/results.json. AUTOGRADER_ROOT and AUTOGRADER_PYTHON point it elsewhere;
# arguments go on to `python -m autograder grade`.
set -euo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
python="${AUTOGRADER_PYTHON:-$root/venv/bin/python}"
if [ -z "${AUTOGRADER_SECRET:-}" ] && [ -f "$root/source/autograder-secret" ]; then
    AUTOGRADER_SECRET="$(cat "$root/source/autograder-secret")"
    export AUTOGRADER_SECRET
fi
cd "$root/source"
exec "$python" -m autograder grade "$root/submission" --out "$root/results" "$@"
"""


def _files(root: Path):
    for name in CONTENTS:
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in candidates:
            if file.is_file() and not any(part.endswith(SKIPPED) for part in file.relative_to(root).parts):
                yield file


def build(out: Path, root: Path = ROOT) -> Path:
    """Write the bundle to ``out`` and return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            bundle.writestr(info, text)
        info = zipfile.ZipInfo(SECRET)
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        bundle.writestr(info, grader_secret().decode() + "\n")
        for file in _files(root):
            bundle.write(file, file.relative_to(root).as_posix())
    return out
