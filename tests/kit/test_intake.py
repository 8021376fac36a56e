"""Staging a submission as handed in: layouts found, unsafe or huge files skipped with a note, nothing
written outside the staging directory, and a clear problem when there is nothing to grade."""

from __future__ import annotations

import os
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest

from autograder.isolation.intake import (
    MAX_DECLARED_BYTES,
    MAX_ENTRIES,
    MAX_FILE_BYTES,
    MAX_NOTES,
    fingerprint,
    stage,
)
from tests.plugin import ROOT

SOLUTIONS = ROOT / "solutions" / "diffusion"


def package(root: Path, *names: str) -> Path:
    """``root`` holding copies of the reference's ``names`` part modules."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / f"{name}.py").write_bytes((SOLUTIONS / f"{name}.py").read_bytes())
    return root


def written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def zipped(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


@pytest.mark.parametrize(
    "layout", ["diffusion", "flat", "alice/diffusion", "alice"], ids=["package", "flat", "nested", "one-folder"]
)
def test_the_part_modules_are_found_in_every_usual_layout(tmp_path, layout):
    package(tmp_path / "hand-in" / layout.replace("flat", "."), "forward", "ddpm")
    staged = stage([tmp_path / "hand-in"], tmp_path / "stage")
    assert staged.problem is None and staged.notes == ()
    assert (staged.package / "forward.py").read_bytes() == (SOLUTIONS / "forward.py").read_bytes()


def test_py_files_named_one_by_one_are_staged_flat(tmp_path):
    hand_in = package(tmp_path / "hand-in", "forward", "ddim")
    staged = stage([hand_in / "forward.py", hand_in / "ddim.py"], tmp_path / "stage")
    assert staged.problem is None and sorted(p.name for p in staged.package.iterdir()) == ["ddim.py", "forward.py"]


def test_a_zip_is_unpacked_without_its_unsafe_members(tmp_path):
    good = (SOLUTIONS / "forward.py").read_bytes()
    archive = zipped(
        tmp_path / "alice.zip",
        {
            "diffusion/forward.py": good,
            "../escaped.py": b"x = 1",
            "/abs/escaped.py": b"x = 1",
            "diffusion/../../escaped2.py": b"x = 1",
            "__MACOSX/diffusion/._forward.py": b"junk",
        },
        links={"diffusion/ddpm.py": "/etc/passwd", "diffusion/ddim.py": "../../../solutions/diffusion/ddim.py"},
    )
    stage_dir = tmp_path / "work" / "stage"
    staged = stage([archive], stage_dir)
    assert staged.problem is None
    assert sorted(p.name for p in staged.package.iterdir()) == ["forward.py"]
    assert (staged.package / "forward.py").read_bytes() == good
    notes = "\n".join(staged.notes)
    assert notes.count("a path outside the submission") == 3 and notes.count("symbolic link") == 2
    assert "MACOSX" not in notes
    assert not list(tmp_path.rglob("escaped*.py"))


def test_links_in_a_directory_are_not_followed(tmp_path):
    hand_in = package(tmp_path / "hand-in" / "diffusion", "forward")
    os.symlink(SOLUTIONS / "ddpm.py", hand_in / "ddpm.py")
    os.symlink(SOLUTIONS, hand_in / "reference")
    staged = stage([tmp_path / "hand-in"], tmp_path / "stage")
    assert sorted(p.name for p in staged.package.iterdir()) == ["forward.py"]
    assert sum("links are not followed" in note for note in staged.notes) == 2


def test_huge_files_are_skipped_with_a_note(tmp_path):
    hand_in = package(tmp_path / "hand-in", "forward")
    (hand_in / "weights.bin").write_bytes(b"\0" * (MAX_FILE_BYTES + 1))
    staged = stage([hand_in], tmp_path / "stage")
    assert not (staged.package / "weights.bin").exists()
    assert any("weights.bin" in note and "too large" in note for note in staged.notes)


def test_a_zip_member_larger_than_it_claims_makes_the_zip_unreadable(tmp_path):
    archive = zipped(tmp_path / "bomb.zip", {"forward.py": b"#" * 100_000})
    raw = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):  # the stated sizes: 10 bytes
        struct.pack_into("<I", raw, raw.find(signature) + offset, 10)
    archive.write_bytes(bytes(raw))
    staged = stage([archive], tmp_path / "stage")
    assert staged.package is None and "not a readable zip" in staged.problem
    assert sum(p.stat().st_size for p in (tmp_path / "stage").rglob("*") if p.is_file()) <= 10


def many_empty_members(path: Path, count: int) -> Path:
    """A zip of the reference's ``forward.py`` and ``count`` − 1 empty members."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("diffusion/forward.py", (SOLUTIONS / "forward.py").read_bytes())
        for number in range(count - 1):
            archive.writestr(f"diffusion/empty/{number}.txt", b"")
    return path


def end_record(raw: bytearray) -> int:
    """Where the end record of the central directory starts in a zip's bytes."""
    return raw.rfind(b"PK\x05\x06")


def test_a_zip_of_too_many_members_is_refused_before_anything_is_extracted(tmp_path):
    archive = many_empty_members(tmp_path / "many.zip", MAX_ENTRIES + 1)
    start = time.perf_counter()
    staged = stage([archive], tmp_path / "stage")
    assert time.perf_counter() - start < 1.0
    assert staged.package is None and f"many.zip holds more than {MAX_ENTRIES:,} members" in staged.problem
    assert "Hand in the diffusion/ folder alone" in staged.problem
    assert not any((tmp_path / "stage").iterdir())


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [(10, 1, f"holds {MAX_ENTRIES + 1:,} members"), (12, 1 << 30, f"holds more than {MAX_ENTRIES:,} members")],
    ids=["count-understated", "huge-member-list"],
)
def test_a_zip_whose_end_record_lies_is_still_refused(tmp_path, field, value, expected):
    archive = many_empty_members(tmp_path / "liar.zip", MAX_ENTRIES + 1)
    raw = bytearray(archive.read_bytes())
    if field == 10:  # the count of members: on this disk and in all
        struct.pack_into("<HH", raw, end_record(raw) + 8, value, value)
    else:  # the size of the list of members
        struct.pack_into("<I", raw, end_record(raw) + field, value)
    archive.write_bytes(bytes(raw))
    staged = stage([archive], tmp_path / "stage")
    assert staged.package is None and expected in staged.problem
    assert not any((tmp_path / "stage").iterdir())


def test_a_zip_declaring_gigabytes_is_refused_before_anything_is_extracted(tmp_path):
    archive = zipped(tmp_path / "bomb.zip", {"diffusion/forward.py": b"x = 1\n", "diffusion/data.bin": b"0" * 64})
    raw = bytearray(archive.read_bytes())
    central = raw.find(b"PK\x01\x02", raw.find(b"PK\x01\x02") + 1)  # data.bin's entry in the list of members
    struct.pack_into("<I", raw, central + 24, MAX_DECLARED_BYTES + 1)  # its size once unpacked
    archive.write_bytes(bytes(raw))
    staged = stage([archive], tmp_path / "stage")
    assert staged.package is None and "members that unpack to 1.0 GiB" in staged.problem
    assert not any((tmp_path / "stage").iterdir())


def test_a_directory_of_too_many_files_is_refused_before_anything_is_copied(tmp_path):
    hand_in = package(tmp_path / "alice" / "diffusion", "forward")
    for number in range(MAX_ENTRIES):
        (hand_in / "empty" / str(number)).mkdir(parents=True)
    (tmp_path / "alice" / ".git" / "objects").mkdir(parents=True)  # what .git holds is left out, and not counted
    staged = stage([tmp_path / "alice"], tmp_path / "stage")
    assert staged.package is None and f"alice holds more than {MAX_ENTRIES:,} files and folders" in staged.problem
    assert not any((tmp_path / "stage").iterdir())
    for number in range(4):  # diffusion/, forward.py, empty/ and .git/ make the count MAX_ENTRIES again
        (hand_in / "empty" / str(number)).rmdir()
    staged = stage([tmp_path / "alice"], tmp_path / "stage")
    assert staged.problem is None and (staged.package / "forward.py").is_file()


def test_non_utf8_part_files_get_a_note_naming_the_byte(tmp_path):
    hand_in = package(tmp_path / "hand-in", "forward")
    (hand_in / "ddpm.py").write_bytes(b"# caf\xe9 au lait\nx = 1\n")
    staged = stage([hand_in], tmp_path / "stage")
    assert staged.problem is None
    assert any("ddpm.py is not UTF-8" in note and "0xe9" in note for note in staged.notes)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: zipped(d / "empty.zip", {}), "empty zip"),
        (
            lambda d: (d / "corrupt.zip").write_bytes(b"PK\x03\x04 not really") and d / "corrupt.zip",
            "not a readable zip",
        ),
        (lambda d: zipped(d / "other.zip", {"notes.txt": b"hello"}), "no part of the assignment found"),
        (lambda d: written(d / "report.pdf", b"%PDF"), "hand in a directory, a .zip"),
        (lambda d: d / "missing", "does not exist"),
    ],
    ids=["empty-zip", "corrupt-zip", "no-parts", "pdf", "missing"],
)
def test_nothing_to_grade_is_a_clear_problem(tmp_path, make, expected):
    staged = stage([make(tmp_path)], tmp_path / "stage")
    assert staged.package is None and expected in staged.problem


def test_the_fingerprint_follows_the_content_not_the_place(tmp_path):
    first = package(tmp_path / "a", "forward")
    second = package(tmp_path / "b", "forward")
    assert fingerprint([first]) == fingerprint([second])
    (second / "forward.py").write_text((second / "forward.py").read_text() + "\n# edited\n")
    assert fingerprint([first]) != fingerprint([second])
    (second / "forward.py").rename(second / "forward2.py")
    assert fingerprint([second]) != fingerprint([first])


def test_a_whole_project_folder_stages_its_package_and_skips_environments_and_caches(tmp_path):
    """A student hands in their whole project: a virtual environment of more files than the cap, .git,
    node_modules, caches and egg-info are left out before anything is counted, silently."""
    project = tmp_path / "alice"
    package(project / "assignments" / "diffusion", "schedules", "forward")
    venv = project / ".venv" / "lib" / "python3.11" / "site-packages" / "torch"
    venv.mkdir(parents=True)
    for i in range(MAX_ENTRIES + 10):
        (venv / f"m{i}.py").write_bytes(b"x = 1\n")
    for junk in (".git", "node_modules", ".pytest_cache", "diffusion_kit.egg-info", "build"):
        (project / junk).mkdir()
        written(project / junk / "big.bin", b"0" * (MAX_FILE_BYTES + 1))
    staged = stage([project], tmp_path / "staged")
    assert staged.problem is None and staged.package is not None
    assert staged.package.name == "diffusion" and (staged.package / "forward.py").is_file()
    assert staged.notes == ()


def test_notes_are_capped_and_the_rest_counted(tmp_path):
    folder = package(tmp_path / "bob" / "diffusion", "schedules")
    for i in range(50):
        written(folder / f"data{i}.bin", b"0" * (MAX_FILE_BYTES + 1))
    staged = stage([tmp_path / "bob"], tmp_path / "staged")
    assert len(staged.notes) == MAX_NOTES and staged.notes[-1] == f"... and {50 - MAX_NOTES + 1} more files skipped"
