"""nbgrader end to end in a temporary course: release, two fake students, autograde, feedback.

The grading machine has the released stubs installed (first on the kernel's ``PYTHONPATH``). The
student ``reference`` submits the solutions' notebooks and the reference package, their ``assignments/``
folder unpacked in ``submitted/reference/`` (``diffusion/`` beside ``notebooks/``); the student
``stubs`` submits the released notebooks with the released stubs beside them. One ``nbgrader autograde``
of the whole class, with no step by hand, must give the first full marks on every autograded cell (so
their own package ran, not the installed stubs) and the second zero, and the feedback must not show
any line of a hidden test. The course's exchange works: ``nbgrader list`` lists the released notebooks.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.notebook_package import find_student_package
from autograder.notebooks import ASSIGNMENT, kernel_env, make_course, notebook_paths, run_nbgrader
from autograder.reference import ASSIGNMENTS, SOLUTIONS

STUDENTS = {"reference": (SOLUTIONS, ".."), "stubs": (ASSIGNMENTS, ".")}
"""Each fake student's id → the directory whose notebooks and package it submits, and where its package goes
relative to the submitted notebooks' folder."""
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course with the assignment generated, both students submitted and autograded, and feedback written."""
    course = make_course(tmp_path_factory.mktemp("course"), SOLUTIONS)
    run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    for student, (impl, place) in STUDENTS.items():
        submission = course / "submitted" / student / ASSIGNMENT
        submission.mkdir(parents=True)
        for path in notebook_paths(impl):
            shutil.copy2(path, submission / path.name)
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(impl / "diffusion", (submission / place / "diffusion").resolve(), ignore=ignore)
    log = run_nbgrader(course, "autograde", ASSIGNMENT, "--create", env=kernel_env(ASSIGNMENTS, "ci"))
    assert log.count("import their own package") == len(STUDENTS) * len(notebook_paths(SOLUTIONS)), log
    run_nbgrader(course, "generate_feedback", ASSIGNMENT)
    return course


def autograded_scores(course: Path, student: str) -> dict[str, tuple[float, float]]:
    """``notebook:cell`` → (score, max score) of every autograded cell of the student's submission."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        return {
            f"{notebook.name}:{grade.name}": (grade.auto_score, grade.max_score)
            for notebook in submission.notebooks
            for grade in notebook.grades
            if grade.cell_type == "code"
        }


def test_release_matches_the_committed_notebooks(course: Path) -> None:
    for path in notebook_paths(course / "assignments"):
        assert path.read_bytes() == (ASSIGNMENTS / ASSIGNMENT / path.name).read_bytes(), path.name


def test_the_reference_gets_full_marks_on_every_autograded_cell(course: Path) -> None:
    scores = autograded_scores(course, "reference")
    assert len(scores) >= 3 * len(notebook_paths(SOLUTIONS))
    lost = {cell: score for cell, score in scores.items() if score[0] != score[1]}
    assert not lost, f"the reference loses points: {lost}"


def test_the_stubs_get_zero(course: Path) -> None:
    scores = autograded_scores(course, "stubs")
    assert scores.keys() == autograded_scores(course, "reference").keys()
    earned = {cell: score for cell, score in scores.items() if score[0] != 0}
    assert not earned, f"the stubs earn points: {earned}"


@pytest.mark.parametrize("student", STUDENTS)
def test_feedback_shows_no_hidden_test(course: Path, student: str) -> None:
    released = "\n".join(
        cell.source for path in notebook_paths(ASSIGNMENTS) for cell in nbformat.read(path, as_version=4).cells
    )
    hidden_lines = {
        line.strip()
        for path in notebook_paths(SOLUTIONS)
        for cell in nbformat.read(path, as_version=4).cells
        for region in HIDDEN.findall(cell.source + "\n")
        for line in region.splitlines()
        if len(line.strip()) > 12  # skip lines such as ")" that any code has
    }
    hidden_lines = {line for line in hidden_lines if line not in released}  # not lines students see anyway
    assert len(hidden_lines) > 20
    for path in notebook_paths(SOLUTIONS):
        feedback = course / "feedback" / student / ASSIGNMENT / path.with_suffix(".html").name
        text = html.unescape(re.sub(r"<[^>]+>", "", feedback.read_text(encoding="utf-8")))
        shown = sorted(line for line in hidden_lines if line in text)
        assert not shown, f"{feedback.name} of {student} shows hidden tests: {shown}"
        assert "BEGIN HIDDEN TESTS" not in text


def test_the_local_exchange_lists_the_released_notebooks(course: Path) -> None:
    run_nbgrader(course, "release_assignment", ASSIGNMENT, "--force")
    assert f"diffusion {ASSIGNMENT}" in run_nbgrader(course, "list")


def test_a_students_package_is_found_where_they_hand_it_in(tmp_path: Path) -> None:
    submitted = tmp_path / "submitted" / "alice" / ASSIGNMENT
    submitted.mkdir(parents=True)
    assert find_student_package(submitted) is None
    for folder in (submitted.parent / "assignments", submitted.parent, submitted):  # the nearest wins
        (folder / "diffusion").mkdir(parents=True)
        (folder / "diffusion" / "__init__.py").write_text("")
        assert find_student_package(submitted) == folder.resolve()
