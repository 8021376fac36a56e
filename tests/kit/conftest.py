"""The kit's own tests check the reference solution and the tooling around it.

They need ``--impl solutions`` (the README's test command passes it); under another
implementation they are skipped with that reason rather than failing on a student's stubs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from autograder.isolation.remote import RemoteSubmission
from autograder.isolation.submission import LocalSubmission, Submission
from tests.plugin import IMPL_KEY, ROOT

RUNNERS = ["sandboxed", "in-process"]
"""The two ways the grader runs a submission: tests parametrized by them must hold for both."""


def reference_with(root: Path, module: str, source: str) -> Path:
    """``root/diffusion``: the reference package with ``source`` appended to its ``module``.py; returns ``root``."""
    shutil.copytree(ROOT / "solutions" / "diffusion", root / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "diffusion" / f"{module}.py"
    path.write_text(path.read_text() + source)
    return root


@contextlib.contextmanager
def submission(runner: str, root: Path) -> Iterator[Submission]:
    """The submission in ``root`` run ``runner``'s way (one of :data:`RUNNERS`), closed afterwards."""
    if runner == "in-process":
        yield LocalSubmission(root)
        return
    with RemoteSubmission(root) as remote:
        yield remote


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash[IMPL_KEY] == (ROOT / "solutions").resolve():
        return
    skip = pytest.mark.skip(reason="the kit's own tests check the reference: run them with --impl solutions")
    for item in items:
        if "tests/kit/" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: as fast on the kit's small tensors, and immune to OpenMP stalls on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
