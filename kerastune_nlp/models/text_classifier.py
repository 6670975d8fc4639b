"""`TextClassifier`: a sequence-level model with its tokenizer, labels and settings.

Covers multi-class (and binary) classification, multi-label classification
with a decision threshold, and regression; single texts or text pairs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from kerastune_nlp._tf import tf
from kerastune_nlp.data.batching import make_eval_dataset
from kerastune_nlp.data.text_readers import TextExample
from kerastune_nlp.errors import ConfigError, RunDirectoryError
from kerastune_nlp.evaluation import classification_metrics as cm
from kerastune_nlp.models import backbones
from kerastune_nlp.models.sequence_classifier import build_sequence_classifier

WEIGHTS_FILE = "model.weights.h5"
SETTINGS_FILE = "classifier.json"


@dataclasses.dataclass(frozen=True)
class EncodedText:
    input_ids: np.ndarray
    token_type_ids: np.ndarray


class TextClassifier:
    """Predicts labels (or values) for texts and text pairs.

    Args:
        model: the Keras sequence model.
        tokenizer: its Hugging Face fast tokenizer.
        backbone_config: the backbone's `PretrainedConfig`.
        task: "classification", "multilabel" or "regression".
        label_names: class or label names by output index ([] for regression).
        max_length: int. Sub-tokens per input; longer inputs are truncated.
        threshold: float. Multi-label decision threshold. Defaults to 0.5.
        target_mean, target_std: float. Regression targets are learnt
            standardised; predictions are scaled back.

    Example:
    >>> classifier = TextClassifier.load("saved_models/trec")
    >>> classifier.predict_top_k(["Who wrote Hamlet?"], k=2)
    [[('HUM', 0.97), ('ENTY', 0.01)]]
    """

    def __init__(self, model, tokenizer, backbone_config, task, label_names, max_length=128,
                 threshold=0.5, target_mean=0.0, target_std=1.0, batch_size=32):
        self.model = model
        self.tokenizer = tokenizer
        self.backbone_config = backbone_config
        self.task = task
        self.label_names = list(label_names)
        self.max_length = max_length
        self.threshold = threshold
        self.target_mean = target_mean
        self.target_std = target_std
        self.batch_size = batch_size
        self.input_names = list(tokenizer.model_input_names)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.retrace()

    def retrace(self) -> None:
        """Drops the traced forward pass; needed after the model's layers change (LoRA merge)."""
        self._forward = tf.function(lambda f: self.model(f, training=False), reduce_retracing=True)

    # -- encoding and labels --------------------------------------------------

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> tuple[list[EncodedText], int]:
        """Token ids per input, and how many inputs were truncated to max_length."""
        encoded = self.tokenizer(
            list(texts), list(pairs) if pairs is not None else None,
            truncation=True, max_length=self.max_length, return_token_type_ids=True,
            return_overflowing_tokens=False, return_length=False, verbose=False,
        )
        full = self.tokenizer(list(texts), list(pairs) if pairs is not None else None,
                              truncation=False, verbose=False)["input_ids"]
        truncated = sum(len(ids) > self.max_length for ids in full)
        rows = [
            EncodedText(np.asarray(ids, np.int32), np.asarray(types, np.int32))
            for ids, types in zip(encoded["input_ids"], encoded["token_type_ids"])
        ]
        return rows, truncated

    def targets(self, examples: Sequence[TextExample]) -> np.ndarray:
        """The training targets of examples in the model's output space."""
        if self.task == "classification":
            index = {name: i for i, name in enumerate(self.label_names)}
            return np.asarray([index[e.label] for e in examples], np.int32)
        if self.task == "multilabel":
            index = {name: i for i, name in enumerate(self.label_names)}
            targets = np.zeros((len(examples), len(self.label_names)), np.float32)
            for row, example in enumerate(examples):
                targets[row, [index[label] for label in example.label]] = 1.0
            return targets
        values = np.asarray([e.label for e in examples], np.float32)
        return ((values - self.target_mean) / self.target_std)[:, None]

    # -- prediction ------------------------------------------------------------

    def raw_outputs(self, texts, pairs=None) -> np.ndarray:
        """Probabilities (classification, multi-label) or values (regression)."""
        rows, _ = self.encode(texts, pairs)
        dataset, order = make_eval_dataset(rows, self.input_names, self.pad_id, self.batch_size)
        outputs = np.concatenate([self._forward(batch).numpy() for batch in dataset])
        outputs = outputs[np.argsort(order)]  # back to input order
        if self.task == "classification":
            return tf.nn.softmax(outputs).numpy()
        if self.task == "multilabel":
            return tf.nn.sigmoid(outputs).numpy()
        return outputs[:, 0] * self.target_std + self.target_mean

    def predict(self, texts, pairs=None) -> list:
        """A label per text (classification), a tuple of labels (multi-label), or a float."""
        outputs = self.raw_outputs(texts, pairs)
        if self.task == "classification":
            return [self.label_names[i] for i in outputs.argmax(-1)]
        if self.task == "multilabel":
            return [tuple(n for n, p in zip(self.label_names, row) if p >= self.threshold) for row in outputs]
        return [float(v) for v in outputs]

    def predict_top_k(self, texts, pairs=None, k: int = 3) -> list[list[tuple[str, float]]]:
        """The k most probable labels of each text, with probabilities."""
        if self.task == "regression":
            raise ConfigError("Top-k needs a classification or multi-label model. Received: task='regression'.")
        return cm.top_k(self.raw_outputs(texts, pairs), self.label_names, k)

    def evaluate(self, examples: Sequence[TextExample]) -> tuple[dict, np.ndarray]:
        """Scores against the examples' labels; also returns the raw outputs."""
        outputs = self.raw_outputs([e.text for e in examples], _pairs(examples))
        targets = self.targets(examples)
        if self.task == "classification":
            return cm.classification_scores(targets, outputs, self.label_names), outputs
        if self.task == "multilabel":
            return cm.multilabel_scores(targets, outputs, self.label_names, self.threshold), outputs
        return cm.regression_scores([e.label for e in examples], outputs), outputs

    def per_example_loss(self, examples, outputs) -> np.ndarray:
        """Loss of each example, for finding the worst predictions."""
        targets = self.targets(examples)
        eps = 1e-7
        if self.task == "classification":
            return -np.log(outputs[np.arange(len(targets)), targets] + eps)
        if self.task == "multilabel":
            p = np.clip(outputs, eps, 1 - eps)
            return -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean(-1)
        return (outputs - np.asarray([e.label for e in examples])) ** 2

    # -- run directory -----------------------------------------------------------

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(str(directory / WEIGHTS_FILE))
        self.tokenizer.save_pretrained(str(directory / "tokenizer"))
        self.backbone_config.save_pretrained(str(directory / "backbone_config"))
        settings = {
            "task": self.task, "label_names": self.label_names, "max_length": self.max_length,
            "threshold": self.threshold, "target_mean": self.target_mean, "target_std": self.target_std,
            "input_names": self.input_names,
        }
        (directory / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def load(cls, directory, batch_size: int = 32) -> "TextClassifier":
        directory = Path(directory)
        missing = [n for n in (WEIGHTS_FILE, SETTINGS_FILE, "tokenizer", "backbone_config")
                   if not (directory / n).exists()]
        if missing:
            raise RunDirectoryError(
                f"{str(directory)!r} is not a complete text-classification run directory: missing "
                f"{missing}. Pass the folder that `kerastune-nlp train --task classification` wrote."
            )
        from transformers import AutoConfig

        settings = json.loads((directory / SETTINGS_FILE).read_text())
        config = AutoConfig.from_pretrained(str(directory / "backbone_config"))
        outputs = 1 if settings["task"] == "regression" else len(settings["label_names"])
        model = build_sequence_classifier(backbones.build_backbone_model(config), settings["input_names"],
                                          outputs, dropout=backbones.hidden_dropout(config))
        model.load_weights(str(directory / WEIGHTS_FILE))
        return cls(model, backbones.load_tokenizer(directory / "tokenizer"), config, settings["task"],
                   settings["label_names"], settings["max_length"], settings["threshold"],
                   settings["target_mean"], settings["target_std"], batch_size)


def _pairs(examples):
    if any(e.text_pair is not None for e in examples):
        return [e.text_pair or "" for e in examples]
    return None
