"""The batch's reports, from hand-made ``results.json`` files: the gradebook's columns, maxima and notes, each
student's feedback and when the batch writes it, the class report, the Canvas export; how ``--only`` names
students.

A class of seven: alice passes everything and ran the harness; bob and gina hand in a ``forward.py`` with a
syntax error; carol has a wrong answer in ``schedules``, a stub and a timeout in ``forward``; dave's zip is
empty (not graded); eve's grading failed on the grader's side; ``=frank`` has no ``results.json``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from autograder import batch
from autograder.reports.canvas import write_canvas
from autograder.reports.class_report import common_messages, part_summaries, write_class_report
from autograder.reports.feedback import GRADER_FAILED, feedback_markdown, fenced
from autograder.reports.gradebook import HEADER, write_gradebook
from autograder.reports.problems import part_problem
from autograder.reports.records import MISSING, read_record
from autograder.reports.records import Test as Verdict
from autograder.results import HARNESS_TAG, gradescope_test

SYNTAX = "forward.py could not be imported: SyntaxError: invalid syntax (forward.py, line 1) (forward.py:1)"
RAISED = "your code raised an error:\n  "
STUB = "your code raised an error (this function is still the stub: implement it):\n  "
TIMEOUT = "forward.q_step raised TimeoutError: no answer within the wall-time limit of 120 s (an infinite loop?)"
WRONG = "linear_betas(T) is not linspace(beta_start, beta_end, T)\n  expected 0.0001, got 0.02\n  hint: endpoints"
INTERNALS = "Student code ran sandboxed with bubblewrap: no network, read-only system"
GRADER_LOG = "the grader stopped with exit code -9 (its log: grader.log). Its last output:\nTraceback: secret"


def check(part: str, name: str, points: float, verdict: str | None = None) -> dict:
    """A hidden check's test: passed without ``verdict``, else failed with it under the title."""
    title = f"the {name} property holds"
    output = title if verdict is None else f"{title}\n{verdict}"
    return gradescope_test(f"Part ({part}): {name}", 0.0 if verdict else points, points, output, part)


def harness_check(name: str, points: float, passed: bool) -> dict:
    message = "distance 0.01 (must be at most 0.05)" if passed else "distance 0.9 (must be at most 0.05)"
    return gradescope_test(
        f"Harness (mixture2d): {name}", points if passed else 0.0, points, f"{name}\n{message}", HARNESS_TAG
    )


def forward(verdicts: tuple[str | None, str | None] = (None, None)) -> list[dict]:
    return [check("forward", "q_sample", 5, verdicts[0]), check("forward", "q_step", 3, verdicts[1])]


SCHEDULES = [check("schedules", "linear", 3), check("schedules", "cosine", 4)]
CLASS: dict[str, dict] = {
    "alice": {
        "tests": [*SCHEDULES, *forward()]
        + [harness_check("training", 1, True), harness_check("ddpm_quality", 2, True)]
        + [harness_check("ddim_quality", 2, False), harness_check("cfg_accuracy", 2, True)],
        "harness": {"plans": {}},
    },
    "bob": {"tests": [*SCHEDULES, *forward((RAISED + SYNTAX, RAISED + SYNTAX))]},
    "gina": {"tests": [*SCHEDULES, *forward((RAISED + SYNTAX, RAISED + SYNTAX))], "notes": ["skipped notes.txt"]},
    "carol": {
        "tests": [check("schedules", "linear", 3, WRONG), SCHEDULES[1]]
        + forward((STUB + "forward.q_sample raised NotImplementedError: (forward.py:10)", RAISED + TIMEOUT))
    },
    "dave": {"status": "not graded", "problem": "dave.zip is an empty zip"},
    "eve": {"status": "grader error", "problem": GRADER_LOG},
}


def results_json(status: str = "graded", tests: list | None = None, problem: str = "", **extra) -> dict:
    """A ``results.json`` as the grader writes it; a result that is not a grading fails every check with why."""
    if tests is None:
        tests = [check(t["tags"][0], t["name"].split(": ")[1], t["max_score"], f"not graded: {problem}") for t in
                 [*SCHEDULES, *forward()]]  # fmt: skip
    extra_data = {
        "status": status,
        "problem": problem,
        "parts": ["forward", "schedules"],
        "notes": extra.pop("notes", []),
        "part_seconds": {"schedules": 1.25, "forward": 2.5},
        "submission_sha256": "f" * 64,
        "kit_version": "e" * 64,
        **extra,
    }
    score = sum(test["score"] for test in tests)
    return {"score": score, "execution_time": 3.75, "output": INTERNALS, "extra_data": extra_data, "tests": tests}


@pytest.fixture
def graded(tmp_path: Path) -> tuple[list[batch.Entry], Path]:
    """The class's submissions (empty folders) and its batch output."""
    out = tmp_path / "out"
    for student, fields in CLASS.items():
        (out / "students" / student).mkdir(parents=True)
        (out / "students" / student / "results.json").write_text(json.dumps(results_json(**fields)), encoding="utf-8")
    for student in [*CLASS, "=frank"]:
        (tmp_path / "class" / student).mkdir(parents=True)
    return batch.entries(tmp_path / "class"), out


def read_csv(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert data.count(b"\r\n") == len(rows), "rows end with CRLF, and only rows"
    return rows


def gradebook_of(graded) -> dict[str, dict[str, str]]:
    students, out = graded
    table = read_csv(write_gradebook(batch.records(students, out), out))
    assert table[0] == HEADER
    return {row[0]: dict(zip(HEADER, row, strict=True)) for row in table[1:]}


def test_the_gradebook_has_a_column_per_part_one_for_the_harness_and_the_same_max_on_every_row(graded):
    rows = gradebook_of(graded)
    assert list(rows) == ["'=frank", "alice", "bob", "carol", "dave", "eve", "gina"]
    alice, bob, frank = rows["alice"], rows["bob"], rows["'=frank"]
    assert (alice["schedules"], alice["forward"], alice["harness"], alice["total"]) == ("7", "8", "5", "20")
    assert (bob["schedules"], bob["forward"], bob["harness"], bob["total"]) == ("7", "0", "", "7")
    assert rows["carol"]["schedules"] == "4" and rows["dave"]["total"] == "0" and rows["dave"]["status"] == "not graded"
    assert alice["ddpm"] == "" and alice["latent"] == "", "a part graded for no one is empty"
    assert frank["status"] == MISSING and frank["total"] == "" and frank["notes"] == "no results.json yet"
    assert {row["max"] for row in rows.values()} == {"22"}, "7 + 8 for the parts, 7 for the harness, on every row"
    for row in rows.values():
        cells = [row[column] for column in HEADER[1:12] if row[column]]
        assert not row["total"] or float(row["total"]) == sum(map(float, cells)), "the total is the row's points"


def test_the_notes_give_each_parts_problem_a_syntax_error_included(graded):
    rows = gradebook_of(graded)
    assert rows["bob"]["notes"] == "forward: syntax error (forward.py:1)"
    assert rows["gina"]["notes"] == "forward: syntax error (forward.py:1) | skipped notes.txt"
    assert rows["carol"]["notes"] == "forward: timeout in q_step", "a timeout before a stub; a wrong answer: no note"
    assert rows["alice"]["notes"] == "" and rows["dave"]["notes"] == "dave.zip is an empty zip"
    assert rows["eve"]["notes"].startswith("the grader stopped with exit code -9"), "a grader error says how"


@pytest.mark.parametrize(
    ("verdict", "phrase"),
    [
        (RAISED + SYNTAX, "syntax error (forward.py:1)"),
        (RAISED + "forward.py could not be imported: ModuleNotFoundError: No module named 'nope' (forward.py:3)",
         "import error: ModuleNotFoundError: No module named 'nope' (forward.py:3)"),
        (RAISED + "forward.py could not be imported: TimeoutError: no answer within 60 s", "its import timed out"),
        (RAISED + "the submission has no forward.py", "no forward.py"),
        (RAISED + TIMEOUT, "timeout in q_step"),
        (RAISED + "forward.q_step raised WorkerDied: it died (killed by signal 9)", "the worker died in q_step"),
        (RAISED + "forward.q_step raised AttributeError: forward.py defines no function q_step", "no function q_step"),
        (STUB + "forward.q_step raised NotImplementedError: (forward.py:9)", "not implemented: q_step"),
        (RAISED + "forward.Model.forward raised TypeError: bad (forward.py:2)", "Model.forward raised TypeError"),
        ("forward.q_step changed its x_prev in place: a function must leave its arguments",
         "changes its arguments in place: q_step"),
        ("your function gave different results for the same inputs; it must", "different results for the same inputs"),
        ("the answer could not be checked: KeyError: 'x'", "a check failed on the grader's side"),
        (WRONG, ""),
        ("not graded: the submission is an empty zip", ""),
    ],
)  # fmt: skip
def test_a_parts_problem_is_read_from_its_failed_tests_output(verdict: str, phrase: str):
    test = Verdict("Part (forward): q_step", 0.0, 3.0, f"q_step's title\n{verdict}", "forward")
    assert part_problem("forward", [test]) == phrase
    assert part_problem("forward", [Verdict(test.name, 3.0, 3.0, test.output, "forward")]) == "", "it passed"


def test_the_gradebook_and_canvas_escape_formulas(graded):
    students, out = graded
    rows = read_csv(write_canvas(batch.records(students, out), out, "=Diffusion (12)"))
    assert rows[0][-1] == "'=Diffusion (12)" and rows[2][3] == "'=frank"
    assert "'=frank" in gradebook_of(graded)


def test_canvas_has_its_import_header_a_points_possible_row_and_the_totals_by_login_id(graded):
    students, out = graded
    rows = read_csv(write_canvas(batch.records(students, out), out))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Diffusion assignment"]
    assert rows[1] == ["Points Possible", "", "", "", "", "22"]
    totals = {row[3]: row[5] for row in rows[2:]}
    assert totals == {"'=frank": "", "alice": "20", "bob": "7", "carol": "4", "dave": "0", "eve": "", "gina": "7"}
    assert all(row[:3] == ["", "", ""] and row[4] == "" for row in rows[2:])


def feedback(graded, student: str) -> str:
    _, out = graded
    return feedback_markdown(read_record(student, out / "students" / student / "results.json"))


def test_feedback_gives_the_total_the_parts_and_each_failed_checks_name_and_message(graded):
    bob = feedback(graded, "bob")
    assert "**Total: 7 / 15 points**" in bob
    assert "| 1 schedules | 7 / 7 | 2 / 2 |" in bob and "| 2 forward | 0 / 8 | 0 / 2 |" in bob
    assert "### `Part (forward): q_sample`: 0 / 5, failed" in bob and "### `Part (forward): q_step`: 0 / 3" in bob
    assert bob.count(SYNTAX) == 2 and "Part (schedules)" not in bob.split("## Failed checks")[1]
    carol = feedback(graded, "carol")
    assert WRONG in carol and "expected 0.0001, got 0.02" in carol and TIMEOUT in carol
    for student in CLASS:
        text = feedback(graded, student)
        for internal in (INTERNALS, "1.25", "3.75", "f" * 64, "e" * 64, "grader.log", "Traceback"):
            assert internal not in text, f"{student}'s feedback shows the grader's {internal!r}"


def test_feedback_shows_the_harness_verdicts_and_says_why_a_submission_was_not_graded(graded):
    alice = feedback(graded, "alice")
    assert "**Total: 20 / 22 points**" in alice and "| harness | 5 / 7 | 3 / 4 |" in alice
    assert "Every check passed." in alice
    harness = alice.split("## Training and sampling (harness)")[1]
    assert "`Harness (mixture2d): ddim_quality`: 0 / 2, failed" in harness and "distance 0.9" in harness
    assert "`Harness (mixture2d): training`: 1 / 1, passed" in harness
    assert "## Training and sampling" not in feedback(graded, "bob")
    dave = feedback(graded, "dave")
    assert "could not be graded" in dave and "dave.zip is an empty zip" in dave and "not graded:" not in dave
    assert GRADER_FAILED in feedback(graded, "eve") and "Total" not in feedback(graded, "eve")
    assert "skipped notes.txt" in feedback(graded, "gina")


def test_a_fence_outlasts_the_backticks_of_what_it_holds():
    assert fenced("```\nx") == "````text\n```\nx\n````"


def test_the_class_report_counts_the_failure_messages_and_draws_the_histogram(graded):
    students, out = graded
    report, figure = write_class_report(batch.records(students, out), out)
    assert figure.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and figure.stat().st_size > 5000
    text = report.read_text(encoding="utf-8")
    assert "7 students: graded 4, not graded 1, grader error 1, missing 1." in text
    assert "Totals of the 5 results that are grades, out of 22: mean 7.6, median 7" in text
    assert "| forward | 8 | 2.00 | 75% (3 of 4) |" in text and "| harness | 7 | 5.00 | 100% (1 of 1) |" in text
    assert "| Part (forward): q_step | 75% (3 of 4) |" in text
    messages = [(m.text, m.tests, m.students) for m in common_messages(batch.records(students, out))]
    assert messages == [
        (f"your code raised an error: {SYNTAX}", 4, 2),
        ("distance 0.9 (must be at most 0.05)", 1, 1),
        ("linear_betas(T) is not linspace(beta_start, beta_end, T)", 1, 1),
        ("your code raised an error (this function is still the stub: implement it): "
         "forward.q_sample raised NotImplementedError: (forward.py:10)", 1, 1),
        (f"your code raised an error: {TIMEOUT}", 1, 1),
    ]  # fmt: skip
    assert f"| 4 | 2 | your code raised an error: {SYNTAX} |" in text
    assert [part.name for part in part_summaries(batch.records(students, out))] == ["schedules", "forward", "harness"]


def test_the_batch_writes_a_feedback_that_is_missing_or_older_than_the_results(graded):
    students, out = graded
    bob = next(entry for entry in students if entry.student == "bob")
    batch.update_feedback(bob, out, when_stale=True)
    assert bob.feedback(out).read_text(encoding="utf-8") == feedback(graded, "bob")
    bob.feedback(out).write_text("kept", encoding="utf-8")
    batch.update_feedback(bob, out, when_stale=True)
    assert bob.feedback(out).read_text(encoding="utf-8") == "kept", "up to date: not written again"
    later = bob.feedback(out).stat().st_mtime_ns + 10**9
    os.utime(bob.results(out), ns=(later, later))  # the harness added its points since
    batch.update_feedback(bob, out, when_stale=True)
    assert bob.feedback(out).read_text(encoding="utf-8") == feedback(graded, "bob")
    frank = next(entry for entry in students if entry.student == "=frank")
    batch.update_feedback(frank, out)
    assert not frank.feedback(out).exists(), "no results, no feedback"


def test_the_reports_are_written_together(graded):
    students, out = graded
    written = batch.write_reports(students, out)
    assert [path.name for path in written] == ["gradebook.csv", "report.md", "report.png", "canvas.csv"]
    assert not list(out.rglob("*.tmp"))


def test_only_names_students_by_id_or_file_and_refuses_an_unknown_one(tmp_path: Path):
    for name in ("alice", "bob.zip", "carol"):
        (tmp_path / name).mkdir()
    students = batch.entries(tmp_path)
    assert [entry.student for entry in batch.select(students, ["carol", "bob.zip", "carol"])] == ["bob", "carol"]
    assert batch.select(students, []) == students
    with pytest.raises(batch.UnknownStudents, match=r"no submission for 'alicia', 'zed' \(did you mean 'alice'\?\)"):
        batch.select(students, ["alice", "alicia", "zed"])
