"""The grader-held secret that keys what the hidden checks draw per submission.

Some of what a check hands the student's code must not be predictable from the public code nor from an
earlier grading (the hidden mixture's rotation, :func:`autograder.checks.denoisers.hidden_mixture`), yet the
same submission must get the same draw, and so the same score, every time it is graded. So it is derived
(:func:`derive`) from the submission's fingerprint
(:func:`~autograder.isolation.intake.package_fingerprint`) with HMAC-SHA256 keyed by a secret the students
never see:

- ``AUTOGRADER_SECRET`` when it is set (a grading server, CI);
- else the file :func:`secret_file`, ``$XDG_CACHE_HOME/diffusion-autograder/secret`` (by default
  ``~/.cache/diffusion-autograder/secret``): 32 random bytes, hex, created on first use with mode 0600 in a
  0700 directory, then kept. A machine that grades keeps its secret; delete the file to draw anew.

The secret is never in the kit's repository nor in the student bundle; the sandboxed workers see neither
home directories nor the grader's environment (:mod:`autograder.isolation.launcher`). The Gradescope bundle
carries the secret of the machine that built it (:mod:`autograder.gradescope`), so Gradescope and a local
regrade draw alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

ENVIRONMENT = "AUTOGRADER_SECRET"


def secret_file() -> Path:
    """Where the secret is kept when ``AUTOGRADER_SECRET`` is not set."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "diffusion-autograder" / "secret"


def grader_secret() -> bytes:
    """The grader's secret: ``AUTOGRADER_SECRET``, else the content of :func:`secret_file` (created once)."""
    value = os.environ.get(ENVIRONMENT, "").strip()
    if value:
        return value.encode()
    path = secret_file()
    if not path.is_file():
        _create(path)
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise RuntimeError(
            f"the grader's secret file {path} is empty: delete it (a new one is made) or set {ENVIRONMENT}"
        )
    return value.encode()


def _create(path: Path) -> None:
    """Write a new secret to ``path`` atomically: graders started at once all end up with the first one written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".secret-{os.getpid()}-{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another grader was first: keep its secret
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def derive(purpose: str, fingerprint: str) -> bytes:
    """32 bytes for ``purpose`` and the submission ``fingerprint``: HMAC-SHA256 under :func:`grader_secret`.

    The same submission gets the same bytes; without the secret, nothing learned from one submission's
    bytes (or from the code) predicts another's."""
    message = purpose.encode() + b"\0" + fingerprint.encode()
    return hmac.new(grader_secret(), message, hashlib.sha256).digest()
