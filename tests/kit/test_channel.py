"""The data-only channel: what crosses it comes back equal, what may not cross is refused."""

from __future__ import annotations

import io
import struct

import pytest
import torch

from autograder.reference import load_reference
from autograder.sandbox.channel import (
    MAX_BLOB_BYTES,
    MAX_HEADER_BYTES,
    MAX_TENSORS,
    ChannelError,
    Codec,
    Exposed,
    StandIn,
    read_message,
    write_message,
)

REFERENCE = load_reference()
NoiseSchedule = REFERENCE.schedules.NoiseSchedule


def cross(value, sender: Codec | None = None, receiver: Codec | None = None):
    """``value`` sent through a framed message and decoded on the other side."""
    sender = sender or Codec(NoiseSchedule, lambda n: None)
    receiver = receiver or Codec(NoiseSchedule, lambda n: lambda *a, **k: ("proxy", n))
    tree, tensors = sender.encode(value)
    stream = io.BytesIO()
    write_message(stream, {"value": tree}, tensors)
    stream.seek(0)
    header, blob = read_message(stream)
    return receiver.decode(header["value"], blob)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.long, torch.bool])
def test_tensors_keep_their_values_dtype_and_shape(dtype):
    tensor = (torch.arange(12, dtype=torch.float64).reshape(3, 4) - 5.5).to(dtype)
    back = cross({"x": tensor, "t": (tensor[0], [tensor.T])})
    assert back["x"].dtype == dtype and torch.equal(back["x"], tensor)
    assert isinstance(back["t"], tuple) and torch.equal(back["t"][1][0], tensor.T)


def test_plain_values_dtypes_devices_and_generators_cross():
    generator = torch.Generator().manual_seed(3)
    value = [None, True, 3, 2.5, "s", torch.float32, torch.device("cpu"), generator]
    back = cross(value)
    assert back[:7] == value[:7]
    assert torch.equal(torch.rand(4, generator=back[7]), torch.rand(4, generator=generator))


def test_a_schedule_sent_back_goes_by_name_and_is_the_senders_object():
    betas = torch.linspace(1e-4, 0.02, 50, dtype=torch.float64)
    schedule = REFERENCE.schedules.make_schedule(betas)
    grader, worker = Codec(NoiseSchedule, lambda n: None), Codec(NoiseSchedule, lambda n: None)
    received = cross(schedule, grader, worker)
    assert isinstance(received, NoiseSchedule) and torch.equal(received.alpha_bars, schedule.alpha_bars)
    tree, tensors = worker.encode({"schedule": received})
    assert tree == {"$dict": {"schedule": {"$held": 0}}} and not tensors
    assert grader.decode(tree, tensors)["schedule"] is schedule
    worker.reset()
    assert "$schedule" in worker.encode(received)[0]


def test_callables_become_proxies_and_go_home_as_themselves():
    def denoiser(x):
        return x

    sender = Codec(NoiseSchedule, lambda n: None)
    proxy = cross(denoiser, sender)
    assert proxy() == ("proxy", 0)
    tree, _ = Codec(NoiseSchedule, lambda n: None).encode(proxy)
    assert sender.decode(tree, {}) is denoiser


class Decoder(torch.nn.Module, Exposed):
    exposed_methods = ("decode",)

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))

    def decode(self, z):
        return 2 * z


def test_an_exposed_object_becomes_a_stand_in_whose_methods_go_home():
    """A VAE handed to the student's code stays with the grader: its stand-in has its methods, as callbacks,
    and a parameter on its device (``next(vae.parameters()).device`` works on it)."""
    decoder = Decoder()
    sender = Codec(NoiseSchedule, lambda n: None)
    stand_in = cross(decoder, sender)
    assert isinstance(stand_in, StandIn) and next(stand_in.parameters()).device == torch.device("cpu")
    assert stand_in.decode(1) == ("proxy", 0)
    assert not hasattr(stand_in, "weight")
    tree, _ = Codec(NoiseSchedule, lambda n: None).encode(stand_in.decode)
    assert sender.decode(tree, {}) == decoder.decode


@pytest.mark.parametrize(
    "value",
    [object(), {1: "non-str key"}, type("Eq", (), {"__eq__": lambda self, other: True})()],
    ids=["object", "int-key", "always-equal"],
)
def test_other_objects_cannot_cross(value):
    with pytest.raises(TypeError, match="cross the channel"):
        Codec(NoiseSchedule, lambda n: None).encode(value)


@pytest.mark.parametrize(
    "tree",
    [{"$tensor": "k9"}, {"$dtype": "not_a_dtype"}, {"$held": 4}, {"$tensor": "k0", "view": "float32"}, {"$what": 1}],
    ids=["missing-tensor", "dtype", "unknown-held", "bad-view", "unknown-tag"],
)
def test_garbage_trees_are_channel_errors(tree):
    with pytest.raises(ChannelError):
        Codec(NoiseSchedule, lambda n: None).decode(tree, {"k0": torch.zeros(2, dtype=torch.int32)})


def test_oversized_and_truncated_frames_are_refused():
    with pytest.raises(ChannelError, match="refused"):
        read_message(io.BytesIO(struct.pack("<IQ", 10, MAX_BLOB_BYTES + 1)))
    with pytest.raises(ChannelError, match="refused"):  # before a byte of the 200 MB is read
        read_message(io.BytesIO(struct.pack("<IQ", 200 << 20, 0)))
    many = io.BytesIO()
    write_message(many, {}, {f"k{i}": torch.zeros(()) for i in range(MAX_TENSORS + 1)})
    with pytest.raises(ChannelError, match="tensors refused"):
        read_message(io.BytesIO(many.getvalue()))
    deep = ("[" * 100_000).encode()
    with pytest.raises(ChannelError, match="malformed"):
        read_message(io.BytesIO(struct.pack("<IQ", len(deep), 0) + deep))
    assert MAX_HEADER_BYTES + MAX_BLOB_BYTES < 1 << 30
    with pytest.raises(ChannelError, match="closed"):
        read_message(io.BytesIO(struct.pack("<IQ", 10, 0) + b"{}"))
    with pytest.raises(ChannelError, match="malformed"):
        read_message(io.BytesIO(struct.pack("<IQ", 2, 4) + b"{}" + b"junk"))
