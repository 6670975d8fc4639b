"""Reading `pytorch_model.bin` (torch.save's zip format) without PyTorch and without running code.

Why: the package has no PyTorch, and a pickle is a program: `pickle.load`
calls any importable function the file names (`os.system`, ...). Here
`find_class` resolves only what a state dict is made of (OrderedDict,
torch's tensor-rebuild functions, storage and dtype names), each to a
stand-in of ours that only records where a tensor lies; any other name
raises `UnsafeCheckpointError` before anything is called.

The format (torch.save since 1.6, unchanged in 2.13): a zip of
`<prefix>/data.pkl`, where a tensor is `_rebuild_tensor_v2(storage, offset,
size, stride, ...)` (in elements) and a storage the persistent id
`("storage", torch.FloatStorage, key, location, numel)`, with the bytes in
`<prefix>/data/<key>` and `<prefix>/byteorder`. Dtypes new since 2.1
(uint16, ...) use `_rebuild_tensor_v3(<torch.storage.UntypedStorage>, ...,
torch.uint16)`. bfloat16 becomes float32 (exact), as for safetensors. The
pre-1.6 format (a bare pickle stream) is refused.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kerastune_nlp.errors import BackboneError, UnsafeCheckpointError

_TO_SAFETENSORS = ("to model.safetensors with PyTorch, where you trust the file: "
                   "`model.save_pretrained(dir, safe_serialization=True)`")
_CONVERT = f"Convert it {_TO_SAFETENSORS}"
_REDOWNLOAD = ("Re-download it (an interrupted download leaves a short file), or convert it "
               + _TO_SAFETENSORS)
# torch dtype name (as pickled: torch.float32 -> "float32") -> numpy; bfloat16 read as 16 bits.
_DTYPES = {"float32": "<f4", "float64": "<f8", "float16": "<f2", "bfloat16": "<u2", "int64": "<i8",
           "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1", "bool": "?",
           "uint16": "<u2", "uint32": "<u4", "uint64": "<u8"}
_STORAGES = {"FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
             "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
             "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
             "BoolStorage": "bool", "UntypedStorage": "uint8"}


class _Dtype(str):
    """A torch dtype or storage type named in the pickle, as its dtype name (not callable)."""


class _Storage(NamedTuple):  # made only by persistent_load, after checking the member's size
    member: str
    dtype: str
    numel: int


class TensorRef(NamedTuple):  # where one tensor lies in its storage, in elements
    storage: _Storage
    dtype: str
    offset: int
    shape: tuple
    stride: tuple


def _tensor(storage, offset, size, stride, dtype=None) -> TensorRef:
    dtype = storage.dtype if dtype is None and isinstance(storage, _Storage) else dtype
    naturals = [isinstance(v, tuple) and all(type(n) is int and n >= 0 for n in v)
                for v in ((offset,), size, stride)]
    if not (isinstance(storage, _Storage) and dtype in _DTYPES and all(naturals)
            and len(size) == len(stride)):
        raise ValueError("a tensor is not a dense (storage, offset, size, stride) of a known dtype")
    itemsize = np.dtype(_DTYPES[dtype]).itemsize
    available = storage.numel * np.dtype(_DTYPES[storage.dtype]).itemsize // itemsize
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if math.prod(size) and end > available:  # as_strided must never read past the storage
        raise ValueError(f"a tensor of shape {size} reaches element {end} of {available} stored")
    return TensorRef(storage, str(dtype), offset, size, stride)


_REBUILDS = {  # torch._utils functions -> stand-ins (same positional arguments)
    "_rebuild_tensor": lambda s, o, size, stride: _tensor(s, o, size, stride),
    "_rebuild_tensor_v2": lambda s, o, size, stride, *_: _tensor(s, o, size, stride),
    "_rebuild_tensor_v3": lambda s, o, size, stride, _grad, _hooks, dtype, *_: _tensor(
        s, o, size, stride, dtype),
    "_rebuild_parameter": lambda data, *_: data,
    "_rebuild_parameter_with_state": lambda data, *_: data,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, path: Path, prefix: str, sizes: dict):
        super().__init__(io.BytesIO(data))
        self.path, self.prefix, self.sizes = path, prefix, sizes

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in _REBUILDS:
            return _REBUILDS[name]
        if module in ("torch", "torch.storage") and name in _STORAGES:
            return _Dtype(_STORAGES[name])
        if module == "torch" and name in _DTYPES:
            return _Dtype(name)
        raise UnsafeCheckpointError(
            f"{str(self.path)!r} refers to `{module}.{name}`, which a PyTorch state dict never "
            "needs, so it is refused (a pickle can run code through such names; nothing was "
            f"run). Only a state dict of plain tensors is read here. {_CONVERT}."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _Dtype) and type(pid[4]) is int and pid[4] >= 0):
            raise ValueError(f"unexpected persistent id {str(pid)[:80]}")
        member = f"{self.prefix}/data/{pid[2]}"
        if self.sizes.get(member, -1) < pid[4] * np.dtype(_DTYPES[pid[1]]).itemsize:
            raise ValueError(f"storage {member!r} is missing or shorter than {pid[4]} elements")
        return _Storage(member, str(pid[1]), pid[4])


class TorchZipFile:
    """The tensors of one torch.save zip file: `tensors` (shapes) on opening, `read` on demand."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as error:
            raise _unreadable(self.path, error) from error
        try:
            sizes = {info.filename: info.file_size for info in self._zip.infolist()}
            pickles = [n for n in sizes if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise ValueError("a zip archive, but not torch.save's: no single <prefix>/data.pkl")
            prefix = pickles[0].split("/")[0]
            big = f"{prefix}/byteorder" in sizes and self._zip.read(f"{prefix}/byteorder") == b"big"
            self._order = ">" if big else "<"
            state = _Unpickler(self._zip.read(pickles[0]), self.path, prefix, sizes).load()
            if not (isinstance(state, dict) and state and all(
                    isinstance(k, str) and isinstance(v, TensorRef) for k, v in state.items())):
                raise ValueError("it does not hold a state dict (tensor names -> tensors)")
            self.tensors = dict(state)
        except BackboneError:
            self.close()
            raise
        except Exception as error:  # any failure to parse these untrusted bytes means "cannot read"
            self.close()
            raise BackboneError(
                f"Cannot read {str(self.path)!r} as a PyTorch state dict "
                f"({type(error).__name__}: {error}). {_REDOWNLOAD}."
            ) from error

    def read(self, name: str) -> np.ndarray:
        ref = self.tensors[name]
        dtype = np.dtype(_DTYPES[ref.dtype]).newbyteorder(self._order)
        try:
            raw = self._zip.read(ref.storage.member)
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            raise _unreadable(self.path, error) from error
        flat = np.frombuffer(raw, np.uint8, len(raw) // dtype.itemsize * dtype.itemsize).view(dtype)
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], ref.shape, [s * dtype.itemsize for s in ref.stride], writeable=False)
        array = view.astype(dtype.newbyteorder("="), order="C")  # a contiguous native copy
        if ref.dtype == "bfloat16":  # its 16 bits are the upper half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def close(self) -> None:
        self._zip.close()


def _unreadable(path: Path, error) -> BackboneError:
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        head = None
    cause, fix = "is not a torch.save zip archive", _REDOWNLOAD
    if head is None:
        cause = "is missing or cannot be opened"
    elif head.startswith(b"PK"):
        cause = "is a truncated or damaged zip archive"
    elif head.startswith(b"\x80"):
        cause, fix = "is in the pre-1.6 torch.save format (a bare pickle), not read", _CONVERT
    elif head.startswith(b"version https://git-lfs"):
        cause, fix = "is a Git LFS pointer, not the weights", "Run `git lfs pull` there"
    return BackboneError(
        f"Cannot read the PyTorch weights {str(path)!r}: the file {cause} ({error}). {fix}."
    )
