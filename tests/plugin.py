"""Pytest plugin shared by the public tests and the kit's own tests (loaded by the root conftest).

``--impl DIR`` chooses which ``diffusion`` package the tests import: ``assignments`` (the default,
what students edit), ``solutions`` (the reference) or any directory that holds ``diffusion/``.
The public tests run in the handout's order of the parts; a test that hits a stub is "not implemented"
(``N``), not a failure with a traceback: the stubs the tests reached are listed once, per part, above the
table. At the very end of a run a table shows, per part, how many checks passed, failed, or hit a stub
that is not implemented yet (the run still exits 1). ``--summary-json PATH`` writes the same counts as JSON.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import Phase, settings

settings.register_profile(
    "course",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    phases=tuple(phase for phase in Phase if phase is not Phase.explain),
)
settings.load_profile("course")
"""Same code, same verdict; no example database, no timing flakiness, no slow "explain" pass."""

ROOT = Path(__file__).resolve().parent.parent
NOT_IMPLEMENTED = "not implemented"
OUTCOMES = ("passed", "failed", NOT_IMPLEMENTED, "skipped")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("diffusion")
    group.addoption(
        "--impl",
        default="assignments",
        help="directory holding the diffusion/ package to test: assignments (default), solutions, or a path",
    )
    group.addoption("--summary-json", default=None, help="write the per-part counts to this JSON file")


def resolve_impl(value: str) -> Path:
    """The directory that holds ``diffusion/`` for ``--impl value`` (a name under the kit's root, or a path)."""
    candidates = [Path(value), ROOT / value]
    for candidate in candidates:
        if (candidate / "diffusion" / "__init__.py").is_file():
            return candidate.resolve()
        if candidate.name == "diffusion" and (candidate / "__init__.py").is_file():
            return candidate.parent.resolve()
    raise pytest.UsageError(
        f"--impl {value!r}: no diffusion/__init__.py there. Pass the directory that contains your "
        f"diffusion/ package, e.g. --impl assignments or --impl solutions."
    )


IMPL_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    impl = resolve_impl(config.getoption("--impl"))
    for name in [m for m in sys.modules if m == "diffusion" or m.startswith("diffusion.")]:
        del sys.modules[name]
    sys.path.insert(0, str(impl))
    config.stash[IMPL_KEY] = impl
    config.pluginmanager.register(PartSummary(config.getoption("--summary-json")), "diffusion-part-summary")


def pytest_report_header(config: pytest.Config) -> str:
    return f"diffusion package under test: {config.stash[IMPL_KEY] / 'diffusion'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the public tests part by part in the handout's order (schedules first), the kit's tests after."""
    from diffusion import PARTS

    order = {part: index for index, part in enumerate(PARTS)}
    items.sort(key=lambda item: order.get(part_of(item.nodeid), len(order)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Hypothesis would turn a failing example into a patch file and a "git apply" line: not for students.
    item.__dict__.pop("_hypothesis_failing_examples", None)
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        report.user_properties += [("outcome", NOT_IMPLEMENTED), ("stub", str(_leaf(call.excinfo.value)))]
        report.longrepr = f"not implemented yet: {_leaf(call.excinfo.value)}"
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """A test that hit a stub is "not implemented" (``N``), not a failure: it is left out of the failures and
    their short list (the per-part table names the stubs once), and the run still exits 1."""
    if report.failed and dict(report.user_properties).get("outcome") == NOT_IMPLEMENTED:
        return NOT_IMPLEMENTED, "N", "NOT IMPLEMENTED"
    return None


def _leaf(error: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups: what the stub raised."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def part_of(nodeid: str) -> str:
    """``tests/public/test_ddim.py::...`` belongs to part ``ddim``; the kit's own tests to ``kit``."""
    path = Path(nodeid.split("::")[0])
    if path.parent.name == "public" and path.stem.startswith("test_"):
        return path.stem.removeprefix("test_")
    return "kit"


class PartSummary:
    """Counts each test once (its call, or its setup when that failed or skipped) under its part."""

    def __init__(self, json_path: str | None) -> None:
        self.json_path = json_path
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.stubs: dict[str, Counter] = defaultdict(Counter)
        """Part → the message of each stub its tests hit → how many tests hit it."""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            properties = dict(report.user_properties)
            self.counts[part_of(report.nodeid)][properties.get("outcome", report.outcome)] += 1
            if "stub" in properties:
                self.stubs[part_of(report.nodeid)][properties["stub"]] += 1

    def ordered_parts(self) -> list[str]:
        from diffusion import PARTS

        known = [p for p in PARTS if p in self.counts]
        return known + sorted(p for p in self.counts if p not in known)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter):
        """After everything else of the summary (the failures and their short list): the table."""
        result = yield
        if self.counts:
            self.write_table(terminalreporter)
        return result

    def write_table(self, terminalreporter) -> None:
        parts = self.ordered_parts()
        tr = terminalreporter
        if self.stubs:
            tr.section("not implemented yet (tests that reached each stub)")
            for part in (p for p in parts if p in self.stubs):
                names = (m.removesuffix(" is not implemented yet").removeprefix(f"{part}.") for m in self.stubs[part])
                counted = ", ".join(f"{name} ({n})" for name, n in zip(names, self.stubs[part].values(), strict=True))
                tr.write_line(f"{part}: {counted}")
        tr.section("checks per part")
        tr.write_line(f"{'part':<12}" + "".join(f"{o:>17}" for o in OUTCOMES) + f"{'total':>8}")
        for part in parts:
            c = self.counts[part]
            tr.write_line(f"{part:<12}" + "".join(f"{c[o]:>17}" for o in OUTCOMES) + f"{sum(c.values()):>8}")
        if self.json_path:
            Path(self.json_path).write_text(json.dumps({p: dict(self.counts[p]) for p in parts}, indent=2))
