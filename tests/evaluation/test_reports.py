"""Report files: valid PNGs, worst predictions as JSON Lines, metrics.json written atomically."""

import json
import logging
import struct

import numpy as np
import pytest
from sklearn import metrics as skm

from kerastune_nlp.data.text_examples import TextExample
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.evaluation import reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = {
    "loss": [1.0, 0.6, 0.4],
    "val_loss": [1.1, 0.8, 0.7],
    "accuracy": [0.5, 0.7, 0.8],
    "val_accuracy": [0.4, 0.6, 0.65],
}


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    from PIL import Image  # a matplotlib dependency

    with Image.open(path) as image:
        image.verify()
    return struct.unpack(">II", data[16:24])


def _no_temporaries(directory):
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


# Without a CJK font installed, matplotlib warns and draws boxes for 東京; the file is still valid.
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_confusion_matrix_png(tmp_path):
    path = reports.write_confusion_matrix(
        tmp_path / "confusion_matrix.png",
        [[3, 1, 0], [0, 4, 1], [2, 0, 5]],
        ["DESC", "ENTY", "東京"],
    )
    width, height = _png_size(path)
    assert width > 300 and height > 300
    _no_temporaries(tmp_path)
    with pytest.raises(
        ConfigError, match=r"Expected a 2x2 matrix for 2 label names\. Received: shape \(3, 3\)"
    ):
        reports.write_confusion_matrix(tmp_path / "bad.png", np.eye(3, dtype=int), ["a", "b"])


def test_training_curves(tmp_path, caplog):
    curves = reports.write_training_curves(tmp_path, HISTORY, "val_accuracy")
    assert [p.name for p in curves] == ["curve_loss.png", "curve_accuracy.png"]
    for path in curves:
        _png_size(path)
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.evaluation"):
        only_loss = reports.write_training_curves(
            tmp_path / "run2", {"loss": [1.0, 0.5]}, "val_micro_f1"
        )
    assert [p.name for p in only_loss] == ["curve_loss.png"]
    assert "No 'micro_f1' or 'val_micro_f1' in the training history" in caplog.text


def test_worst_predictions_are_the_highest_losses_first(tmp_path):
    rows = [{"text": "a"}, {"text": "東京 😀"}, {"text": "c"}]
    path = reports.write_worst_predictions(
        tmp_path / "worst_predictions.jsonl", rows, np.array([0.1, 2.0, 0.5]), k=2
    )
    raw = path.read_text(encoding="utf-8")
    assert "東京 😀" in raw  # written as text, not \\u escapes
    assert [json.loads(line) for line in raw.splitlines()] == [
        {"text": "東京 😀", "loss": 2.0},
        {"text": "c", "loss": 0.5},
    ]
    with pytest.raises(ConfigError, match=r"one loss per row\. Received: 2 losses for 3 rows"):
        reports.write_worst_predictions(tmp_path / "w.jsonl", rows, [1.0, 2.0])


def test_prediction_rows_for_each_task():
    examples = [
        TextExample("good", "pos", source="dev.csv", line=2),
        TextExample("bad", "neg", "pair"),
    ]
    rows, losses = reports.class_prediction_rows(
        examples,
        np.array([1, 0]),
        np.array([[0.2, 0.8], [0.1, 0.9]]),
        ["neg", "pos"],
    )
    assert rows[0] == {
        "text": "good",
        "source": "dev.csv",
        "line": 2,
        "gold": "pos",
        "predicted": "pos",
        "probability": 0.8,
        "gold_probability": 0.8,
    }
    assert rows[1]["text_pair"] == "pair" and rows[1]["predicted"] == "pos"
    assert np.allclose(losses, [-np.log(0.8), -np.log(0.1)])
    assert np.isclose(losses[1], skm.log_loss([0], [[0.1, 0.9]], labels=[0, 1]))
    rows, losses = reports.label_set_prediction_rows(
        ["t1"], np.array([[1, 0]]), np.array([[0.7, 0.6]]), ["a", "b"], threshold=0.65
    )
    assert rows == [
        {"text": "t1", "gold": ["a"], "predicted": ["a"], "probability": {"a": 0.7, "b": 0.6}}
    ]
    assert np.isclose(losses[0], skm.log_loss([1, 0], [0.7, 0.6]))
    rows, losses = reports.value_prediction_rows(["t"], np.array([2.0]), np.array([3.5]))
    assert rows == [{"text": "t", "gold": 2.0, "predicted": 3.5}] and losses[0] == 2.25
    with pytest.raises(
        ConfigError, match=r"as many examples, true labels and outputs\. Received: 1, 2, 2"
    ):
        reports.class_prediction_rows(["x"], np.array([0, 1]), np.eye(2), ["a", "b"])


def test_metrics_json_is_atomic_and_plain(tmp_path, caplog):
    path = reports.write_metrics(
        tmp_path,
        {
            "accuracy": np.float32(0.5),
            "confusion": np.eye(2, dtype=np.int64),
            "pearson": float("nan"),
            "labels": ("a", "b"),
        },
    )
    assert path == tmp_path / "metrics.json"
    assert json.loads(path.read_text()) == {
        "accuracy": 0.5,
        "confusion": [[1, 0], [0, 1]],
        "pearson": None,
        "labels": ["a", "b"],
    }
    assert "metrics.pearson is nan" in caplog.text
    # A failed write leaves the previous file whole and no temporary behind.
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"Cannot write metrics\.bad as JSON\. Received: object"):
        reports.write_metrics(path, {"bad": object()})
    assert path.read_bytes() == before
    _no_temporaries(tmp_path)


def test_write_classification_report_end_to_end(tmp_path):
    names = ["neg", "neu", "pos"]
    y = np.array([0, 1, 2, 2, 1, 0])
    probs = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.2, 0.5, 0.3],
            [0.1, 0.2, 0.7],
            [0.6, 0.1, 0.3],
            [0.3, 0.3, 0.4],
            [0.8, 0.1, 0.1],
        ]
    )
    examples = [TextExample(f"text {i}", names[label], line=i + 1) for i, label in enumerate(y)]
    written = reports.write_classification_report(
        tmp_path / "run", examples, y, probs, names, HISTORY, k=3
    )
    assert set(written) == {
        "metrics",
        "confusion_matrix",
        "worst_predictions",
        "curve_loss",
        "curve_accuracy",
    }
    for key in ("confusion_matrix", "curve_loss", "curve_accuracy"):
        _png_size(written[key])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    predicted = probs.argmax(1)
    assert metrics["accuracy"] == skm.accuracy_score(y, predicted)
    assert np.isclose(metrics["macro"]["f1"], skm.f1_score(y, predicted, average="macro"))
    assert np.isclose(
        metrics["weighted"]["recall"], skm.recall_score(y, predicted, average="weighted")
    )
    assert metrics["confusion_matrix"] == skm.confusion_matrix(y, predicted).tolist()
    worst = [
        json.loads(line)
        for line in (tmp_path / "run" / "worst_predictions.jsonl").read_text().splitlines()
    ]
    assert len(worst) == 3 and worst[0]["loss"] >= worst[1]["loss"] >= worst[2]["loss"]
    assert worst[0] == {
        "text": "text 3",
        "line": 4,
        "gold": "pos",
        "predicted": "neg",
        "probability": 0.6,
        "gold_probability": 0.3,
        "loss": pytest.approx(-np.log(0.3)),
    }
    _no_temporaries(tmp_path / "run")


def test_top_k_is_available_for_predictions():
    assert reports.top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=1) == [[("b", 0.7)]]
