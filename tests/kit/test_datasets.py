"""Image data sets from files (Fashion-MNIST, MNIST, CIFAR-10): a named directory, an environment variable,
Debian's package, a local "download"; checksums verified, and a missing or corrupt data set stops with a
message saying how to get it.

Most tests use tiny stand-ins in the real formats (IDX; CIFAR-10's pickled batches and tarball) with
their own checksums; the last ones read the real Fashion-MNIST where Debian's ``dataset-fashion-mnist``
is installed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10, MNIST, FashionMNIST

from diffusion import image_files as imf
from diffusion.data import load_dataset

COUNTS = {"train": 5, "test": 3}
NAMES = tuple(imf.IMAGE_FILES)


def idx_files() -> dict[str, bytes]:
    """A tiny data set in the IDX format: ``COUNTS`` images of 28×28 and their labels."""
    files = {}
    for prefix, count in (("train", COUNTS["train"]), ("t10k", COUNTS["test"])):
        pixels = bytes((i * 37 + j) % 256 for i in range(count) for j in range(28 * 28))
        files[f"{prefix}-images-idx3-ubyte"] = struct.pack(">IIII", 0x803, count, 28, 28) + pixels
        files[f"{prefix}-labels-idx1-ubyte"] = struct.pack(">II", 0x801, count) + bytes(i % 10 for i in range(count))
    return files


def cifar_files() -> dict[str, bytes]:
    """A tiny CIFAR-10 in its pickled format: one image per training batch (five) and three test images."""

    def batch(count: int, offset: int) -> bytes:
        data = (np.arange(count * 3072).reshape(count, 3072) * 7 + offset) % 256
        return pickle.dumps({"data": data.astype(np.uint8), "labels": [(offset + i) % 10 for i in range(count)]})

    files = {f"data_batch_{k}": batch(1, k) for k in range(1, 6)}
    files["test_batch"] = batch(COUNTS["test"], 0)
    files["batches.meta"] = pickle.dumps({"label_names": [f"class {k}" for k in range(10)]})
    return files


def content(name: str) -> dict[str, bytes]:
    return cifar_files() if name == "cifar32" else idx_files()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def checksum(old: imf.Checksum, data: bytes) -> imf.Checksum:
    """``old``'s kind of checksum, for the stand-in's ``data``."""
    return replace(old, hexdigest=hashlib.new(old.algorithm, gz(data) if old.gzipped else data).hexdigest())


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A function ``name -> stand-in files``; with the stand-ins' checksums in place of the real ones, an
    empty cache, no system directory and no environment variable."""
    monkeypatch.setenv("DIFFUSION_CACHE", str(tmp_path / "cache"))
    for name, spec in imf.IMAGE_FILES.items():
        files = {file: checksum(spec.files[file], data) for file, data in content(name).items()}
        monkeypatch.setitem(imf.IMAGE_FILES, name, replace(spec, files=files, system_dirs=(tmp_path / "none",)))
        monkeypatch.delenv(spec.variable, raising=False)
    torchvision_checks_cifar(cifar_files(), monkeypatch)
    return content


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def torchvision_checks_cifar(files: dict[str, bytes], monkeypatch) -> None:
    """torchvision's CIFAR10 checks the MD5 of the batches it reads: give it those of ``files``."""
    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{k}", md5(files[f"data_batch_{k}"])] for k in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(files["test_batch"])]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(files["batches.meta"])})


def written(directory: Path, files: dict[str, bytes], packed: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if packed:
            (directory / f"{name}.gz").write_bytes(gz(data))
        else:
            (directory / name).write_bytes(data)
    return directory


def tarball(path: Path, files: dict[str, bytes]) -> Path:
    """CIFAR-10's release layout: a ``.tar.gz`` holding ``cifar-10-batches-py/<file>``."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


LAYOUTS = {
    "fashion28": ["gz", "raw", "torchvision"],
    "mnist28": ["gz", "torchvision"],
    "cifar32": ["raw", "torchvision", "tarball"],
}


def source(tmp_path: Path, name: str, files: dict[str, bytes], layout: str) -> Path:
    """A directory holding the stand-in as ``layout`` says."""
    spec = imf.IMAGE_FILES[name]
    root = tmp_path / f"mine-{layout}"
    if layout == "tarball":
        root.mkdir()
        tarball(root / spec.archive, files)
    elif layout == "torchvision":
        written(root / spec.folder, files, packed=spec.files[next(iter(files))].gzipped)
    else:
        written(root, files, packed=layout == "gz")
    return root


@pytest.mark.parametrize(("name", "layout"), [(n, layout) for n in NAMES for layout in LAYOUTS[n]])
def test_a_named_directory_is_read_verified_and_scaled(tmp_path, tiny, name, layout):
    root = source(tmp_path, name, tiny(name), layout)
    train = imf.load_image_files(name, "train", root=root)
    test = imf.load_image_files(name, "test", root=root)
    assert len(test) == COUNTS["test"] and len(train) == COUNTS["train"]
    x, y = test[1]
    shape = (3, 32, 32) if name == "cifar32" else (1, 28, 28)
    assert x.shape == shape and x.dtype == torch.float32 and y.dtype == torch.long and int(y) == 1
    assert x.min() >= -1 and x.max() <= 1
    first = torch.tensor([3072, 3073, 3074]) * 7 % 256 if name == "cifar32" else torch.tensor([37, 38, 39])
    assert torch.equal(x.flatten()[:3], first / 127.5 - 1)  # CIFAR-10: channel-first, as in its batches


@pytest.mark.parametrize("name", NAMES)
def test_the_environment_variable_names_the_directory(tmp_path, tiny, monkeypatch, name):
    monkeypatch.setenv(imf.IMAGE_FILES[name].variable, str(source(tmp_path, name, tiny(name), "torchvision")))
    assert len(load_dataset(name, split="test")) == COUNTS["test"]
    subset = load_dataset(name, n=2, seed=1, split="test")
    again = load_dataset(name, n=2, seed=1, split="test")
    assert len(subset) == 2 and subset.num_classes == 10 and torch.equal(subset.tensors[0], again.tensors[0])


@pytest.mark.parametrize("name", NAMES)
def test_a_corrupt_file_is_refused_with_its_checksum(tmp_path, tiny, name):
    files = tiny(name)
    victim = next(iter(files))
    layout = LAYOUTS[name][0]
    root = source(tmp_path, name, {**files, victim: files[victim][:-1] + b"\x07"}, layout)
    algorithm = imf.IMAGE_FILES[name].files[victim].algorithm.upper()
    with pytest.raises(imf.DataUnavailable, match=f"not .*'s {victim}: its {algorithm} is .* expected"):
        imf.load_image_files(name, "test", root=root)
    assert not (Path(imf.cache_dir()) / imf.IMAGE_FILES[name].folder).exists(), "nothing is installed"


def test_a_truncated_archive_is_refused(tmp_path, tiny):
    root = source(tmp_path, "cifar32", tiny("cifar32"), "tarball")
    archive = root / imf.IMAGE_FILES["cifar32"].archive
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(imf.DataUnavailable, match="cannot read .*cifar-10-python.tar.gz"):
        imf.load_image_files("cifar32", "test", root=root)


HOW_TO_GET = {
    "fashion28": "apt-get install dataset-fashion-mnist.*DIFFUSION_FASHION_MNIST",
    "mnist28": "train-images-idx3-ubyte.gz.*DIFFUSION_MNIST.*download=True",
    "cifar32": "cifar-10-python.tar.gz.*DIFFUSION_CIFAR10.*download=True",
}


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_data_set_says_how_to_get_it(tiny, name):
    with pytest.raises(imf.DataUnavailable, match=f"is not on this machine; get .*{HOW_TO_GET[name]}"):
        load_dataset(name)


def test_decompressed_mnist_is_not_accepted_since_only_its_gz_digest_is_known(tmp_path, tiny):
    root = written(tmp_path / "raw", tiny("mnist28"), packed=False)
    with pytest.raises(imf.DataUnavailable, match="MNIST is not on this machine; .*gzipped as released"):
        imf.load_image_files("mnist28", root=root)


@pytest.fixture
def mirror(tmp_path):
    """A directory served over HTTP on 127.0.0.1 (no network needed): ``(directory, url)``."""
    directory = tmp_path / "mirror"
    directory.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield directory, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def serve(name: str, files: dict[str, bytes], mirror: tuple[Path, str], monkeypatch) -> None:
    """Put ``files`` on the mirror in the release's form and point torchvision's class at it."""
    directory, url = mirror
    if name == "cifar32":
        archive = tarball(directory / CIFAR10.filename, files)
        monkeypatch.setattr(CIFAR10, "url", url + CIFAR10.filename)
        monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive.read_bytes()))
        torchvision_checks_cifar(files, monkeypatch)
        return
    written(directory, files)
    cls = FashionMNIST if name == "fashion28" else MNIST
    monkeypatch.setattr(cls, "mirrors", [url])
    monkeypatch.setattr(cls, "resources", [(f"{n}.gz", md5((directory / f"{n}.gz").read_bytes())) for n in files])


@pytest.mark.parametrize("name", NAMES)
def test_the_download_path_with_a_local_mirror(tiny, mirror, monkeypatch, name):
    serve(name, tiny(name), mirror, monkeypatch)
    assert len(imf.load_image_files(name, "test", download=True)) == COUNTS["test"]
    for file in mirror[0].iterdir():
        file.unlink()
    assert len(imf.load_image_files(name, "test")) == COUNTS["test"]  # from the cache, no download asked


@pytest.mark.parametrize("name", ["fashion28", "cifar32"])
def test_a_download_that_differs_from_the_release_is_refused_and_removed(tiny, mirror, monkeypatch, name):
    files = tiny(name)
    victim = next(iter(files))
    serve(name, {**files, victim: files[victim] + b"\0"}, mirror, monkeypatch)  # torchvision's MD5s agree with it
    with pytest.raises(imf.DataUnavailable, match=f"'s {victim}: its"):
        imf.load_image_files(name, download=True)
    assert not (imf.cache_dir() / imf.IMAGE_FILES[name].folder).exists()


def test_a_failed_download_says_how_to_get_it(tiny, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # the discard port: nothing listens
    with pytest.raises(imf.DataUnavailable, match="(?s)Error downloading .*DIFFUSION_MNIST"):
        imf.load_image_files("mnist28", download=True)


debian = pytest.mark.skipif(
    not all((imf.FASHION_MNIST.system_dirs[0] / f"{name}.gz").is_file() for name in imf.FASHION_MNIST.files),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)


@debian
def test_debians_package_is_the_real_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_CACHE", str(tmp_path / "cache"))
    train, test = imf.load_image_files("fashion28", "train"), imf.load_image_files("fashion28", "test")
    assert len(train) == 60_000 and len(test) == 10_000
    labels = test.tensors[1]
    assert torch.equal(labels.bincount(), torch.full((10,), 1000))
    assert test.tensors[0].min() == -1 and test.tensors[0].max() == 1


@debian
def test_load_dataset_draws_a_seeded_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_CACHE", str(tmp_path / "cache"))
    first = load_dataset("fashion28", n=50, seed=3, split="test")
    again = load_dataset("fashion28", n=50, seed=3, split="test")
    other = load_dataset("fashion28", n=50, seed=4, split="test")
    assert len(first) == 50 and first.num_classes == 10
    assert torch.equal(first.tensors[0], again.tensors[0]) and not torch.equal(first.tensors[0], other.tensors[0])
