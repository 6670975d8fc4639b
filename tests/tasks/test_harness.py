"""The same tests for every registered built-in task: train, save and reload identically, resume after a crash.

A new built-in task must add its small data set to `harness.TASK_DATA`; the
first test fails until it does.
"""

import json
import math

import pytest

import kerastune_nlp as kt
from tests.tasks.harness import BUILT_IN, TASK_DATA, inputs_of, train_tiny


def test_every_built_in_task_has_harness_data():
    assert set(BUILT_IN) == set(TASK_DATA)


@pytest.mark.parametrize("name", sorted(TASK_DATA))
def test_train_save_and_reload_predict_identically(name, tiny_bert, tmp_path):
    result = train_tiny(name, tiny_bert, tmp_path / name)
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
        train_tiny(name, tiny_bert, tmp_path / "run", epochs=2, callbacks=[Crash()])
    assert not (tmp_path / "run").exists() and (tmp_path / "run.partial" / "backup").exists()
    result = train_tiny(name, tiny_bert, tmp_path / "run", epochs=2)
    rows = result.metrics["data"]["train"].get("windows") or result.metrics["data"]["train"]["examples"]
    assert result.metrics["training"]["optimizer_updates"] == 2 * math.ceil(rows / 16)
    assert len(json.loads((result.run_dir / "history.json").read_text())["loss"]) == 2
    assert not (tmp_path / "run.partial").exists()
