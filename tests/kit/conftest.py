"""The kit's own tests check the reference solution and the tooling around it.

They need ``--impl solutions`` (the README's test command passes it); under another
implementation they are skipped with that reason rather than failing on a student's stubs.
"""

from __future__ import annotations

import pytest
import torch

from tests.plugin import IMPL_KEY, ROOT


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
