"""Loading a checkpoint's tensors into our encoders, and writing encoders back as checkpoints.

`load_weights` matches the tensors of a `TensorSource` (checkpoint_files.py)
to a family's weight map: it gives EVERY encoder variable a tensor or raises
`BackboneError` naming the missing, unexpected and wrongly shaped tensors;
tensors of known heads (pooler, MLM / classifier heads) are reported, not
loaded. `save_checkpoint` writes config.json + model.safetensors that
transformers PyTorch and `load_encoder` both read.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

from kerastune_nlp.backbones.checkpoint_files import TensorSource
from kerastune_nlp.backbones.registry import COMMON_HEAD_PREFIXES, EncoderFamily
from kerastune_nlp.backbones.tensor_layouts import (
    pytorch_shape,
    split_layout,
    to_keras,
)
from kerastune_nlp.errors import BackboneError

logger = logging.getLogger("kerastune_nlp.backbones")

# Buffers, not weights: recomputed by the encoder.
_BUFFER_SUFFIXES = ("position_ids", "embeddings.token_type_ids")


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
    # A name appears once, or once per chunk of a chunked layout ("linear@1/3").
    names = [(name, split_layout(layout)[1]) for _, name, layout in entries]
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
    missing, wrong, plan, used = [], [], [], set()
    for variable, name, layout in entries:
        if name not in available:
            if name not in missing:
                missing.append(name)
            continue
        expected = pytorch_shape(variable.shape, layout)
        found = tuple(source.shape(available[name]))
        if found != expected and name not in used:
            wrong.append(f"{name}: file {_dims(found)} vs encoder {_dims(expected)}")
        plan.append((variable, available[name], layout))
        used.add(name)
    # Chunks of one tensor (ModernBERT's Wqkv) all read it: drop it only after the loop.
    for name in used:
        del available[name]
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
