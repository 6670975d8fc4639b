"""Metrics agree with scikit-learn and scipy, are JSON-serialisable, and refuse bad shapes."""

import json

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.evaluation import classification_metrics as cm

NAMES = ["DESC", "ENTY", "HUM"]
Y = np.array([0, 1, 2, 2, 1, 0, 2, 1])
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.6, 0.3],
        [0.2, 0.2, 0.6],
        [0.5, 0.1, 0.4],
        [0.3, 0.4, 0.3],
        [0.2, 0.5, 0.3],
        [0.1, 0.1, 0.8],
        [0.6, 0.3, 0.1],
    ]
)


def test_multiclass_scores_match_sklearn():
    scores = cm.classification_scores(Y, PROBS, NAMES)
    predicted = PROBS.argmax(1)
    assert scores["accuracy"] == skm.accuracy_score(Y, predicted)
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            Y, predicted, average=average, zero_division=0
        )
        assert np.allclose([scores[average][k] for k in ("precision", "recall", "f1")], [p, r, f])
    per_class_f1 = skm.f1_score(Y, predicted, average=None)
    assert np.allclose([scores["per_class"][n]["f1"] for n in NAMES], per_class_f1)
    assert [scores["per_class"][n]["support"] for n in NAMES] == [2, 3, 3]
    assert scores["confusion_matrix"] == skm.confusion_matrix(Y, predicted).tolist()
    assert "roc_auc" not in scores and scores["labels"] == NAMES and scores["n"] == 8
    json.dumps(scores, allow_nan=False)


def test_label_names_as_truth_and_a_class_never_predicted():
    names_true = np.array([NAMES[i] for i in Y])
    assert cm.classification_scores(names_true, PROBS, NAMES) == cm.classification_scores(
        Y, PROBS, NAMES
    )
    four = np.hstack([PROBS * 0.9, np.full((8, 1), 0.1)])  # "LOC" is never true and never predicted
    scores = cm.classification_scores(Y, four, NAMES + ["LOC"])
    assert scores["per_class"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert np.isclose(
        scores["macro"]["f1"],
        skm.f1_score(Y, four.argmax(1), labels=[0, 1, 2, 3], average="macro", zero_division=0),
    )


def test_binary_roc_auc_and_single_probability_column():
    y = np.array([0, 1, 1, 0, 1])
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    scores = cm.classification_scores(y, probs, ["neg", "pos"])
    assert np.isclose(scores["roc_auc"], skm.roc_auc_score(y, probs[:, 1]))
    assert scores["confusion_matrix"] == [[2, 0], [1, 2]]
    assert cm.classification_scores(y, probs[:, 1], ["neg", "pos"]) == scores
    assert cm.classification_scores(y, probs[:, 1:], ["neg", "pos"]) == scores
    one_class = cm.classification_scores(np.zeros(5, int), probs, ["neg", "pos"])
    assert "roc_auc" not in one_class


def test_classification_input_errors():
    with pytest.raises(
        ConfigError,
        match=r"Expected probabilities of shape \[n, 4\] for 4 label names\. Received: shape \(8, 3\)",
    ):
        cm.classification_scores(Y, PROBS, NAMES + ["LOC"])
    with pytest.raises(
        ConfigError, match=r"Expected 8 true labels, one per row of probabilities\. Received: 7"
    ):
        cm.classification_scores(Y[:7], PROBS, NAMES)
    with pytest.raises(
        ConfigError, match=r"Expected class ids in \[0, 2\]\. Received: ids from 0 to 3"
    ):
        cm.classification_scores(np.array([0, 1, 2, 3, 0, 1, 2, 1]), PROBS, NAMES)
    with pytest.raises(ConfigError, match=r"True labels \['NUM'\] are not in `label_names`"):
        cm.classification_scores(np.array(["DESC"] * 7 + ["NUM"]), PROBS, NAMES)
    with pytest.raises(ConfigError, match="Expected finite probabilities"):
        cm.classification_scores(Y, np.full_like(PROBS, np.nan), NAMES)


ML_Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]])
ML_P = np.array(
    [[0.9, 0.2, 0.4], [0.3, 0.6, 0.1], [0.7, 0.45, 0.2], [0.1, 0.3, 0.8], [0.35, 0.1, 0.2]]
)


def test_multilabel_scores_match_sklearn():
    scores = cm.multilabel_scores(ML_Y, ML_P, ["a", "b", "c"], threshold=0.5)
    predicted = (ML_P >= 0.5).astype(int)
    for average in ("micro", "macro", "weighted"):
        assert np.isclose(
            scores[average]["f1"], skm.f1_score(ML_Y, predicted, average=average, zero_division=0)
        )
    assert np.allclose(
        [scores["per_label"][n]["f1"] for n in "abc"], skm.f1_score(ML_Y, predicted, average=None)
    )
    assert scores["subset_accuracy"] == skm.accuracy_score(ML_Y, predicted)
    assert scores["hamming_loss"] == skm.hamming_loss(ML_Y, predicted)
    json.dumps(scores, allow_nan=False)
    with pytest.raises(ConfigError, match=r"same shape \[n, 2\]\. Received: \(5, 3\) and \(5, 3\)"):
        cm.multilabel_scores(ML_Y, ML_P, ["a", "b"])
    with pytest.raises(ConfigError, match=r"Expected a 0/1 \(multi-hot\) y_true"):
        cm.multilabel_scores(ML_Y * 2, ML_P, ["a", "b", "c"])


def test_choose_threshold_maximises_micro_f1_on_dev():
    threshold = cm.choose_threshold(ML_Y, ML_P)
    f1 = skm.f1_score(ML_Y, (ML_P >= threshold).astype(int), average="micro")
    grid = [
        skm.f1_score(ML_Y, (ML_P >= t).astype(int), average="micro")
        for t in np.arange(0.05, 0.951, 0.01)
    ]
    assert f1 >= max(grid) - 1e-12
    assert 0.05 <= threshold <= 0.95 and threshold not in ML_P  # between two dev scores
    assert (
        cm.choose_threshold(np.array([[1, 0], [0, 1]]), np.array([[0.4, 0.1], [0.2, 0.3]])) == 0.25
    )
    # The old docstring case: every positive scores below 0.5.
    y = np.array([[1, 0], [0, 1], [1, 1]])
    probs = np.array([[0.4, 0.1], [0.2, 0.35], [0.45, 0.3]])
    assert (
        cm.multilabel_scores(y, probs, ["a", "b"], cm.choose_threshold(y, probs))["micro"]["f1"]
        == 1.0
    )


def test_choose_threshold_bounds_and_degenerate_cases():
    y = np.array([[1, 0], [1, 0]])
    probs = np.array([[0.6, 0.01], [0.03, 0.02]])
    # Unbounded, 0.025 separates perfectly; within (0.05, 0.95) the best F1 (2/3) is reached by
    # 0.05 and by 0.315 (midway between 0.03 and 0.6), and 0.315 is nearer 0.5.
    assert np.isclose(cm.choose_threshold(y, probs, bounds=(0.0, 1.0)), 0.025)
    assert np.isclose(cm.choose_threshold(y, probs), 0.315)
    tiny = np.array([[0.02, 0.01], [0.03, 0.001]])  # nothing reaches the lower bound
    assert cm.choose_threshold(y, tiny) == 0.5
    assert cm.choose_threshold(np.zeros((3, 2), int), np.full((3, 2), 0.9)) == 0.5
    with pytest.raises(
        ConfigError, match=r"Expected 0 <= low <= high <= 1\. Received: `bounds`=\(0\.9, 0\.1\)"
    ):
        cm.choose_threshold(y, probs, bounds=(0.9, 0.1))


def test_regression_scores_match_scipy_and_sklearn():
    y = np.array([1.0, 2.0, 3.0, 4.5, 0.5])
    pred = np.array([1.5, 2.0, 2.5, 4.0, 1.0])
    scores = cm.regression_scores(y, pred)
    assert np.isclose(scores["mae"], skm.mean_absolute_error(y, pred))
    assert np.isclose(scores["rmse"], np.sqrt(skm.mean_squared_error(y, pred)))
    assert np.isclose(scores["pearson"], stats.pearsonr(y, pred)[0])
    assert np.isclose(scores["spearman"], stats.spearmanr(y, pred)[0])
    assert set(scores) == {"mae", "rmse", "pearson", "spearman"}
    constant = cm.regression_scores(y, np.full(5, 2.0))
    assert constant["pearson"] is None and constant["spearman"] is None
    json.dumps(constant, allow_nan=False)
    with pytest.raises(
        ConfigError,
        match=r"equal, non-empty numbers of targets and predictions\. Received: 5 and 4",
    ):
        cm.regression_scores(y, pred[:4])
    with pytest.raises(ConfigError, match="Expected finite targets and predictions"):
        cm.regression_scores(y, np.append(pred[:4], np.inf))


def test_top_k():
    assert cm.top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=2) == [[("b", 0.7), ("c", 0.2)]]
    assert cm.top_k(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], k=5) == [
        [("b", 0.7), ("c", 0.2), ("a", 0.1)]
    ]
    with pytest.raises(
        ConfigError, match=r"shape \[n, 2\] for 2 labels\. Received: shape \(1, 3\)"
    ):
        cm.top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b"])
    with pytest.raises(ConfigError, match=r"Received: `top_k`=0"):
        cm.top_k(np.array([[0.1, 0.9]]), ["a", "b"], k=0)


def test_format_scores_for_every_task():
    import kerastune_nlp as kt

    def table(name, scores, title=""):
        return kt.get_task(name)().format_scores(scores, title)

    text = table("classification", cm.classification_scores(Y, PROBS, NAMES), "Dev")
    assert text.startswith("Dev:") and "DESC" in text and "accuracy 0.6250" in text
    assert "threshold 0.50" in table("multilabel", cm.multilabel_scores(ML_Y, ML_P, ["a", "b", "c"]))
    assert "pearson n/a" in table("regression", cm.regression_scores([1.0, 2.0], [1.0, 1.0]))
