"""Report files written into a run directory: plots and worst predictions."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def write_confusion_matrix(path, matrix: Sequence[Sequence[int]], label_names: Sequence[str], title: str = "") -> Path:
    """A labelled confusion-matrix PNG (rows gold, columns predicted, counts in cells)."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    size = max(4.0, 0.6 * len(label_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(label_names)), labels=label_names, rotation=45, ha="right")
    axes.set_yticks(range(len(label_names)), labels=label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title or "Confusion matrix")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    figure.tight_layout()
    return _save(figure, path, plt)


def write_training_curves(directory, history: dict, monitored: str) -> list[Path]:
    """curve_loss.png and curve_<metric>.png: per-epoch train vs validation.

    Args:
        directory: where the PNGs go.
        history: Keras `History.history` (`loss`, `val_loss`, ...).
        monitored: the validation metric watched for the best epoch, with or
            without its `val_` prefix.
    """
    plt = _pyplot()
    written = []
    for metric in ("loss", monitored.removeprefix("val_")):
        series = {name: history[name] for name in (metric, f"val_{metric}") if history.get(name)}
        if not series:
            continue
        figure, axes = plt.subplots(figsize=(5, 3.5))
        for name, values in series.items():
            label = "validation" if name.startswith("val_") else "train"
            axes.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_title(metric)
        axes.legend()
        figure.tight_layout()
        written.append(_save(figure, Path(directory) / f"curve_{metric}.png", plt))
    return written


def write_worst_predictions(path, rows: list[dict], losses: np.ndarray, k: int = 50) -> Path:
    """The k highest-loss examples as JSON Lines, worst first."""
    order = np.argsort(-np.asarray(losses))[:k]
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as handle:
        for index in order:
            handle.write(json.dumps({**rows[index], "loss": float(losses[index])}, ensure_ascii=False) + "\n")
    os.replace(handle.name, path)
    return path


def _save(figure, path, plt) -> Path:
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)
    return path
