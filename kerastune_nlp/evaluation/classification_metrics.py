"""Metrics for classification, multi-label classification and regression.

Inputs are numpy arrays (or anything `np.asarray` takes); outputs are
JSON-serialisable dicts of Python floats, ints, lists and None.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from sklearn import metrics as skm

from kerastune_nlp.errors import ConfigError

logger = logging.getLogger("kerastune_nlp.evaluation")


def classification_scores(y_true, probabilities, label_names: Sequence[str]) -> dict:
    """Accuracy, macro/weighted P/R/F1, per-class scores, confusion matrix, binary ROC-AUC.

    Args:
        y_true: int array `[n]` of class ids (or an array of label names).
        probabilities: float array `[n, classes]`; for two classes also
            `[n]` or `[n, 1]` holding the probability of `label_names[1]`.
        label_names: sequence of str. Class names by id.

    Returns:
        `{"accuracy", "macro", "weighted", "per_class", "confusion_matrix",
        "labels", "n"}` plus `"roc_auc"` for two classes when both occur in
        `y_true`. P/R/F1 rows are `{"precision", "recall", "f1", "support"}`.

    Example:
    >>> classification_scores(np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]]), ["neg", "pos"])["accuracy"]
    1.0
    """
    label_names = list(label_names)
    probabilities = _class_probabilities(probabilities, len(label_names))
    y_true = _class_ids(y_true, label_names, len(probabilities))
    y_pred = probabilities.argmax(axis=-1)
    ids = list(range(len(label_names)))
    report = skm.classification_report(
        y_true, y_pred, labels=ids, target_names=label_names, output_dict=True, zero_division=0
    )
    scores = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro": _prf(report["macro avg"]),
        "weighted": _prf(report["weighted avg"]),
        "per_class": {name: _prf(report[name]) for name in label_names},
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": label_names,
        "n": int(len(y_true)),
    }
    if len(label_names) == 2:
        if len(np.unique(y_true)) == 2:
            scores["roc_auc"] = float(skm.roc_auc_score(y_true, probabilities[:, 1]))
        else:
            logger.warning("ROC-AUC is undefined with one class in y_true; it is left out.")
    return scores


def multilabel_scores(
    y_true, probabilities, label_names: Sequence[str], threshold: float = 0.5
) -> dict:
    """Micro/macro/weighted P/R/F1, per-label scores, subset accuracy and Hamming loss.

    Args:
        y_true: 0/1 array `[n, labels]`.
        probabilities: float array `[n, labels]` (independent sigmoids).
        label_names: sequence of str. Label names by column.
        threshold: float. A label is predicted when its probability is
            >= threshold. Defaults to 0.5.
    """
    label_names = list(label_names)
    y_true, probabilities = _multilabel_arrays(y_true, probabilities, len(label_names))
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"Expected `threshold` in [0, 1]. Received: `threshold`={threshold!r}.")
    y_pred = (probabilities >= threshold).astype(int)
    report = skm.classification_report(
        y_true,
        y_pred,
        labels=list(range(len(label_names))),
        target_names=label_names,
        output_dict=True,
        zero_division=0,
    )
    return {
        "threshold": float(threshold),
        "subset_accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "hamming_loss": float(skm.hamming_loss(y_true, y_pred)),
        "micro": _prf(report["micro avg"]),
        "macro": _prf(report["macro avg"]),
        "weighted": _prf(report["weighted avg"]),
        "per_label": {name: _prf(report[name]) for name in label_names},
        "labels": label_names,
        "n": int(len(y_true)),
    }


def choose_threshold(y_true, probabilities, *, bounds: tuple[float, float] = (0.05, 0.95)) -> float:
    """The global decision threshold that maximises micro F1 (pick it on dev, never on test).

    Every distinct probability is tried as a cut-off (exact, not a grid).
    A threshold lies midway between the cut-off and the next lower
    probability, so it does not sit on a dev score; it is kept within
    `bounds`, because an extreme threshold fitted on a small dev set rarely
    carries over. Among equal F1 the threshold nearest 0.5 wins. Without any
    positive label in `y_true`, or when no threshold within `bounds` finds
    one, 0.5 (logged).

    Args:
        y_true: 0/1 array `[n, labels]`.
        probabilities: float array `[n, labels]`.
        bounds: (float, float). Lowest and highest threshold allowed.
            Defaults to (0.05, 0.95).

    Example:
    >>> choose_threshold(np.array([[1, 0], [0, 1]]), np.array([[0.4, 0.1], [0.2, 0.3]]))
    0.25
    """
    y_true, probabilities = _multilabel_arrays(y_true, probabilities, None)
    low, high = bounds
    if not 0.0 <= low <= high <= 1.0:
        raise ConfigError(f"Expected 0 <= low <= high <= 1. Received: `bounds`={tuple(bounds)}.")
    positives = y_true.ravel().astype(bool)
    total = int(positives.sum())
    if total == 0:
        logger.warning("choose_threshold: no positive labels in y_true; using 0.5.")
        return 0.5
    values = probabilities.ravel()
    distinct = np.unique(values)  # ascending
    midpoints = (distinct + np.append(0.0, distinct[:-1])) / 2  # each value and the next lower one
    thresholds = np.unique(np.clip(np.append(midpoints, [low, high]), low, high))
    order = np.argsort(values, kind="stable")
    ascending, positive_sorted = values[order], positives[order]
    positives_at_or_above = np.append(np.cumsum(positive_sorted[::-1])[::-1], 0)  # by start index
    start = np.searchsorted(ascending, thresholds, side="left")  # first value >= threshold
    predicted = len(values) - start
    f1 = 2 * positives_at_or_above[start] / (predicted + total)
    if f1.max() == 0:
        logger.warning(
            "choose_threshold: no threshold in %s predicts any true label; using 0.5.",
            tuple(bounds),
        )
        return 0.5
    candidates = np.flatnonzero(np.isclose(f1, f1.max(), rtol=0, atol=1e-12))
    # Nearest 0.5 wins; rounding makes exact ties (0.05 vs 0.95) go to the lower one.
    distance = np.round(np.abs(thresholds[candidates] - 0.5), 12)
    return float(thresholds[candidates[np.argmin(distance)]])


def regression_scores(y_true, y_pred) -> dict:
    """MAE, RMSE, Pearson and Spearman correlation.

    Correlations are None when undefined (constant truth or prediction),
    not a misleading 0.

    Example:
    >>> regression_scores([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])["mae"]
    0.3333333333333333
    """
    from scipy import stats

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape or not len(y_true):
        raise ConfigError(
            "Expected equal, non-empty numbers of targets and predictions. Received: "
            f"{len(y_true)} and {len(y_pred)}."
        )
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ConfigError("Expected finite targets and predictions. Received: NaN or inf values.")
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "pearson": None if constant else float(stats.pearsonr(y_true, y_pred)[0]),
        "spearman": None if constant else float(stats.spearmanr(y_true, y_pred)[0]),
    }


def check_top_k(k) -> int:
    """`k` for a top-k answer: an int of at least 1 (0 or -1 are refused, never read as "all" or "one")."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"Expected `top_k` to be an integer of at least 1. Received: `top_k`={k!r}.")
    return int(k)


def top_k(probabilities, label_names: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
    """The k most probable labels of each row, with their probabilities, most probable first.

    Example:
    >>> top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=2)
    [[('b', 0.7), ('c', 0.2)]]
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim == 1:
        probabilities = probabilities[None, :]
    if probabilities.ndim != 2 or probabilities.shape[1] != len(label_names):
        raise ConfigError(
            f"Expected probabilities of shape [n, {len(label_names)}] for {len(label_names)} "
            f"labels. Received: shape {probabilities.shape}."
        )
    k = min(check_top_k(k), probabilities.shape[1])
    order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
    return [
        [(label_names[i], float(row[i])) for i in index] for row, index in zip(probabilities, order)
    ]


def format_label_scores(rows: dict, averages: list, summary: str, title: str = "") -> str:
    """A fixed-width table of per-label precision/recall/F1/support, then averages and a summary line.

    Args:
        rows: dict. `{label: {"precision", "recall", "f1", "support"}}`.
        averages: list of `(name, row)`, printed as "<name> avg" under the labels.
        summary: str. The last line (e.g. accuracy).
        title: str. A first line. Defaults to "".
    """
    lines = [title] if title else []
    width = max([20] + [len(str(name)) + 2 for name in rows])
    lines.append(f"{'label':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in list(rows.items()) + [("", None)] + [(f"{a} avg", row) for a, row in averages]:
        if row is None:
            lines.append("")
            continue
        lines.append(
            f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}"
        )
    lines.append(summary)
    return "\n".join(lines)


def format_value_scores(scores: dict, names, title: str = "") -> str:
    """One line of `name value` pairs ("n/a" for a missing value), under an optional title."""
    lines = [title] if title else []
    lines.append("  ".join(f"{name} {_number(scores.get(name))}" for name in names))
    return "\n".join(lines)


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _prf(row) -> dict:
    return {
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
        "f1": float(row["f1-score"]),
        "support": int(row["support"]),
    }


def _class_probabilities(probabilities, classes: int) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if classes == 2 and (
        probabilities.ndim == 1 or (probabilities.ndim == 2 and probabilities.shape[1] == 1)
    ):
        positive = probabilities.reshape(-1)
        probabilities = np.stack([1.0 - positive, positive], axis=1)
    if probabilities.ndim != 2 or probabilities.shape[1] != classes:
        raise ConfigError(
            f"Expected probabilities of shape [n, {classes}] for {classes} label names. Received: "
            f"shape {probabilities.shape}."
        )
    if not np.isfinite(probabilities).all():
        raise ConfigError("Expected finite probabilities. Received: NaN or inf values.")
    return probabilities


def _class_ids(y_true, label_names: list, n: int) -> np.ndarray:
    y_true = np.asarray(y_true).reshape(-1)
    if len(y_true) != n:
        raise ConfigError(
            f"Expected {n} true labels, one per row of probabilities. Received: {len(y_true)}."
        )
    if y_true.dtype.kind in "USO":
        index = {name: i for i, name in enumerate(label_names)}
        unknown = sorted({str(v) for v in y_true if v not in index})
        if unknown:
            raise ConfigError(f"True labels {unknown[:10]} are not in `label_names` {label_names}.")
        return np.asarray([index[v] for v in y_true], dtype=np.int64)
    if y_true.dtype.kind not in "iu" and not np.array_equal(y_true, np.round(y_true)):
        raise ConfigError(f"Expected integer class ids in y_true. Received: dtype {y_true.dtype}.")
    y_true = y_true.astype(np.int64)
    if len(y_true) and (y_true.min() < 0 or y_true.max() >= len(label_names)):
        raise ConfigError(
            f"Expected class ids in [0, {len(label_names) - 1}]. Received: ids from {y_true.min()} "
            f"to {y_true.max()}."
        )
    return y_true


def _multilabel_arrays(y_true, probabilities, labels: int | None) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if (
        y_true.ndim != 2
        or probabilities.shape != y_true.shape
        or (labels is not None and y_true.shape[1] != labels)
    ):
        expected = f"[n, {labels}]" if labels is not None else "[n, labels]"
        raise ConfigError(
            f"Expected y_true and probabilities of the same shape {expected}. Received: "
            f"{y_true.shape} and {probabilities.shape}."
        )
    if not np.isin(y_true, (0, 1)).all():
        raise ConfigError("Expected a 0/1 (multi-hot) y_true for multi-label scores.")
    if not np.isfinite(probabilities).all():
        raise ConfigError("Expected finite probabilities. Received: NaN or inf values.")
    return y_true.astype(int), probabilities
