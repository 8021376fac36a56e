"""Fashion-MNIST from files on this machine (provided): Debian's package, a directory you name, or a download.

Where the four IDX files are looked for, in order:

1. the ``root`` argument, then the ``DIFFUSION_FASHION_MNIST`` environment variable: a directory
   holding ``train-images-idx3-ubyte`` etc., gzipped (``.gz``) or not;
2. Debian's ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``), which
   puts them in ``/usr/share/datasets/fashion-mnist``;
3. with ``download=True`` only: torchvision's download (needs a network).

Each file's decompressed bytes must have the SHA-256 of the original release (:data:`SHA256`; a
repacked ``.gz``, such as Debian's, is fine). The files are decompressed once into the cache
(``DIFFUSION_CACHE``, default ``~/.cache/diffusion-course``) in the layout torchvision's
:class:`~torchvision.datasets.FashionMNIST` reads, and torchvision reads them from there.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import Dataset, TensorDataset

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
"""SHA-256 of the decompressed IDX files of Fashion-MNIST (Xiao et al. 2017)."""
HOW_TO_GET = (
    "get Fashion-MNIST with `apt-get install dataset-fashion-mnist` (Debian, Ubuntu), or put the four files "
    f"{', '.join(f'{name}.gz' for name in SHA256)} (github.com/zalandoresearch/fashion-mnist) in a directory "
    "and pass root= or set DIFFUSION_FASHION_MNIST to it, or pass download=True where there is a network"
)


class DataUnavailable(FileNotFoundError):
    """A data set's files are missing or corrupt; the message says how to get them."""


def cache_dir() -> Path:
    """Where decompressed data sets are kept: ``DIFFUSION_CACHE`` or ``~/.cache/diffusion-course``."""
    return Path(os.environ.get("DIFFUSION_CACHE", Path.home() / ".cache" / "diffusion-course"))


def _source(root: Path | str | None) -> Path | None:
    """The first directory of the search order that holds all four files, or ``None``."""
    candidates = [root, os.environ.get("DIFFUSION_FASHION_MNIST"), DEBIAN_DIR]
    for candidate in (Path(c) for c in candidates if c):
        if all((candidate / name).is_file() or (candidate / f"{name}.gz").is_file() for name in SHA256):
            return candidate
    return None


def _verified(data: bytes, name: str, where: Path) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[name]:
        raise DataUnavailable(
            f"{where} is not Fashion-MNIST's {name}: its SHA-256 is {digest}, expected {SHA256[name]} (a truncated "
            f"or corrupted file?); {HOW_TO_GET}"
        )
    return data


def _install(source: Path, raw: Path) -> None:
    """Decompress and verify the four files of ``source`` into torchvision's ``raw`` folder."""
    raw.mkdir(parents=True, exist_ok=True)
    for name in SHA256:
        packed = source / f"{name}.gz"
        path = packed if packed.is_file() and not (source / name).is_file() else source / name
        try:
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise DataUnavailable(f"cannot read {path} ({error}); {HOW_TO_GET}") from None
        tmp = raw / f"{name}.tmp"
        tmp.write_bytes(_verified(data, name, path))
        os.replace(tmp, raw / name)


def fashion_mnist(
    split: Literal["train", "test"] = "train", root: Path | str | None = None, download: bool = False
) -> Dataset:
    """Fashion-MNIST as ``(x, y)`` pairs: ``x`` float32 ``(1, 28, 28)`` in [−1, 1], ``y`` long in 0..9.

    Args:
        split: ``"train"`` (60 000 images) or ``"test"`` (10 000).
        root: a directory holding the IDX files (see the module docstring for the search order).
        download: let torchvision download the files when none are found.

    Raises:
        DataUnavailable: the files are nowhere to be found (or corrupt); the message says how to get them.
    """
    from torchvision.datasets import FashionMNIST

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    cache = cache_dir()
    raw = cache / "FashionMNIST" / "raw"
    installed = all((raw / name).is_file() for name in SHA256)
    source = None if installed else _source(root)
    if source is not None:
        _install(source, raw)
    elif not installed and not download:
        raise DataUnavailable(f"Fashion-MNIST is not on this machine; {HOW_TO_GET}")
    try:
        data = FashionMNIST(str(cache), train=split == "train", download=download and not installed)
    except RuntimeError as error:  # torchvision: not found, or its download failed
        raise DataUnavailable(f"{error}; {HOW_TO_GET}") from None
    if download and not installed:
        for name in SHA256:
            _verified((raw / name).read_bytes(), name, raw / name)
    images = data.data.to(torch.float32).div(127.5).sub(1).unsqueeze(1)  # (N, 1, 28, 28)
    return TensorDataset(images, data.targets.to(torch.long))
