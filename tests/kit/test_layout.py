"""The grader's layout keeps its rules: the sandbox package imports nothing of the grader, each command
has one module named after it, and the hidden checks' part modules do not import each other."""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import cli
from autograder.parts import PARTS
from autograder.reference import ROOT

GRADER = ROOT / "autograder"
SANDBOX = GRADER / "sandbox"
ALLOWED_IN_SANDBOX = {"torch", "safetensors", "autograder.sandbox"}
CHECKS = GRADER / "checks"
CHECK_PARTS = {f"autograder.checks.{part.name}" for part in PARTS}
"""The part modules of the hidden checks, one per part; the others (framework, strategies, denoisers,
numerics, trajectory, seeds) are shared by them."""


def imported_modules(path: Path, *, with_names: bool = False) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved against its package); with
    ``with_names`` also ``module.name`` for each name of ``from module import name`` (which may be a module)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, (base, node.module or "")))
            names.add(module)
            if with_names:
                names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", sorted(SANDBOX.glob("*.py")), ids=lambda p: p.name)
def test_the_sandbox_package_imports_only_itself_torch_safetensors_and_the_standard_library(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        allowed = top in sys.stdlib_module_names or any(
            name == prefix or name.startswith(f"{prefix}.") for prefix in ALLOWED_IN_SANDBOX
        )
        assert allowed, f"{path.relative_to(ROOT)} imports {name}: the sandbox may not import the grader"


def test_the_sandbox_package_runs_staged_alone(tmp_path: Path) -> None:
    """Staged as the worker sees it (this package and an empty ``autograder``), its modules import."""
    shutil.copytree(SANDBOX, tmp_path / "autograder" / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "autograder" / "__init__.py").write_text("")
    modules = [f"autograder.sandbox.{p.stem}" for p in SANDBOX.glob("*.py") if p.stem != "__init__"]
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import " + ", ".join(modules)
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("path", sorted(CHECKS.glob("*.py")), ids=lambda p: p.name)
def test_no_module_of_the_checks_imports_a_part_module_but_its_own(path: Path) -> None:
    """A part's checks share code only through the shared modules, so each part's module stands alone."""
    if path.stem == "__init__":  # the package imports every part, to register its checks
        return
    own = f"autograder.checks.{path.stem}"
    others = sorted((imported_modules(path, with_names=True) & CHECK_PARTS) - {own})
    assert not others, (
        f"{path.relative_to(ROOT)} imports {', '.join(others)}: move what they share to a shared module "
        "of the checks (framework, strategies, denoisers, numerics, trajectory)"
    )


def test_each_command_has_one_module_named_after_it() -> None:
    for module in cli.COMMANDS:
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        module.add_parser(subparsers)
        assert list(subparsers.choices) == [module.__name__.rpartition(".")[2]]
    on_disk = {p.stem for p in (GRADER / "cli").glob("*.py")} - {"__init__", "options"}
    assert on_disk == {m.__name__.rpartition(".")[2] for m in cli.COMMANDS}


def test_no_module_outside_the_cli_parses_arguments() -> None:
    for path in sorted(GRADER.rglob("*.py")):
        if path.is_relative_to(GRADER / "cli") or path.name == "__main__.py":
            continue
        assert "argparse" not in imported_modules(path), f"{path.relative_to(ROOT)} parses arguments: move it to cli/"
