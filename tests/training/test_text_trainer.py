"""Sequence-level heads and losses on a tiny backbone, on real TREC questions."""

import dataclasses
import json

import numpy as np
import pytest

from kerastune_nlp.config import ClassificationConfig, DataConfig, ModelConfig, RegressionConfig, TrainConfig
from kerastune_nlp.data.bundled_trec import load_bundled_trec
from kerastune_nlp.errors import ConfigError, LabelError
from kerastune_nlp.inference import load_run
from kerastune_nlp.tasks import get_task
from kerastune_nlp.tasks.base import EncodedSplit
from kerastune_nlp.training.text_trainer import train_text_classifier


@pytest.fixture(scope="module")
def trec():
    splits = load_bundled_trec()
    return splits["train"][:160], splits["train"][160:200], splits["test"][:60]


def _train(tmp_path, tiny_bert, train, dev, test, task, **kwargs):
    return train_text_classifier(
        train, dev, test, task=task, output_dir=tmp_path / task,
        model_config=ModelConfig(backbone=str(tiny_bert)), data_config=DataConfig(max_length=32),
        train_config=TrainConfig(epochs=2, batch_size=16, learning_rate=1e-3), verbose=0, **kwargs,
    )


def _drop_unseen(train, other):
    known = {e.label for e in train}
    return [e for e in other if e.label in known]


def test_multiclass_with_class_weights_writes_reports_and_reloads(tmp_path, tiny_bert, trec):
    train, dev, test = trec
    dev, test = _drop_unseen(train, dev), _drop_unseen(train, test)
    result = _train(tmp_path, tiny_bert, train, dev, test, "classification",
                    task_config=ClassificationConfig(class_weights=True))
    run = result.run_dir
    for name in ("metrics.json", "confusion_matrix.png", "curve_loss.png", "curve_accuracy.png",
                 "worst_predictions.jsonl", "model.h5", "run_config.json"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "macro", "weighted", "per_class", "confusion_matrix"}
    worst = [json.loads(line) for line in (run / "worst_predictions.jsonl").read_text().splitlines()]
    assert worst[0]["loss"] >= worst[-1]["loss"] and {"text", "gold", "predicted"} <= set(worst[0])
    texts = [e.text for e in test[:5]]
    reloaded = load_run(run)
    np.testing.assert_allclose(reloaded.task.raw_outputs(reloaded, texts),
                               result.predictor.task.raw_outputs(result.predictor, texts), atol=1e-5)
    top = reloaded.predict(texts, top_k=2)
    assert all(len(row) == 2 and row[0][1] >= row[1][1] for row in top)


def test_class_weights_are_inverse_frequency():
    task = get_task("classification")(ClassificationConfig(class_weights=True), {"labels": ["a", "b"]})
    weights = task.fit_options(EncodedSplit([], np.array([0, 0, 0, 1])))["class_weight"]
    assert weights[1] == pytest.approx(3 * weights[0])


def test_multilabel_head_chooses_a_threshold_on_dev(tmp_path, tiny_bert, trec):
    def tags(example):
        extra = ("has_number",) if any(c.isdigit() for c in example.text) else ()
        return dataclasses.replace(example, label=(example.label,) + extra)

    train, dev, test = ([tags(e) for e in split] for split in trec)
    train_labels = {l for e in train for l in e.label}
    dev = [e for e in dev if set(e.label) <= train_labels]
    test = [e for e in test if set(e.label) <= train_labels]
    result = _train(tmp_path, tiny_bert, train, dev, test, "multilabel")
    assert 0.05 <= result.metrics["test"]["threshold"] <= 0.95
    assert "has_number" in result.metrics["test"]["per_label"]


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_regression_on_sentence_pairs(tmp_path, tiny_bert, trec, loss):
    def pair(example, other):
        # A real, learnable target: how many words the two questions share.
        shared = len(set(example.text.lower().split()) & set(other.text.lower().split()))
        return dataclasses.replace(example, text_pair=other.text, label=float(shared))

    train, dev, test = (list(split) for split in trec)
    train, dev, test = ([pair(a, b) for a, b in zip(s, s[1:] + s[:1])] for s in (train, dev, test))
    result = train_text_classifier(
        train, dev, test, task="regression", output_dir=tmp_path / loss, task_config=RegressionConfig(loss=loss),
        model_config=ModelConfig(backbone=str(tiny_bert)), data_config=DataConfig(max_length=48),
        train_config=TrainConfig(epochs=2, batch_size=16, learning_rate=1e-3), verbose=0,
    )
    assert set(result.metrics["test"]) == {"mae", "rmse", "pearson", "spearman"}
    assert np.isfinite(result.metrics["test"]["rmse"])
    predictions = result.predictor.predict([(test[0].text, test[0].text_pair)])
    assert isinstance(predictions[0], float)


def test_refusals_before_anything_is_written(tmp_path, tiny_bert, trec):
    train, dev, _ = trec
    single = [dataclasses.replace(e, label="DESC") for e in train]
    with pytest.raises(LabelError, match="single class"):
        _train(tmp_path, tiny_bert, single, dev, None, "classification")
    with pytest.raises(ConfigError, match="Expected a TextDataConfig for the 'multilabel' task. Received: ClassificationConfig"):
        _train(tmp_path, tiny_bert, train, dev, None, "multilabel", task_config=ClassificationConfig(class_weights=True))
    assert list(tmp_path.iterdir()) == []
