"""train_ner end to end on a tiny backbone: run directory, reload, refusals."""

import json
import math

import numpy as np
import pytest

from kerastune_nlp.config import DataConfig, ModelConfig, TrainConfig
from kerastune_nlp.data import bundled_wnut17, read_conll
from kerastune_nlp.data.conll import Sentence
from kerastune_nlp.errors import LabelError, RunDirectoryError, TrainingError
from kerastune_nlp.models.ner_tagger import NERTagger
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
        data_config=DataConfig(max_length=24, window_stride=4),  # forces windows on long tweets
        train_config=TrainConfig(epochs=2, batch_size=8, learning_rate=1e-3),
        verbose=0,
    )
    return result


def test_run_directory_is_complete(trained_run):
    run = trained_run.run_dir
    for name in ("model.weights.h5", "tokenizer", "backbone_config", "label_map.json",
                 "metrics.json", "run_config.json", "history.json", "logs"):
        assert (run / name).exists(), name
    assert not run.with_name(run.name + ".partial").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["overall"]) == {"precision", "recall", "f1", "support"}
    assert metrics["data"]["train"]["split_sentences"] > 0
    history = json.loads((run / "history.json").read_text())
    assert len(history["val_entity_f1"]) == 2 and all(math.isfinite(x) for x in history["loss"])


def test_reloaded_run_predicts_identically(trained_run, wnut_subset):
    words = [s.tokens for s in wnut_subset["test"]]
    reloaded = NERTagger.load(trained_run.run_dir)
    assert reloaded.predict(words) == trained_run.tagger.predict(words)
    scores = reloaded.evaluate(wnut_subset["test"])
    assert scores == trained_run.metrics["test"]


def test_predictions_have_one_tag_per_word(trained_run):
    sentences = ["Empire State Building is tall", "x " * 50]
    tags = trained_run.tagger.predict(sentences)
    assert [len(t) for t in tags] == [5, 50]
    assert all(tag in trained_run.tagger.label_map.labels for sentence in tags for tag in sentence)


def test_existing_run_directory_is_not_overwritten(trained_run, wnut_subset, tiny_bert):
    before = (trained_run.run_dir / "model.weights.h5").read_bytes()
    with pytest.raises(RunDirectoryError, match="already exists.*--overwrite"):
        train_ner(wnut_subset["train"], wnut_subset["dev"], output_dir=trained_run.run_dir,
                  model_config=ModelConfig(backbone=str(tiny_bert)), verbose=0)
    assert (trained_run.run_dir / "model.weights.h5").read_bytes() == before


def test_dev_label_unseen_in_train_is_reported_before_training(tiny_bert, tmp_path):
    train = [Sentence(("Paris", "is", "nice"), ("B-loc", "O", "O"), "train.conll", 1)]
    dev = [Sentence(("Bob", "ran"), ("B-per", "O"), "dev.conll", 7)]
    with pytest.raises(LabelError, match=r"per.*dev\.conll.*7"):
        train_ner(train, dev, output_dir=tmp_path / "run",
                  model_config=ModelConfig(backbone=str(tiny_bert)), verbose=0)


def test_non_finite_loss_stops_with_advice():
    guard = StopOnNonFiniteLoss("The best weights so far are in 'x'.")

    class _Model:
        stop_training = False

    guard.set_model(_Model())
    guard.on_epoch_begin(1)
    with pytest.raises(TrainingError, match=r"became nan at epoch 2, batch 4.*lower --learning-rate.*'x'"):
        guard.on_train_batch_end(3, {"loss": float("nan")})
    assert np.isnan(float("nan"))
