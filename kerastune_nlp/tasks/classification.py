"""Single-label classification (multi-class, and binary sentiment with ROC-AUC)."""

from __future__ import annotations

import numpy as np

from kerastune_nlp.config import ClassificationConfig
from kerastune_nlp.tasks import register_task
from kerastune_nlp.tasks.text import TextTask


@register_task
class ClassificationTask(TextTask):
    """One class per text (TREC bundled). State: `labels`, the class names."""

    name = "classification"
    description = "one class per text or text pair (multi-class, binary sentiment)"
    config_class = ClassificationConfig
    monitor = "val_accuracy"
    mode = "max"
    supports_top_k = True

    def bundled_splits(self):
        from kerastune_nlp.data.bundled_trec import load_bundled_trec

        return load_bundled_trec(), "trec"

    def fit_state(self, train) -> None:
        self.state["labels"] = self.label_set(train)

    def targets(self, examples) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.state["labels"])}
        return np.asarray([index[e.label] for e in examples], np.int32)

    def loss_and_metrics(self, train, steps_per_epoch, replicas):
        from kerastune_nlp._tf import keras

        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])

    def distillation_loss(self, train, steps_per_epoch, replicas, temperature):
        from kerastune_nlp._tf import tf
        from kerastune_nlp.models.losses import softmax_distillation

        return lambda y_true, student, teacher: tf.reduce_mean(softmax_distillation(student, teacher, temperature))

    def fit_options(self, train) -> dict:
        if not self.config.class_weights:
            return {}
        classes = len(self.state["labels"])
        counts = np.bincount(train.targets, minlength=classes).astype(np.float64)
        weights = counts.sum() / (classes * np.maximum(counts, 1.0))
        return {"class_weight": {i: float(w) for i, w in enumerate(weights)}}

    def scores_of(self, outputs):
        shifted = np.exp(outputs - outputs.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)

    def predict(self, predictor, inputs, pairs=None, top_k: int | None = None, **options):
        """A label per text, or with `top_k` the k most probable `(label, probability)` pairs."""
        from kerastune_nlp.evaluation import classification_metrics as cm

        probabilities = self.raw_outputs(predictor, inputs, pairs)
        if top_k is not None:
            return cm.top_k(probabilities, self.state["labels"], top_k)
        return [self.state["labels"][i] for i in probabilities.argmax(-1)]

    def serve_record(self, scores):
        best = int(np.argmax(scores))
        return {"labels": self.state["labels"][best], "label_ids": best,
                "probabilities": [float(p) for p in scores]}

    def json_fields(self, scores, top_k: int | None = 3, **options):
        from kerastune_nlp.evaluation import classification_metrics as cm

        order = np.argsort(-scores, kind="stable")[: cm.check_top_k(1 if top_k is None else top_k)]
        labels = self.state["labels"]
        return {"label": labels[int(order[0])], "probability": float(scores[order[0]]),
                "top_k": [{"label": labels[int(i)], "probability": float(scores[i])} for i in order]}

    def evaluate(self, predictor, examples):
        from kerastune_nlp.evaluation import classification_metrics as cm

        return cm.classification_scores(self.targets(examples), self.outputs_of_examples(predictor, examples),
                                        self.state["labels"])

    metric_name = "accuracy"

    def primary_metric(self, scores):
        return float(scores["accuracy"])

    def headline(self, scores):
        return f"accuracy {scores['accuracy']:.4f}, macro F1 {scores['macro']['f1']:.4f}"

    def format_scores(self, scores, title=""):
        from kerastune_nlp.evaluation import classification_metrics as cm

        auc = f"   ROC-AUC {scores['roc_auc']:.4f}" if scores.get("roc_auc") is not None else ""
        return cm.format_label_scores(scores["per_class"], [(a, scores[a]) for a in ("macro", "weighted") if a in scores],
                                      f"accuracy {scores['accuracy']:.4f}{auc}", f"{title}:" if title else "")

    def per_example_loss(self, examples, outputs):
        targets = self.targets(examples)
        return -np.log(outputs[np.arange(len(targets)), targets] + 1e-7)

    def prediction_row(self, output):
        return {"predicted": self.state["labels"][int(np.argmax(output))], "probability": float(np.max(output))}

    def write_reports(self, directory, predictor, examples, scores):
        from pathlib import Path

        from kerastune_nlp.evaluation import reports

        written = super().write_reports(directory, predictor, examples, scores)
        reports.write_confusion_matrix(Path(directory) / "confusion_matrix.png", scores["confusion_matrix"],
                                       self.state["labels"])
        return written + ["confusion_matrix.png"]

    def hf_head(self):
        from kerastune_nlp.tasks.hf_head import HFHead, sequence_usage

        return HFHead(tuple(self.state["labels"]), sequence_usage("model.config.id2label[int(logits.argmax(-1)[0])]"),
                      problem_type="single_label_classification", example_dataset="trec")

    def serving_outputs(self, outputs):
        from kerastune_nlp._tf import tf

        probabilities = tf.nn.softmax(outputs, axis=-1)
        ids = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        return {"label_ids": ids, "labels": tf.gather(tf.constant(list(self.state["labels"])), ids),
                "probabilities": probabilities}
