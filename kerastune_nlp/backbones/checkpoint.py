"""Reading Hugging Face weight files into our encoders, and writing them back.

Readers present every format in ONE naming and layout, PyTorch's
("encoder.layer.0.attention.self.query.weight", Linear weights [out, in]):

- `model.safetensors` (PyTorch, or TF-named with metadata format "tf");
- `model.safetensors.index.json` + its shards;
- `tf_model.h5` written by the transformers 4.x TF classes
  ("tf_bert_model/bert/encoder/layer_._0/attention/self/query/kernel:0"),
  renamed and transposed as transformers' own TF -> PyTorch converter does.

Nothing is ever unpickled (`pytorch_model.bin` is refused). `load_weights`
gives EVERY encoder variable a tensor or raises `BackboneError` naming the
missing, unexpected and wrongly shaped tensors; tensors of known heads
(pooler, MLM / classifier heads) are reported, not loaded.
`save_checkpoint` writes config.json + model.safetensors that transformers
PyTorch and `load_encoder` both read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import struct
from pathlib import Path

import numpy as np

from kerastune_nlp.backbones.registry import COMMON_HEAD_PREFIXES, EncoderFamily
from kerastune_nlp.errors import BackboneError, UnsafeCheckpointError

logger = logging.getLogger("kerastune_nlp.backbones")

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "tf_model.h5")
_PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# Buffers, not weights: recomputed by the encoder.
_BUFFER_SUFFIXES = ("position_ids", "embeddings.token_type_ids")


def _broken(path: Path, kind: str, error) -> BackboneError:
    from kerastune_nlp.models.backbones import _broken_weights_error

    return _broken_weights_error(Path(path), kind, error)


def find_weights_file(directory) -> Path:
    """The weights file of a checkpoint folder: model.safetensors, its shard index, or tf_model.h5.

    Raises `UnsafeCheckpointError` for a folder with only `pytorch_model.bin`
    (a pickle) and `BackboneError` when there are no weights.
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
            raise UnsafeCheckpointError(
                f"Backbone folder {str(directory)!r} only has {name}, a pickle that can run "
                "arbitrary code when loaded, so it is refused. Convert it to model.safetensors "
                "(e.g. `model.save_pretrained(dir, safe_serialization=True)` in PyTorch)."
            )
    found = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    raise BackboneError(
        f"Backbone folder {str(directory)!r} has no weights. Expected one of {list(WEIGHT_FILES)}. "
        f"Found: {found}. Save the weights there with `save_pretrained`."
    )


def tf_to_pytorch_name(tf_name: str) -> tuple:
    """`(pytorch_name, layout)` for an HF TF variable name, as transformers converts it.

    "tf_bert_model/bert/encoder/layer_._0/attention/self/query/kernel:0" ->
    ("bert.encoder.layer.0.attention.self.query.weight", "linear").
    """
    name = tf_name.replace(":0", "")
    name = re.sub(r"/[^/]*___([^/]*)/", r"/\1/", name)  # "mlm___cls" -> "cls"
    name = name.replace("_._", "/")
    parts = [part for part in name.split("/") if part]
    if len(parts) > 1:
        parts = parts[1:]  # the model's own scope ("tf_bert_model")
    layout = "copy"
    if parts[-1] == "kernel":
        layout = "linear"
    if parts[-1] in ("kernel", "embeddings", "gamma"):
        parts[-1] = "weight"
    elif parts[-1] == "beta":
        parts[-1] = "bias"
    return ".".join(parts), layout


def to_pytorch(array: np.ndarray, layout: str) -> np.ndarray:
    """A Keras variable value in PyTorch's layout."""
    if layout == "linear":
        return np.ascontiguousarray(array.T)
    if layout == "conv1d":
        return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))
    return np.ascontiguousarray(array)


def to_keras(array: np.ndarray, layout: str) -> np.ndarray:
    """A PyTorch tensor in the Keras variable's layout (each layout is its own inverse)."""
    return to_pytorch(array, layout)


def pytorch_shape(shape, layout: str) -> tuple:
    shape = tuple(int(d) for d in shape)
    if layout == "linear":
        return shape[::-1]
    if layout == "conv1d":
        return (shape[2], shape[1], shape[0])
    return shape


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


def open_checkpoint(path) -> TensorSource:
    """Opens model.safetensors, a shard index, or tf_model.h5 (headers now, data on demand).

    Truncated or foreign files and missing shards raise `BackboneError` naming the file.
    """
    path = Path(path)
    if path.name.endswith(".index.json"):
        return _open_safetensors(path, _shard_map(path))
    if path.suffix == ".safetensors":
        return _open_safetensors(path, None)
    if path.suffix in (".h5", ".hdf5"):
        return _open_h5(path)
    if path.suffix == ".bin":
        raise UnsafeCheckpointError(
            f"{str(path)!r} is a pickle, which can run arbitrary code when loaded, so it is "
            "refused. Convert it to model.safetensors."
        )
    raise BackboneError(
        f"Unknown weights file {str(path)!r}. Expected model.safetensors, "
        "model.safetensors.index.json or tf_model.h5."
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


def _open_safetensors(path: Path, weight_map) -> TensorSource:
    from safetensors import SafetensorError, safe_open

    source = TensorSource(path)
    shards = sorted(set(weight_map.values())) if weight_map is not None else [path.name]
    for shard_name in shards:
        shard = path.parent / shard_name
        try:
            handle = safe_open(str(shard), framework="np")
        except (SafetensorError, OSError) as error:
            source.close()
            raise _broken(shard, "a safetensors", error) from error
        source._handles.append(handle)
        tf_named = (handle.metadata() or {}).get("format") == "tf"
        keys = handle.keys()
        if weight_map is not None:
            listed = {k for k, v in weight_map.items() if v == shard_name}
            if not listed <= set(keys):
                source.close()
                raise BackboneError(
                    f"The shard {str(shard)!r} lacks tensors its index {str(path)!r} lists there: "
                    f"{sorted(listed - set(keys))[:5]}. Re-download the checkpoint."
                )
        for key in keys:
            shape = tuple(handle.get_slice(key).get_shape())
            reader = _safetensors_reader(handle, shard)
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
        raise _broken(path, "an HDF5", error) from error
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


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What `load_weights` did.

    Args:
        weights_file: Path. The file read.
        model_type: str. The family loaded.
        loaded: int. Encoder variables assigned (all of them).
        not_in_encoder: tuple of str. Head tensors in the file that the encoder has no place for.
        ignored: tuple of str. Buffers (`position_ids`) skipped.
    """

    weights_file: Path
    model_type: str
    loaded: int
    not_in_encoder: tuple = ()
    ignored: tuple = ()

    def summary(self) -> str:
        heads = (
            f"; not part of the encoder: {_first(self.not_in_encoder)}"
            if self.not_in_encoder
            else ""
        )
        return (
            f"Loaded {self.loaded} tensors of {str(self.weights_file)!r} into the "
            f"{self.model_type!r} encoder{heads}"
        )


def _first(names, limit=5) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else shown


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def check_weight_map(encoder, entries) -> None:
    """Raises if a family's weight map misses or repeats an encoder variable (a bug)."""
    mapped = [id(variable) for variable, _, _ in entries]
    names = [name for _, name, _ in entries]
    unmapped = [v.name for v in encoder.weights if id(v) not in set(mapped)]
    if unmapped or len(set(mapped)) != len(mapped) or len(set(names)) != len(names):
        raise BackboneError(
            f"The {encoder.model_type!r} family's weight map does not cover each encoder variable "
            f"exactly once (unmapped: {unmapped[:5]}). This is a bug in kerastune_nlp."
        )


def load_weights(
    encoder, family: EncoderFamily, source: TensorSource, model_type: str | None = None
) -> LoadReport:
    """Assigns every variable of a built `encoder` from `source`, or raises `BackboneError`.

    Args:
        encoder: TransformerEncoder. Built (variables exist).
        family: EncoderFamily. The encoder's family (its weight map and base prefix).
        source: TensorSource. From `open_checkpoint`.
        model_type: str or None. For messages. Defaults to the family's first model type.
    """
    model_type = model_type or family.model_type
    entries = family.weight_map(encoder)
    check_weight_map(encoder, entries)
    prefix = family.base_model_prefix + "."
    available = {}  # name without the base prefix -> name in the file
    for name in source.names:
        stripped = name[len(prefix) :] if name.startswith(prefix) else name
        if source.from_tf:
            for pattern, replacement in family.tf_renames:
                stripped = re.sub(pattern, replacement, stripped)
        available.setdefault(stripped, name)
    missing, wrong, plan = [], [], []
    for variable, name, layout in entries:
        if name not in available:
            missing.append(name)
            continue
        expected = pytorch_shape(variable.shape, layout)
        found = tuple(source.shape(available[name]))
        if found != expected:
            wrong.append(f"{name}: file {_dims(found)} vs encoder {_dims(expected)}")
        plan.append((variable, available.pop(name), layout))
    ignored = sorted(n for n in available.values() if n.endswith(_BUFFER_SUFFIXES))
    heads_prefixes = COMMON_HEAD_PREFIXES + tuple(family.head_prefixes)
    heads = sorted(
        original
        for stripped, original in available.items()
        if stripped.startswith(heads_prefixes) and original not in ignored
    )
    unexpected = sorted(n for n in available.values() if n not in ignored and n not in heads)
    if missing or wrong or unexpected:
        problems = []
        if missing:
            problems.append(f"{_plural(len(missing), 'missing tensor')} ({_first(missing)})")
        if unexpected:
            problems.append(
                f"{_plural(len(unexpected), 'unexpected tensor')} ({_first(unexpected)})"
            )
        if wrong:
            problems.append(
                f"{_plural(len(wrong), 'tensor')} of the wrong shape ({_first(wrong, 3)})"
            )
        raise BackboneError(
            f"Cannot load {str(source.path)!r} into the {model_type!r} encoder (expected "
            f"PyTorch names like {entries[0][1]!r}, optionally prefixed {prefix!r}): "
            f"{'; '.join(problems)}. Check that config.json belongs to these weights "
            "(model_type, vocab_size, hidden_size, num_hidden_layers, ...)."
        )
    for variable, name, layout in plan:
        variable.assign(
            to_keras(source.get(name), layout).astype(variable.dtype.as_numpy_dtype, copy=False)
        )
    report = LoadReport(source.path, model_type, len(plan), tuple(heads), tuple(ignored))
    logger.info("%s", report.summary())
    return report


def save_checkpoint(encoder, config, directory) -> Path:
    """Writes config.json and model.safetensors (PyTorch names and layouts, metadata format "pt").

    The folder loads back with `load_encoder` and with transformers'
    PyTorch `AutoModel.from_pretrained`.

    Args:
        encoder: TransformerEncoder. Built.
        config: dict or EncoderConfig. The config.json content; must describe
            this encoder (checked: update `num_hidden_layers` for a student).
        directory: str or Path. Created if needed; files in it are replaced.

    Returns:
        The directory, as a Path.

    Example:
    >>> save_checkpoint(encoder, config, "saved_models/my-encoder")  # doctest: +SKIP
    """
    from safetensors.numpy import save_file

    from kerastune_nlp.backbones.config import EncoderConfig, parse_config
    from kerastune_nlp.backbones.registry import get_family

    data = config.to_dict() if isinstance(config, EncoderConfig) else dict(config)
    parsed = parse_config(data, source="`config`")
    family = get_family(data["model_type"])
    if not isinstance(encoder, family.encoder_class):
        raise BackboneError(
            f"`config` is a {data['model_type']!r} config but the encoder is a "
            f"{type(encoder).__name__}. Pass the config the encoder was built from."
        )
    expected, actual = family.encoder_kwargs(parsed), encoder.get_config()
    differ = {k: (v, actual.get(k)) for k, v in expected.items() if actual.get(k) != v}
    if differ:
        details = ", ".join(
            f"{k}: config {a!r}, encoder {b!r}" for k, (a, b) in sorted(differ.items())
        )
        raise BackboneError(
            f"`config` does not describe this encoder ({details}). Update the config (e.g. "
            "`config.with_num_layers(n)`) to match it."
        )
    from kerastune_nlp.backbones.encoder import ensure_built

    ensure_built(encoder)
    entries = family.weight_map(encoder)
    check_weight_map(encoder, entries)
    tensors = {name: to_pytorch(variable.numpy(), layout) for variable, name, layout in entries}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights, partial = directory / "model.safetensors", directory / "model.safetensors.partial"
    save_file(tensors, str(partial), metadata={"format": "pt"})
    os.replace(partial, weights)
    (directory / "config.json").write_text(
        json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return directory
