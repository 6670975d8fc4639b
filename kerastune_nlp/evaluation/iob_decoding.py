"""Constrained (Viterbi) decoding of per-word tag scores into valid IOB2.

A softmax tagger scores each word alone and can emit `I-X` after `O` or
after another type. Those tags are not valid IOB2, and entity scoring then
guesses the boundaries. Decoding the best sequence whose transitions are
allowed (`I-X` only after `B-X` or `I-X`) fixes boundaries with no training
change.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def allowed_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`start[j]` and `transition[i, j]`: whether label j may start / follow label i."""
    start = np.array([not label.startswith("I-") for label in labels])
    transition = np.ones((len(labels), len(labels)), dtype=bool)
    for j, label in enumerate(labels):
        if label.startswith("I-"):
            for i, previous in enumerate(labels):
                transition[i, j] = previous[2:] == label[2:] and previous != "O"
    return start, transition


def viterbi_decode(logits: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The highest-scoring valid IOB2 label sequence for one sentence.

    Args:
        logits: float array `[words, labels]` (log-softmax is applied here).
        labels: label names by id.

    Returns:
        int array `[words]` of label ids.
    """
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    start, transition = allowed_transitions(labels)
    penalty = np.where(transition, 0.0, -np.inf)
    score = np.where(start, log_probs[0], -np.inf)
    back = np.zeros(log_probs.shape, dtype=np.int64)
    for t in range(1, len(log_probs)):
        candidates = score[:, None] + penalty  # [previous, current]
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[t]
    path = [int(score.argmax())]
    for t in range(len(log_probs) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return np.asarray(path[::-1], dtype=np.int64)


def viterbi_decode_graph(logits, mask, labels: Sequence[str]):
    """`viterbi_decode` for a padded batch, as TensorFlow ops (for exported graphs).

    Args:
        logits: float `[batch, words, labels]`.
        mask: bool `[batch, words]`, True for the words to decode (a prefix of each row).
        labels: label names by id.

    Returns:
        `(ids, probabilities)`: int32 `[batch, words]` label ids and the softmax
        probability of each chosen label. Masked words get the id the last real
        word had (callers overwrite them).
    """
    from kerastune_nlp._tf import tf

    start, transition = allowed_transitions(labels)
    blocked = -1e9  # not -inf: 0 * inf would make NaN in the sums below
    penalty = tf.constant(np.where(transition, 0.0, blocked), tf.float32)
    start_penalty = tf.constant(np.where(start, 0.0, blocked), tf.float32)
    # At least two words, so the scan below never runs over zero steps.
    words = tf.shape(logits)[1]
    width = tf.maximum(words, 2)
    logits = tf.pad(tf.cast(logits, tf.float32), [[0, 0], [0, width - tf.shape(logits)[1]], [0, 0]])
    mask = tf.pad(mask, [[0, 0], [0, width - tf.shape(mask)[1]]])
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    count = len(labels)
    identity = tf.range(count, dtype=tf.int32)

    def forward(score, step):
        step_log_probs, valid = step
        candidates = score[:, :, None] + penalty[None]  # [batch, previous, current]
        back = tf.argmax(candidates, axis=1, output_type=tf.int32)
        new_score = tf.reduce_max(candidates, axis=1) + step_log_probs
        valid = valid[:, None]
        # Padding steps keep the score and point each label at itself.
        return tf.where(valid, new_score, score), tf.where(valid, back, identity[None])

    steps = (tf.transpose(log_probs[:, 1:], [1, 0, 2]), tf.transpose(mask[:, 1:]))
    first_score = log_probs[:, 0] + start_penalty[None]
    scores_and_backs = tf.scan(lambda carry, step: forward(carry[0], step), steps,
                               initializer=(first_score, tf.zeros_like(first_score, tf.int32)))
    final_score = scores_and_backs[0][-1]
    backs = scores_and_backs[1]  # [words - 1, batch, labels]
    last = tf.argmax(final_score, axis=-1, output_type=tf.int32)
    earlier = tf.scan(lambda tag, back: tf.gather(back, tag, batch_dims=1), backs, initializer=last,
                      reverse=True)  # earlier[t] is the tag at word t
    path = tf.transpose(tf.concat([earlier, last[None]], axis=0))  # [batch, words]
    probabilities = tf.exp(tf.gather(log_probs, path, batch_dims=2))
    return path[:, :words], probabilities[:, :words]
