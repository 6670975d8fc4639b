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
