"""Losses and metrics that skip positions labelled IGNORE_INDEX (-100)."""

from __future__ import annotations

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.data.ner_windows import IGNORE_INDEX


@keras.saving.register_keras_serializable(package="kerastune_nlp")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy over the labelled positions only.

    Padding, special tokens and non-first sub-tokens carry IGNORE_INDEX and
    contribute nothing, so the loss does not shrink as padding grows.

    By default the sum is divided by the batch's labelled positions. With
    `tokens_per_batch` (the training set's mean) it is divided by that
    constant instead, so every token weighs the same whatever batch it lands
    in: with length-grouped batches a per-batch mean would give the words of
    short sentences more weight than those of long ones.

    Args:
        ignore_index: int. Label id to skip. Defaults to -100.
        tokens_per_batch: float or None. Constant normaliser. Defaults to None.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX, tokens_per_batch: float | None = None,
                 name: str = "masked_sparse_ce", **kwargs):
        # `call` already returns the batch mean; the default reduction leaves a
        # scalar alone and divides by the replica count under a strategy.
        super().__init__(name=name, **kwargs)
        self.ignore_index = ignore_index
        self.tokens_per_batch = tokens_per_batch

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.int32)
        y_pred = tf.cast(y_pred, tf.float32)
        mask = tf.not_equal(y_true, self.ignore_index)
        safe_labels = tf.where(mask, y_true, tf.zeros_like(y_true))
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=y_pred)
        mask = tf.cast(mask, tf.float32)
        if self.tokens_per_batch:
            return tf.reduce_sum(per_token * mask) / self.tokens_per_batch
        return tf.reduce_sum(per_token * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"ignore_index": self.ignore_index, "tokens_per_batch": self.tokens_per_batch})
        return config


@keras.saving.register_keras_serializable(package="kerastune_nlp")
class MaskedAccuracy(keras.metrics.Metric):
    """Token accuracy over labelled positions (a quick progress signal, not entity F1)."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, name: str = "token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_index = ignore_index
        self.correct = self.add_weight(name="correct", initializer="zeros")
        self.total = self.add_weight(name="total", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(y_true, tf.int32)
        mask = tf.not_equal(y_true, self.ignore_index)
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        hits = tf.logical_and(mask, tf.equal(predicted, y_true))
        self.correct.assign_add(tf.reduce_sum(tf.cast(hits, tf.float32)))
        self.total.assign_add(tf.reduce_sum(tf.cast(mask, tf.float32)))

    def result(self):
        return tf.math.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update({"ignore_index": self.ignore_index})
        return config


# -- distillation: how far a student's outputs are from a teacher's ----------
# Each returns one value per row (per token for token outputs), already
# multiplied by temperature**2 so the soft term's gradients keep their size
# as the temperature changes (Hinton et al. 2015).


def softmax_distillation(student_logits, teacher_logits, temperature: float):
    """KL(teacher || student) of the temperature-softened softmax distributions, over the last axis."""
    student = tf.cast(student_logits, tf.float32) / temperature
    teacher = tf.cast(teacher_logits, tf.float32) / temperature
    teacher_log_probs = tf.nn.log_softmax(teacher, axis=-1)
    divergence = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - tf.nn.log_softmax(student, axis=-1)),
                               axis=-1)
    return divergence * temperature ** 2


def sigmoid_distillation(student_logits, teacher_logits, temperature: float):
    """Mean over labels of KL between the softened per-label Bernoulli distributions."""
    student = tf.cast(student_logits, tf.float32) / temperature
    teacher = tf.cast(teacher_logits, tf.float32) / temperature
    targets = tf.sigmoid(teacher)
    # Cross-entropy to soft targets minus the teacher's own entropy: zero when they agree.
    cross = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=student)
    entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=teacher)
    return tf.reduce_mean(cross - entropy, axis=-1) * temperature ** 2


def masked_token_distillation(tokens_per_batch: float | None, temperature: float):
    """The token-task soft loss: softened KL summed over labelled positions, normalised as the hard loss is.

    Positions labelled IGNORE_INDEX (padding, special tokens, non-first
    sub-tokens) carry no target in the hard loss and none here either.
    """

    def loss(y_true, student_logits, teacher_logits):
        mask = tf.cast(tf.not_equal(tf.cast(y_true, tf.int32), IGNORE_INDEX), tf.float32)
        per_token = softmax_distillation(student_logits, teacher_logits, temperature) * mask
        if tokens_per_batch:
            return tf.reduce_sum(per_token) / tokens_per_batch
        return tf.reduce_sum(per_token) / tf.maximum(tf.reduce_sum(mask), 1.0)

    return loss
