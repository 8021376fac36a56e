"""Fashion-MNIST from files: Debian's package (installed by .ci/run), a named directory, a local "download";
checksums verified, and a missing or corrupt data set stops with a message saying how to get it.

Most tests use a tiny stand-in in the IDX format with its own checksums; the last ones read the real
files where Debian's ``dataset-fashion-mnist`` is installed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import struct
import threading

import pytest
import torch
from torchvision.datasets import FashionMNIST

from diffusion import fashion_mnist as fm
from diffusion.data import load_dataset

COUNTS = {"train": 5, "t10k": 3}


def idx_files() -> dict[str, bytes]:
    """A tiny data set in the IDX format: ``COUNTS`` images of 28×28 and their labels."""
    files = {}
    for prefix, count in COUNTS.items():
        pixels = bytes((i * 37 + j) % 256 for i in range(count) for j in range(28 * 28))
        files[f"{prefix}-images-idx3-ubyte"] = struct.pack(">IIII", 0x803, count, 28, 28) + pixels
        files[f"{prefix}-labels-idx1-ubyte"] = struct.pack(">II", 0x801, count) + bytes(i % 10 for i in range(count))
    return files


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The stand-in's checksums in place of the real ones, an empty cache, no Debian package, no variable."""
    files = idx_files()
    monkeypatch.setattr(fm, "SHA256", {name: hashlib.sha256(data).hexdigest() for name, data in files.items()})
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian-package")
    monkeypatch.setenv("DIFFUSION_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIFFUSION_FASHION_MNIST", raising=False)
    return files


def written(directory, files, packed=True):
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if packed:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return directory


@pytest.mark.parametrize("packed", [True, False], ids=["gz", "raw"])
def test_a_named_directory_is_read_verified_and_scaled(tmp_path, tiny, packed):
    source = written(tmp_path / "mine", tiny, packed)
    train = fm.fashion_mnist("train", root=source)
    test = fm.fashion_mnist("test", root=source)
    assert len(train) == COUNTS["train"] and len(test) == COUNTS["t10k"]
    x, y = train[1]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long and int(y) == 1
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(x.flatten()[:3], torch.tensor([37, 38, 39]) / 127.5 - 1)


def test_the_environment_variable_names_the_directory(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("DIFFUSION_FASHION_MNIST", str(written(tmp_path / "env", tiny)))
    assert len(fm.fashion_mnist("test")) == COUNTS["t10k"]


def test_a_corrupt_file_is_refused_with_its_checksum(tmp_path, tiny):
    source = written(tmp_path / "bad", {**tiny, "t10k-labels-idx1-ubyte": b"\0\0\x08\x01\0\0\0\x01\x07"})
    with pytest.raises(fm.DataUnavailable, match="SHA-256 is .* expected"):
        fm.fashion_mnist("test", root=source)


def test_a_missing_data_set_says_how_to_get_it(tiny):
    with pytest.raises(fm.DataUnavailable, match="apt-get install dataset-fashion-mnist"):
        fm.fashion_mnist("train")


@pytest.fixture
def local_mirror(tmp_path, tiny):
    """The stand-in's ``.gz`` files served over HTTP on 127.0.0.1 (no network needed)."""
    mirror = written(tmp_path / "mirror", tiny)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield mirror, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_the_download_path_with_a_local_mirror(tiny, local_mirror, monkeypatch):
    mirror, url = local_mirror
    resources = [(f"{name}.gz", hashlib.md5((mirror / f"{name}.gz").read_bytes()).hexdigest()) for name in tiny]
    monkeypatch.setattr(FashionMNIST, "mirrors", [url])
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    assert len(fm.fashion_mnist("train", download=True)) == COUNTS["train"]
    assert len(fm.fashion_mnist("train")) == COUNTS["train"]  # from the cache, no download asked


debian = pytest.mark.skipif(
    not all((fm.DEBIAN_DIR / f"{name}.gz").is_file() for name in fm.SHA256),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)


@debian
def test_debians_package_is_the_real_data_set(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_CACHE", str(tmp_path / "cache"))
    train, test = fm.fashion_mnist("train"), fm.fashion_mnist("test")
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
    assert len(first) == 50 and first.indices == again.indices and first.indices != other.indices
