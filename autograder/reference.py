"""Make ``import diffusion`` load the reference solution, for the grader's own computations.

The trusted grader computes every expected value and builds every input (schedules, denoisers,
the Gaussian-mixture oracle) with the reference package in ``solutions/``, never with the
student's. Student modules loaded by :mod:`autograder.isolation.submission` import ``diffusion.*`` too and
so see the reference for every part but their own: this is what isolates the parts.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
"""The kit's repository."""
SOLUTIONS = ROOT / "solutions"
"""The reference package's parent: the source of truth."""
ASSIGNMENTS = ROOT / "assignments"
"""The student release, generated from :data:`SOLUTIONS`."""


def load_reference(root: Path = SOLUTIONS) -> ModuleType:
    """Import the reference ``diffusion`` package from ``root``, with every part's module, and return it.

    Raises:
        RuntimeError: if another ``diffusion`` package was imported first (e.g. the student's
            installed copy), since the grader would then compute expectations with it.
    """
    root = root.resolve()
    package = root / "diffusion"
    loaded = sys.modules.get("diffusion")
    if loaded is not None:
        if Path(loaded.__file__).resolve().parent != package:
            raise RuntimeError(
                f"the grader needs the reference package {package}, but 'diffusion' is already imported "
                f"from {Path(loaded.__file__).parent}; run the grader in a fresh process"
            )
        return _with_parts(loaded)
    if not (package / "__init__.py").is_file():
        raise RuntimeError(f"reference package not found at {package}: the grader needs the kit's solutions/")
    sys.path.insert(0, str(root))
    return _with_parts(importlib.import_module("diffusion"))


def _with_parts(package: ModuleType) -> ModuleType:
    for part in package.PARTS:
        importlib.import_module(f"diffusion.{part}")
    return package


def reference_module(name: str) -> ModuleType:
    """The reference's module ``diffusion.<name>`` (a part or a provided module such as ``data``)."""
    load_reference()
    return importlib.import_module(f"diffusion.{name}")
