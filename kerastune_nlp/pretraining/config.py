"""Settings of a continued-pretraining run: one frozen, validated dataclass.

Kept free of TensorFlow so the command line checks every value in about a
second, before any model loads. Each field carries its command-line help;
`kerastune-nlp pretrain` has one flag per field, named as the field.
"""

from __future__ import annotations

import dataclasses
import math

from kerastune_nlp.config import _require, setting


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """How to continue masked-language-model pretraining.

    Args:
        epochs: int. Passes over the training sequences. Defaults to 3.
        batch_size: int. Sequences per optimizer step. Defaults to 16.
        max_length: int. Sub-tokens per packed sequence, special tokens
            included. Lines are concatenated and cut into sequences of this
            length, so no text is dropped. Defaults to 128.
        learning_rate: float. Peak AdamW rate after warmup, then linear
            decay to 0. Defaults to 5e-5.
        warmup_ratio: float. Share of steps with linear warmup. Defaults to 0.06.
        weight_decay: float. Decoupled weight decay (not on biases and
            LayerNorm). Defaults to 0.01.
        mlm_probability: float. Share of each sequence's tokens to predict,
            in (0, 1); of those, 80% become the mask token, 10% a random
            token and 10% stay. Defaults to 0.15.
        whole_word_masking: bool. Select whole words (all sub-tokens of a
            word together) instead of single sub-tokens. Defaults to False.
        new_head_lr_scale: float. Learning-rate multiplier for an MLM head
            the checkpoint lacked: its weights start random while the
            encoder's are pretrained, and at the encoder's rate it barely
            moves in a short run. Not applied to a loaded head. Defaults to 10.
        eval_share: float. Share of the corpus lines held out to score the
            model before and after, in [0, 0.5); 0 with no `eval_file` skips
            the scoring. Ignored when an eval file is given. Defaults to 0.1.
        seed: int. Seeds the held-out split, shuffling, masking and dropout;
            the held-out masks depend only on it. Defaults to 42.
        text_column: str. The column with the text in a `datasets` data set.
            Defaults to "text".
        split: str. The split to read from a data set with several.
            Defaults to "train".
        encoding: str. Encoding of text files. Defaults to "utf-8".
        checkpoint_every_steps: int or None. Crash backup interval in steps
            (plus one at every epoch end). Defaults to None.
        checkpoint_every_seconds: float or None. Crash backup at the first
            step this long after the last one (plus every epoch end).
            Defaults to 600.
        allow_pickle: bool. Accept a backbone that only has
            pytorch_model.bin (a pickle). Defaults to False.
    """

    epochs: int = setting(3, "passes over the training sequences")
    batch_size: int = setting(16, "sequences per optimizer step")
    max_length: int = setting(128, "sub-tokens per packed sequence, special tokens included; lines are "
                                   "concatenated and cut at this length, so no text is dropped")
    learning_rate: float = setting(5e-5, "peak AdamW rate after warmup, then linear decay to 0")
    warmup_ratio: float = setting(0.06, "share of steps with linear warmup")
    weight_decay: float = setting(0.01, "decoupled weight decay (not on biases and LayerNorm)")
    mlm_probability: float = setting(0.15, "share of tokens to predict, in (0, 1); of those 8 in 10 become "
                                           "the mask token, 1 a random token, 1 stays")
    whole_word_masking: bool = setting(False, "mask all sub-tokens of a selected word together")
    new_head_lr_scale: float = setting(10.0, "learning-rate multiplier for an MLM head the checkpoint lacked "
                                             "(it starts random; a loaded head trains at --learning-rate)")
    eval_share: float = setting(0.1, "share of the corpus lines held out to score before and after, in "
                                     "[0, 0.5) (ignored with --eval-file)")
    seed: int = setting(42, "seeds the held-out split, shuffling, masking and dropout")
    text_column: str = setting("text", "column holding the text in a `datasets` data set")
    split: str = setting("train", "split to read from a data set with several splits")
    encoding: str = setting("utf-8", "encoding of text files")
    checkpoint_every_steps: int | None = setting(None, "crash backup every N steps (and at epoch ends)")
    checkpoint_every_seconds: float | None = setting(600.0, "crash backup at most this many seconds apart "
                                                            "(and at epoch ends)")
    allow_pickle: bool = setting(False, "allow a backbone with only pytorch_model.bin (a pickle)")

    def __post_init__(self):
        _integer(self.epochs, "epochs", 1)
        _integer(self.batch_size, "batch_size", 1)
        _integer(self.max_length, "max_length", 8)
        _integer(self.seed, "seed", 0)
        _number(self.learning_rate, "learning_rate")
        _require(0 < self.learning_rate < 1, "learning_rate", self.learning_rate, "in (0, 1), e.g. 5e-5")
        _number(self.warmup_ratio, "warmup_ratio")
        _require(0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio, "in [0, 1)")
        _number(self.weight_decay, "weight_decay")
        _require(0 <= self.weight_decay < 1, "weight_decay", self.weight_decay, "in [0, 1)")
        _number(self.mlm_probability, "mlm_probability")
        _require(0 < self.mlm_probability < 1, "mlm_probability", self.mlm_probability,
                 "in (0, 1), e.g. 0.15 (the share of tokens to predict)")
        _number(self.new_head_lr_scale, "new_head_lr_scale")
        _require(0 < self.new_head_lr_scale <= 1000, "new_head_lr_scale", self.new_head_lr_scale, "in (0, 1000]")
        _number(self.eval_share, "eval_share")
        _require(0 <= self.eval_share < 0.5, "eval_share", self.eval_share,
                 "in [0, 0.5), e.g. 0.1 (0 skips the held-out scoring unless --eval-file is given)")
        _require(isinstance(self.whole_word_masking, bool), "whole_word_masking", self.whole_word_masking,
                 "to be True or False")
        _require(isinstance(self.text_column, str) and bool(self.text_column.strip()), "text_column",
                 self.text_column, "to be a column name")
        _require(isinstance(self.split, str) and bool(self.split.strip()), "split", self.split,
                 "to be a split name such as train")
        _require(isinstance(self.encoding, str) and _known_encoding(self.encoding), "encoding", self.encoding,
                 "to be a text encoding Python knows, e.g. utf-8 or latin-1")
        if self.checkpoint_every_steps is not None:
            _integer(self.checkpoint_every_steps, "checkpoint_every_steps", 1)
        if self.checkpoint_every_seconds is not None:
            _number(self.checkpoint_every_seconds, "checkpoint_every_seconds")
            _require(self.checkpoint_every_seconds > 0, "checkpoint_every_seconds",
                     self.checkpoint_every_seconds, "to be positive")

    @property
    def max_predictions(self) -> int:
        """Prediction slots per sequence: enough for `mlm_probability` of every token."""
        return max(1, math.ceil(self.max_length * self.mlm_probability))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "PretrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


# What a resumed run must share with the interrupted one (crash-backup
# intervals may change between the two).
TRAINING_FIELDS = ("epochs", "batch_size", "max_length", "learning_rate", "warmup_ratio", "weight_decay",
                   "mlm_probability", "whole_word_masking", "new_head_lr_scale", "eval_share", "seed",
                   "text_column", "split", "encoding")


def _integer(value, name: str, minimum: int) -> None:
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum, name, value,
             f"to be an integer >= {minimum}")


def _number(value, name: str) -> None:
    _require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), name,
             value, "to be a finite number")


def _known_encoding(name: str) -> bool:
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True
