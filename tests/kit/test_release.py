"""The student release: ``assignments/`` is exactly what ``python -m autograder release`` makes of ``solutions/``."""

from __future__ import annotations

import ast
import copy
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from autograder import release
from autograder.__main__ import main
from tests.plugin import ROOT

SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"
SOURCE_MODULES = sorted((SOLUTIONS / "diffusion").glob("*.py"))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path → bytes), without ``__pycache__``."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_committed_release_is_what_the_release_command_generates(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "release", "--dest", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"the release command failed:\n{result.stdout}{result.stderr}"
    generated, committed = snapshot(tmp_path), snapshot(ASSIGNMENTS)
    problems = [f"  differs  {p}" for p in sorted(generated.keys() & committed.keys()) if generated[p] != committed[p]]
    problems += [f"  missing  {p}" for p in sorted(generated.keys() - committed.keys())]
    problems += [f"  extra    {p}" for p in sorted(committed.keys() - generated.keys())]
    assert not problems, (
        "assignments/ is not what solutions/ generates:\n"
        + "\n".join(problems)
        + "\nRun `python -m autograder release` and commit assignments/."
    )


def test_release_holds_no_markers_and_compiles() -> None:
    for path, content in snapshot(ASSIGNMENTS).items():
        text = content.decode("utf-8")
        leaked = [marker for marker in release.markers() if marker in text]
        assert not leaked, f"assignments/{path} contains {leaked}: run `python -m autograder release`"
        if path.endswith(".py"):
            compile(text, path, "exec")


def test_check_lists_modified_missing_and_extra_files_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "assignments"
    assert main(["release", "--dest", str(dest)]) == 0
    assert main(["release", "--dest", str(dest), "--check"]) == 0
    (dest / "diffusion" / "forward.py").write_text("# edited by hand\n")
    (dest / "diffusion" / "ddim.py").unlink()
    (dest / "diffusion" / "old_part.py").write_text("")
    (dest / "diffusion" / "__pycache__").mkdir(exist_ok=True)
    (dest / "diffusion" / "__pycache__" / "cached.pyc").write_bytes(b"")
    before = snapshot(tmp_path)
    capsys.readouterr()

    assert main(["release", "--dest", str(dest), "--check"]) == 1

    out = capsys.readouterr().out
    assert snapshot(tmp_path) == before, "release --check must not write anything"
    for change, path in [("modified", "forward.py"), ("missing", "ddim.py"), ("extra", "old_part.py")]:
        assert f"{change:<9} diffusion/{path}" in out, out
    assert "__pycache__" not in out, out
    assert "python -m autograder release" in out, out


def test_release_repairs_the_destination_and_is_deterministic(tmp_path: Path) -> None:
    dest = tmp_path / "assignments"
    assert main(["release", "--dest", str(dest)]) == 0
    first = snapshot(dest)
    (dest / "diffusion" / "forward.py").write_text("# edited by hand\n")
    (dest / "diffusion" / "ddim.py").unlink()
    (dest / "diffusion" / "gone" / "old_part.py").parent.mkdir()
    (dest / "diffusion" / "gone" / "old_part.py").write_text("")
    (dest / "diffusion" / "__pycache__").mkdir(exist_ok=True)
    (dest / "diffusion" / "__pycache__" / "cached.pyc").write_bytes(b"")

    assert main(["release", "--dest", str(dest)]) == 0

    assert snapshot(dest) == first
    assert not (dest / "diffusion" / "gone").exists(), "a directory emptied by the release should be removed"
    assert (dest / "diffusion" / "__pycache__" / "cached.pyc").exists(), "__pycache__ is not the release's business"


def marker_lines(text: str) -> set[int]:
    return {n for n, line in enumerate(text.split("\n"), start=1) if any(m in line for m in release.markers())}


def spans(nodes: list[ast.stmt], last_line: int) -> list[tuple[ast.stmt, int, int]]:
    """Each statement with the lines it owns: from its first decorator to the line before the next statement."""
    firsts = [min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) for node in nodes]
    ends = [*firsts[1:], last_line + 1]
    return [(node, first, end - 1) for node, first, end in zip(nodes, firsts, ends, strict=True)]


def without_body(node: ast.AST) -> str:
    shell = copy.copy(node)
    shell.body = []
    return ast.dump(shell)


def assert_stub(source: ast.FunctionDef, generated: ast.FunctionDef, qualname: str, lines: list[str]) -> None:
    """``generated`` has ``source``'s signature and docstring, then ``# YOUR CODE HERE`` and the named raise."""
    assert without_body(generated) == without_body(source), f"{qualname}: the signature changed"
    body = generated.body
    if ast.get_docstring(source) is not None:
        assert ast.dump(body[0]) == ast.dump(source.body[0]), f"{qualname}: the docstring changed"
        body = body[1:]
    assert len(body) == 1 and isinstance(body[0], ast.Raise), (
        f"{qualname}: expected the docstring then one raise; a solution region should hold the whole body"
    )
    raised = body[0].exc
    message = f"{qualname} is not implemented yet"
    assert isinstance(raised, ast.Call) and ast.unparse(raised) == f"NotImplementedError({message!r})", (
        f"{qualname}: the stub raises {ast.unparse(raised)}"
    )
    raise_line = lines[body[0].lineno - 1]
    indent = raise_line[: len(raise_line) - len(raise_line.lstrip())]
    above = lines[body[0].lineno - 2]
    assert above == indent + "# YOUR CODE HERE", f"{qualname}: `# YOUR CODE HERE` must precede the raise, got {above!r}"


def assert_block_released(
    source: list[ast.stmt], generated: list[ast.stmt], last_line: int, marked: set[int], prefix: str, lines: list[str]
) -> None:
    """Statements without markers are unchanged; functions with markers are stubs; classes are compared member-wise."""
    assert len(generated) == len(source), f"{prefix or 'module'}: {len(source)} statements became {len(generated)}"
    for (node, first, last), new in zip(spans(source, last_line), generated, strict=True):
        if not marked & set(range(first, last + 1)):
            assert ast.dump(new) == ast.dump(node), f"line {first} ({ast.unparse(node)[:60]!r}...) changed"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert_stub(node, new, prefix + node.name, lines)
        elif isinstance(node, ast.ClassDef):
            assert without_body(new) == without_body(node), f"class {prefix}{node.name} changed"
            assert_block_released(node.body, new.body, last, marked, f"{prefix}{node.name}.", lines)
        else:
            pytest.fail(f"line {first}: a solution region outside any function")


@pytest.mark.parametrize("source", SOURCE_MODULES, ids=lambda path: path.name)
def test_stubs_replace_exactly_the_solution_regions(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    generated = release.release_file(SOLUTIONS, PurePosixPath("diffusion", source.name))
    marked = marker_lines(text)
    if not marked:
        assert generated == source.read_bytes(), f"{source.name} has no markers and must be copied unchanged"
        return
    generated_text = generated.decode("utf-8")
    assert_block_released(
        ast.parse(text).body,
        ast.parse(generated_text).body,
        len(text.split("\n")),
        marked,
        prefix=f"{source.stem}.",
        lines=generated_text.split("\n"),
    )


MALFORMED = {
    "begin without end": ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "bad.py:2: .*without a matching"),
    "end without begin": ("def f():\n    return 1\n    ### END SOLUTION\n", "bad.py:3: .*without a"),
    "nested": (
        "def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n",
        "bad.py:3: .*cannot nest",
    ),
    "outside a function": ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "bad.py:1: .*not inside a function"),
    "in a class body": (
        "class A:\n    ### BEGIN SOLUTION\n    x = 1\n    ### END SOLUTION\n",
        "bad.py:2: .*not inside a function",
    ),
    "across two functions": (
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n\ndef g():\n    return 2\n    ### END SOLUTION\n",
        "bad.py:5: .*runs past the end of its block",
    ),
    "hidden tests": (
        "def f():\n    ### BEGIN HIDDEN TESTS\n    return 1\n    ### END HIDDEN TESTS\n",
        "bad.py:2: hidden-test markers",
    ),
}


@pytest.mark.parametrize(("source", "error"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_markers_are_errors_naming_file_and_line(source: str, error: str) -> None:
    with pytest.raises(release.ReleaseError, match=error):
        release.clear_solutions(source, "bad", "bad.py")


def test_release_command_reports_malformed_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src" / "diffusion").mkdir(parents=True)
    (tmp_path / "src" / "diffusion" / "bad.py").write_text(MALFORMED["begin without end"][0])

    assert main(["release", "--source", str(tmp_path / "src"), "--dest", str(tmp_path / "dest")]) == 2

    assert "bad.py:2: BEGIN SOLUTION without a matching END SOLUTION" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists()


SYNTHETIC = '''\
class VAE:
    """A class whose methods hold solution regions."""

    scale = 2

    def encode(self, x):
        """Encode."""
        ### BEGIN SOLUTION
        return x * self.scale
        ### END SOLUTION

    async def decode(self, z):
        ### BEGIN SOLUTION
        return z
        ### END SOLUTION


def make_decoder(k):
    def decoder(z):
        if k:
            ### BEGIN SOLUTION
            return z + k
            ### END SOLUTION
        return z

    return decoder
'''


def test_stubs_name_methods_and_nested_functions_by_qualname(tmp_path: Path) -> None:
    (tmp_path / "src" / "diffusion").mkdir(parents=True)
    (tmp_path / "src" / "diffusion" / "vae.py").write_text(SYNTHETIC)

    generated = release.build_release(tmp_path / "src")[PurePosixPath("diffusion/vae.py")].decode()

    assert generated == SYNTHETIC.replace(
        "        ### BEGIN SOLUTION\n        return x * self.scale\n        ### END SOLUTION\n",
        '        # YOUR CODE HERE\n        raise NotImplementedError("vae.VAE.encode is not implemented yet")\n',
    ).replace(
        "        ### BEGIN SOLUTION\n        return z\n        ### END SOLUTION\n",
        '        # YOUR CODE HERE\n        raise NotImplementedError("vae.VAE.decode is not implemented yet")\n',
    ).replace(
        "            ### BEGIN SOLUTION\n            return z + k\n            ### END SOLUTION\n",
        "            # YOUR CODE HERE\n"
        '            raise NotImplementedError("vae.make_decoder.<locals>.decoder is not implemented yet")\n',
    )
    namespace: dict = {}
    exec(compile(generated, "vae.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^vae\.VAE\.encode is not implemented yet$"):
        namespace["VAE"]().encode(1)


RELEASED_NOTEBOOKS = sorted((ASSIGNMENTS / "notebooks").glob("*.ipynb"))


def test_every_solution_notebook_is_released() -> None:
    assert [p.name for p in RELEASED_NOTEBOOKS] == sorted(p.name for p in (SOLUTIONS / "notebooks").glob("*.ipynb"))
    assert RELEASED_NOTEBOOKS


@pytest.mark.parametrize("path", RELEASED_NOTEBOOKS, ids=lambda path: path.stem)
def test_released_notebook_is_cleared_by_nbgrader(path: Path) -> None:
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    graded = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")]
    assert graded, f"{path.name}: no graded cell"
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        assert "checksum" in meta or not meta, f"{path.name}: nbgrader did not process cell {cell.id}"
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: cell {cell.id} has outputs"
        if meta.get("solution"):
            stub = "# YOUR CODE HERE" if cell.cell_type == "code" else "YOUR ANSWER HERE"
            assert stub in cell.source, f"{path.name}: answer cell {cell.id} is not cleared"


def test_release_command_reports_a_notebook_nbgrader_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nbformat

    source = tmp_path / "src"
    shutil.copytree(SOLUTIONS / "diffusion", source / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n")  # no END SOLUTION
    cell.metadata["nbgrader"] = {
        "schema_version": 3,
        "grade": False,
        "solution": True,
        "locked": False,
        "grade_id": "broken",
    }
    (source / "notebooks").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), source / "notebooks" / "broken.ipynb")

    assert main(["release", "--source", str(source), "--dest", str(tmp_path / "dest")]) == 2

    assert "nbgrader generate_assignment notebooks --force` failed" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("command", [["release", "--check"], ["bundle", "--out", "{tmp}/student.zip"]], ids=" ".join)
def test_instructor_commands_run_without_the_python_environment_on_path(command: list[str], tmp_path: Path) -> None:
    """nbgrader runs ``alembic`` by name: the commands find it beside this Python, not on ``PATH``."""
    path = "/usr/bin:/bin"
    assert not any((Path(folder) / "alembic").exists() for folder in path.split(":")), "alembic is on the bare PATH"
    result = subprocess.run(
        [sys.executable, "-m", "autograder", *(part.format(tmp=tmp_path) for part in command)],
        cwd=ROOT,
        env={"PATH": path, "HOME": str(Path.home()), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"`{' '.join(command)}` failed with PATH={path}:\n{result.stdout}{result.stderr}"
    assert "FileNotFoundError" not in result.stderr
