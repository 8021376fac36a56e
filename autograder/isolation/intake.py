"""Take in one submission as a student hands it in and stage a safe copy of it to grade.

A submission is a directory (a ``diffusion/`` package, or its ``.py`` files laid flat, possibly one
folder down), a ``.zip`` of either, or ``.py`` files named one by one. Staging copies regular files
only, and only what is safe and small:

- zip members with an absolute path or a ``..`` component, and symbolic links (in a zip or a
  directory), are skipped: nothing is ever written or read outside the staging directory;
- a file over :data:`MAX_FILE_BYTES`, or past :data:`MAX_TOTAL_BYTES` in all, is skipped;
- macOS metadata (``__MACOSX/``, ``._*``) and ``__pycache__`` are left out silently.

Every skip becomes a note for the student's report. A submission with nothing to grade (an empty
or corrupt zip, no part module anywhere) gets a ``problem`` saying what was expected instead.

A submission over a cap is refused whole, with a ``problem`` and nothing staged: more than
:data:`MAX_ENTRIES` files and folders (a zip's members, or what a directory holds outside
``.git`` and the like), or a zip whose members declare more than :data:`MAX_DECLARED_BYTES` in all.
Both are checked before anything is extracted or copied, and a zip's own end record is checked
before its list of members is even read (:data:`MAX_DIRECTORY_BYTES`), so a zip of millions of
empty members costs a few reads. Refused rather than staged up to the cap, because which files
come first in a zip is up to the tool that made it: staging "the first 10,000" would grade some
such hand-ins and not others, by chance, while every honest assignment is far below the caps (a
few dozen files), and the message says what to hand in instead (the ``diffusion/`` folder, without
data, a virtual environment or ``.git``).

The ``fingerprint`` of the submission as handed in lets a batch tell whether it changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autograder.parts import PART_NAMES

MAX_FILE_BYTES = 1 << 20
"""A part module is a few KiB; a file over 1 MiB is not source code and is skipped."""
MAX_TOTAL_BYTES = 16 << 20
MAX_ENTRIES = 10_000
"""Files and folders a submission may hold: a few dozen make an assignment; more than this is a
virtual environment, a dataset or a zip made to exhaust the grader."""
MAX_DECLARED_BYTES = 1 << 30
"""What a zip's members may declare in all once unpacked: a checkpoint zipped by mistake is below it (and
skipped with a note), a zip bomb far above."""
MAX_DIRECTORY_BYTES = MAX_ENTRIES * 512
"""What a zip's end record may declare as the size of its list of members (512 bytes a member: a 46-byte
record, its name and extra fields), read before that list: whatever count the record claims, this bounds
what :class:`zipfile.ZipFile` parses."""
MAX_DEPTH = 3
"""How many folders down the part modules may be (``alice/diffusion/forward.py`` is two)."""
JUNK = (
    "__MACOSX", "__pycache__", ".DS_Store", ".git", ".hg", ".svn",
    ".venv", "venv", ".env", "env", ".conda", "site-packages", "node_modules",
    "build", "dist", ".eggs", ".tox", ".nox", ".ipynb_checkpoints",
    ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", ".cache", ".idea", ".vscode",
)  # fmt: skip
"""Folders and files left out silently, before anything is counted: metadata, version control, virtual
environments, installed packages, build output and caches (a student's whole project folder stages as its
``diffusion/`` and the few files beside it). A ``*.egg-info`` folder too."""
MAX_NOTES = 20
"""Notes kept per submission; the rest are counted in one last note."""
UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, NotImplementedError)


@dataclass(frozen=True)
class Staged:
    """A staged submission: where its part modules are, and what staging had to say."""

    package: Path | None
    """The directory holding the part modules; ``None`` when there is nothing to grade."""
    notes: tuple[str, ...]
    """What was skipped or looks wrong, for the report (the submission is graded nonetheless)."""
    problem: str | None
    """Why the submission cannot be graded at all, or ``None``."""


def fingerprint(sources: Sequence[Path]) -> str:
    """SHA-256 of a submission as handed in: its files' names (relative to a directory) and bytes."""
    digest = hashlib.sha256()
    for source in map(Path, sources):
        root = source if source.is_dir() else source.parent
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        _digest_files(digest, root, files)
    return digest.hexdigest()


def package_fingerprint(package: Path) -> str:
    """SHA-256 of the package a grading runs (what the sandboxed workers get a copy of): the names and bytes of
    every regular file under ``package``, Python's caches left out (importing the package writes them).

    The same files always give the same fingerprint, wherever they are staged; the hidden checks key what
    they draw per submission with it (:func:`autograder.secret.derive`)."""
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.relative_to(package).parts)
    digest = hashlib.sha256(b"package\0")
    _digest_files(digest, package, files)
    return digest.hexdigest()


def _digest_files(digest, root: Path, files: Sequence[Path]) -> None:
    """Feed each regular file of ``files`` (links skipped) to ``digest``: its name (relative to ``root``), size
    and bytes."""
    for file in (f for f in files if f.is_file() and not f.is_symlink()):
        name = str(file.relative_to(root)).encode("utf-8", "surrogateescape")
        digest.update(name + b"\0" + str(file.stat().st_size).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)


@contextlib.contextmanager
def staged(sources: Sequence[Path]) -> Iterator[Staged]:
    """Stage ``sources`` (one directory or ``.zip``, or ``.py`` files) in a temporary directory."""
    tmp = Path(tempfile.mkdtemp(prefix="autograder-submission-"))
    try:
        yield stage(sources, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def stage(sources: Sequence[Path], dest: Path) -> Staged:
    """Copy what is safe of ``sources`` into ``dest`` and find the part modules there."""
    dest.mkdir(parents=True, exist_ok=True)
    copier = _Copier(dest)
    sources = [Path(s) for s in sources]
    missing = [str(s) for s in sources if not s.exists() and not s.is_symlink()]
    if missing:
        return Staged(None, (), f"{', '.join(missing)} does not exist")
    if len(sources) == 1 and (sources[0].is_dir() or sources[0].suffix.lower() == ".zip"):
        problem = copier.directory(sources[0]) if sources[0].is_dir() else copier.archive(sources[0])
        if problem:
            return Staged(None, tuple(copier.notes), problem)
    elif all(s.suffix == ".py" for s in sources):
        for source in sources:
            copier.file(source, PurePosixPath(source.name))
    else:
        return Staged(
            None,
            (),
            f"cannot grade {', '.join(s.name for s in sources)}: hand in a directory, a .zip, or the .py files",
        )
    try:
        package = find_package(dest)
    except FileNotFoundError as error:
        return Staged(None, _capped(copier.notes), f"{error}; found {copier.summary()}")
    return Staged(package, _capped(copier.notes + _encoding_notes(package)), None)


class _Copier:
    """Copies files into the staging directory, keeping count and noting every skip."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.total = 0
        self.copied: list[str] = []
        self.notes: list[str] = []

    def summary(self) -> str:
        if not self.copied:
            return "no files"
        shown = ", ".join(self.copied[:8])
        return f"{len(self.copied)} file(s): {shown}{', ...' if len(self.copied) > 8 else ''}"

    def _admit(self, name: PurePosixPath, size: int) -> bool:
        if any(_junk(part) for part in name.parts):
            return False
        if size > MAX_FILE_BYTES:
            self.notes.append(f"skipped {name}: {size / 2**20:.1f} MiB is too large (the limit is 1 MiB a file)")
            return False
        if self.total + size > MAX_TOTAL_BYTES:
            self.notes.append(f"skipped {name}: the submission is over {MAX_TOTAL_BYTES >> 20} MiB in all")
            return False
        self.total += size
        self.copied.append(str(name))
        return True

    def _target(self, name: PurePosixPath) -> Path:
        target = self.dest.joinpath(*name.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def file(self, source: Path, name: PurePosixPath) -> None:
        if source.is_symlink() or not source.is_file():
            self.notes.append(f"skipped {name}: not a regular file (links are not followed)")
            return
        if self._admit(name, source.stat().st_size):
            shutil.copyfile(source, self._target(name))

    def directory(self, root: Path) -> str | None:
        """Copy the safe files under ``root``; a problem, and nothing copied, when it holds more than
        :data:`MAX_ENTRIES` files and folders. Links to folders are not followed (a note each)."""
        files: list[Path] = []
        folders, seen = [root], 0
        while folders:  # depth first, each folder's files before its folders, as os.walk; no recursion
            here = folders.pop()
            try:
                with os.scandir(here) as listing:  # read no more than the cap allows, however large the folder
                    children = sorted(itertools.islice(listing, MAX_ENTRIES + 1 - seen), key=lambda c: c.name)
            except OSError as error:
                self.notes.append(f"skipped {here.relative_to(root)}/: it cannot be read ({error.strerror})")
                continue
            seen += len(children)
            if seen > MAX_ENTRIES:
                return _too_many(root.name, f"more than {MAX_ENTRIES:,} files and folders")
            subfolders = []
            for child in children:
                path = Path(child.path)
                if child.is_dir(follow_symlinks=False):
                    subfolders += [] if _junk(child.name) else [path]
                elif child.is_symlink() and path.is_dir():
                    self.notes.append(f"skipped {path.relative_to(root)}: a link (links are not followed)")
                else:
                    files.append(path)
            folders += reversed(subfolders)
        for path in files:
            self.file(path, PurePosixPath(path.relative_to(root).as_posix()))
        return None

    def archive(self, path: Path) -> str | None:
        """Extract the safe members of a zip; a problem if it is not a zip, holds no file or is over a cap
        (then nothing is extracted)."""
        try:
            declared = _declared_directory(path)
            if declared is not None and (declared[0] > MAX_ENTRIES or declared[1] > MAX_DIRECTORY_BYTES):
                return _too_many(path.name, f"more than {MAX_ENTRIES:,} members")
            with zipfile.ZipFile(path) as archive:
                if len(archive.infolist()) > MAX_ENTRIES:  # an end record that understated the count
                    return _too_many(path.name, f"{len(archive.infolist()):,} members")
                members = [m for m in archive.infolist() if not m.is_dir()]
                if not members:
                    return f"{path.name} is an empty zip: zip the diffusion/ folder (or its .py files) and hand it in"
                size = sum(m.file_size for m in members)
                if size > MAX_DECLARED_BYTES:
                    return _too_many(path.name, f"members that unpack to {size / 2**30:,.1f} GiB")
                for member in members:
                    self._member(archive, member)
        except UNREADABLE as error:
            # RuntimeError: an encrypted member; NotImplementedError: an unknown compression method.
            return f"{path.name} is not a readable zip ({error}): zip the diffusion/ folder and hand it in again"
        return None

    def _member(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
        name = PurePosixPath(member.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or ":" in member.filename:
            self.notes.append(f"skipped {member.filename!r} in the zip: a path outside the submission")
            return
        if stat.S_ISLNK(member.external_attr >> 16):
            self.notes.append(f"skipped {member.filename!r} in the zip: a symbolic link (links are not followed)")
            return
        if self._admit(name, member.file_size):
            # zipfile reads no more than the stated size and then checks the CRC: a header that lies about
            # the size (a zip bomb) makes the zip unreadable instead of filling the disk.
            self._target(name).write_bytes(archive.read(member))


def _junk(name: str) -> bool:
    """Whether a file or folder called ``name`` is left out (see :data:`JUNK`)."""
    return name in JUNK or name.startswith("._") or name.endswith(".egg-info")


def _capped(notes: list[str]) -> tuple[str, ...]:
    """At most :data:`MAX_NOTES` notes, the rest counted in the last one."""
    if len(notes) <= MAX_NOTES:
        return tuple(notes)
    return (*notes[: MAX_NOTES - 1], f"... and {len(notes) - MAX_NOTES + 1} more files skipped")


def _too_many(name: str, what: str) -> str:
    """The problem of a submission over a cap: what it holds, the caps, and what to hand in instead."""
    return (
        f"{name} holds {what}: a submission may hold at most {MAX_ENTRIES:,} files and folders, "
        f"{MAX_DECLARED_BYTES >> 30} GiB once unpacked. Hand in the diffusion/ folder alone (no data, virtual "
        "environment or .git), zipped or not"
    )


def _declared_directory(path: Path) -> tuple[int, int] | None:
    """How many members the zip at ``path`` declares in its end record and the size of their list, read with
    the very function :class:`zipfile.ZipFile` reads them with (Zip64 too); ``None`` when there is none."""
    find = getattr(zipfile, "_EndRecData", None)
    if find is None:  # a later Python: the count is still checked once zipfile has read the list
        return None
    with path.open("rb") as handle:
        record = find(handle)
    return None if not record else (record[zipfile._ECD_ENTRIES_TOTAL], record[zipfile._ECD_SIZE])


def find_package(root: Path) -> Path:
    """The directory holding the student's part modules: the shallowest under ``root``, up to
    :data:`MAX_DEPTH` − 1 folders down, that holds one (``diffusion/`` first at one depth).

    Raises:
        FileNotFoundError: saying what was looked for, when no directory holds a part module.
    """
    level = [root]
    for _ in range(MAX_DEPTH):
        for folder in sorted(level, key=lambda p: (p.name != "diffusion", str(p))):
            if any((folder / f"{name}.py").is_file() for name in PART_NAMES):
                return folder
        level = [child for folder in level for child in sorted(folder.iterdir()) if child.is_dir()]
    expected = ", ".join(f"{name}.py" for name in PART_NAMES)
    raise FileNotFoundError(
        f"no part of the assignment found: expected a diffusion/ folder or the files {expected} "
        f"(up to {MAX_DEPTH - 1} folders down)"
    )


def _encoding_notes(package: Path) -> list[str]:
    notes = []
    for name in PART_NAMES:
        path = package / f"{name}.py"
        if not path.is_file():
            continue
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            notes.append(
                f"{name}.py is not UTF-8 text (byte 0x{path.read_bytes()[error.start]:02x} at offset {error.start}): "
                "Python reads source code as UTF-8, so outside a comment this is a syntax error; save the file "
                "with the UTF-8 encoding"
            )
    return notes
