"""nbgrader end to end in a temporary course: release, two fake students, autograde, feedback.

The student ``reference`` submits the solutions' notebooks and has the reference package; the
student ``stubs`` submits the released notebooks and has the released stubs. Autograding must give
the first full marks on every autograded cell and the second zero, and the feedback must not show
any line of a hidden test.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.notebooks import ASSIGNMENT, kernel_env, make_course, notebook_paths, run_nbgrader
from autograder.reference import ASSIGNMENTS, SOLUTIONS

STUDENTS = {"reference": SOLUTIONS, "stubs": ASSIGNMENTS}
"""Each fake student's id → the directory whose notebooks it submits and whose package it runs."""
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course with the assignment generated, both students submitted and autograded, and feedback written."""
    course = make_course(tmp_path_factory.mktemp("course"), SOLUTIONS)
    run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    for student, impl in STUDENTS.items():
        submission = course / "submitted" / student / ASSIGNMENT
        submission.mkdir(parents=True)
        for path in notebook_paths(impl):
            shutil.copy2(path, submission / path.name)
        run_nbgrader(course, "autograde", ASSIGNMENT, "--student", student, "--create", env=kernel_env(impl, "ci"))
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
