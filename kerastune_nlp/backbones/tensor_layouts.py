"""PyTorch naming and layout, the one form every checkpoint reader presents tensors in.

`tf_to_pytorch_name` renames an HF-TF variable (tf_model.h5, TF-named
safetensors) as transformers' own TF -> PyTorch converter does; `to_pytorch`,
`to_keras` and `pytorch_shape` move values and shapes between a Keras
variable's layout and PyTorch's for each layout of `registry.LAYOUTS`.
Reading (checkpoint_files.py), loading and saving (checkpoint.py) all use
them, so they sit apart from each.
"""

from __future__ import annotations

import re

import numpy as np


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


def split_layout(layout: str) -> tuple:
    """`(base, index, count)` of a layout: "linear@1/3" -> ("linear", 1, 3); "copy" -> ("copy", 0, 1).

    A chunked layout says the Keras variable is row block `index` of `count`
    equal blocks of the PyTorch tensor (dimension 0, in PyTorch's layout):
    ModernBERT's fused `Wqkv` is three Dense layers here.
    """
    base, _, chunk = layout.partition("@")
    if not chunk:
        return base, 0, 1
    index, count = chunk.split("/")
    return base, int(index), int(count)


def _to_pytorch(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "linear":
        return np.ascontiguousarray(array.T)
    if layout == "conv1d":
        return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))
    return np.ascontiguousarray(array)


def to_pytorch(array: np.ndarray, layout: str) -> np.ndarray:
    """A Keras variable value in PyTorch's layout (for a chunked layout: its block of the tensor)."""
    return _to_pytorch(array, split_layout(layout)[0])


def to_keras(array: np.ndarray, layout: str) -> np.ndarray:
    """A PyTorch tensor (the whole tensor, also for a chunked layout) in the Keras variable's layout."""
    base, index, count = split_layout(layout)
    if count > 1:
        rows = array.shape[0] // count
        array = array[index * rows : (index + 1) * rows]
    return _to_pytorch(array, base)  # each base layout is its own inverse


def pytorch_shape(shape, layout: str) -> tuple:
    """The shape of the whole PyTorch tensor a Keras variable of `shape` maps to."""
    base, _, count = split_layout(layout)
    shape = tuple(int(d) for d in shape)
    if base == "linear":
        shape = shape[::-1]
    elif base == "conv1d":
        shape = (shape[2], shape[1], shape[0])
    return (shape[0] * count,) + shape[1:]


def pytorch_tensors(entries) -> dict:
    """`{name: tensor}` in PyTorch's layout from weight-map entries, chunks joined in order."""
    tensors, chunks = {}, {}
    for variable, name, layout in entries:
        _, index, count = split_layout(layout)
        value = to_pytorch(variable.numpy(), layout)
        if count == 1:
            tensors[name] = value
        else:
            chunks.setdefault(name, {})[index] = value
            if len(chunks[name]) == count:
                tensors[name] = np.concatenate([chunks[name][i] for i in range(count)], axis=0)
    return tensors
