"""Metrics for classification, multi-label classification and regression.

Inputs are numpy arrays; outputs are JSON-serialisable dicts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm


def classification_scores(y_true: np.ndarray, probabilities: np.ndarray, label_names: Sequence[str]) -> dict:
    """Accuracy, macro/weighted P/R/F1, a per-class report, and ROC-AUC when binary.

    Args:
        y_true: int array [n] of class ids.
        probabilities: float array [n, classes].
        label_names: class names by id.
    """
    y_pred = probabilities.argmax(axis=-1)
    ids = list(range(len(label_names)))
    report = skm.classification_report(
        y_true, y_pred, labels=ids, target_names=list(label_names), output_dict=True, zero_division=0
    )
    scores = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro": _prf(report["macro avg"]),
        "weighted": _prf(report["weighted avg"]),
        "per_class": {name: _prf(report[name]) for name in label_names},
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(label_names),
    }
    if len(label_names) == 2 and len(np.unique(y_true)) == 2:
        scores["roc_auc"] = float(skm.roc_auc_score(y_true, probabilities[:, 1]))
    return scores


def multilabel_scores(y_true: np.ndarray, probabilities: np.ndarray, label_names: Sequence[str],
                      threshold: float = 0.5) -> dict:
    """Micro/macro P/R/F1, subset accuracy and per-label F1 at `threshold`."""
    y_pred = (probabilities >= threshold).astype(int)
    report = skm.classification_report(
        y_true, y_pred, target_names=list(label_names), output_dict=True, zero_division=0
    )
    return {
        "threshold": float(threshold),
        "subset_accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "micro": _prf(report["micro avg"]),
        "macro": _prf(report["macro avg"]),
        "per_label": {name: _prf(report[name]) for name in label_names},
    }


def choose_threshold(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The global decision threshold (0.05..0.95) that maximises micro F1 on dev."""
    best, best_f1 = 0.5, -1.0
    for threshold in np.arange(0.05, 0.96, 0.05):
        f1 = skm.f1_score(y_true, (probabilities >= threshold).astype(int), average="micro", zero_division=0)
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(round(threshold, 2)), f1
    return best


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MAE, RMSE, Pearson and Spearman correlation."""
    from scipy import stats

    y_true, y_pred = np.asarray(y_true, float).ravel(), np.asarray(y_pred, float).ravel()
    constant = np.std(y_pred) == 0 or np.std(y_true) == 0
    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "pearson": 0.0 if constant else float(stats.pearsonr(y_true, y_pred)[0]),
        "spearman": 0.0 if constant else float(stats.spearmanr(y_true, y_pred)[0]),
    }


def top_k(probabilities: np.ndarray, label_names: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
    """The k most probable labels of each row, with their probabilities."""
    k = min(k, probabilities.shape[-1])
    order = np.argsort(-probabilities, axis=-1)[:, :k]
    return [[(label_names[i], float(row[i])) for i in idx] for row, idx in zip(probabilities, order)]


def _prf(row) -> dict:
    return {
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
        "f1": float(row["f1-score"]),
        "support": int(row["support"]),
    }


def format_scores(task: str, scores: dict, title: str = "") -> str:
    """A fixed-width text report of `classification_scores` / `multilabel_scores` / `regression_scores`."""
    lines = [title] if title else []
    if task == "regression":
        lines.append("  ".join(f"{name} {scores[name]:.4f}" for name in ("mae", "rmse", "pearson", "spearman")))
        return "\n".join(lines)
    rows = scores["per_class"] if task == "classification" else scores["per_label"]
    lines.append(f"{'label':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    averages = ("macro", "weighted") if task == "classification" else ("micro", "macro")
    for name, row in list(rows.items()) + [("", None)] + [(f"{a} avg", scores[a]) for a in averages]:
        if row is None:
            lines.append("")
            continue
        lines.append(f"{name:<20}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}")
    if task == "classification":
        lines.append(f"accuracy {scores['accuracy']:.4f}" + (f"   ROC-AUC {scores['roc_auc']:.4f}" if "roc_auc" in scores else ""))
    else:
        lines.append(f"subset accuracy {scores['subset_accuracy']:.4f} at threshold {scores['threshold']:.2f}")
    return "\n".join(lines)
