"""Public entry points: `build_encoder` (random init), `load_encoder` (from a checkpoint) and
`save_checkpoint` (to a Hugging Face checkpoint folder).

Example:
>>> encoder, report = load_encoder("path/to/all-MiniLM-L6-v2")  # doctest: +SKIP
>>> encoder({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kerastune_nlp.backbones.checkpoint import LoadReport, check_weight_map, load_weights
from kerastune_nlp.backbones.tensor_layouts import pytorch_tensors
from kerastune_nlp.backbones.checkpoint_files import find_weights_file, open_checkpoint
from kerastune_nlp.backbones.config import parse_config
from kerastune_nlp.backbones.initializers import skip_initialization
from kerastune_nlp.backbones.registry import get_family
from kerastune_nlp.errors import BackboneError

__all__ = ["LoadReport", "build_encoder", "ensure_built", "load_encoder", "save_checkpoint"]


def ensure_built(encoder):
    """Creates the encoder's variables (one call on a 1x1 input); returns the encoder."""
    from kerastune_nlp._tf import tf

    if not encoder.built:
        inputs = {
            "input_ids": tf.zeros([1, 1], tf.int32),
            "attention_mask": tf.ones([1, 1], tf.int32),
        }
        encoder(inputs, training=False)
    return encoder


def build_encoder(config, *, seed=None, name=None, use_pooler=False, num_layers=None, dtype=None):
    """A randomly initialised, built encoder of the config's family.

    Args:
        config: path to config.json, dict, or family config (see `parse_config`).
        seed: int or None. Seeds every initializer: the same seed gives
            bit-identical weights on every run. Defaults to None (random).
        name: str or None. Layer name (the variables' top scope). Defaults to
            the family's base prefix ("bert"; "modernbert" for ModernBERT).
        use_pooler: bool. Also build the [CLS] pooler. Defaults to False.
        num_layers: int or None. Keep only the first this many blocks. Defaults to None (all).
        dtype: dtype policy or None. Defaults to the global policy.

    Example:
    >>> encoder = build_encoder({"model_type": "bert", "vocab_size": 99, "hidden_size": 32,
    ...     "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37}, seed=1)
    >>> len(encoder.blocks)
    2
    """
    config = parse_config(config)
    if num_layers is not None:
        config = config.with_num_layers(num_layers)
    family = get_family(config.model_type)
    name = name or family.layer_name or family.base_model_prefix
    kwargs = dict(family.encoder_kwargs(config), seed=seed, name=name, dtype=dtype)
    if use_pooler:
        kwargs["use_pooler"] = True
    return ensure_built(family.encoder_class(**kwargs))


def load_encoder(path, *, config=None, use_pooler=False, name=None, dtype=None, allow_pickle=False):
    """Builds the encoder of a Hugging Face checkpoint and loads every weight into it.

    Args:
        path: str or Path. A checkpoint folder (config.json + model.safetensors,
            its shard index, tf_model.h5, or with `allow_pickle` pytorch_model.bin)
            or one of those weight files.
        config: path, dict or family config, or None to read config.json
            next to the weights. Defaults to None.
        use_pooler: bool. Build and load the [CLS] pooler too. Defaults to False.
        name: str or None. Layer name. Defaults to the family's base prefix.
        dtype: dtype policy or None. Defaults to the global policy.
        allow_pickle: bool. Also read `pytorch_model.bin` (PyTorch's pickle),
            with a restricted unpickler that only rebuilds tensors and runs no
            code. Defaults to False (such a checkpoint raises `UnsafeCheckpointError`).

    Returns:
        `(encoder, report)`: the built encoder and a `LoadReport` (tensors
        loaded, head tensors left out).

    Example:
    >>> encoder, report = load_encoder("tests/fixtures/encoders/bert")  # doctest: +SKIP
    """
    path = Path(path).expanduser()
    if path.is_dir():
        weights = find_weights_file(path, allow_pickle=allow_pickle)
        directory = path
    elif path.is_file():
        weights, directory = path, path.parent
    else:
        raise BackboneError(
            f"Checkpoint not found. Received: `path`={str(path)!r}. Pass a folder holding "
            "config.json and model.safetensors (or tf_model.h5), or one of those files."
        )
    if config is None:
        config = directory / "config.json"
    config = parse_config(config)
    family = get_family(config.model_type)
    # Headers first: a broken file fails before any model is built.
    with open_checkpoint(weights, allow_pickle=allow_pickle) as source:
        with skip_initialization():  # every weight is overwritten below
            encoder = build_encoder(config, name=name, use_pooler=use_pooler, dtype=dtype)
        report = load_weights(encoder, family, source, config.model_type)
    return encoder, report


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
    ensure_built(encoder)
    entries = family.weight_map(encoder)
    check_weight_map(encoder, entries)
    tensors = pytorch_tensors(entries)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights, partial = directory / "model.safetensors", directory / "model.safetensors.partial"
    save_file(tensors, str(partial), metadata={"format": "pt"})
    os.replace(partial, weights)
    (directory / "config.json").write_text(
        json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return directory
