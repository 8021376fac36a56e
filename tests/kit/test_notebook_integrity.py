"""Hostile notebooks score no more than the stubs: the kit's guarded nbgrader execution step.

Each hostile student hands in notebook 01 as released (the stubs' answer cells, or plausible wrong
answers) plus a cell, before the first autograded cell, that attacks the kernel the tests run in. They
are autograded in one nbgrader course, in one ``nbgrader autograde`` run with the released stubs as
their package, so the most any of them may score is the stubs' score: 0 on every autograded cell.
Under nbgrader's own ``Execute`` (before the guard), the attacks scored, out of 8 on notebook 01:

============== ===== ===================================================================================
student        score attack
============== ===== ===================================================================================
transformer    8     an input transformer replaces every later cell by a print of its source, so the
                     feedback shows the hidden tests (the red team's ``print('ok')`` transformer, leaking)
swallow        8     ``shell.showtraceback`` silenced, a ``post_run_cell`` callback forgets the error
class_patches  8     the same through the classes: ``InteractiveShell.showtraceback``,
                     ``ExecutionResult.success``
patched_checks 7     wrong answers, with ``torch.testing.assert_close``, ``numpy.testing``,
                     ``torch.allclose`` and ``builtins.abs`` patched
import_hook    5     wrong answers, with a ``builtins.__import__`` hook that hands out a ``torch`` whose
                     ``testing.assert_close`` checks nothing
patch_in_call  2     wrong answers; the one the last test checks (right only without noise) patches
                     ``builtins.abs`` whenever it is called, by that test too
skip_tag       8     every autograded cell tagged ``skip-execution`` (nbclient skips it, nbgrader scores
                     it as passed)
============== ===== ===================================================================================

Each must now score 0, the guard must have seen its attack (a note of what it put back, or a
``GradingIntegrityError``), and no feedback may show a line of a hidden test. The guard's parts are
checked on their own too: the epilogue keeps a cell's value (nbgrader's partial credit), and a guard
narrowed to ``builtins`` and ``math`` still catches, through the epilogue, a failure hidden in a way it
does not restore (ipykernel's output socket made to drop error messages).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.api import Gradebook
from nbgrader.utils import determine_grade

from autograder.notebook_guard import INTEGRITY_ERROR, GuardedExecute, names_used, report, with_epilogue
from autograder.notebooks import ASSIGNMENT, ensure_kernel, kernel_env, make_course, run_nbgrader
from autograder.reference import ASSIGNMENTS, SOLUTIONS

NOTEBOOK = "01_forward_process.ipynb"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)

WRONG = '''\
class WrongSchedule:
    """Shaped like a schedule (float64, decreasing, alpha_bars_prev[0] = 1), with wrong values."""

    def __init__(self, T, end):
        self.T = T
        self.betas = torch.full((T,), 0.01, dtype=torch.float64)
        self.alpha_bars = torch.linspace(0.999, end, T, dtype=torch.float64)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])


schedules = {"linear": WrongSchedule(T, 0.001), "cosine": WrongSchedule(T, 0.01)}


def snr(schedule, t):
    return torch.zeros(len(t))


def q_sample(schedule, x0, t, noise):
    return x0


def q_mean_variance(schedule, x0, t):
    return x0, torch.zeros(())
'''
WRONG_ANSWERS = {
    "snr-answer": """\
def first_noisy_step(schedule):
    return 1 if float(schedule.alpha_bars[-1]) < 0.005 else 2


crossings = {name: first_noisy_step(schedule) for name, schedule in schedules.items()}
print(crossings)""",
    "steps-answer": """\
def noise_by_steps(schedule, x0, t, noises):
    return x0 * 0""",
}


@dataclass(frozen=True)
class Hostile:
    """A hostile submission of notebook 01: its attack cell, its answers, and what the guard must report."""

    attack: str | None
    caught: str
    answers: dict[str, str] = field(default_factory=dict)
    tag_tests: bool = False


HOSTILE = {
    "transformer": Hostile(
        "get_ipython().input_transformers_cleanup.append(lambda lines: [f'print({\"\".join(lines)!r})\\n'])",
        caught="input transformers (cleanup)",
    ),
    "swallow": Hostile(
        """\
shell = get_ipython()
shell.showtraceback = lambda *args, **kwargs: None


def forget_errors(result):
    result.error_before_exec = result.error_in_exec = None


shell.events.register("post_run_cell", forget_errors)""",
        caught="post_run_cell callbacks",
    ),
    "class_patches": Hostile(
        """\
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

InteractiveShell.showtraceback = lambda self, *args, **kwargs: None
ExecutionResult.success = property(lambda self: True)""",
        caught="IPython.core.interactiveshell.ExecutionResult.success",
    ),
    "patched_checks": Hostile(
        WRONG
        + """
import builtins

import numpy.testing

torch.testing.assert_close = lambda *args, **kwargs: None
numpy.testing.assert_allclose = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
builtins.abs = lambda value: 0""",
        caught="torch.testing.assert_close",
        answers=WRONG_ANSWERS,
    ),
    "import_hook": Hostile(
        WRONG
        + """
import builtins
import types

real_torch, real_import = torch, builtins.__import__


class Torch(types.ModuleType):
    def __getattr__(self, name):
        return getattr(real_torch, name)


fake = Torch("torch")
fake.testing = types.SimpleNamespace(assert_close=lambda *args, **kwargs: None)


def hooked_import(name, *args, **kwargs):
    module = real_import(name, *args, **kwargs)
    return fake if name == "torch" else module


builtins.__import__ = hooked_import
import torch""",
        caught="builtins.__import__",
        answers=WRONG_ANSWERS,
    ),
    "patch_in_call": Hostile(
        WRONG,
        caught="changed builtins.abs",
        answers={
            **WRONG_ANSWERS,
            "steps-answer": """\
def noise_by_steps(schedule, x0, t, noises):
    import builtins

    builtins.abs = lambda value: 0
    return schedule.alpha_bars[t].sqrt() * x0""",
        },
    ),
    "skip_tag": Hostile(None, caught="skip-execution tag", tag_tests=True),
}
"""Each hostile student's notebook 01, and the words the guard's note or error must contain for it."""


def hostile_notebook(hostile: Hostile) -> nbformat.NotebookNode:
    """The released notebook 01 with ``hostile``'s answers, tags and attack cell (before the first test)."""
    notebook = nbformat.read(ASSIGNMENTS / ASSIGNMENT / NOTEBOOK, as_version=4)
    tests = [i for i, cell in enumerate(notebook.cells) if cell.metadata.get("nbgrader", {}).get("points")]
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.source = hostile.answers.get(grade_id, cell.source)
        if hostile.tag_tests and cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata["tags"] = ["skip-execution"]
    if hostile.attack is not None:
        notebook.cells.insert(tests[0], new_code_cell(hostile.attack))
    return notebook


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One course, every hostile student submitted, autograded in one run and given feedback."""
    course = make_course(tmp_path_factory.mktemp("hostile"), SOLUTIONS)
    run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    for student, hostile in HOSTILE.items():
        submission = course / "submitted" / student / ASSIGNMENT
        submission.mkdir(parents=True)
        nbformat.write(hostile_notebook(hostile), submission / NOTEBOOK)
    run_nbgrader(course, "autograde", ASSIGNMENT, "--create", env=kernel_env(ASSIGNMENTS, "ci"))
    run_nbgrader(course, "generate_feedback", ASSIGNMENT)
    return course


def autograded_scores(course: Path, student: str) -> dict[str, float]:
    """``notebook:cell`` → score of every autograded cell of the student's submission."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        return {
            f"{notebook.name}:{grade.name}": grade.auto_score or 0.0
            for notebook in submission.notebooks
            for grade in notebook.grades
            if grade.cell_type == "code"
        }


def guard_reports(cells: list[nbformat.NotebookNode]) -> str:
    """Everything the guard wrote in these (autograded) cells: its notes and its errors."""
    texts = []
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and "The grader undid" in output.text:
                texts.append(output.text)
            elif output.output_type == "error" and output.ename == INTEGRITY_ERROR:
                texts.append(output.evalue)
    return "\n".join(texts)


@pytest.mark.parametrize("student", HOSTILE)
def test_a_hostile_notebook_scores_no_more_than_the_stubs(course: Path, student: str) -> None:
    scores = autograded_scores(course, student)
    assert f"{NOTEBOOK[:-6]}:snr-tests" in scores
    earned = {cell: score for cell, score in scores.items() if score != 0}
    assert not earned, f"{student} earns points it did not: {earned}"


@pytest.mark.parametrize("student", HOSTILE)
def test_the_guard_saw_the_attack(course: Path, student: str) -> None:
    autograded = nbformat.read(course / "autograded" / student / ASSIGNMENT / NOTEBOOK, as_version=4)
    reports = guard_reports(autograded.cells)
    assert HOSTILE[student].caught in reports, reports


@pytest.mark.parametrize("student", HOSTILE)
def test_hostile_feedback_shows_no_hidden_test(course: Path, student: str) -> None:
    released = "\n".join(cell.source for cell in nbformat.read(ASSIGNMENTS / ASSIGNMENT / NOTEBOOK, 4).cells)
    hidden_lines = {
        line.strip()
        for cell in nbformat.read(SOLUTIONS / ASSIGNMENT / NOTEBOOK, as_version=4).cells
        for region in HIDDEN.findall(cell.source + "\n")
        for line in region.splitlines()
        if len(line.strip()) > 12 and line.strip() not in released
    }
    assert len(hidden_lines) > 5
    feedback = course / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
    text = html.unescape(re.sub(r"<[^>]+>", "", feedback.read_text(encoding="utf-8")))
    shown = sorted(line for line in hidden_lines if line in text)
    assert not shown, f"the feedback of {student} shows hidden tests: {shown}"


def test_the_epilogue_keeps_the_cells_value_and_the_guard_reads_the_test_s_names() -> None:
    assert with_epilogue("x = 1\nassert x\n", "kit-n") == "x = 1\nassert x\nprint('kit-n\\n', end='')\n"
    wrapped = with_epilogue('label = "é"; f(label,\n  2)  # note\n', "kit-n")
    assert wrapped == (
        "label = \"é\"; (lambda __kit_value: (print('kit-n\\n', end=''), __kit_value)[1])(\nf(label,\n  2)\n)  # note\n"
    )
    assert names_used(wrapped) == {"f", "print"}
    assert names_used("for abs in range(3):\n    len(abs)\ndef g(torch):\n    return torch") == {"range", "len"}
    assert report("'kit-n[\"torch.allclose\"]'", "kit-n") == ["torch.allclose"]
    assert report("'kit-m[]'", "kit-n") is None
    assert report("'kit-n{}'", "kit-n") is None


HIDE_FAILURES = """\
from IPython.core.interactiveshell import ExecutionResult
from ipykernel.iostream import BackgroundSocket

send = BackgroundSocket.send_multipart


def quiet(self, message, *args, **kwargs):
    if not any(b'"msg_type":"error"' in bytes(part).replace(b" ", b"") for part in message):
        return send(self, message, *args, **kwargs)


BackgroundSocket.send_multipart = quiet
ExecutionResult.success = property(lambda self: True)"""
"""Drop the kernel's error messages and report every cell as a success: a way to hide failures that a
guard restoring only ``builtins`` and ``math`` knows nothing about."""


def test_the_guard_on_a_small_notebook(tmp_path: Path) -> None:
    """A guard that restores only ``builtins`` and ``math`` (and IPython's shell): partial credit
    survives, a shadowed builtin is unshadowed, a skipped test runs, and a patch made by the code a test
    calls and a failure hidden in a way the guard does not restore (caught by the epilogue) score 0."""

    def test(source: str, grade_id: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
        cell = new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": grade_id, "points": 1}
        if tags:
            cell.metadata["tags"] = list(tags)
        return cell

    notebook = new_notebook(
        cells=[
            test("x = 0.25\nx * 2", "partial"),
            new_code_cell("import math\n\n\ndef helper():\n    math.sqrt = lambda v: 0.0\n    return 1\n\n\nabs = len"),
            test("assert abs(-1) == 1", "shadowed"),
            test("assert helper() == 1", "patched"),
            test("assert False, 'skipped'", "skipped", tags=("skip-execution",)),
            new_code_cell(HIDE_FAILURES),
            test("assert False, 'hidden'", "hidden"),
        ]
    )
    ensure_kernel()
    guard = GuardedExecute(kernel_name="python3", timeout=120, guarded_modules=["builtins", "math"])
    notebook, _ = guard.preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    cells = {cell.metadata["nbgrader"]["grade_id"]: cell for cell in notebook.cells if "nbgrader" in cell.metadata}
    scores = {grade_id: determine_grade(cell)[0] for grade_id, cell in cells.items()}
    assert scores == {"partial": 0.5, "shadowed": 1, "patched": 0, "skipped": 0, "hidden": 0}
    assert "the name abs" in guard_reports([cells["shadowed"]])
    assert "changed math.sqrt" in guard_reports([cells["patched"]])
    assert [(o.ename, o.evalue) for o in cells["skipped"].outputs if o.output_type == "error"] == [
        ("AssertionError", "skipped")
    ]
    assert "did not run to its end" in guard_reports([cells["hidden"]])
    assert "kit-" not in str([cell.outputs for cell in cells.values()])
