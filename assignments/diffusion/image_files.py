"""Image data sets read from files (provided): Fashion-MNIST, MNIST and CIFAR-10, checksums verified.

One implementation serves the three; each is described by an :class:`ImageFiles` record (:data:`IMAGE_FILES`).
Where a data set's files are looked for, in order:

1. the ``root`` argument, then the data set's environment variable (``DIFFUSION_FASHION_MNIST``,
   ``DIFFUSION_MNIST``, ``DIFFUSION_CIFAR10``): a directory holding the files themselves, the
   layout torchvision writes under its ``root`` (``MNIST/raw/...``, ``cifar-10-batches-py/...``), or
   the release archive (``cifar-10-python.tar.gz``); IDX files may be gzipped (``.gz``) or not;
2. a system directory: Debian's ``dataset-fashion-mnist`` package puts Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist`` (MNIST and CIFAR-10 have no such package);
3. with ``download=True`` only: torchvision's download (needs a network).

Every file is verified against the digest of the original release (:class:`Checksum`) before it is
installed, once, into the cache (``DIFFUSION_CACHE``, default ``~/.cache/diffusion-course``) in the
layout torchvision's dataset classes read; torchvision then reads it from there. A missing or corrupt
data set raises :class:`DataUnavailable` with a message saying how to get it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

import torch
from torch.utils.data import TensorDataset


class DataUnavailable(FileNotFoundError):
    """A data set's files are missing or corrupt; the message says how to get them."""


@dataclass(frozen=True)
class Checksum:
    """A file's expected digest: ``hashlib`` algorithm, hex digest, and whether it is of the gzipped file.

    ``gzipped=False``: the digest of the file's content (a ``.gz`` copy is decompressed first, so a
    repacked ``.gz`` such as Debian's passes). ``gzipped=True``: the digest of the release's ``.gz``
    itself, the only digest torchvision records for MNIST; such a file must be found as ``.gz``.
    """

    algorithm: Literal["sha256", "md5"]
    hexdigest: str
    gzipped: bool = False


@dataclass(frozen=True)
class ImageFiles:
    """How to find, verify and read one data set.

    Attributes:
        title: the data set's name in messages.
        torchvision_class: the :mod:`torchvision.datasets` class that reads (and downloads) it.
        folder: where that class reads the files, relative to its ``root`` (here the cache).
        files: each file of ``folder`` and its :class:`Checksum`.
        variable: the environment variable naming a directory that holds the files.
        how_to_get: the end of every :class:`DataUnavailable` message.
        system_dirs: directories a system package installs the files in.
        archive: the release's tarball, which a directory may hold instead of the files.
        num_classes: the number of classes (labels ``0..num_classes−1``).
    """

    title: str
    torchvision_class: str
    folder: str
    files: dict[str, Checksum]
    variable: str
    how_to_get: str
    system_dirs: tuple[Path, ...] = ()
    archive: str | None = None
    num_classes: int = 10


def _how_to_get(files: str, where: str, variable: str) -> str:
    return (
        f"put the files {files} ({where}) in a directory and pass root= or set {variable} to it, "
        "or pass download=True where there is a network"
    )


def _sha256(hexdigest: str) -> Checksum:
    return Checksum("sha256", hexdigest)


def _md5_of_gz(hexdigest: str) -> Checksum:
    return Checksum("md5", hexdigest, gzipped=True)


FASHION_MNIST = ImageFiles(
    title="Fashion-MNIST",
    torchvision_class="FashionMNIST",
    folder="FashionMNIST/raw",
    files={
        "train-images-idx3-ubyte": _sha256("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte": _sha256("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte": _sha256("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte": _sha256("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    variable="DIFFUSION_FASHION_MNIST",
    how_to_get="get Fashion-MNIST with `apt-get install dataset-fashion-mnist` (Debian, Ubuntu), or "
    + _how_to_get(
        "train-images-idx3-ubyte.gz etc.", "github.com/zalandoresearch/fashion-mnist", "DIFFUSION_FASHION_MNIST"
    ),
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
)
"""Fashion-MNIST (Xiao et al. 2017): SHA-256 of the decompressed IDX files."""

MNIST = ImageFiles(
    title="MNIST",
    torchvision_class="MNIST",
    folder="MNIST/raw",
    files={
        "train-images-idx3-ubyte": _md5_of_gz("f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte": _md5_of_gz("d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte": _md5_of_gz("9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte": _md5_of_gz("ec29112dd5afa0611ce80d1b7f02629c"),
    },
    variable="DIFFUSION_MNIST",
    how_to_get="get MNIST: "
    + _how_to_get(
        "train-images-idx3-ubyte.gz etc., gzipped as released", "yann.lecun.com/exdb/mnist", "DIFFUSION_MNIST"
    ),
)
"""MNIST (LeCun et al. 1998): torchvision's MD5 of the released ``.gz`` files (``MNIST.resources``)."""

CIFAR10 = ImageFiles(
    title="CIFAR-10",
    torchvision_class="CIFAR10",
    folder="cifar-10-batches-py",
    files={
        "data_batch_1": Checksum("md5", "c99cafc152244af753f735de768cd75f"),
        "data_batch_2": Checksum("md5", "d4bba439e000b95fd0a9bffe97cbabec"),
        "data_batch_3": Checksum("md5", "54ebc095f3ab1f0389bbae665268c751"),
        "data_batch_4": Checksum("md5", "634d18415352ddfa80567beed471001a"),
        "data_batch_5": Checksum("md5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        "test_batch": Checksum("md5", "40351d587109b95175f43aff81a1287e"),
        "batches.meta": Checksum("md5", "5ff9c542aee3614f3951f8cda6e48888"),
    },
    variable="DIFFUSION_CIFAR10",
    how_to_get="get CIFAR-10: "
    + _how_to_get(
        "cifar-10-python.tar.gz or its extracted batches", "www.cs.toronto.edu/~kriz/cifar.html", "DIFFUSION_CIFAR10"
    ),
    archive="cifar-10-python.tar.gz",
)
"""CIFAR-10 (Krizhevsky 2009), python version: torchvision's MD5 of the batches (``CIFAR10.train_list`` etc.)."""

IMAGE_FILES: dict[str, ImageFiles] = {"fashion28": FASHION_MNIST, "mnist28": MNIST, "cifar32": CIFAR10}
"""The data sets read from files, under their names in :func:`diffusion.data.load_dataset`."""


def cache_dir() -> Path:
    """Where installed data sets and other downloads are kept: ``DIFFUSION_CACHE`` or ``~/.cache/diffusion-course``."""
    return Path(os.environ.get("DIFFUSION_CACHE", Path.home() / ".cache" / "diffusion-course"))


def _file_in(place: Path, name: str, checksum: Checksum) -> Path | None:
    """``place/name`` or ``place/name.gz`` (only the ``.gz`` when the digest is of the ``.gz``), if present."""
    names = [f"{name}.gz"] if checksum.gzipped else [name, f"{name}.gz"]
    return next((place / n for n in names if (place / n).is_file()), None)


def _read(path: Path, spec: ImageFiles) -> tuple[bytes, bytes]:
    """A file's bytes as stored and as content (decompressed if ``.gz``)."""
    try:
        stored = path.read_bytes()
        return stored, gzip.decompress(stored) if path.suffix == ".gz" else stored
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataUnavailable(f"cannot read {path} ({error}); {spec.how_to_get}") from None


def _verified(spec: ImageFiles, name: str, stored: bytes, content: bytes, where: str) -> bytes:
    """``content`` if the digest of ``name`` (of ``stored`` when it is the ``.gz``'s) is the release's, else raise."""
    checksum = spec.files[name]
    digest = hashlib.new(checksum.algorithm, stored if checksum.gzipped else content).hexdigest()
    if digest != checksum.hexdigest:
        raise DataUnavailable(
            f"{where} is not {spec.title}'s {name}: its {checksum.algorithm.upper()} is {digest}, expected "
            f"{checksum.hexdigest} (a truncated or corrupted file?); {spec.how_to_get}"
        )
    return content


def _from_directory(spec: ImageFiles, place: Path) -> dict[str, bytes] | None:
    """Every file of ``spec`` found in ``place``, verified; ``None`` if one is missing."""
    paths = {name: _file_in(place, name, checksum) for name, checksum in spec.files.items()}
    if None in paths.values():
        return None
    return {name: _verified(spec, name, *_read(path, spec), str(path)) for name, path in paths.items()}


def _from_archive(spec: ImageFiles, path: Path) -> dict[str, bytes]:
    """Every file of ``spec`` extracted from the tarball ``path`` (members ``<folder>/<name>``), verified."""
    try:
        with tarfile.open(path) as archive:
            members = {PurePath(m.name).name: m for m in archive.getmembers() if m.isfile()}
            found = {name: archive.extractfile(members[name]).read() for name in spec.files if name in members}
    except (OSError, EOFError, tarfile.TarError) as error:
        raise DataUnavailable(f"cannot read {path} ({error}); {spec.how_to_get}") from None
    missing = [name for name in spec.files if name not in found]
    if missing:
        raise DataUnavailable(f"{path} lacks {', '.join(missing)}; {spec.how_to_get}")
    return {name: _verified(spec, name, data, data, f"{path}:{name}") for name, data in found.items()}


def _find(spec: ImageFiles, root: Path | str | None) -> dict[str, bytes] | None:
    """The verified files from the first place of the search order that holds them all, or ``None``."""
    for directory in (Path(d) for d in (root, os.environ.get(spec.variable), *spec.system_dirs) if d):
        for place in (directory, directory / spec.folder):
            found = _from_directory(spec, place)
            if found is not None:
                return found
        if spec.archive is not None and (directory / spec.archive).is_file():
            return _from_archive(spec, directory / spec.archive)
    return None


def _install(files: dict[str, bytes], folder: Path) -> None:
    """Write verified files into ``folder``, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = folder / f"{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)


def _download(spec: ImageFiles, cache: Path) -> None:
    """Let torchvision download ``spec`` into ``cache``, then verify what it wrote (and remove it if corrupt)."""
    import torchvision.datasets

    failure = None
    try:
        getattr(torchvision.datasets, spec.torchvision_class)(str(cache), download=True)
    except RuntimeError as error:  # the download failed, torchvision's MD5 did not match, or the files do not parse
        failure = error
    folder = cache / spec.folder
    try:
        files = _from_directory(spec, folder)
    except DataUnavailable:
        shutil.rmtree(folder)
        raise
    if files is None:
        problem = failure or f"torchvision's download left {spec.title} incomplete in {folder}"
        raise DataUnavailable(f"{problem}; {spec.how_to_get}")
    _install(files, folder)


def load_image_files(
    name: str, split: Literal["train", "test"] = "train", root: Path | str | None = None, download: bool = False
) -> TensorDataset:
    """The data set ``name`` of :data:`IMAGE_FILES`: pairs ``(x, y)``, ``x`` float32 ``(C, H, W)`` in [−1, 1].

    Pixels ``p ∈ {0, …, 255}`` become ``x = p / 127.5 − 1``. Shapes: Fashion-MNIST and MNIST
    ``(1, 28, 28)``, 60 000 train and 10 000 test images; CIFAR-10 ``(3, 32, 32)``, 50 000 and 10 000.
    Labels ``y`` are long, in 0..9.

    Args:
        split: ``"train"`` or ``"test"``.
        root: a directory holding the files (see the module docstring for the search order).
        download: let torchvision download the files when none are found.

    Raises:
        ValueError: for an unknown name or split.
        DataUnavailable: the files are nowhere to be found, or corrupt; the message says how to get them.
    """
    import torchvision.datasets

    if name not in IMAGE_FILES:
        raise ValueError(f"no data set {name!r} is read from files; known: {', '.join(IMAGE_FILES)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    spec, cache = IMAGE_FILES[name], cache_dir()
    if not all((cache / spec.folder / file).is_file() for file in spec.files):
        found = _find(spec, root)
        if found is not None:
            _install(found, cache / spec.folder)
        elif download:
            _download(spec, cache)
        else:
            raise DataUnavailable(f"{spec.title} is not on this machine; {spec.how_to_get}")
    try:
        data = getattr(torchvision.datasets, spec.torchvision_class)(str(cache), train=split == "train")
    except RuntimeError as error:  # torchvision found the installed files missing or corrupt
        raise DataUnavailable(f"{error} (in {cache / spec.folder}); {spec.how_to_get}") from None
    pixels = torch.as_tensor(data.data)  # (N, H, W) uint8, or (N, H, W, C) for colour
    pixels = pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)  # (N, C, H, W)
    images = pixels.to(torch.float32).div(127.5).sub(1).contiguous()
    return TensorDataset(images, torch.as_tensor(data.targets, dtype=torch.long))
