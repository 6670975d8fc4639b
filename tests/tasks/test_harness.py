"""The same tests for every registered built-in task: train, save and reload identically, resume after a crash.

A new built-in task must add its small data set to `TASK_DATA`; the first
test fails until it does.
"""

import dataclasses
import json
import math

import pytest

import kerastune_nlp as kt
from kerastune_nlp.tasks import task_names
from kerastune_nlp.tasks.base import Task


def _trec():
    from kerastune_nlp.data.bundled_trec import load_bundled_trec

    splits = load_bundled_trec()
    train, dev = splits["train"][:96], splits["train"][96:128]
    known = {e.label for e in train}
    return train, [e for e in dev if e.label in known]


def _ner():
    paths = kt.bundled_wnut17()
    return kt.read_conll(paths["train"])[:40], kt.read_conll(paths["dev"])[:16]


def _multilabel():
    def tags(example):
        return dataclasses.replace(example, label=(example.label,) + (("long",) if len(example.text) > 40 else ()))

    train, dev = (list(map(tags, split)) for split in _trec())
    known = {label for e in train for label in e.label}
    return train, [e for e in dev if set(e.label) <= known]


def _regression():
    return tuple([dataclasses.replace(e, label=float(len(e.text.split()))) for e in split] for split in _trec())


TASK_DATA = {"ner": _ner, "classification": _trec, "multilabel": _multilabel, "regression": _regression}
BUILT_IN = [name for name in task_names() if kt.get_task(name).__module__.startswith("kerastune_nlp.")]


def inputs_of(task: Task, examples):
    return [e.tokens for e in examples] if task.name == "ner" else [e.text for e in examples]


def _train(name, tiny_bert, output, epochs=1, callbacks=()):
    train, dev = TASK_DATA[name]()
    return kt.train(name, train, dev, dev, output_dir=output, model_config=kt.ModelConfig(backbone=str(tiny_bert)),
                    data_config=kt.DataConfig(max_length=32), callbacks=callbacks, verbose=0,
                    train_config=kt.TrainConfig(epochs=epochs, batch_size=16, learning_rate=1e-3))


def test_every_built_in_task_has_harness_data():
    assert set(BUILT_IN) == set(TASK_DATA)


@pytest.mark.parametrize("name", sorted(TASK_DATA))
def test_train_save_and_reload_predict_identically(name, tiny_bert, tmp_path):
    result = _train(name, tiny_bert, tmp_path / name)
    history = json.loads((result.run_dir / "history.json").read_text())
    assert len(history["loss"]) == 1 and math.isfinite(history["loss"][0])
    assert result.metrics["task"] == name and result.metrics["test"]
    _, dev = TASK_DATA[name]()
    reloaded = kt.load_run(result.run_dir)
    assert type(reloaded.task) is type(result.predictor.task) and reloaded.task.state == result.predictor.task.state
    inputs = inputs_of(reloaded.task, dev)
    assert reloaded.predict(inputs) == result.predictor.predict(inputs)
    assert reloaded.evaluate(dev) == result.metrics["test"]


@pytest.mark.parametrize("name", sorted(TASK_DATA))
def test_resume_after_a_crash_finishes_the_same_run(name, tiny_bert, tmp_path):
    from kerastune_nlp._tf import keras

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        _train(name, tiny_bert, tmp_path / "run", epochs=2, callbacks=[Crash()])
    assert not (tmp_path / "run").exists() and (tmp_path / "run.partial" / "backup").exists()
    result = _train(name, tiny_bert, tmp_path / "run", epochs=2)
    rows = result.metrics["data"]["train"].get("windows") or result.metrics["data"]["train"]["examples"]
    assert result.metrics["training"]["optimizer_updates"] == 2 * math.ceil(rows / 16)
    assert len(json.loads((result.run_dir / "history.json").read_text())["loss"]) == 2
    assert not (tmp_path / "run.partial").exists()
