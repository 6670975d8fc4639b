"""A run's model.h5 loaded into a model built for it, version 0.2 files included."""

from __future__ import annotations

import re
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError


def load_weights(model, weights: Path, backbone=None) -> None:
    """Loads HDF5 weights, turning a damaged file into an error that says so.

    A model.h5 written by version 0.2 holds the backbone as one transformers
    4.x TF layer ("tf_bert_model", names like ".../bert/encoder/layer_._0/...");
    pass `backbone` (the run model's encoder) to load it: see `_load_v0_2_weights`.
    """
    from kerastune_nlp.errors import BackboneError

    try:
        if backbone is not None and _hf_tf_layer(weights) is not None:
            _load_v0_2_weights(model, backbone, weights)
        else:
            model.load_weights(str(weights))
    except BackboneError as error:  # a 0.2 file whose backbone tensors do not fit the encoder
        raise RunDirectoryError(
            f"Cannot load the version 0.2 run weights {str(weights)!r} into this version's encoder: "
            f"{error} Retrain the run with this version (or keep using it with kerastune-nlp 0.2)."
        ) from error
    except (OSError, ValueError, KeyError) as error:
        size = weights.stat().st_size if weights.exists() else 0
        raise RunDirectoryError(
            f"Cannot load the weights {str(weights)!r} ({size} bytes): {type(error).__name__}: "
            f"{str(error)[:200]}. The file is truncated or not this run's model; copy it again from "
            "where the run was written, or retrain."
        ) from error


def _hf_tf_layer(weights: Path):
    """The name of the transformers TF backbone layer in a 0.2 model.h5, or None (a current file)."""
    import h5py

    with h5py.File(str(weights), "r") as handle:
        names = [_text(name) for name in handle.attrs.get("layer_names", [])]
    # Keras names a TFBertModel layer "tf_bert_model", "tf_bert_model_1", ...
    return next((name for name in names if re.fullmatch(r"tf_\w+_model(_\d+)?", name)), None)


def _load_v0_2_weights(model, backbone, weights: Path) -> None:
    """Loads a 0.2 model.h5 (transformers 4.x TF backbone) into a model built on our encoder.

    The backbone's tensors are renamed as transformers' TF -> PyTorch
    converter does (`tensor_layouts.tf_to_pytorch_name`) and loaded like a
    tf_model.h5 checkpoint, so every encoder variable must arrive (the 0.2
    pooler is reported as a head tensor and left out). The task head layers
    keep their names and load by layer name.
    """
    import h5py

    from kerastune_nlp.backbones.checkpoint import load_weights as load_encoder_weights
    from kerastune_nlp.backbones.checkpoint_files import open_checkpoint
    from kerastune_nlp.backbones.registry import get_family

    backbone_layer = _hf_tf_layer(weights)
    family = get_family(backbone.model_type)
    with h5py.File(str(weights), "r") as handle:
        for name in handle.attrs["layer_names"]:
            name = _text(name)
            group = handle[name]
            weight_names = [_text(w) for w in group.attrs.get("weight_names", [])]
            if name == backbone_layer or not weight_names:
                continue
            model.get_layer(name).set_weights([group[w][()] for w in weight_names])
    prefix = family.base_model_prefix + "."
    with open_checkpoint(weights) as source:
        # Only the backbone layer's tensors (its PyTorch names start with the base prefix).
        source._entries = {n: e for n, e in source._entries.items() if n.startswith(prefix)}
        load_encoder_weights(backbone, family, source, backbone.model_type)


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
