"""Report files written into a run directory: plots, worst predictions, metrics.

Every file is written to a temporary name in the same folder and then
renamed over the target (`os.replace`), so a crash never leaves a half
written report. Plots use matplotlib's Agg canvas directly, without pyplot
or a display, and without changing the global backend.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from kerastune_nlp.errors import ConfigError, MissingDependencyError
from kerastune_nlp.evaluation.classification_metrics import (
    _class_ids,
    _class_probabilities,
    classification_scores,
    top_k,
)

logger = logging.getLogger("kerastune_nlp.evaluation")

__all__ = [
    "write_confusion_matrix",
    "write_training_curves",
    "write_worst_predictions",
    "write_metrics",
    "class_prediction_rows",
    "label_set_prediction_rows",
    "value_prediction_rows",
    "write_classification_report",
    "top_k",
]


# Fonts tried after DejaVu Sans for labels it has no glyphs for (CJK, Arabic,
# ...), when installed; without one, matplotlib warns and draws boxes.
_FALLBACK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "Noto Sans",
    "Arial Unicode MS",
)


@contextlib.contextmanager
def _figure(width: float, height: float):
    """A new Agg figure; plot and save it inside the `with` (fonts are read while drawing)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.font_manager import fontManager
    except ImportError as error:
        raise MissingDependencyError(
            "Report plots need matplotlib: pip install 'matplotlib>=3.8,<4'."
        ) from error
    installed = {font.name for font in fontManager.ttflist}
    families = ["DejaVu Sans"] + [name for name in _FALLBACK_FONTS if name in installed]
    with matplotlib.rc_context({"font.family": families}):
        figure = Figure(figsize=(width, height))
        FigureCanvasAgg(figure)
        yield figure


def write_confusion_matrix(path, matrix, label_names: Sequence[str], title: str = "") -> Path:
    """A confusion-matrix PNG: rows gold, columns predicted, the count in each cell.

    Args:
        path: str or Path. The PNG to write, e.g. `run_dir / "confusion_matrix.png"`.
        matrix: int array `[classes, classes]`, as `classification_scores`
            returns under "confusion_matrix".
        label_names: sequence of str. Class names by id.
        title: str. Defaults to "Confusion matrix".
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (len(label_names), len(label_names)):
        raise ConfigError(
            f"Expected a {len(label_names)}x{len(label_names)} matrix for {len(label_names)} label "
            f"names. Received: shape {matrix.shape}."
        )
    size = min(30.0, max(4.5, 0.55 * len(label_names) + 2.5))
    with _figure(size, size) as figure:
        axes = figure.add_subplot()
        image = axes.imshow(matrix, cmap="Blues", vmin=0)
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        ticks = range(len(label_names))
        axes.set_xticks(ticks, labels=list(label_names), rotation=45, ha="right")
        axes.set_yticks(ticks, labels=list(label_names))
        axes.set_xlabel("Predicted label")
        axes.set_ylabel("True label")
        axes.set_title(title or f"Confusion matrix (n={int(matrix.sum())})")
        threshold = matrix.max() / 2 if matrix.size else 0
        font = max(6, 11 - len(label_names) // 5)
        for (i, j), count in np.ndenumerate(matrix):
            axes.text(
                j,
                i,
                str(int(count)),
                ha="center",
                va="center",
                fontsize=font,
                color="white" if count > threshold else "black",
            )
        figure.tight_layout()
        return _save_figure(figure, path)


def write_training_curves(directory, history: dict, monitored: str) -> list[Path]:
    """`curve_loss.png` and `curve_<metric>.png`: per-epoch train vs validation.

    Args:
        directory: str or Path. The run directory.
        history: dict. Keras `History.history` (`loss`, `val_loss`,
            `accuracy`, `val_accuracy`, ...), lists of per-epoch values.
        monitored: str. The metric watched for the best epoch, with or
            without its `val_` prefix (e.g. "val_accuracy").

    Returns:
        The PNGs written. A series absent from `history` is logged and
        skipped (a report must not fail a finished run).
    """
    written = []
    for metric in dict.fromkeys(("loss", monitored.removeprefix("val_"))):
        series = {
            name: list(history[name]) for name in (metric, f"val_{metric}") if history.get(name)
        }
        if not series:
            logger.warning(
                "No %r or %r in the training history (keys: %s); no curve for it.",
                metric,
                f"val_{metric}",
                sorted(history),
            )
            continue
        with _figure(5.5, 3.8) as figure:
            axes = figure.add_subplot()
            for name, values in series.items():
                label = "validation" if name.startswith("val_") else "train"
                axes.plot(range(1, len(values) + 1), values, marker="o", label=label)
            axes.set_xlabel("epoch")
            axes.set_ylabel(metric)
            axes.set_title(f"{metric} per epoch")
            axes.xaxis.get_major_locator().set_params(integer=True)
            axes.grid(alpha=0.3)
            axes.legend()
            figure.tight_layout()
            written.append(_save_figure(figure, Path(directory) / f"curve_{metric}.png"))
    return written


def write_worst_predictions(path, rows: Sequence[dict], losses, k: int = 50) -> Path:
    """The k highest-loss rows as JSON Lines, worst first, each with its `loss`.

    Args:
        path: str or Path. E.g. `run_dir / "worst_predictions.jsonl"`.
        rows: sequence of dict. One per example (text, gold, predicted, ...),
            as the `*_prediction_rows` functions make them.
        losses: float array `[n]`. Per-example loss.
        k: int. Rows kept. Defaults to 50.
    """
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    if len(losses) != len(rows):
        raise ConfigError(
            f"Expected one loss per row. Received: {len(losses)} losses for {len(rows)} rows."
        )
    order = np.argsort(-losses, kind="stable")[:k]
    lines = [
        json.dumps({**rows[i], "loss": float(losses[i])}, ensure_ascii=False, default=_json_default)
        for i in order
    ]
    return _write_atomic(path, "".join(line + "\n" for line in lines))


def write_metrics(path, metrics: dict) -> Path:
    """Writes `metrics` as indented JSON, atomically.

    numpy numbers and arrays become Python ones; NaN and infinity, which
    JSON cannot hold, become null (logged).

    Args:
        path: str or Path. A run directory (the file is `metrics.json` in
            it) or a `.json` path.
        metrics: dict. JSON-serialisable after the conversions above.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    cleaned = _plain(metrics, "metrics")
    return _write_atomic(
        path, json.dumps(cleaned, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )


def class_prediction_rows(examples: Sequence, y_true, probabilities,
                          label_names: Sequence[str]) -> tuple[list[dict], np.ndarray]:
    """Rows for `write_worst_predictions` of a single-label classifier, and their losses.

    Loss: cross-entropy of the gold class. Each row has text, gold,
    predicted, the probability of the predicted class and of the gold class.

    Args:
        examples: sequence of str or of objects with `text` (and optionally
            `text_pair`, `source`, `line`, such as `TextExample`).
        y_true: class ids `[n]`.
        probabilities: `[n, classes]`.
        label_names: sequence of str.
    """
    rows, y_true, outputs = _rows(examples, y_true, probabilities)
    label_names = list(label_names)
    gold = y_true.astype(np.int64).reshape(-1)
    predicted = outputs.argmax(axis=-1)
    gold_probability = outputs[np.arange(len(gold)), gold]
    losses = -np.log(np.clip(gold_probability, _EPSILON, 1.0))
    for row, g, p, probs, gp in zip(rows, gold, predicted, outputs, gold_probability):
        row.update(gold=label_names[g], predicted=label_names[p], probability=float(probs[p]),
                   gold_probability=float(gp))
    return rows, losses


def label_set_prediction_rows(examples: Sequence, y_true, probabilities, label_names: Sequence[str],
                              threshold: float = 0.5) -> tuple[list[dict], np.ndarray]:
    """Rows of a multi-label classifier (gold and predicted label lists) and their losses.

    Loss: mean binary cross-entropy over labels. `y_true` is a 0/1 array
    `[n, labels]`; `threshold` the decision threshold. Defaults to 0.5.
    """
    rows, y_true, outputs = _rows(examples, y_true, probabilities)
    label_names = list(label_names)
    clipped = np.clip(outputs, _EPSILON, 1 - _EPSILON)
    losses = -(y_true * np.log(clipped) + (1 - y_true) * np.log(1 - clipped)).mean(axis=-1)
    for row, truth, probs in zip(rows, y_true, outputs):
        row.update(gold=[n for n, t in zip(label_names, truth) if t],
                   predicted=[n for n, p in zip(label_names, probs) if p >= threshold],
                   probability={n: float(p) for n, p in zip(label_names, probs)})
    return rows, losses


def value_prediction_rows(examples: Sequence, y_true, values) -> tuple[list[dict], np.ndarray]:
    """Rows of a regressor (gold and predicted values) and their squared errors."""
    rows, y_true, outputs = _rows(examples, y_true, values)
    gold = y_true.astype(np.float64).reshape(-1)
    predicted = outputs.reshape(-1)
    for row, g, p in zip(rows, gold, predicted):
        row.update(gold=float(g), predicted=float(p))
    return rows, (gold - predicted) ** 2


_EPSILON = 1e-12


def _rows(examples, y_true, outputs) -> tuple[list[dict], np.ndarray, np.ndarray]:
    outputs = np.asarray(outputs, dtype=np.float64)
    y_true = np.asarray(y_true)
    if len(examples) != len(outputs) or len(y_true) != len(outputs):
        raise ConfigError(
            f"Expected as many examples, true labels and outputs. Received: {len(examples)}, "
            f"{len(y_true)}, {len(outputs)}."
        )
    return [_row(example) for example in examples], y_true, outputs


def write_classification_report(
    run_dir,
    examples: Sequence,
    y_true,
    probabilities,
    label_names: Sequence[str],
    history: dict | None = None,
    monitored: str = "val_accuracy",
    k: int = 50,
) -> dict[str, Path]:
    """Scores a single-label classifier and writes every report into `run_dir`.

    Writes `metrics.json` (from `classification_scores`),
    `confusion_matrix.png`, `worst_predictions.jsonl` and, with a history,
    `curve_loss.png` and `curve_<monitored>.png`.

    Example:
    >>> paths = write_classification_report("saved_models/run1", dev_examples, y_dev, probs, names, history)
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    scores = classification_scores(y_true, probabilities, label_names)
    y_true = _class_ids(y_true, list(label_names), len(examples))
    written = {"metrics": write_metrics(run_dir / "metrics.json", scores)}
    written["confusion_matrix"] = write_confusion_matrix(
        run_dir / "confusion_matrix.png", scores["confusion_matrix"], label_names
    )
    probabilities = _class_probabilities(probabilities, len(label_names))
    rows, losses = class_prediction_rows(examples, y_true, probabilities, label_names)
    written["worst_predictions"] = write_worst_predictions(
        run_dir / "worst_predictions.jsonl", rows, losses, k
    )
    if history:
        for curve in write_training_curves(run_dir, history, monitored):
            written[curve.stem] = curve
    return written


def _row(example) -> dict:
    if isinstance(example, str):
        return {"text": example}
    row = {"text": example.text}
    if getattr(example, "text_pair", None) is not None:
        row["text_pair"] = example.text_pair
    for name in ("source", "line"):
        if getattr(example, name, None) not in (None, "", 0, "<memory>"):
            row[name] = getattr(example, name)
    return row


def _plain(value, where: str):
    """numpy -> Python; non-finite floats -> None (logged)."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        logger.warning("%s is %s, which JSON cannot hold; written as null.", where, value)
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ConfigError(
        f"Cannot write {where} as JSON. Received: {type(value).__name__} {value!r:.60}."
    )


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _save_figure(figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            figure.savefig(stream, format="png", dpi=100)
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _write_atomic(path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
