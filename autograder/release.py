"""Build the student release: ``assignments/`` generated from ``solutions/``.

Every ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region of a ``.py`` file in the released
packages becomes, at the region's indentation::

    # YOUR CODE HERE
    raise NotImplementedError("<module>.<qualname> is not implemented yet")

The regions are cleared by nbgrader itself (``nbgrader.preprocessors.ClearSolutions``, the same
preprocessor ``nbgrader generate_assignment`` runs on the notebooks): the file's text becomes one
code cell, nbgrader writes a placeholder stub in each region, and the placeholder is then named
after its enclosing function, found with :mod:`ast`. Everything outside the markers is kept as it
is, and files without markers are copied byte for byte.

The notebooks of ``solutions/notebooks/`` are released by ``nbgrader generate_assignment`` itself
(:func:`autograder.notebooks.release_notebooks`): solutions, hidden tests and outputs cleared, and
nbgrader's cell metadata and checksums written, to ``assignments/notebooks/``.

``python -m autograder release`` writes the release; ``--check`` only compares and lists what is
out of date (for CI).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from autograder.notebooks import ASSIGNMENT, NotebookError, release_notebooks
from autograder.reference import ASSIGNMENTS, SOLUTIONS

if TYPE_CHECKING:
    from nbgrader.preprocessors import ClearSolutions

SOURCE = SOLUTIONS
DEST = ASSIGNMENTS
PACKAGES: tuple[str, ...] = ("diffusion",)
"""The packages under the source that are released (their generated copies go to the same place under dest)."""
RELEASED_DIRS: tuple[str, ...] = (*PACKAGES, ASSIGNMENT)
"""Every directory of the release: the packages and the notebooks."""

IGNORED_DIRS = frozenset({"__pycache__", "figures", ".ipynb_checkpoints"})
"""Directories that are never released nor compared: caches, and what running a notebook writes."""
STUB_COMMENT = "# YOUR CODE HERE"
PLACEHOLDER = "__release_stub_placeholder__"
"""What nbgrader's stub raises until :func:`clear_solutions` names the enclosing function."""
PLACEHOLDER_STUB = f"{STUB_COMMENT}\nraise NotImplementedError({PLACEHOLDER!r})"
RELEASE_COMMAND = "python -m autograder release"


class ReleaseError(Exception):
    """A source file cannot be released: its markers are malformed or the result is not valid Python."""


@cache
def _clear_solutions_preprocessor() -> ClearSolutions:
    """nbgrader's solution clearer, writing the placeholder stub (imported here: nbgrader takes seconds to load)."""
    from nbgrader.preprocessors import ClearSolutions

    # enforce_metadata=False: the cell is a bare code cell, not an nbgrader "solution" cell.
    return ClearSolutions(code_stub={"python": PLACEHOLDER_STUB}, enforce_metadata=False)


@cache
def _hidden_test_delimiters() -> tuple[str, str]:
    """nbgrader's markers of hidden tests, which have no place in the package."""
    from nbgrader.preprocessors import ClearHiddenTests

    clear = ClearHiddenTests()
    return clear.begin_test_delimeter, clear.end_test_delimeter


@dataclass(frozen=True)
class Region:
    """One solution region: the 1-based lines of its BEGIN and END markers."""

    begin: int
    end: int


def _indent(line: str) -> str:
    return re.match(r"\s*", line).group(0)


def find_regions(text: str, filename: str) -> list[Region]:
    """The solution regions of ``text``, with nbgrader's rule that a line holding a delimiter is a marker.

    Raises:
        ReleaseError: naming ``filename`` and the line, for a nested BEGIN, an END without BEGIN,
            a BEGIN without END, a hidden-test marker, or code in a region indented less than its
            BEGIN marker (a region that runs past the end of its block).
    """
    clear = _clear_solutions_preprocessor()
    begin_marker, end_marker = clear.begin_solution_delimeter, clear.end_solution_delimeter
    lines = text.split("\n")
    regions: list[Region] = []
    begin: int | None = None
    for number, line in enumerate(lines, start=1):
        where = f"{filename}:{number}"
        if any(marker in line for marker in _hidden_test_delimiters()):
            raise ReleaseError(
                f"{where}: hidden-test markers do not belong in the package; "
                f"put hidden checks in autograder/checks/ instead"
            )
        if begin_marker in line:
            if begin is not None:
                raise ReleaseError(
                    f"{where}: {begin_marker} inside the region opened at line {begin}; "
                    f"close that region with ### {end_marker} first (regions cannot nest)"
                )
            begin = number
        elif end_marker in line:
            if begin is None:
                raise ReleaseError(f"{where}: {end_marker} without a {begin_marker} before it; add or remove a marker")
            regions.append(Region(begin, number))
            begin = None
        elif begin is not None and line.strip() and len(_indent(line)) < len(_indent(lines[begin - 1])):
            raise ReleaseError(
                f"{where}: this line is indented less than the {begin_marker} at line {begin}, so the region "
                f"runs past the end of its block; put ### {end_marker} before the block ends"
            )
    if begin is not None:
        raise ReleaseError(f"{filename}:{begin}: {begin_marker} without a matching {end_marker}; add ### {end_marker}")
    return regions


def _clear_with_nbgrader(text: str) -> str:
    """``text`` with every solution region replaced by nbgrader's (placeholder) stub."""
    import nbformat

    cell = nbformat.v4.new_code_cell(text)
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}  # picks the "python" stub
    notebook = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": kernelspec})
    cleared, _ = _clear_solutions_preprocessor().preprocess(notebook, {})
    return cleared.cells[0].source


def _stub_owners(tree: ast.Module) -> dict[int, str | None]:
    """Line of each placeholder ``raise`` → qualname of the function whose body holds it (``None``: no function)."""
    owners: dict[int, str | None] = {}

    def visit(node: ast.AST, prefix: tuple[str, ...], owner: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, (*prefix, child.name, "<locals>"), ".".join((*prefix, child.name)))
            elif isinstance(child, ast.ClassDef):
                visit(child, (*prefix, child.name), None)
            else:
                if _is_placeholder(child):
                    owners[child.lineno] = owner
                visit(child, prefix, owner)

    visit(tree, (), None)
    return owners


def _is_placeholder(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and isinstance(node.exc.func, ast.Name)
        and node.exc.func.id == "NotImplementedError"
        and len(node.exc.args) == 1
        and isinstance(node.exc.args[0], ast.Constant)
        and node.exc.args[0].value == PLACEHOLDER
    )


def _compile(text: str, filename: str, generated: bool) -> ast.Module:
    """Compile ``text`` (which catches more than parsing, e.g. ``return`` outside a function) and return its AST.

    Raises:
        ReleaseError: if ``text`` (the source ``filename``, or the stub made from it) is not valid Python.
    """
    try:
        compile(text, filename, "exec")
    except SyntaxError as error:
        if generated:
            message = (
                f"{filename}: the stub generated from it is not valid Python ({error.msg} at its line {error.lineno}); "
                f"a solution region must hold whole statements: check the markers"
            )
        else:
            message = f"{filename}:{error.lineno}: not valid Python: {error.msg}"
        raise ReleaseError(message) from error
    return ast.parse(text, filename=filename)


def clear_solutions(text: str, module: str, filename: str) -> str:
    """The student's version of one source file: each solution region replaced by a named stub.

    Args:
        text: the source file's text.
        module: the name the stubs report, e.g. ``"schedules"`` for ``diffusion/schedules.py``.
        filename: the source's path, for error messages.

    Raises:
        ReleaseError: malformed markers (see :func:`find_regions`), a region that is not inside a
            function body, or a source or result that is not valid Python.
    """
    if PLACEHOLDER in text:
        raise ReleaseError(f"{filename}: contains {PLACEHOLDER!r}, which the release reserves; rename it")
    _compile(text, filename, generated=False)
    regions = find_regions(text, filename)
    lines = _clear_with_nbgrader(text).split("\n")
    owners = _stub_owners(_compile("\n".join(lines), filename, generated=True))
    stub_size = len(PLACEHOLDER_STUB.split("\n"))  # the raise is the stub's last line
    removed = 0  # lines the regions before the current one removed, net of their stubs
    for region in regions:
        raise_line = region.begin + stub_size - 1 - removed
        removed += region.end - region.begin + 1 - stub_size
        qualname = owners.get(raise_line)
        if qualname is None:
            raise ReleaseError(
                f"{filename}:{region.begin}: this solution region is not inside a function body (it is at module "
                f"or class level, or in a string); put the markers around statements of the function to stub"
            )
        indent = _indent(lines[raise_line - 1])
        lines[raise_line - 1] = f'{indent}raise NotImplementedError("{module}.{qualname} is not implemented yet")'
    result = "\n".join(lines)
    _compile(result, filename, generated=True)
    return result


def markers() -> tuple[str, ...]:
    """nbgrader's solution and hidden-test delimiters: a line holding one is a marker; no released file holds one."""
    clear = _clear_solutions_preprocessor()
    return (clear.begin_solution_delimeter, clear.end_solution_delimeter, *_hidden_test_delimiters())


def module_name(path: PurePosixPath) -> str:
    """The module name stubs report: the file's stem, or its package's name for ``__init__.py``."""
    return path.parent.name if path.stem == "__init__" else path.stem


def _files(root: Path) -> Iterator[PurePosixPath]:
    """Every file under ``root`` (relative, sorted), skipping ``__pycache__``."""
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_file() and not IGNORED_DIRS.intersection(relative.parts):
            yield relative


def release_file(source: Path, relative: PurePosixPath) -> bytes:
    """The released content of ``source / relative``: stubbed if it is Python with markers, else unchanged."""
    path = source / relative
    data = path.read_bytes()
    if relative.suffix != ".py":
        return data
    text = data.decode("utf-8")
    if not any(marker in text for marker in markers()):
        return data
    return clear_solutions(text, module_name(relative), str(path)).encode("utf-8")


def build_release(source: Path) -> dict[PurePosixPath, bytes]:
    """Every released file (path relative to the release root → content), generated from ``source``.

    The notebooks are released only when ``source`` has a ``notebooks/`` directory.

    Raises:
        ReleaseError: if a released package is missing under ``source``, a file cannot be released, or
            nbgrader refuses a notebook.
    """
    release: dict[PurePosixPath, bytes] = {}
    for package in PACKAGES:
        if not (source / package).is_dir():
            raise ReleaseError(f"no {package}/ package under {source}; pass --source DIR, the directory holding it")
        for relative in _files(source / package):
            path = PurePosixPath(package) / relative
            release[path] = release_file(source, path)
    try:
        release.update(release_notebooks(source))
    except NotebookError as error:
        raise ReleaseError(str(error)) from error
    return release


Change = Literal["modified", "missing", "extra"]


@dataclass(frozen=True)
class Difference:
    """A file of the destination that does not match the release."""

    change: Change
    path: PurePosixPath


def compare(release: dict[PurePosixPath, bytes], dest: Path) -> list[Difference]:
    """How the released packages under ``dest`` differ from ``release`` (sorted by path)."""
    present = {PurePosixPath(folder) / path for folder in RELEASED_DIRS for path in _files(dest / folder)}
    differences = [Difference("extra", path) for path in present - release.keys()]
    for path, content in release.items():
        if path not in present:
            differences.append(Difference("missing", path))
        elif (dest / path).read_bytes() != content:
            differences.append(Difference("modified", path))
    return sorted(differences, key=lambda difference: difference.path)


def write_release(release: dict[PurePosixPath, bytes], dest: Path) -> list[Difference]:
    """Make the released packages under ``dest`` equal ``release``; return what was out of date.

    Only differing files are written; files whose source disappeared are removed, and so are the
    directories this leaves empty. Other content of ``dest`` is left alone.
    """
    differences = compare(release, dest)
    for difference in differences:
        path = dest / difference.path
        if difference.change == "extra":
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(release[difference.path])
    for folder in RELEASED_DIRS:
        directories = sorted((p for p in (dest / folder).rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for directory in directories:
            if not any(directory.iterdir()):
                directory.rmdir()
    return differences
