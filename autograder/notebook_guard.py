"""nbgrader's execution step for autograding, guarded so that a student's cells cannot neutralise a test cell.

nbgrader runs the student's cells and the autograded test cells in one kernel, and scores a test cell
by its outputs alone: full points unless they show an error. Any earlier cell could therefore make the
tests pass without running them: an IPython input transformer that rewrites every later cell (and may
print the hidden tests into the feedback), a ``post_run_cell`` callback that forgets the error with the
traceback display silenced, a patched ``torch.testing.assert_close`` or ``builtins.abs``, an import
hook that hands out a fake ``torch``, or a ``skip-execution`` tag on the test cells.
:class:`GuardedExecute` takes the place of nbgrader's ``Execute`` in ``nbgrader autograde``
(``nbgrader_config.py``). It runs every other cell exactly as ``Execute`` does, and:

1. before the notebook's first cell, installs :mod:`autograder.kernel_guard` in the fresh kernel,
   which takes a snapshot of the shell, the kernel and the guarded modules;
2. before each autograded test cell, has the guard put back whatever differs from that snapshot,
   rebind the test's module names and unshadow the builtins it uses. The guard answers with a nonce
   the grader has just drawn; without it the test cell is not run (its hidden tests never reach a
   surviving transformer) and scores 0;
3. runs the test cell as written, then a line that prints a second nonce: a failing test stops before
   that line, so a cell that shows no error and no nonce had its failure hidden, and scores 0;
4. after it, asks the guard (third nonce) what changed while the test ran (a student's function that
   patched ``assert_close`` when the test called it): if anything did, the cell scores 0.

The guard's calls are ipykernel *user expressions* of an empty request: ``eval`` runs them, not
IPython's cell machinery (transformers, prefilter, events, display hook), and nothing of them reaches
the notebook, its history or its execution count. What the guard put back is noted in the test cell's
output, and so in the feedback; why a cell scores 0 is its ``GradingIntegrityError``. Honest
notebooks change nothing the guard restores, and score as under ``Execute``. What this cannot
guarantee is in :mod:`autograder.notebooks`.
"""

from __future__ import annotations

import ast
import builtins
import copy
import json
import secrets
from pathlib import Path
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution
from traitlets import Dict, Integer, List, Unicode

KERNEL_GUARD = Path(__file__).with_name("kernel_guard.py")
"""The guard's kernel half, whose source is sent to the kernel."""
INTEGRITY_ERROR = "GradingIntegrityError"
"""The ``ename`` of the error a test cell gets when the guard cannot vouch for it (so it scores 0)."""
BUILTIN_NAMES = frozenset(dir(builtins))
SKIP_TAG = "skip-execution"

SETUP = """\
def __kit_guard_setup():
    import builtins
    namespace = {{"__builtins__": dict(vars(builtins)), "__name__": "kit_guard"}}
    exec(compile({source!r}, "<kit guard>", "exec"), namespace)
    namespace["install"]({name!r}, {modules!r})
    return {name!r}
"""
INSTALL = "globals().pop('__kit_guard_setup')()"
"""Install the guard as a user expression, where the later checks run too (after the cell, outside
IPython's builtin and display traps), so that the snapshot and the checks see the same kernel."""
FIND = "[c{call} for c in ().__class__.__base__.__subclasses__() if c.__name__ == {name!r}][0]"
"""An expression that reaches the guard's class without looking up any name a student can rebind."""
CALL = (
    ".{method}(c.gettrace(), c.getprofile(), c.settrace(None), c.setprofile(None), {nonce!r}, {builtins!r}, "
    "{modules!r})"
)
"""A call of the guard that reads and switches off the trace and profile functions before any of its
own Python frames starts."""


def is_test_cell(cell: NotebookNode) -> bool:
    """Whether ``cell`` is an autograded test cell (a graded code cell that is not an answer)."""
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def python_source(source: str) -> str:
    """The cell's source as IPython runs it (magics and other IPython syntax turned into Python)."""
    return TransformerManager().transform_cell(source)


def names_used(python: str) -> set[str]:
    """The global names a cell reads without assigning them anywhere in the cell (empty if it does not parse)."""
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return set()
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound


def with_epilogue(python: str, nonce: str) -> str:
    """``python`` followed by printing the line ``nonce`` (in one write), which only a run that reached
    the end prints.

    When the cell ends with an expression, the nonce is printed after the expression is evaluated and
    the expression's value is still the cell's result (nbgrader reads partial credit from it).
    """
    line = f"print({nonce + chr(10)!r}, end='')"
    try:
        body = ast.parse(python).body
    except SyntaxError:
        return f"{python.rstrip()}\n{line}\n"  # the cell fails to compile before anything runs
    last = body[-1] if body else None
    awaits = last is not None and any(isinstance(n, ast.Await | ast.Yield | ast.YieldFrom) for n in ast.walk(last))
    if not isinstance(last, ast.Expr) or awaits:
        return f"{python.rstrip()}\n{line}\n"
    data = python.encode()  # the AST's column offsets count UTF-8 bytes
    starts = [0]
    for text in data.split(b"\n"):
        starts.append(starts[-1] + len(text) + 1)
    begin = starts[last.lineno - 1] + last.col_offset
    end = starts[last.end_lineno - 1] + last.end_col_offset
    wrapped = b"(lambda __kit_value: (%s, __kit_value)[1])(\n%s\n)" % (line.encode(), data[begin:end])
    return (data[:begin] + wrapped + data[end:]).decode()


def new_token() -> str:
    """A nonce no code in the kernel can know before the grader sends it."""
    return f"kit-{secrets.token_hex(16)}"


def error_of(cell: NotebookNode) -> str | None:
    """``ename: evalue`` of the cell's first error, or ``None``."""
    for output in cell.outputs:
        if output.output_type == "error":
            return f"{output.get('ename', '')}: {output.get('evalue', '')}"
    return None


def report(value: str | None, nonce: str) -> list[str] | None:
    """What a guard call found, from the text of the value it returned; ``None`` unless it is the nonce
    followed by a JSON list of strings."""
    try:
        text = ast.literal_eval(value or "")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(text, str) or not text.startswith(nonce):
        return None
    try:
        found = json.loads(text[len(nonce) :])
    except ValueError:
        return None
    return found if isinstance(found, list) and all(isinstance(item, str) for item in found) else None


def strip_line(cell: NotebookNode, text: str) -> bool:
    """Remove the line ``text`` from the cell's stdout, and the lines that show it from its tracebacks
    (when they show source lines); whether it was on stdout."""
    for output in cell.outputs:
        if output.output_type == "error":
            output.traceback = [
                "\n".join(line for line in entry.split("\n") if text not in line) for entry in output.traceback
            ]
    for output in cell.outputs:
        if output.output_type == "stream" and output.get("name") == "stdout" and f"{text}\n" in output.text:
            output.text = output.text.replace(f"{text}\n", "", 1)
            if not output.text:
                cell.outputs.remove(output)
            return True
    return False


def integrity_error(message: str) -> NotebookNode:
    """An error output that makes nbgrader score the cell 0 and tells the student why."""
    return new_output("error", ename=INTEGRITY_ERROR, evalue=message, traceback=[f"{INTEGRITY_ERROR}: {message}"])


class GuardedExecute(Execute):
    """nbgrader's ``Execute``, with every autograded test cell run between two checks of the kernel
    (see the module docstring). Use it in place of ``Execute`` in ``Autograde.autograde_preprocessors``."""

    guarded_modules = List(
        Unicode(),
        default_value=[
            # What the tests check with.
            "builtins",
            "sys",
            "math",
            "operator",
            "torch",
            "torch.testing",
            "torch.testing._comparison",
            "numpy",
            "numpy.testing",
            "numpy.testing._private.utils",
            # What runs a cell and reports its error.
            "codeop",
            "tokenize",
            "IPython.core.compilerop",
            "IPython.core.displayhook",
            "IPython.core.events",
            "IPython.core.inputtransformer2",
            "IPython.core.interactiveshell",
            "IPython.core.prefilter",
            "IPython.core.ultratb",
            "ipykernel.displayhook",
            "ipykernel.iostream",
            "ipykernel.ipkernel",
            "ipykernel.kernelbase",
            "ipykernel.zmqshell",
            "jupyter_client.session",
        ],
        help="Modules whose functions and classes the guard restores before each test cell (if installed).",
    ).tag(config=True)
    module_names = Dict(
        value_trait=Unicode(),
        default_value={"torch": "torch", "np": "numpy", "numpy": "numpy", "math": "math"},
        help="Names a test cell may use for a guarded module: bound to that module before the test runs.",
    ).tag(config=True)
    guard_timeout = Integer(120, help="Seconds the guard's own calls in the kernel may take.").tag(config=True)

    _guard: str | None = None

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        """Execute the notebook (a fresh kernel, so a fresh guard)."""
        self._guard = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        """Install the guard before the first cell; run a test cell between the guard's checks, any
        other cell as nbgrader does."""
        if self._guard is None:
            self._guard = self._install()
        if not is_test_cell(cell):
            return super().preprocess_cell(cell, resources, index)
        self._check_assign_resources(resources)
        self.nb.cells[index] = self._run_test(cell, index)
        return self.nb.cells[index], self.resources

    def _silent(self, code: str, expression: str) -> tuple[str | None, str]:
        """Run ``code`` silently, then evaluate ``expression`` as an ipykernel user expression: the text of
        its value, or ``None`` and why not.

        A user expression is evaluated by ``eval`` after the code, past IPython's input and AST
        transformers, its prefilter, its display hook and ``sys.stdout``; an empty ``code`` runs nothing.
        Nothing of this reaches the notebook, its history or its execution count.
        """
        assert self.kc is not None
        timeout = self.timeout
        self.timeout = self.guard_timeout
        try:
            msg_id = self.kc.execute(
                code, silent=True, store_history=False, user_expressions={"kit": expression}, allow_stdin=False
            )
            reply = self.wait_for_reply(msg_id)
        finally:
            self.timeout = timeout
        if reply is None:
            return None, f"no reply within {self.guard_timeout} s"
        content = reply["content"]
        if content.get("status") != "ok":
            return None, f"{content.get('ename', 'error')}: {content.get('evalue', '')}"
        value = content.get("user_expressions", {}).get("kit", {})
        if value.get("status") != "ok":
            return None, f"{value.get('ename', 'error')}: {value.get('evalue', '')}"
        return value.get("data", {}).get("text/plain"), ""

    def _install(self) -> str:
        """Install the guard in the fresh kernel; the name of its class."""
        name = f"Kit{secrets.token_hex(8)}"
        source = SETUP.format(
            source=KERNEL_GUARD.read_text(encoding="utf-8"), name=name, modules=list(self.guarded_modules)
        )
        value, problem = self._silent(source, INSTALL)
        if value != repr(name):
            raise RuntimeError(f"the notebook guard could not be installed in the kernel: {problem or value}")
        return name

    def _call(self, method: str, names: set[str]) -> tuple[list[str] | None, str]:
        """Call the guard's ``before`` or ``after`` for a test cell that reads ``names``: what it found, or
        ``None`` and why not."""
        nonce = new_token()
        call = CALL.format(
            method=method,
            nonce=nonce,
            builtins=sorted(names & BUILTIN_NAMES),
            modules={name: module for name, module in self.module_names.items() if name in names},
        )
        value, problem = self._silent("", FIND.format(call=call, name=self._guard))
        found = report(value, nonce)
        return found, "" if found is not None else problem or "the grader's check did not run"

    def _run_test(self, cell: NotebookNode, index: int) -> NotebookNode:
        """Run the test cell ``cell`` between the guard's checks; the cell with its outputs and verdict."""
        end = new_token()
        python = with_epilogue(python_source(cell.source), end)
        names = names_used(python)
        restored, problem = self._call("before", names)
        if restored is None:
            cell.outputs = [integrity_error(f"the grader could not make this test run as written ({problem})")]
            cell.execution_count = None
            return cell
        run = copy.deepcopy(cell)
        run.source = python
        tags = cell.metadata.get("tags", [])
        if SKIP_TAG in tags:  # nbclient would skip the cell, and nbgrader score it as passed
            run.metadata["tags"] = [tag for tag in tags if tag != SKIP_TAG]
            restored.append(f"the cell's {SKIP_TAG} tag")
        run = self.execute_cell(run, index, store_history=True)
        run.source = cell.source
        if "tags" in cell.metadata:
            run.metadata["tags"] = tags
        reached = strip_line(run, end)
        changed, problem = self._call("after", names)
        if restored:  # on stdout: nbgrader scores a cell with any stderr output 0
            note = (
                f"The grader undid, before this test cell ran, what earlier cells had changed: {', '.join(restored)}\n"
            )
            run.outputs.insert(0, new_output("stream", name="stdout", text=note))
        if error_of(run) is None:
            if not reached:
                run.outputs.append(integrity_error("this test cell did not run to its end, yet it shows no error"))
            elif changed is None:
                run.outputs.append(
                    integrity_error(f"the grader could not check this test cell after it ran ({problem})")
                )
            elif changed:
                message = f"while this test cell ran, it or the code it called changed {', '.join(changed)}"
                run.outputs.append(integrity_error(message))
        return run
