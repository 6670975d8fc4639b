"""A run interrupted mid-epoch and resumed in a new start is the run that was interrupted."""

import json

import numpy as np
import pytest

from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig
from kerastune_nlp.data import bundled_wnut17, read_conll
from kerastune_nlp.data.batching import batch_plan
from kerastune_nlp.training.ner_trainer import train_ner


def test_each_epochs_batches_depend_on_seed_and_epoch_only():
    lengths = np.random.default_rng(0).integers(3, 40, size=203)
    first = batch_plan(lengths, 8, seed=5, epoch=1)
    assert [b.tolist() for b in first] == [b.tolist() for b in batch_plan(lengths, 8, seed=5, epoch=1)]
    assert sorted(np.concatenate(first).tolist()) == list(range(203))  # every row once
    assert [len(b) for b in first].count(3) == 1 and len(first) == 26  # one short batch
    assert [b.tolist() for b in first] != [b.tolist() for b in batch_plan(lengths, 8, seed=5, epoch=2)]


def test_a_run_killed_mid_epoch_resumes_on_the_same_batches(tiny_bert_no_dropout, tmp_path):
    # Dropout draws come from TensorFlow's random state, which a new process restarts (conftest's backbone has none).
    from kerastune_nlp._tf import keras

    class KillAt(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 5):  # one batch after the backup at 5 steps into epoch 2
                raise KeyboardInterrupt("simulated kill")

    paths = bundled_wnut17()
    train, dev = read_conll(paths["train"])[:90], read_conll(paths["dev"])[:30]
    settings = dict(model_config=ModelConfig(backbone=str(tiny_bert_no_dropout), dropout=0.0),
                    data_config=DataConfig(max_length=32), ner_config=NERDataConfig(),
                    train_config=TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3, checkpoint_every_steps=5),
                    verbose=0)
    whole = train_ner(train, dev, output_dir=tmp_path / "whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        train_ner(train, dev, output_dir=tmp_path / "resumed", extra_callbacks=[KillAt()], **settings)
    progress = json.loads((tmp_path / "resumed.partial" / "backup" / "progress.json").read_text())
    assert (progress["epoch"], progress["step"]) == (2, 5)  # mid-epoch, not at its start
    resumed = train_ner(train, dev, output_dir=tmp_path / "resumed", **settings)

    history = [json.loads((run / "history.json").read_text()) for run in (tmp_path / "whole", tmp_path / "resumed")]
    # Epoch 1 ran before the kill, epoch 3 wholly after it; epoch 2's mean covers only the resumed batches.
    for epoch in (0, 2):
        assert history[1]["loss"][epoch] == pytest.approx(history[0]["loss"][epoch], rel=1e-5, abs=1e-6)
    assert history[1]["val_entity_f1"] == history[0]["val_entity_f1"]
    for mine, theirs in zip(resumed.predictor.model.weights, whole.predictor.model.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5, err_msg=mine.name)
