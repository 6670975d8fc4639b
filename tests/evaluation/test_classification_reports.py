"""Metrics match scikit-learn; reports are written as real PNG/JSONL files."""

import json

import numpy as np
from sklearn import metrics as skm

from kerastune_nlp.evaluation import classification_metrics as cm
from kerastune_nlp.evaluation import reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_classification_scores_match_sklearn_and_include_auc():
    y = np.array([0, 1, 1, 0, 1])
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    scores = cm.classification_scores(y, probs, ["neg", "pos"])
    assert scores["accuracy"] == skm.accuracy_score(y, probs.argmax(1))
    assert np.isclose(scores["macro"]["f1"], skm.f1_score(y, probs.argmax(1), average="macro"))
    assert np.isclose(scores["roc_auc"], skm.roc_auc_score(y, probs[:, 1]))
    assert scores["confusion_matrix"] == [[2, 0], [1, 2]]


def test_multilabel_threshold_and_regression_scores():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    probs = np.array([[0.4, 0.1], [0.2, 0.35], [0.45, 0.3]])
    threshold = cm.choose_threshold(y, probs)
    assert threshold < 0.5
    assert cm.multilabel_scores(y, probs, ["a", "b"], threshold)["micro"]["f1"] == 1.0
    scores = cm.regression_scores([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
    assert np.isclose(scores["mae"], 1 / 3) and np.isclose(scores["rmse"], np.sqrt(0.5 / 3))
    assert np.isclose(scores["pearson"], 1.0)


def test_top_k_orders_labels_by_probability():
    top = cm.top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=2)
    assert top == [[("b", 0.7), ("c", 0.2)]]


def test_reports_are_real_files(tmp_path):
    reports.write_confusion_matrix(tmp_path / "cm.png", [[3, 1], [0, 4]], ["neg", "pos"])
    curves = reports.write_training_curves(tmp_path, {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7],
                                                      "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]},
                                           "val_accuracy")
    for path in [tmp_path / "cm.png", *curves]:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in curves) == ["curve_accuracy.png", "curve_loss.png"]
    rows = [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    reports.write_worst_predictions(tmp_path / "worst.jsonl", rows, np.array([0.1, 2.0, 0.5]), k=2)
    lines = [json.loads(l) for l in (tmp_path / "worst.jsonl").read_text().splitlines()]
    assert [l["text"] for l in lines] == ["b", "c"]
