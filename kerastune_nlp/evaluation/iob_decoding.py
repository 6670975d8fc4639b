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
