"""Reading Hugging Face weight files: every format as one `TensorSource` in PyTorch naming.

Readers present every format in ONE naming and layout, PyTorch's
("encoder.layer.0.attention.self.query.weight", Linear weights [out, in]):

- `model.safetensors` (PyTorch, or TF-named with metadata format "tf");
- `model.safetensors.index.json` + its shards;
- `tf_model.h5` written by the transformers 4.x TF classes
  ("tf_bert_model/bert/encoder/layer_._0/attention/self/query/kernel:0"),
  renamed and transposed as transformers' own TF -> PyTorch converter does
  (tensor_layouts.py).

- `pytorch_model.bin` (or its shard index), only with `allow_pickle=True`:
  read by torch_pickle.py's restricted unpickler (tensor data only, no
  code is run, no PyTorch needed).

Headers are read on opening, tensor data on demand; broken, truncated or
foreign files and missing shards raise `BackboneError` naming the file.
Matching the tensors to an encoder is checkpoint.py's job.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

from kerastune_nlp.backbones.tensor_layouts import pytorch_shape, to_pytorch, tf_to_pytorch_name
from kerastune_nlp.errors import BackboneError, UnsafeCheckpointError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "tf_model.h5")
_PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_PICKLE_FIX = (
    "Convert it to model.safetensors (e.g. `model.save_pretrained(dir, safe_serialization=True)` "
    "in PyTorch), or pass `allow_pickle=True` (--allow-pickle) to read its tensors with "
    "kerastune_nlp's restricted unpickler (no code is run)."
)


def broken_weights_error(path, kind: str, error) -> BackboneError:
    """The error for a weights file that cannot be read (truncated, wrong format).

    `kind` is "a safetensors" or "an HDF5".
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        head = b""
    fix = ("Re-download it (an interrupted download leaves a short file), "
           "or re-save the model with `save_pretrained`")
    if not path.is_file():
        indexes = sorted(index.name for index in path.parent.glob("*.index.json"))
        cause = f"is missing (the shard index {' / '.join(indexes) or 'of the folder'} lists it)"
    elif head.startswith(b"version https://git-lfs"):
        cause = "is a Git LFS pointer, not the weights"
        fix = "Run `git lfs pull` in that repository, or re-download it"
    else:
        cause = f"is truncated or not {kind} file"
    # First sentence only: transformers' h5 message goes on to suggest
    # from_pt=True, which does not apply here.
    detail = str(error).strip().split(". ")[0].rstrip(".")
    return BackboneError(
        f"Cannot read the backbone weights {str(path)!r}: the file {cause} ({detail}). {fix}."
    )


def find_weights_file(directory, *, allow_pickle: bool = False) -> Path:
    """The weights file of a checkpoint folder: model.safetensors, its shard index, or tf_model.h5.

    Args:
        directory: str or Path. The checkpoint folder.
        allow_pickle: bool. Fall back to `pytorch_model.bin` (or its shard
            index). Defaults to False: such a folder raises `UnsafeCheckpointError`.

    Raises `BackboneError` when there are no weights.
    """
    directory = Path(directory)
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    if (directory / "tf_model.h5.index.json").is_file():
        raise BackboneError(
            f"{str(directory)!r} holds a sharded tf_model.h5, which is not supported. "
            "Convert it to model.safetensors (`save_pretrained(dir, safe_serialization=True)`)."
        )
    for name in _PICKLES:
        if (directory / name).is_file():
            if allow_pickle:
                return directory / name
            raise UnsafeCheckpointError(
                f"Backbone folder {str(directory)!r} only has {name}, a pickle that can run "
                f"arbitrary code when loaded, so it is refused. {_PICKLE_FIX}"
            )
    found = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    raise BackboneError(
        f"Backbone folder {str(directory)!r} has no weights. Expected one of {list(WEIGHT_FILES)}. "
        f"Found: {found}. Save the weights there with `save_pretrained`."
    )


class TensorSource:
    """Read-only tensors of one checkpoint, in PyTorch naming and layout.

    Use `open_checkpoint(path)`; close it (or use `with`) when done.

    Attributes:
        path: Path. The file given (weights file or shard index).
        names: list of str. Tensor names.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._entries = {}  # name -> (reader, key, layout, shape)
        self._handles = []
        self.from_tf = False  # names converted from HF-TF names (family `tf_renames` apply)

    @property
    def names(self) -> list:
        return list(self._entries)

    def shape(self, name: str) -> tuple:
        return self._entries[name][3]

    def get(self, name: str) -> np.ndarray:
        read, key, layout, _ = self._entries[name]
        return to_pytorch(read(key), layout)

    def close(self) -> None:
        for handle in self._handles:
            close = getattr(handle, "close", None)
            if close is not None:
                close()
        self._handles.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_checkpoint(path, *, allow_pickle: bool = False) -> TensorSource:
    """Opens model.safetensors, a shard index, or tf_model.h5 (headers now, data on demand).

    Args:
        path: str or Path. The weights file or shard index.
        allow_pickle: bool. Also open `pytorch_model.bin` (or its shard index)
            with the restricted unpickler of torch_pickle.py. Defaults to False:
            a pickle raises `UnsafeCheckpointError`.

    Truncated or foreign files and missing shards raise `BackboneError` naming the file.
    """
    path = Path(path)
    if path.suffix == ".bin" or path.name.endswith(".bin.index.json"):
        if not allow_pickle:
            raise UnsafeCheckpointError(
                f"{str(path)!r} is a pickle, which can run arbitrary code when loaded, so it is "
                f"refused. {_PICKLE_FIX}"
            )
        return _open_sharded(path, _shard_map(path) if path.suffix == ".json" else None, _pickle)
    if path.name.endswith(".index.json"):
        return _open_sharded(path, _shard_map(path), _safetensors)
    if path.suffix == ".safetensors":
        return _open_sharded(path, None, _safetensors)
    if path.suffix in (".h5", ".hdf5"):
        return _open_h5(path)
    raise BackboneError(
        f"Unknown weights file {str(path)!r}. Expected model.safetensors, "
        "model.safetensors.index.json, tf_model.h5 or (with allow_pickle) pytorch_model.bin."
    )


def _shard_map(index: Path) -> dict:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BackboneError(
            f'Cannot read the shard index {str(index)!r}: expected JSON with a "weight_map" '
            f"of tensor name -> shard file ({type(error).__name__}: {error}). Re-download it, "
            "or re-save the model with `save_pretrained`."
        ) from error
    return weight_map


def _open_sharded(path: Path, weight_map, open_shard) -> TensorSource:
    """A TensorSource over one file (`weight_map` None) or the shards its index lists."""
    source = TensorSource(path)
    shards = sorted(set(weight_map.values())) if weight_map is not None else [path.name]
    for shard_name in shards:
        shard = path.parent / shard_name
        try:
            handle, tf_named, tensors = open_shard(shard)
        except BackboneError:
            source.close()
            raise
        source._handles.append(handle)
        if weight_map is not None:
            listed = {k for k, v in weight_map.items() if v == shard_name}
            if not listed <= set(tensors):
                source.close()
                raise BackboneError(
                    f"The shard {str(shard)!r} lacks tensors its index {str(path)!r} lists there: "
                    f"{sorted(listed - set(tensors))[:5]}. Re-download the checkpoint."
                )
        for key, (reader, shape) in tensors.items():
            if tf_named:
                source.from_tf = True
                # TF save_pretrained drops the model scope: put a dummy one back for the converter.
                name, layout = tf_to_pytorch_name("model/" + key)
                source._entries[name] = (reader, key, layout, pytorch_shape(shape, layout))
            else:
                # Old PyTorch files call LayerNorm weights gamma/beta (transformers renames them).
                name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", key))
                source._entries[name] = (reader, key, "copy", shape)
    return source


def _safetensors(shard: Path):
    """(handle, TF-named?, {key: (reader, shape)}) of one safetensors file."""
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(shard), framework="np")
    except (SafetensorError, OSError) as error:
        raise broken_weights_error(shard, "a safetensors", error) from error
    tf_named = (handle.metadata() or {}).get("format") == "tf"
    reader = _safetensors_reader(handle, shard)
    shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    return handle, tf_named, {key: (reader, shape) for key, shape in shapes.items()}


def _pickle(shard: Path):
    """(handle, False, {key: (reader, shape)}) of one torch.save zip file (restricted unpickler)."""
    from kerastune_nlp.backbones.torch_pickle import TorchZipFile

    handle = TorchZipFile(shard)
    return handle, False, {key: (handle.read, ref.shape) for key, ref in handle.tensors.items()}


def _safetensors_reader(handle, shard: Path):
    def read(key):
        try:
            return handle.get_tensor(key)
        except TypeError:  # bfloat16: numpy has no such dtype
            return _read_bfloat16(shard, key)

    return read


def _read_bfloat16(shard: Path, key: str) -> np.ndarray:
    """A BF16 tensor of a safetensors file as float32 (upper 16 bits of a float32)."""
    with open(shard, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        info = json.loads(handle.read(length))[key]
        start, end = info["data_offsets"]
        handle.seek(8 + length + start)
        raw = np.frombuffer(handle.read(end - start), dtype="<u2")
    if info["dtype"] != "BF16":
        raise BackboneError(
            f"Cannot read tensor {key!r} of dtype {info['dtype']} in {str(shard)!r}. "
            "Re-save the checkpoint in float32."
        )
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])


def _open_h5(path: Path) -> TensorSource:
    import h5py

    try:
        handle = h5py.File(str(path), "r")
    except OSError as error:
        raise broken_weights_error(path, "an HDF5", error) from error
    source = TensorSource(path)
    source.from_tf = True
    source._handles.append(handle)
    datasets = []
    if "layer_names" in handle.attrs:
        for layer in handle.attrs["layer_names"]:
            group = handle[_text(layer)]
            for weight in group.attrs.get("weight_names", []):
                datasets.append((_text(weight), group[_text(weight)]))
    else:
        handle.visititems(
            lambda name, item: (
                datasets.append((name.split("/", 1)[-1], item))
                if isinstance(item, h5py.Dataset)
                else None
            )
        )
    for tf_name, dataset in datasets:
        name, layout = tf_to_pytorch_name(tf_name)
        if layout == "linear" and len(dataset.shape) == 3:
            layout = "conv1d"
        source._entries[name] = (
            lambda d: np.asarray(d[()]),
            dataset,
            layout,
            pytorch_shape(dataset.shape, layout),
        )
    return source


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
