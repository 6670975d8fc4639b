"""The task interface: everything that differs between tasks lives behind it.

A task turns examples into model inputs, builds the head, names its loss,
metrics and dev metric (with direction), decodes model outputs into
predictions, scores and reports them, keeps the small state it learns from
the training set (labels, thresholds, target scaling) and says how its
outputs look in a serving graph. Trainer, run directory, CLI and the later
stages call these methods and never ask which task they hold.

Task modules import TensorFlow only inside methods, so listing tasks and
checking inputs stays fast.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from kerastune_nlp.config import DataConfig
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.tasks.hf_head import HFHead


@dataclasses.dataclass(frozen=True)
class NoTaskConfig:
    """For tasks without settings of their own."""


@dataclasses.dataclass
class EncodedSplit:
    """Model inputs of one split, encoded once and reused by every build.

    Args:
        rows: list. One object per model input with `input_ids` (and, for
            pairs, `token_type_ids`; for token tasks, per-token `labels`).
        targets: np.ndarray or None. One target per row for sequence tasks;
            None when the rows carry their own per-token labels.
        stats: dict. What encoding did (counts of windows, truncations ...).
    """

    rows: list
    targets: np.ndarray | None = None
    stats: dict = dataclasses.field(default_factory=dict)

    @property
    def real_tokens(self) -> int:
        return int(sum(len(r.input_ids) for r in self.rows))

    @property
    def labelled_positions(self) -> int:
        if self.targets is not None:
            return len(self.rows)
        return int(sum(int((r.labels >= 0).sum()) for r in self.rows))


@dataclasses.dataclass(frozen=True)
class DevScore:
    """How a task scores the dev set at each epoch end; training wraps it in a Keras callback.

    Args:
        score: callable. Returns the task's scores dict for the dev set.
        to_logs: callable. Maps that dict to `{log_key: float}` for the epoch logs.
        description: str. What the logged numbers are, for the console. Defaults to "dev".
    """

    score: Callable[[], dict]
    to_logs: Callable[[dict], dict]
    description: str = "dev"


class Task:
    """Base class of every task; subclasses set the class attributes and methods.

    Args:
        config: the task's own settings (an instance of `config_class`).
            Defaults to `config_class()`.
        state: dict or None. What the task learned from the training set
            (`fit_state`), as saved in a run's manifest. Defaults to None.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_class: ClassVar[type] = NoTaskConfig
    # The dev metric that picks the best epoch (a Keras log key) and its direction.
    monitor: ClassVar[str] = "val_loss"
    mode: ClassVar[str] = "min"
    # How many predictions `predict` returns per input for the CLI's --top-k.
    supports_top_k: ClassVar[bool] = False
    # `entities()` returns spans (with an `aggregation` rule): the CLI's --aggregation
    # and the server's :entities method apply.
    has_entities: ClassVar[bool] = False
    # The task's default training recipe: TrainConfig fields that differ from
    # TrainConfig's own defaults, chosen by measurement (README, "Default
    # recipes"). Flags, config files and an explicit TrainConfig override it.
    recipe: ClassVar[dict] = {}

    def __init__(self, config=None, state: dict | None = None):
        if config is None:
            config = self.config_class()
        if type(config) is not self.config_class:
            raise ConfigError(
                f"Expected a {self.config_class.__name__} for the {self.name!r} task. "
                f"Received: {type(config).__name__}."
            )
        self.config = config
        self.state: dict[str, Any] = dict(state or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # -- data: pure Python, runs before TensorFlow loads -----------------------

    def load_splits(self, data: DataConfig, seed: int) -> tuple[dict[str, list], str]:
        """Reads train/dev/test examples as `data` asks; returns them and a short data name."""
        raise ConfigError(
            f"The {self.name!r} task has no file reader: pass examples to `kt.train(...)` from Python."
        )

    def read_file(self, path, data: DataConfig) -> list:
        """Reads one labelled file (for `evaluate`), as `load_splits` reads each split."""
        raise ConfigError(f"The {self.name!r} task has no file reader. Received: {str(path)!r}.")

    def check_examples(self, examples: Sequence, split_name: str) -> None:
        """Raises when `examples` carry labels the trained task does not know."""

    def check_splits(self, splits: dict[str, Sequence]) -> None:
        """Raises a package error naming the bad example before anything is built."""
        from kerastune_nlp.data.overlap import split_overlaps

        for name in ("train", "dev"):
            if not splits.get(name):
                raise ConfigError(f"Expected a non-empty `{name}` split. Received: `{name}` with 0 examples.")
        split_overlaps(splits, self.input_key)  # warns: a test file given as train still trains

    def fit_state(self, train: Sequence) -> None:
        """Learns what the task needs from the training set (labels, scaling) into `self.state`."""

    def fit_encoding(self, train: Sequence, max_length: int) -> None:
        """Settles encoding settings that depend on the training data and `max_length` (into `self.state`).

        Runs after `fit_state`, before anything is encoded; what it records
        is saved with the run, so a reloaded run encodes the same way.
        """

    def input_key(self, example) -> Any:
        """What makes two examples the same input (their label aside), hashable."""
        return repr(example)

    def example_record(self, example) -> Any:
        """A JSON-able form of one example, hashed into the run's fingerprint."""
        return repr(example)

    # -- model -----------------------------------------------------------------

    def encode(self, tokenizer, examples: Sequence, max_length: int, labelled: bool = True) -> EncodedSplit:
        """Turns examples (or raw inputs when `labelled` is False) into model inputs."""
        raise NotImplementedError

    def build_model(self, backbone, input_names, *, dropout: float, initializer_range: float,
                    seed: int | None = None):
        """The Keras model: inputs -> backbone -> this task's head (float32 outputs)."""
        raise NotImplementedError

    def loss_and_metrics(self, train: EncodedSplit, steps_per_epoch: int, replicas: int):
        """`(loss, metrics)` for `model.compile`."""
        raise NotImplementedError

    def distillation_loss(self, train: EncodedSplit, steps_per_epoch: int, replicas: int, temperature: float):
        """The soft-target term of distillation: `(y_true, student_outputs, teacher_outputs) -> scalar`.

        How far the student's outputs are from the teacher's softened ones,
        normalised as this task's hard loss is (per row, or per labelled
        token), so `alpha` mixes two terms of the same scale. `y_true` is
        the batch's targets, for masks.
        """
        raise NotImplementedError(f"The {self.name} task does not define Task.distillation_loss, so it cannot "
                                  "be distilled.")

    def fit_options(self, train: EncodedSplit) -> dict:
        """Extra keyword arguments for `model.fit` (e.g. class weights)."""
        return {}

    def validation_data(self, predictor, dev_encoded: EncodedSplit):
        """Keras `validation_data` (a tf.data.Dataset) whose metrics give the dev metric, or None."""
        return None

    def dev_score(self, predictor, dev: Sequence) -> DevScore | None:
        """The dev metric computed by the task itself at each epoch end (when Keras's metrics cannot), or None."""
        return None

    def after_fit(self, predictor, dev: Sequence) -> None:
        """Runs once on the best weights before the final scores (e.g. picks a threshold)."""

    # -- outputs ---------------------------------------------------------------

    def predict(self, predictor, inputs: Sequence, **options) -> list:
        """One prediction per input."""
        raise NotImplementedError

    def evaluate(self, predictor, examples: Sequence) -> dict:
        """Scores against the examples' gold labels (a JSON-able dict)."""
        raise NotImplementedError

    # The one number an export is gated on, and whether higher is better.
    metric_name: ClassVar[str] = "score"
    metric_higher_is_better: ClassVar[bool] = True

    def primary_metric(self, scores: dict) -> float:
        """`metric_name` read from `evaluate`'s scores."""
        raise NotImplementedError

    def headline(self, scores: dict) -> str:
        """A one-line summary of `scores` for logs."""
        return ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float))

    def format_scores(self, scores: dict, title: str = "") -> str:
        """A human-readable report of `scores`."""
        return f"{title}:\n{self.headline(scores)}" if title else self.headline(scores)

    def format_prediction(self, text: str, prediction) -> str:
        """One output line of `kerastune-nlp predict`."""
        return f"{prediction}\t{text}"

    def write_reports(self, directory, predictor, examples: Sequence, scores: dict) -> list[str]:
        """Task-specific report files next to metrics.json; returns their names."""
        return []

    # -- export hook -------------------------------------------------------------

    def serving_outputs(self, outputs) -> dict:
        """In-graph post-processing for a serving signature: model outputs -> named tensors.

        Called with the model's float32 output tensor inside a `tf.function`;
        the export stage wraps it with its own input signatures.
        """
        return {"outputs": outputs}

    def hf_head(self) -> HFHead | None:
        """How this task's head looks as a transformers model, for the Hugging Face export; None: it has none.

        The built-in tasks' heads are one Linear layer, which transformers'
        token and sequence classification classes carry. A task with another
        head returns None (this default), and the export refuses it.
        """
        return None

    def default_train_config(self):
        """`TrainConfig` with this task's recipe applied."""
        from kerastune_nlp.config import TrainConfig

        return TrainConfig(**self.recipe)

    @property
    def truncation(self) -> str:
        """Which sub-tokens of an over-long text are kept ("head", "tail", "head_tail"); see data.truncation."""
        return "head"

    def raw_text_inputs(self) -> dict:
        """Names of the raw-string inputs of the `serving_default` signature (each a [batch] string)."""
        return {"text": "one text per example"}

    def serve_raw_text(self, graph_tokenizer, forward, inputs: dict) -> dict:
        """Raw strings -> named output tensors, tokenizing in the graph.

        Args:
            graph_tokenizer: a `kerastune_nlp.data.graph_tokenizer.GraphWordPiece`.
            forward: callable, model features dict -> float32 outputs.
            inputs: the tensors named by `raw_text_inputs()`.
        """
        features = graph_tokenizer.encode_texts(inputs["text"], inputs.get("text_pair"))
        return self.serving_outputs(forward(features))

    def serve(self, predictor, inputs: dict) -> list[dict]:
        """What the raw-string signature returns, computed in Python: one dict of named outputs per input.

        Args:
            inputs: lists of str named as `raw_text_inputs()`.
        """
        raise NotImplementedError(f"The {self.name} task does not define Task.serve, so it cannot be served.")

    def json_record(self, predictor, texts, **options) -> list[dict]:
        """One JSON-ready answer per raw text (`kerastune-nlp predict` writes them as JSON Lines).

        Built-in tasks add probabilities, spans and truncation flags; this
        default wraps what `predict` returns.
        """
        return [{"prediction": p} for p in self.predict(predictor, texts, **options)]

    def entities(self, predictor, texts, aggregation: str = "first") -> list[list[dict]]:
        from kerastune_nlp.errors import ConfigError

        raise ConfigError(f"Entity spans come from NER models; this is a {self.name} model. Use predict() "
                          "for its labels.")

    def raw_inputs_of(self, examples: Sequence) -> dict:
        """Labelled examples -> the raw-string signature's inputs, as lists of str."""
        return {"text": [e.text for e in examples]}

    def predict_raw(self, predictor, inputs: dict) -> list:
        """`predict` on the same raw inputs the signature gets (for parity checks)."""
        return self.predict(predictor, inputs["text"])

    def from_raw_outputs(self, outputs: dict) -> list:
        """The raw-string signature's outputs (numpy) -> what `predict` returns (None: not comparable)."""
        raise NotImplementedError

    def same_prediction(self, a, b) -> bool:
        return a == b

    def tokenizer_agreement(self, tokenizer, graph_tokenizer, examples: Sequence, extra=()):
        """How often the in-graph tokenizer gives the model's real input ids on these examples.

        Returns an `export.graph_tokenizer.Agreement`, or None when the task
        cannot say (its raw-string signature is then not exported).
        """
        return None


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    return "\n".join(lines)
