"""Multi-label classification: any subset of labels per text, threshold chosen on dev."""

from __future__ import annotations

import json

import numpy as np

from kerastune_nlp.errors import DataFormatError, LabelError
from kerastune_nlp.tasks import register_task
from kerastune_nlp.tasks.base import DevScore
from kerastune_nlp.tasks.text import TextTask


@register_task
class MultiLabelTask(TextTask):
    """Sigmoid per label. State: `labels` and the decision `threshold` (micro F1 on dev)."""

    name = "multilabel"
    description = "any subset of labels per text (labels 'a,b' or a JSON list)"
    monitor = "val_micro_f1"
    mode = "max"
    supports_top_k = True

    @property
    def threshold(self) -> float:
        return float(self.state.get("threshold", 0.5))

    # -- label rules: a cell holds any number of names, "a,b" or a JSON list --------

    def parse_label(self, value, where, column, separator=","):
        if isinstance(value, (list, tuple)):
            labels = list(value)
        elif value is None:
            labels = []
        else:
            cell = str(value).strip()
            if cell.startswith("["):
                try:
                    labels = json.loads(cell)
                except json.JSONDecodeError:
                    raise DataFormatError(
                        f"{where}: the multi-label cell {cell!r} starts like a JSON list but does not parse. "
                        f'Write it as ["a", "b"] or as a{separator}b.'
                    ) from None
            else:
                labels = [part.strip() for part in cell.split(separator)] if cell else []
        if not isinstance(labels, list) or not all(_is_label_name(x) for x in labels):
            raise DataFormatError(
                f"{where}: cannot parse the multi-label cell {value!r}: expected label names separated "
                f"by {separator!r}, or a JSON list of strings, with no empty names."
            )
        # Written order is kept (the first label is the one splits stratify by); repeats go.
        return tuple(dict.fromkeys(str(x).strip() for x in labels))

    def labels_of(self, example):
        return example.label

    def strata(self, examples, parts):
        from kerastune_nlp.data.splits import by_first_label

        return by_first_label(examples, parts)

    def check_trainable(self, train) -> None:
        if not train:
            super().check_trainable(train)
        if len({frozenset(e.label) for e in train}) < 2:
            raise LabelError(
                f"Every training example ({train[0].source}) has the same label set {sorted(train[0].label)}: "
                "nothing to learn. Check the label column and `multilabel_separator`."
            )

    def fit_state(self, train) -> None:
        self.state["labels"] = self.label_set(train)
        self.state["threshold"] = 0.5

    def targets(self, examples) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.state["labels"])}
        targets = np.zeros((len(examples), len(index)), np.float32)
        for row, example in enumerate(examples):
            targets[row, [index[label] for label in example.label]] = 1.0
        return targets

    def loss_and_metrics(self, train, steps_per_epoch, replicas):
        from kerastune_nlp._tf import keras

        return keras.losses.BinaryCrossentropy(from_logits=True), [keras.metrics.BinaryAccuracy(threshold=0.0)]

    def distillation_loss(self, train, steps_per_epoch, replicas, temperature):
        from kerastune_nlp._tf import tf
        from kerastune_nlp.models.losses import sigmoid_distillation

        return lambda y_true, student, teacher: tf.reduce_mean(sigmoid_distillation(student, teacher, temperature))

    def dev_score(self, predictor, dev):
        return DevScore(lambda: self.evaluate(predictor, dev), lambda s: {"val_micro_f1": s["micro"]["f1"]},
                        "dev micro F1")

    def after_fit(self, predictor, dev) -> None:
        from kerastune_nlp.evaluation import classification_metrics as cm

        # Chosen on dev (never on test), then used for every later score.
        self.state["threshold"] = cm.choose_threshold(self.targets(dev), self.outputs_of_examples(predictor, dev))

    def scores_of(self, outputs):
        return 1.0 / (1.0 + np.exp(-outputs))

    def predict(self, predictor, inputs, pairs=None, top_k: int | None = None, **options):
        """A tuple of labels per text at the threshold, or the top-k `(label, probability)` pairs."""
        from kerastune_nlp.evaluation import classification_metrics as cm

        probabilities = self.raw_outputs(predictor, inputs, pairs)
        if top_k is not None:
            return cm.top_k(probabilities, self.state["labels"], top_k)
        return [tuple(n for n, p in zip(self.state["labels"], row) if p >= self.threshold) for row in probabilities]

    def evaluate(self, predictor, examples):
        from kerastune_nlp.evaluation import classification_metrics as cm

        return cm.multilabel_scores(self.targets(examples), self.outputs_of_examples(predictor, examples),
                                    self.state["labels"], self.threshold)

    metric_name = "micro F1"

    def primary_metric(self, scores):
        return float(scores["micro"]["f1"])

    def headline(self, scores):
        return f"micro F1 {scores['micro']['f1']:.4f}, subset accuracy {scores['subset_accuracy']:.4f}"

    def format_scores(self, scores, title=""):
        from kerastune_nlp.evaluation import classification_metrics as cm

        summary = f"subset accuracy {scores['subset_accuracy']:.4f} at threshold {scores['threshold']:.2f}"
        return cm.format_label_scores(scores["per_label"], [(a, scores[a]) for a in ("micro", "macro") if a in scores], summary,
                                      f"{title}:" if title else "")

    def from_raw_outputs(self, outputs):
        names = [n.decode() for n in outputs["labels"][0]] if len(outputs["labels"]) else []
        return [tuple(n for n, chosen in zip(names, row) if chosen) for row in outputs["selected"]]

    def format_value(self, prediction) -> str:
        return ",".join(prediction)

    def per_example_loss(self, examples, outputs):
        targets = self.targets(examples)
        p = np.clip(outputs, 1e-7, 1 - 1e-7)
        return -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean(-1)

    def serve_record(self, scores):
        return {"labels": list(self.state["labels"]), "probabilities": [float(p) for p in scores],
                "selected": [bool(p >= self.threshold) for p in scores]}

    def json_fields(self, scores, **options):
        labels = self.state["labels"]
        return {"labels": [n for n, p in zip(labels, scores) if p >= self.threshold],
                "probabilities": {n: float(p) for n, p in zip(labels, scores)}, "threshold": self.threshold}

    def prediction_row(self, output):
        return {"predicted": [n for n, p in zip(self.state["labels"], output) if p >= self.threshold]}

    def hf_head(self):
        from kerastune_nlp.tasks.hf_head import HFHead, sequence_usage

        read = (f"[model.config.id2label[i] for i, p in enumerate(torch.sigmoid(logits)[0]) "
                f"if p >= {self.threshold}]")
        note = (f"**Threshold.** A label is predicted when its sigmoid is >= {self.threshold} "
                "(chosen on the dev split; also in config.json under `kerastune_nlp.threshold`), not 0.5.")
        return HFHead(tuple(self.state["labels"]), sequence_usage(read), problem_type="multi_label_classification",
                      notes=(note,), config_fields={"threshold": self.threshold})

    def serving_outputs(self, outputs):
        from kerastune_nlp._tf import tf

        probabilities = tf.sigmoid(outputs)
        return {"probabilities": probabilities, "selected": probabilities >= self.threshold,
                "labels": tf.broadcast_to(tf.constant(list(self.state["labels"])), tf.shape(probabilities))}


def _is_label_name(value) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, str) and bool(value.strip())) or isinstance(value, int)
