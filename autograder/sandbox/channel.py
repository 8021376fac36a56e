"""The data-only channel between the trusted grader and the sandboxed worker.

A message is a JSON header plus a safetensors blob (numpy arrays), framed by two lengths; nothing is ever
unpickled. Values cross as a JSON tree in which tensors, dtypes, devices, generators,
``NoiseSchedule`` objects and callables are tagged:

    {"$tensor": "k0", "device": "cpu"}    the blob's tensor ``k0`` (moved back to its device)
    {"$tensor": "k0", "device": "cpu", "view": "bfloat16"}  a dtype numpy lacks, sent as raw integers
    {"$dtype": "float32"}, {"$device": "cpu"}
    {"$generator": "k1", "device": "cpu"}  a torch.Generator with the blob's state ``k1``
    {"$schedule": {...fields...}, "ref": 2}  a NoiseSchedule rebuilt from its tensors
    {"$held": 2}                             the receiver's own schedule ``ref`` 2, sent back as it was
    {"$callable": 3}                         a callable kept on the sending side: a proxy here
    {"$remote": 3}                           a proxy going back: the receiver's own callable 3
    {"$object": {"encode": 4, ...}, "device": "cpu"}  an :class:`Exposed` object: a :class:`StandIn` here
    {"$tuple": [...]}, {"$list": [...]}, {"$dict": {...}}

The two ends share this module, and the worker's copy of it is the only grader code it sees.
Each side decides which classes it trusts: :class:`Codec` takes the ``NoiseSchedule`` class to
rebuild and a factory for callable proxies.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, BinaryIO

import torch
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

HEADER = struct.Struct("<IQ")
REMOTE = "_channel_remote"
"""Attribute marking a proxy with the number of the callable it stands for on the other side."""
RAW_DTYPES = {
    dtype: getattr(torch, f"int{torch.empty(0, dtype=dtype).element_size() * 8}")
    for dtype in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2)
}
"""Dtypes numpy (and so the blob) lacks: they cross as integers of their size, viewed back on arrival."""
MAX_HEADER_BYTES = 4 << 20
"""The JSON tree of a message (tensors travel in the blob): a larger one is a garbage answer, refused before it
is read, since decoding JSON costs the reader several times its size."""
MAX_BLOB_BYTES = 512 << 20
"""The tensors of a message: the harness's samples of a run fit many times over."""
MAX_TENSORS = 4096
"""Tensors in one message."""


class Exposed:
    """Marks a class whose objects cross the channel as a :class:`StandIn` with the methods it names.

    For an object the student's code receives as an argument (a VAE handed to a latent-diffusion
    wrapper): the object stays with its owner, and each call of an exposed method is a callback.
    """

    exposed_methods: tuple[str, ...] = ()


class StandIn(torch.nn.Module):
    """The receiver's stand-in for an :class:`Exposed` object: its methods call the owner's, and its one
    empty parameter tells code that asks (``next(m.parameters()).device``) where the object lives."""

    def __init__(self, methods: dict[str, Callable[..., Any]], device: str) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.empty(0, device=device), requires_grad=False)
        for name, method in methods.items():
            self.__dict__[name] = method


class ChannelError(Exception):
    """The other side sent something that is not a valid message (or closed the channel)."""


class Codec:
    """Turns values into ``(tree, tensors)`` and back.

    Args:
        schedule_class: the ``NoiseSchedule`` class to rebuild schedules with on this side.
        make_proxy: builds a local stand-in for the other side's callable number ``n``.
    """

    def __init__(self, schedule_class: type, make_proxy: Callable[[int], Callable[..., Any]]) -> None:
        self.schedule_class = schedule_class
        self.make_proxy = make_proxy
        self.callables: dict[int, Callable[..., Any]] = {}
        self.held: dict[int, Any] = {}
        """Schedules this side sent, by number: the other side may name one instead of sending it back."""
        self.origins: dict[int, tuple[int, Any]] = {}
        """``id(schedule) -> (number, schedule)`` for the schedules received: they go back as ``$held``."""

    def reset(self) -> None:
        """Forget the callables and schedules of the previous call (numbers restart with each call)."""
        self.callables.clear()
        self.held.clear()
        self.origins.clear()

    def encode(self, value: Any, sources: dict[str, Any] | None = None) -> tuple[Any, dict[str, torch.Tensor]]:
        """``(tree, tensors)`` for ``value``; ``sources`` (if given) maps each key to its tensor or generator."""
        tensors: dict[str, torch.Tensor] = {}
        return self._encode(value, tensors, {} if sources is None else sources), tensors

    @staticmethod
    def _tensor_ref(tensor: torch.Tensor, tensors: dict[str, torch.Tensor], sources: dict, source: Any) -> str:
        key = f"k{len(tensors)}"
        tensors[key] = tensor.detach().to("cpu", copy=True).contiguous()
        sources[key] = source
        return key

    def _encode_tensor(self, value: torch.Tensor, tensors: dict[str, torch.Tensor], sources: dict) -> dict:
        tree = {"$tensor": self._tensor_ref(value, tensors, sources, value), "device": str(value.device)}
        if value.dtype in RAW_DTYPES:
            tree["view"] = str(value.dtype).removeprefix("torch.")
            tensors[tree["$tensor"]] = tensors[tree["$tensor"]].view(RAW_DTYPES[value.dtype])
        return tree

    def _encode(self, value: Any, tensors: dict[str, torch.Tensor], sources: dict[str, Any]) -> Any:
        def inner(item: Any) -> Any:
            return self._encode(item, tensors, sources)

        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, torch.Tensor):
            return self._encode_tensor(value, tensors, sources)
        if isinstance(value, torch.dtype):
            return {"$dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, torch.Generator):
            key = self._tensor_ref(value.get_state(), tensors, sources, value)
            return {"$generator": key, "device": str(value.device)}
        if is_dataclass(value) and type(value).__name__ == "NoiseSchedule":
            # A sampler passes its schedule to another part at every step: it goes back by name only.
            if id(value) in self.origins:
                return {"$held": self.origins[id(value)][0]}
            number = len(self.held)
            self.held[number] = value
            return {"$schedule": {f.name: inner(getattr(value, f.name)) for f in fields(value)}, "ref": number}
        if isinstance(value, tuple | list):
            return {"$tuple" if isinstance(value, tuple) else "$list": [inner(v) for v in value]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError("only dicts with str keys cross the channel")
            return {"$dict": {k: inner(v) for k, v in value.items()}}
        if isinstance(value, Exposed):
            parameter = next(value.parameters(), None) if isinstance(value, torch.nn.Module) else None
            device = "cpu" if parameter is None else str(parameter.device)
            return {
                "$object": {name: self._register(getattr(value, name)) for name in value.exposed_methods},
                "device": device,
            }
        if callable(value):
            if isinstance(getattr(value, REMOTE, None), int):  # the other side's own callable goes home
                return {"$remote": getattr(value, REMOTE)}
            return {"$callable": self._register(value)}
        raise TypeError(f"a {type(value).__name__} cannot cross the channel (tensors and plain values only)")

    def _register(self, function: Callable[..., Any]) -> int:
        number = len(self.callables)
        self.callables[number] = function
        return number

    def decode(self, tree: Any, tensors: dict[str, torch.Tensor], received: dict[str, Any] | None = None) -> Any:
        """The value of ``tree``; ``received`` (if given) collects each key's decoded tensor or generator."""
        received = {} if received is None else received
        try:
            return self._decode(tree, tensors, received)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
            raise ChannelError(f"not a value of the channel ({type(error).__name__}: {error})") from None

    def _decode(self, tree: Any, tensors: dict[str, torch.Tensor], received: dict[str, Any]) -> Any:
        if tree is None or isinstance(tree, bool | int | float | str):
            return tree
        if isinstance(tree, dict) and len(tree) in (1, 2, 3):
            tag = next(iter(tree))
            body = tree[tag]
            if tag == "$tensor":
                tensor = _blob(tensors, body)
                if "view" in tree:
                    tensor = tensor.view(_raw_dtype(tree["view"]))
                received[body] = tensor.to(_available(tree.get("device", "cpu")))
                return received[body]
            if tag == "$dtype":
                dtype = getattr(torch, str(body), None)
                if not isinstance(dtype, torch.dtype):
                    raise ChannelError(f"unknown dtype {body!r}")
                return dtype
            if tag == "$device":
                return torch.device(str(body))
            if tag == "$generator":
                generator = torch.Generator(device=_available(tree.get("device", "cpu")))
                generator.set_state(_blob(tensors, body))
                received[body] = generator
                return generator
            if tag == "$schedule":
                schedule = self.schedule_class(**{k: self._decode(v, tensors, received) for k, v in body.items()})
                self.origins[id(schedule)] = (int(tree["ref"]), schedule)
                return schedule
            if tag == "$held":
                return self.held[int(body)]
            if tag in ("$tuple", "$list"):
                items = [self._decode(v, tensors, received) for v in body]
                return tuple(items) if tag == "$tuple" else items
            if tag == "$dict":
                return {str(k): self._decode(v, tensors, received) for k, v in body.items()}
            if tag == "$callable":
                proxy = self.make_proxy(int(body))
                setattr(proxy, REMOTE, int(body))
                return proxy
            if tag == "$remote":
                return self.callables[int(body)]
            if tag == "$object":
                methods = {}
                for name, number in body.items():
                    methods[str(name)] = self.make_proxy(int(number))
                    setattr(methods[str(name)], REMOTE, int(number))
                return StandIn(methods, _available(str(tree.get("device", "cpu"))))
        raise ChannelError(f"not a value of the channel: {str(tree)[:200]}")


def _raw_dtype(name: Any) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if dtype not in RAW_DTYPES:
        raise ChannelError(f"unknown raw dtype {name!r}")
    return dtype


def _blob(tensors: dict[str, torch.Tensor], key: Any) -> torch.Tensor:
    if key not in tensors:
        raise ChannelError(f"the message refers to a tensor {str(key)[:40]!r} it does not carry")
    return tensors[key]


def _available(device: str) -> str:
    """``device`` if this process has it, else the CPU (a worker without CUDA still answers)."""
    return device if device == "cpu" or (device.startswith("cuda") and torch.cuda.is_available()) else "cpu"


def write_message(stream: BinaryIO, header: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Frame and send one message."""
    head = json.dumps(header).encode("utf-8")
    blob = save_arrays({key: tensor.numpy() for key, tensor in tensors.items()}) if tensors else b""
    stream.write(HEADER.pack(len(head), len(blob)) + head + blob)
    stream.flush()


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Receive one message.

    Raises:
        ChannelError: on a closed stream, an oversized frame or a malformed header or blob.
    """
    prefix = _read_exactly(stream, HEADER.size)
    head_size, blob_size = HEADER.unpack(prefix)
    if head_size > MAX_HEADER_BYTES or blob_size > MAX_BLOB_BYTES:
        raise ChannelError(
            f"message of {head_size} + {blob_size} bytes refused (limits {MAX_HEADER_BYTES} for its values, "
            f"{MAX_BLOB_BYTES} for its tensors)"
        )
    try:
        header = json.loads(_read_exactly(stream, head_size).decode("utf-8"))
        blob = _read_exactly(stream, blob_size)
        if blob and _tensor_count(blob) > MAX_TENSORS:
            raise ChannelError(f"message of more than {MAX_TENSORS} tensors refused")
        tensors = {key: torch.from_numpy(array) for key, array in load_arrays(blob).items()} if blob else {}
    except ChannelError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ChannelError(f"malformed message: {type(error).__name__}: {str(error)[:200]}") from None
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error types on a corrupt blob
        raise ChannelError(f"malformed tensors: {error}") from None
    if not isinstance(header, dict):
        raise ChannelError("malformed message: the header is not an object")
    return header, tensors


def _tensor_count(blob: bytes) -> int:
    """How many tensors a safetensors blob declares (its JSON header, read before any tensor is loaded)."""
    (size,) = struct.unpack("<Q", blob[:8])
    if size > min(len(blob) - 8, MAX_HEADER_BYTES):
        raise ValueError("the tensors' header is larger than the blob")
    return sum(1 for key in json.loads(blob[8 : 8 + size]) if key != "__metadata__")


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise ChannelError("the channel closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
