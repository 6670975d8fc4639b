"""train_ner end to end on a tiny backbone: run directory, reload, refusals."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig
from kerastune_nlp.data import bundled_wnut17, read_conll
from kerastune_nlp.data.conll import Sentence
from kerastune_nlp.errors import LabelError, RunDirectoryError, TrainingError
from kerastune_nlp.inference import load_run
from kerastune_nlp.training.callbacks import StopOnNonFiniteLoss
from kerastune_nlp.training.ner_trainer import train_ner


@pytest.fixture(scope="module")
def wnut_subset():
    paths = bundled_wnut17()
    return {split: read_conll(paths[split])[:60] for split in ("train", "dev", "test")}


@pytest.fixture(scope="module")
def trained_run(tiny_bert, wnut_subset, tmp_path_factory):
    output = tmp_path_factory.mktemp("runs") / "tiny"
    result = train_ner(
        wnut_subset["train"], wnut_subset["dev"], wnut_subset["test"],
        output_dir=output,
        model_config=ModelConfig(backbone=str(tiny_bert)),
        data_config=DataConfig(max_length=24), ner_config=NERDataConfig(window_stride=4),  # forces windows on long tweets
        train_config=TrainConfig(epochs=2, batch_size=8, learning_rate=1e-3),
        verbose=0,
    )
    return result


def test_run_directory_is_complete(trained_run):
    run = trained_run.run_dir
    for name in ("model.h5", "tokenizer", "backbone_config",
                 "metrics.json", "run_config.json", "history.json", "logs"):
        assert (run / name).exists(), name
    assert not run.with_name(run.name + ".partial").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["overall"]) == {"precision", "recall", "f1", "support"}
    assert metrics["data"]["train"]["split_sentences"] > 0
    history = json.loads((run / "history.json").read_text())
    assert len(history["val_entity_f1"]) == 2 and all(math.isfinite(x) for x in history["loss"])


def test_run_directory_holds_the_entity_error_analysis(trained_run, wnut_subset):
    run, test = trained_run.run_dir, wnut_subset["test"]
    for name in ("ner_errors.json", "ner_errors.md", "confusion_matrix.png", "worst_predictions.jsonl"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["reports_describe"] == "test"
    summary = json.loads((run / "ner_errors.json").read_text())
    counts, overall = summary["counts"], metrics["test"]["overall"]
    # The analysis agrees with the entity scores in metrics.json.
    assert summary["gold_entities"] == overall["support"] > 0
    assert counts["correct"] == round(overall["recall"] * overall["support"])
    if counts["correct"]:
        assert summary["predicted_entities"] == round(counts["correct"] / overall["precision"])
    for name, row in metrics["test"]["per_type"].items():
        assert summary["per_type"][name]["gold"] == row["support"]
        assert summary["per_type"][name]["correct"] == round(row["recall"] * row["support"])
    matrix = np.array(summary["confusion"]["matrix"])
    assert matrix[:-1].sum() == summary["gold_entities"] and matrix[:, :-1].sum() == summary["predicted_entities"]
    assert summary["sentences"] == len(test)
    errors = sum(counts[c] for c in ("wrong_type", "boundary", "boundary_type", "missed", "spurious"))
    # The worst sentences: most errors first, each pointing at its place in the bundled test file.
    rows = [json.loads(line) for line in (run / "worst_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == min(50, summary["sentences_with_errors"]) > 0
    assert [r["errors"] for r in rows] == sorted((r["errors"] for r in rows), reverse=True)
    assert sum(r["errors"] for r in rows) <= errors
    lines = Path(rows[0]["source"]).read_text(encoding="utf-8").splitlines()
    for row in rows:
        sentence = test[row["index"]]
        assert (row["source"], row["line"]) == (sentence.source, sentence.line)
        assert lines[row["line"] - 1].split("\t")[0] == row["words"][0]
        assert row["gold_tags"] == list(sentence.tags) and len(row["predicted_tags"]) == len(row["words"])
        assert row["errors"] == sum(e["category"] != "correct" for e in row["entities"]) > 0


def test_reloaded_run_predicts_identically(trained_run, wnut_subset):
    words = [s.tokens for s in wnut_subset["test"]]
    reloaded = load_run(trained_run.run_dir)
    assert reloaded.predict(words) == trained_run.predictor.predict(words)
    scores = reloaded.evaluate(wnut_subset["test"])
    assert scores == trained_run.metrics["test"]


def test_predictor_evaluate_refuses_types_the_model_never_saw(trained_run):
    # The same check as `kerastune-nlp evaluate`: scores of 0 with no word would mislead.
    unseen = [Sentence(("Bob", "visited", "Rome"), ("B-PER", "O", "B-LOC"), "other.conll", 3)]
    with pytest.raises(LabelError, match=r"2 unseen type\(s\): 'LOC' first at other\.conll, line 5; "
                                         r"'PER' first at other\.conll, line 3"):
        load_run(trained_run.run_dir).evaluate(unseen)


def test_predictions_have_one_tag_per_word(trained_run):
    sentences = ["Empire State Building is tall", "x " * 50]
    tags = trained_run.predictor.predict(sentences)
    assert [len(t) for t in tags] == [5, 50]
    assert all(tag in trained_run.predictor.labels for sentence in tags for tag in sentence)


def test_existing_run_directory_is_not_overwritten(trained_run, wnut_subset, tiny_bert):
    before = (trained_run.run_dir / "model.h5").read_bytes()
    with pytest.raises(RunDirectoryError, match="already exists.*--overwrite"):
        train_ner(wnut_subset["train"], wnut_subset["dev"], output_dir=trained_run.run_dir,
                  model_config=ModelConfig(backbone=str(tiny_bert)), verbose=0)
    assert (trained_run.run_dir / "model.h5").read_bytes() == before


def test_dev_label_unseen_in_train_is_reported_before_training(tiny_bert, tmp_path):
    train = [Sentence(("Paris", "is", "nice"), ("B-loc", "O", "O"), "train.conll", 1)]
    dev = [Sentence(("Bob", "ran"), ("B-per", "O"), "dev.conll", 7)]
    with pytest.raises(LabelError, match=r"per.*dev\.conll.*7"):
        train_ner(train, dev, output_dir=tmp_path / "run",
                  model_config=ModelConfig(backbone=str(tiny_bert)), verbose=0)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_non_finite_loss_stops_with_advice():
    guard = StopOnNonFiniteLoss("The best weights so far are in 'x'.")

    class _Model:
        stop_training = False

    guard.set_model(_Model())
    guard.on_epoch_begin(1)
    with pytest.raises(TrainingError, match=r"became nan at epoch 2, batch 4.*lower --learning-rate.*'x'"):
        guard.on_train_batch_end(3, {"loss": float("nan")})
    assert np.isnan(float("nan"))


def test_interrupted_run_leaves_no_run_directory_and_resumes(tiny_bert, wnut_subset, tmp_path):
    from kerastune_nlp._tf import keras

    class CrashAtEpoch(keras.callbacks.Callback):
        def __init__(self, crash_epoch):
            super().__init__()
            self.crash_epoch, self.begun = crash_epoch, []

        def on_epoch_begin(self, epoch, logs=None):
            self.begun.append(epoch)
            if epoch == self.crash_epoch:
                raise KeyboardInterrupt("simulated crash")

    settings = dict(
        output_dir=tmp_path / "run",
        model_config=ModelConfig(backbone=str(tiny_bert)),
        data_config=DataConfig(max_length=32), ner_config=NERDataConfig(window_stride=4),
        train_config=TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3),
        verbose=0,
    )
    crash = CrashAtEpoch(2)
    with pytest.raises(KeyboardInterrupt):
        train_ner(wnut_subset["train"], wnut_subset["dev"], extra_callbacks=[crash], **settings)
    assert crash.begun == [0, 1, 2]
    assert not (tmp_path / "run").exists()
    assert (tmp_path / "run.partial" / "backup").exists()
    # The best dev score so far survives the crash, so a worse epoch cannot replace it.
    best = json.loads((tmp_path / "run.partial" / "checkpoints" / "best.json").read_text())
    assert best["monitor"] == "val_entity_f1" and best["epoch"] in (1, 2)
    from kerastune_nlp.training.callbacks import BestCheckpoint

    resumed_checkpoint = BestCheckpoint(str(tmp_path / "run.partial" / "checkpoints" / "best.ckpt"),
                                        "val_entity_f1", "max")
    assert resumed_checkpoint.best == best["best"]

    watcher = CrashAtEpoch(-1)
    result = train_ner(wnut_subset["train"], wnut_subset["dev"], extra_callbacks=[watcher], **settings)
    assert watcher.begun == [2]  # resumed after the two finished epochs
    assert (result.run_dir / "metrics.json").exists()
    assert not (tmp_path / "run.partial").exists()
