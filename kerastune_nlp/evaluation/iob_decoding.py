"""Constrained (Viterbi) decoding of per-word tag scores into valid IOB2.

A softmax tagger scores each word alone and can emit `I-X` after `O` or
after another type. Those tags are not valid IOB2, and entity scoring then
guesses the boundaries. Decoding the best sequence whose transitions are
allowed (`I-X` only after `B-X` or `I-X`) fixes boundaries with no training
change.
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

import numpy as np

# Sentences decoded together by `viterbi_decode_batch`: sorted by length, so
# a chunk pads little, and [chunk, labels, labels] floats stay small.
BATCH_CHUNK = 256


def allowed_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`start[j]` and `transition[i, j]`: whether label j may start / follow label i."""
    start = np.array([not label.startswith("I-") for label in labels])
    transition = np.ones((len(labels), len(labels)), dtype=bool)
    for j, label in enumerate(labels):
        if label.startswith("I-"):
            for i, previous in enumerate(labels):
                transition[i, j] = previous[2:] == label[2:] and previous != "O"
    return start, transition


_decoding_seconds = 0.0


def decoding_seconds() -> float:
    """Seconds this process has spent in `viterbi_decode` and `viterbi_decode_batch`.

    The dev callback reads it before and after scoring to report decoding
    apart from the model's forward pass (the task drives the decoding).
    """
    return _decoding_seconds


def _timed(function):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        global _decoding_seconds
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _decoding_seconds += time.perf_counter() - started

    return timed


@functools.lru_cache(maxsize=32)
def _constraints(labels: tuple) -> tuple[np.ndarray, np.ndarray]:
    """`(start, penalty)`: the allowed starts and a 0 / -inf transition matrix, built once per label set.

    Cached because the dev set is decoded every epoch, a sentence at a time
    by `viterbi_decode` (the label loop above costs as much as a short
    sentence's decoding). Read-only, so no caller can alter the cached copy.
    """
    start, transition = allowed_transitions(labels)
    penalty = np.where(transition, 0.0, -np.inf)
    start.setflags(write=False)
    penalty.setflags(write=False)
    return start, penalty


@_timed
def viterbi_decode(logits: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The highest-scoring valid IOB2 label sequence for one sentence.

    Args:
        logits: float array `[words, labels]` (log-softmax is applied here).
        labels: label names by id.

    Returns:
        int array `[words]` of label ids.
    """
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    start, penalty = _constraints(tuple(labels))
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


@_timed
def viterbi_decode_batch(logits: Sequence[np.ndarray], labels: Sequence[str],
                         chunk: int = BATCH_CHUNK) -> list[np.ndarray]:
    """`viterbi_decode` of many sentences at once: the same ids, bit for bit, without a loop per sentence.

    Sentences are sorted by length and decoded `chunk` at a time over padded
    arrays; each step is one numpy operation over the whole chunk, and a
    sentence's score stops changing once its words run out. The additions
    and argmaxes are those of `viterbi_decode`, in the same order, so ties
    and invalid-transition (-inf) cases resolve identically.

    Args:
        logits: float arrays `[words, labels]`, one per sentence (log-softmax
            is applied here); every sentence needs at least one word.
        labels: label names by id.
        chunk: int. Sentences per padded array. Defaults to 256.

    Returns:
        One int64 array `[words]` of label ids per sentence, in input order.
    """
    logits = list(logits)
    lengths = np.array([len(x) for x in logits], dtype=np.int64)
    if len(lengths) and lengths.min() < 1:
        raise ValueError(f"Expected every sentence to have at least one word. Received: an empty one at "
                         f"index {int(np.argmin(lengths))}. Drop empty sentences before decoding.")
    start, penalty = _constraints(tuple(labels))
    results: list = [None] * len(logits)
    order = np.argsort(lengths, kind="stable")
    for begin in range(0, len(order), chunk):
        members = order[begin: begin + chunk]
        for index, ids in zip(members, _decode_padded([logits[i] for i in members], lengths[members],
                                                     start, penalty)):
            results[index] = ids
    return results


def _decode_padded(logits: list, lengths: np.ndarray, start: np.ndarray, penalty: np.ndarray) -> list:
    """Viterbi over one chunk: logits padded to `[batch, words, labels]`, one path per sentence."""
    batch, width, count = len(logits), int(lengths.max()), penalty.shape[0]
    padded = np.zeros((batch, width, count), dtype=np.result_type(*[x.dtype for x in logits]))
    for row, values in enumerate(logits):
        padded[row, : len(values)] = values
    # Row-wise, as `viterbi_decode` normalises each sentence; padding rows stay finite and unused.
    log_probs = padded - np.logaddexp.reduce(padded, axis=-1, keepdims=True)
    score = np.where(start, log_probs[:, 0], -np.inf)
    back = np.zeros((batch, width, count), dtype=np.int64)
    for t in range(1, width):
        live = t < lengths
        candidates = score[:, :, None] + penalty  # [batch, previous, current]
        back[:, t] = candidates.argmax(axis=1)
        score = np.where(live[:, None], candidates.max(axis=1) + log_probs[:, t], score)
    rows = np.arange(batch)
    tag = score.argmax(axis=-1)
    path = np.zeros((batch, width), dtype=np.int64)
    for t in range(width - 1, 0, -1):
        live = t < lengths
        path[live, t] = tag[live]
        tag = np.where(live, back[rows, t, tag], tag)
    path[:, 0] = tag
    return [path[row, : lengths[row]] for row in range(batch)]


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
