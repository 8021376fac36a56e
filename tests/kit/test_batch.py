"""Batch grading: broken submissions next to a good one, the gradebook, determinism, kill and resume.

The batch grades ``schedules`` and ``forward`` only (``--parts``), each student in its own
sandboxed grader process. Every broken submission breaks ``forward`` (or the whole hand-in) and
must get a clear message, its other part graded, and the good submission its full score.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import distributed
import psutil
import pytest

from autograder import batch as batch_engine
from autograder.batch import entries, write_reports
from autograder.cli import batch as cli_batch
from autograder.grading import not_graded
from autograder.isolation.intake import MAX_FILE_BYTES
from autograder.isolation.launcher import isolation
from autograder.parts import PART_BY_NAME
from autograder.results import results_json
from autograder.tasks import Outcome
from autograder.zoo import MUTANTS
from autograder.zoo.validation import apply
from tests.plugin import ROOT

SOLUTIONS = ROOT / "solutions" / "diffusion"
PARTS = ("schedules", "forward")
FULL = sum(PART_BY_NAME[part].points for part in PARTS)
SCHEDULES = PART_BY_NAME["schedules"].points
REFERENCE_FORWARD = (SOLUTIONS / "forward.py").read_text(encoding="utf-8")


def reference(folder: Path) -> Path:
    shutil.copytree(SOLUTIONS, folder / "diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def with_forward(folder: Path, source: str | bytes | None) -> Path:
    """The reference with ``forward.py`` replaced by ``source`` (removed when ``None``)."""
    forward = reference(folder) / "diffusion" / "forward.py"
    if source is None:
        forward.unlink()
    else:
        forward.write_bytes(source.encode() if isinstance(source, str) else source)
    return folder


KILL_THE_GRADER = """
import os
zygote = os.getppid()
with open(f"/proc/{zygote}/stat") as stat:
    grader = int(stat.read().rsplit(")", 1)[1].split()[1])
for pid in (grader, zygote):
    if pid > 1:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
os._exit(0)
"""
"""At import: kill the zygote that forked this worker, and the process that started the zygote. Outside
bubblewrap that is the grader, which runs as the same user; inside, it is bubblewrap's init (PID 1 of the
sandbox's PID namespace), and the grader is not even visible."""


def zip_of(folder: Path, path: Path, extra: dict[str, bytes] | None = None, link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*.py")):
            archive.write(file, file.relative_to(folder).as_posix())
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
        if link:
            info = zipfile.ZipInfo("diffusion/link.py")
            info.external_attr = 0o120777 << 16
            archive.writestr(info, link)
    shutil.rmtree(folder)
    return path


# student -> (how to build the hand-in, the most it may score, what its results must say)
BROKEN = {
    "syntax-error": (
        lambda d: with_forward(d, "def q_sample(:\n    pass\n"),
        SCHEDULES,
        ["SyntaxError", "forward.py:1"],
    ),
    "import-error": (
        lambda d: with_forward(d, REFERENCE_FORWARD + "\nimport not_a_module_anywhere\n"),
        SCHEDULES,
        ["ModuleNotFoundError", "not_a_module_anywhere"],
    ),
    "missing-module": (lambda d: with_forward(d, None), SCHEDULES, ["the submission has no forward.py"]),
    "wrong-signature": (
        lambda d: with_forward(d, REFERENCE_FORWARD.replace("q_sample(schedule: NoiseSchedule, ", "q_sample(")),
        FULL - 2,  # the 2-point q_sample check; q_step and q_mean_variance are right
        ["forward.q_sample raised TypeError"],
    ),
    "non-utf8": (
        lambda d: with_forward(d, REFERENCE_FORWARD.encode() + b'\nNAME = "caf\xe9"\n'),
        SCHEDULES,
        ["forward.py is not UTF-8 text (byte 0xe9", "SyntaxError"],
    ),
    "huge-module": (
        lambda d: with_forward(d, REFERENCE_FORWARD + "#" * (MAX_FILE_BYTES + 1)),
        SCHEDULES,
        ["skipped diffusion/forward.py", "too large", "the submission has no forward.py"],
    ),
    "empty-zip": (lambda d: zip_of(d.mkdir() or d, d.with_suffix(".zip")), 0, ["empty zip"]),
    "zip-slip": (
        lambda d: zip_of(reference(d), d.with_suffix(".zip"), {"../../evil.py": b"x = 1"}, link="/etc/passwd"),
        FULL,
        ["'../../evil.py' in the zip: a path outside the submission", "symbolic link"],
    ),
    # Kills its parent (the zygote) and the zygote's parent (the grader) where it can: see the test below.
    "kills-its-grader": (lambda d: with_forward(d, REFERENCE_FORWARD + KILL_THE_GRADER), SCHEDULES, []),
    # A name the batch's own files had: its results go to students/gradebook.csv/, the gradebook stays whole.
    "gradebook.csv": (reference, FULL, []),
    # A formula for an id: the gradebook escapes it, and the notes, which start with the zip's name.
    "=SUM(1+1)": (lambda d: zip_of(d.mkdir() or d, d.with_suffix(".zip")), 0, ["empty zip"]),
    "good": (reference, FULL, []),
    "good-zip": (lambda d: zip_of(reference(d), d.with_suffix(".zip")), FULL, []),
}


def batch(submissions: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "autograder", "batch", str(submissions), "--out", str(out), "--parts", *PARTS]
    return subprocess.Popen([*command, *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def finished(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=900)[0].decode()
    assert process.returncode == 0, output
    return output


def cell(text: str) -> str:
    """``text`` as the gradebook writes it: a formula is escaped with a ``'``."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r", "\uff1d") else text


def rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open(encoding="utf-8", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def temporary(temp: Path) -> dict[str, str]:
    """The environment of a batch whose temporary files all go to ``temp``."""
    return {**os.environ, "TMPDIR": str(temp)}


def processes_using(temp: Path) -> list[str]:
    """The command lines that name ``temp`` (a grader, its zygote or bubblewrap, a fallback worker)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            command = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            found += [command] if str(temp) in command else []
    return found


def grading(worker: psutil.Process) -> bool:
    """Whether a grader (``python -m autograder grade``) runs as a child of the Dask worker ``worker``."""
    with contextlib.suppress(psutil.Error):
        return any("autograder" in child.cmdline() for child in worker.children())
    return False


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory) -> tuple[Path, Path, Path]:
    submissions = tmp_path_factory.mktemp("class")
    for student, (build, _, _) in BROKEN.items():
        build(submissions / student)
    out = tmp_path_factory.mktemp("out")
    temp = tmp_path_factory.mktemp("tmp")
    finished(batch(submissions, out, "--jobs", "2", env=temporary(temp)))
    return submissions, out, temp


@pytest.mark.parametrize("student", list(BROKEN))
def test_each_submission_gets_what_it_earns_and_a_clear_message(graded_class, student):
    _, out, _ = graded_class
    _, ceiling, messages = BROKEN[student]
    results = json.loads((out / "students" / student / "results.json").read_text(encoding="utf-8"))
    text = json.dumps(results, ensure_ascii=False)
    assert results["score"] <= ceiling
    for message in messages:
        assert message in text, f"{student}: {message!r} not in its results"
    row = rows(out)[cell(student)]
    assert float(row["total"]) == results["score"]
    if student.startswith(("good", "gradebook")) or student == "zip-slip":
        assert results["score"] == FULL and row["status"] == "graded"
    elif student == "kills-its-grader" and not isolation().sandboxed:
        # Same user as the grader: it dies; the batch reports a grader error with its log and goes on.
        assert row["status"] == "grader error" and "exit code -9 (its log: grader.log)" in row["notes"]
    elif student == "kills-its-grader":
        # Only the zygote could be killed: the import of forward.py failed, the grader started another for the rest.
        assert row["status"] == "graded" and float(row["schedules"]) == SCHEDULES and float(row["forward"]) == 0
        assert "forward.py could not be imported: WorkerDied" in text
    elif ceiling:
        assert float(row["schedules"]) == SCHEDULES, "the part the submission can still be graded on was not graded"
    else:
        assert row["status"] == "not graded" and "empty zip" in row["notes"]
        assert row["notes"].startswith(cell(f"{student}.zip is an empty zip"))


def test_the_gradebook_lists_every_student_once_and_nothing_is_left_half_written_or_behind(graded_class):
    _, out, temp = graded_class
    assert sorted(rows(out)) == sorted(map(cell, BROKEN))
    assert not list(out.rglob("*.tmp"))
    assert not list(temp.iterdir()), "the batch left temporary files behind"


def test_a_cluster_that_loses_a_worker_grades_everyone_once_with_the_same_gradebook(graded_class, tmp_path):
    """The class again on a local Dask cluster of two worker processes (``--scheduler``), one of them killed while
    it grades: the scheduler starts its task again elsewhere, the coordinator writes every student once, and the
    gradebook is the local batch's, byte for byte; a third run grades nothing."""
    submissions, out, _ = graded_class
    again = tmp_path / "again"
    local = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    with distributed.LocalCluster(**local) as cluster, distributed.Client(cluster) as client:
        workers = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        process = batch(submissions, again, "--scheduler", cluster.scheduler_address)
        while not (busy := [worker for worker in workers if grading(worker)]) and process.poll() is None:
            time.sleep(0.1)
        assert busy, "no worker ever ran a grader"
        busy[0].kill()
        output = finished(process)
    graded = output.rpartition("this run: ")[2].partition(";")[0]
    assert sum(int(status.split()[0]) for status in graded.split(", ")) == len(BROKEN), output
    assert "; 1 retried after their worker died" in output
    assert (again / "gradebook.csv").read_bytes() == (out / "gradebook.csv").read_bytes()
    assert sorted(p.parent.name for p in again.glob("students/*/results.json")) == sorted(BROKEN)
    assert {json.loads(p.read_text())["extra_data"]["host"] for p in again.glob("students/*/results.json")} == {
        socket.gethostname()
    }
    retried = sum(row["status"] == "grader error" for row in rows(again).values())  # kills-its-grader, unsandboxed
    assert retried == (0 if isolation().sandboxed else 1)
    output = finished(batch(submissions, again))
    assert f"{len(BROKEN) - retried} already graded" in output
    assert "nothing to grade" in output if not retried else f"this run: {retried} grader error" in output


def test_a_class_harness_calibrates_once_adds_its_points_and_resumes(tmp_path):
    """``batch --harness ci``: each grader runs the hidden checks, then the harness, whose points join the results;
    the two graders that find no calibration at once measure it once (one waits for the other's); a submission with
    nothing to run is not graded, not a grader error; a second run grades nothing, a run without the harness too."""
    submissions, out, cache = tmp_path / "class", tmp_path / "out", tmp_path / "cache"
    reference(submissions / "good")
    mutant = next(m for m in MUTANTS if m.name == "p_sample_variance_not_std")
    apply((mutant.edit,), submissions / "wrong-sampler")
    (submissions / "empty").mkdir()
    env = {**os.environ, "DIFFUSION_CACHE": str(cache)}
    output = finished(batch(submissions, out, "--jobs", "2", "--harness", "ci", env=env))
    assert "this run: 2 graded, 1 not graded" in output, output
    logs = {student: (out / "students" / student / "grader.log").read_text() for student in ("good", "wrong-sampler")}
    measured = [student for student, log in logs.items() if "measured the calibration" in log]
    assert len(measured) == 1 and len(list(cache.glob("calibration/ci-*.json"))) == 1, logs
    assert all("reusing the calibration" in log for student, log in logs.items() if student not in measured), logs
    table, harness_points = rows(out), 7
    assert table["good"]["harness"] == str(harness_points) and float(table["good"]["total"]) == FULL + harness_points
    assert float(table["wrong-sampler"]["harness"]) < harness_points
    assert float(table["wrong-sampler"]["total"]) == FULL + float(table["wrong-sampler"]["harness"])
    assert table["empty"]["status"] == "not graded" and table["empty"]["harness"] == ""
    results = json.loads((out / "students" / "good" / "results.json").read_text())
    assert results["extra_data"]["harness"]["profile"] == "ci" and "harness total 7 / 7" in results["output"]
    assert "nothing to grade" in finished(batch(submissions, out, "--jobs", "2", "--harness", "ci", env=env))
    assert "nothing to grade" in finished(batch(submissions, out, env=env))


def test_a_batch_killed_half_way_resumes_and_ends_with_every_result_once(tmp_path):
    submissions = tmp_path / "class"
    for number in range(4):
        reference(submissions / f"student{number}")
    out, temp = tmp_path / "out", tmp_path / "tmp"
    temp.mkdir()
    process = batch(submissions, out, start_new_session=True, env=temporary(temp))
    deadline = time.monotonic() + 300
    while not list(out.glob("students/*/results.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list(out.glob("students/*/results.json")))
    assert 1 <= done < 4, "the kill did not land half-way"
    assert [root.name.split("-")[2] for root in temp.iterdir()] == [str(process.pid)]  # nothing could remove it
    output = finished(batch(submissions, out, env=temporary(temp)))
    assert f"{done} already graded" in output
    assert sorted(p.parent.name for p in out.glob("students/*/results.json")) == [f"student{n}" for n in range(4)]
    assert all(row["total"] == str(FULL) for row in rows(out).values()) and len(rows(out)) == 4
    assert not list(out.rglob("*.tmp"))
    assert not list(temp.iterdir()), "the killed batch's temporary files are still there"


def test_only_grades_the_students_named_force_grades_them_again_and_the_reports_list_everyone(tmp_path):
    submissions, out = tmp_path / "class", tmp_path / "out"
    for student in ("alice", "bob"):
        reference(submissions / student)
    output = finished(batch(submissions, out, "--only", "alice"))
    assert "2 submission(s)" in output and "1 chosen by --only; 0 already graded" in output
    assert [path.parent.name for path in out.glob("students/*/results.json")] == ["alice"]
    table = rows(out)
    assert table["alice"]["total"] == str(FULL) and table["alice"]["status"] == "graded"
    assert table["bob"]["status"] == "missing" and table["bob"]["max"] == str(FULL)
    for name in ("gradebook.csv", "report.md", "report.png", "canvas.csv", "students/alice/feedback.md"):
        assert (out / name).is_file(), name
    results, feedback = out / "students" / "alice" / "results.json", out / "students" / "alice" / "feedback.md"
    graded_at = results.stat().st_mtime_ns
    feedback.unlink()
    output = finished(batch(submissions, out, "--only", "alice"))
    assert "1 already graded" in output and "nothing to grade" in output
    assert results.stat().st_mtime_ns == graded_at and feedback.is_file(), "up to date: its feedback only is written"
    output = finished(batch(submissions, out, "--only", "alice", "--force"))
    assert "grading 1 again (--force)" in output and "this run: 1 graded" in output
    assert results.stat().st_mtime_ns != graded_at and not (out / "students" / "bob").exists()
    refused = batch(submissions, out, "--only", "alice", "alicia", "carol")
    error = refused.communicate(timeout=300)[0].decode()
    assert refused.returncode == 2 and "no submission for 'alicia', 'carol' (did you mean 'alice'?)" in error


def test_every_entry_gets_an_id_of_its_own(tmp_path):
    for name in ("bob", "bob.zip", "bob.zip.zip", "carol.ZIP", "gradebook.csv", ".hidden"):
        (tmp_path / name).mkdir()
    students = [entry.student for entry in entries(tmp_path)]
    assert sorted(students) == ["bob", "bob.zip", "bob.zip.zip", "carol", "gradebook.csv"]


def test_a_batch_writing_inside_its_submissions_is_refused(tmp_path, capsys):
    reference(tmp_path / "class" / "alice")
    args = argparse.Namespace(submissions=tmp_path / "class", out=tmp_path / "class" / "results", jobs=1)
    assert cli_batch.run(args) == 2
    assert "would be taken for students" in capsys.readouterr().err
    assert not (tmp_path / "class" / "results").exists()


def test_the_gradebook_escapes_what_a_spreadsheet_would_run(tmp_path):
    students = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\uff1dx", "alice", "bob\r=1+1"]
    for number, student in enumerate(students):
        extra = {"status": "not graded", "problem": f"{student}.zip is an empty zip", "notes": ["=note"], "parts": []}
        (tmp_path / "out" / "students" / student).mkdir(parents=True)
        results = {"score": 0, "tests": [], "extra_data": extra}
        (tmp_path / "out" / "students" / student / "results.json").write_text(json.dumps(results))
        (tmp_path / "class" / (student if number % 2 else f"{student}.zip")).mkdir(parents=True)
    write_reports(entries(tmp_path / "class"), tmp_path / "out", "=assignment")
    table = rows(tmp_path / "out")
    assert sorted(table) == sorted(cell(student) for student in students[:-2]) + ["alice", "bob\r=1+1"]
    assert (tmp_path / "out" / "gradebook.csv").read_bytes().count(b"\r\n") == len(students) + 1, "a cell broke a row"
    for student, row in table.items():
        assert row["notes"] == f"{student}.zip is an empty zip | =note", "the notes were not escaped"
        assert row["status"] == "not graded"
    with (tmp_path / "out" / "canvas.csv").open(encoding="utf-8", newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0][-1] == "'=assignment" and sorted(row[3] for row in canvas[2:]) == sorted(table)


def test_a_grader_killed_at_the_timeout_leaves_nothing_behind(tmp_path):
    with_forward(tmp_path / "class" / "sleeper", REFERENCE_FORWARD + "\nimport time\nwhile True:\n    time.sleep(60)\n")
    temp, out = tmp_path / "tmp", tmp_path / "out"
    temp.mkdir()
    process = batch(tmp_path / "class", out, "--timeout", "25", env=temporary(temp))
    seen: set[str] = set()
    while process.poll() is None:  # what the grader made while it ran: its staging, its worker's scratch
        seen |= {p.name.split("-")[1] for p in temp.glob("autograder-batch-*/grader-*/autograder-*")}
        time.sleep(0.2)
    finished(process)
    assert seen == {"submission", "worker"}, "the grader was killed before it had staged the submission"
    results = json.loads((out / "students" / "sleeper" / "results.json").read_text(encoding="utf-8"))
    assert results["extra_data"]["status"] == "grader error" and "did not finish within 25 s" in results["output"]
    assert not list(temp.iterdir()), "the killed grader's temporary files are still there"
    deadline = time.monotonic() + 10
    while processes_using(temp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_using(temp), "a process of the killed grader still runs"


def test_a_failure_of_the_batch_or_a_result_it_cannot_trust_costs_one_student_only(tmp_path):
    students = ["alice", "bob", "carol", "dave", "erin"]
    for student in students:
        (tmp_path / "class" / student).mkdir(parents=True)
    out, entries_ = tmp_path / "out", entries(tmp_path / "class")
    kit = results_json(not_graded("nothing handed in", parts=PARTS))

    def graded(student: str, **extra) -> Outcome:
        sha = batch_engine.fingerprint(next(entry for entry in entries_ if entry.student == student))
        results = {**kit, "extra_data": {**kit["extra_data"], "submission_sha256": sha, **extra}}
        return Outcome(json.dumps(results).encode(), b"the grader's log", 0, 1.0, "node-7")

    outcomes = {
        "alice": graded("alice"),
        "bob": OSError(28, "No space left on device"),
        "carol": Outcome(b'{"score": "a results.json some process rewrote"}', b"", 0, 1.0, "node-7"),
        "dave": graded("dave", kit_version="another kit"),
        "erin": graded("erin", submission_sha256="0" * 64),
    }

    class Engine:
        retried = 0

        def run(self, tasks):
            return [(task, outcomes[task.student]) for task in tasks]

    tasks = [batch_engine.task_of(entry, PARTS, [], 60) for entry in entries_]
    tally = batch_engine.grade_all(entries_, out, tasks, Engine())
    assert tally.statuses == {"not graded": 1, "grader error": 4} and str(tally) == "4 grader error, 1 not graded"
    assert [batch_engine.is_done(entry, out, PARTS) for entry in entries_] == [True, False, False, False, False]
    assert json.loads((out / "students" / "alice" / "results.json").read_text())["extra_data"]["host"] == "node-7"
    assert (out / "students" / "alice" / "grader.log").read_bytes() == b"the grader's log"
    batch_engine.write_reports(entries_, out)
    notes = {student: row["notes"] for student, row in rows(out).items()}
    assert "No space left on device" in notes["bob"] and len(notes) == 5
    assert "the grader wrote a results.json that is not the kit's" in notes["carol"]
    assert "the grader on node-7 runs another version of the kit: install the same commit" in notes["dave"]
    assert "the grader on node-7 graded another copy of the submission: the workers must read it" in notes["erin"]
