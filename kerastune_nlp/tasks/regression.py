"""Regression: one real value per text or text pair (targets standardised for training)."""

from __future__ import annotations

import math

import numpy as np

from kerastune_nlp.config import RegressionConfig
from kerastune_nlp.errors import DataFormatError, LabelError
from kerastune_nlp.tasks import register_task
from kerastune_nlp.tasks.text import TextTask


@register_task
class RegressionTask(TextTask):
    """State: `target_mean` and `target_std` of the training targets."""

    name = "regression"
    description = "one real value per text or text pair (MSE or MAE)"
    config_class = RegressionConfig
    monitor = "val_loss"
    mode = "min"

    # -- label rules: a finite number; no label names ---------------------------------

    def parse_label(self, value, where, column, separator=","):
        number = math.nan
        if not isinstance(value, bool):
            try:
                number = float(value.strip() if isinstance(value, str) else value)
            except (TypeError, ValueError):
                pass
        if not math.isfinite(number):
            raise DataFormatError(
                f"{where}: the regression target must be a finite number. Received: {value!r} in "
                f"column {column!r}. Fix the cell or drop the row."
            )
        return number

    def labels_of(self, example):
        return ()

    def strata(self, examples, parts):
        from kerastune_nlp.data.splits import by_quantile

        return by_quantile(examples, parts)

    def check_trainable(self, train) -> None:
        if not train:
            super().check_trainable(train)
        if len({e.label for e in train}) < 2:
            raise LabelError(
                f"The regression targets of the training set ({train[0].source}) are all {train[0].label!r}: "
                "nothing to learn. Check the label column."
            )

    def fit_state(self, train) -> None:
        values = np.asarray([e.label for e in train], np.float64)
        self.state.update(target_mean=float(values.mean()), target_std=float(values.std() or 1.0))

    def num_outputs(self) -> int:
        return 1

    def targets(self, examples) -> np.ndarray:
        values = np.asarray([e.label for e in examples], np.float32)
        return ((values - self.state["target_mean"]) / self.state["target_std"])[:, None]

    def loss_and_metrics(self, train, steps_per_epoch, replicas):
        from kerastune_nlp._tf import keras

        loss = keras.losses.MeanSquaredError() if self.config.loss == "mse" else keras.losses.MeanAbsoluteError()
        return loss, [keras.metrics.MeanAbsoluteError(name="mae")]

    def distillation_loss(self, train, steps_per_epoch, replicas, temperature):
        from kerastune_nlp._tf import tf

        # A value has no distribution to soften: the teacher's (scaled) prediction
        # is a second target, with the hard loss's own error measure.
        if self.config.loss == "mse":
            return lambda y_true, student, teacher: tf.reduce_mean(tf.square(student - teacher))
        return lambda y_true, student, teacher: tf.reduce_mean(tf.abs(student - teacher))

    def scores_of(self, outputs):
        return outputs[:, 0] * self.state["target_std"] + self.state["target_mean"]

    def predict(self, predictor, inputs, pairs=None, **options):
        return [float(v) for v in self.raw_outputs(predictor, inputs, pairs)]

    def evaluate(self, predictor, examples):
        from kerastune_nlp.evaluation import classification_metrics as cm

        return cm.regression_scores([e.label for e in examples], self.outputs_of_examples(predictor, examples))

    metric_name = "MAE"
    metric_higher_is_better = False

    def primary_metric(self, scores):
        return float(scores["mae"])

    def headline(self, scores):
        return f"MAE {scores['mae']:.4f}, RMSE {scores['rmse']:.4f}"

    def format_scores(self, scores, title=""):
        from kerastune_nlp.evaluation import classification_metrics as cm

        return cm.format_value_scores(scores, ("mae", "rmse", "pearson", "spearman"), f"{title}:" if title else "")

    def from_raw_outputs(self, outputs):
        return [float(v) for v in outputs["values"]]

    def same_prediction(self, a, b) -> bool:
        return abs(a - b) <= 1e-3 * max(1.0, abs(b))

    def format_value(self, value) -> str:
        return f"{value:.4f}"

    def per_example_loss(self, examples, outputs):
        return (outputs - np.asarray([e.label for e in examples])) ** 2

    def serve_record(self, value):
        return {"values": float(value)}

    def json_fields(self, value, **options):
        return {"value": float(value)}

    def prediction_row(self, output):
        return {"predicted": float(output)}

    def hf_head(self):
        """A one-output head with the target scaling folded in: transformers outputs the values themselves."""
        from kerastune_nlp.tasks.hf_head import HFHead, sequence_usage

        mean, std = self.state["target_mean"], self.state["target_std"]
        note = ("**Outputs.** `logits[:, 0]` is the predicted value: the training targets were standardised "
                f"(mean {mean}, std {std}) and that scaling is folded into the head.")
        return HFHead(("value",), sequence_usage("float(logits[0, 0])  # the value itself: the target scaling is "
                                                 "folded into the head"),
                      problem_type="regression", notes=(note,), target_scaling=(mean, std),
                      config_fields={"target_mean": mean, "target_std": std,
                                     "outputs": "values (the target scaling is folded into the head)"})

    def serving_outputs(self, outputs):
        return {"values": outputs[:, 0] * self.state["target_std"] + self.state["target_mean"]}
