"""Run directories never mix or lose data: fingerprinted resume, safe overwrite, model-only weights."""

import json
import stat

import pytest

import kerastune_nlp as kt
from kerastune_nlp.errors import ConfigError, RunDirectoryError
from kerastune_nlp.runs import staging


@pytest.fixture(scope="module")
def wnut_tiny():
    paths = kt.bundled_wnut17()
    return {split: kt.read_conll(paths[split])[:24] for split in ("train", "dev", "test")}


def _train(tiny_bert, splits, output, callbacks=(), **train):
    settings = dict(epochs=2, batch_size=8, learning_rate=1e-3)
    settings.update(train)
    return kt.train("ner", splits["train"], splits["dev"], splits["test"], output_dir=output,
                    model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=32),
                    train_config=kt.TrainConfig(**settings), callbacks=callbacks, verbose=0)


class CrashAtEpoch:
    """A Keras callback that raises KeyboardInterrupt when `epoch` begins."""

    def __new__(cls, epoch):
        from kerastune_nlp._tf import keras

        class _Crash(keras.callbacks.Callback):
            def on_epoch_begin(self, current, logs=None):
                if current == epoch:
                    raise KeyboardInterrupt("simulated Ctrl-C")

        return _Crash()


def test_finished_run_holds_the_model_once_without_optimizer_state(tiny_bert, wnut_tiny, tmp_path):
    run = _train(tiny_bert, wnut_tiny, tmp_path / "run").run_dir
    assert not (run / "checkpoints").exists() and not (run / "backup").exists()
    assert not (run / "fingerprint.json").exists()
    model = kt.load_run(run).model
    parameters_bytes = sum(w.numpy().nbytes for w in model.weights)
    # Model weights plus HDF5 overhead (large for a tiny model), well under the 3x that Adam's two slots add.
    assert (run / "model.h5").stat().st_size < 2.0 * parameters_bytes
    manifest = json.loads((run / "run_config.json").read_text())
    assert "model.h5" in manifest["files"] and manifest["task_state"]["labels"]
    # Every file, JSON included, gets the same mode (0600 would hide it from a serving user).
    modes = {stat.S_IMODE((run / name).stat().st_mode) for name in ("metrics.json", "history.json",
                                                                    "run_config.json", "model.h5")}
    assert len(modes) == 1

    kept = _train(tiny_bert, wnut_tiny, tmp_path / "kept", keep_optimizer_state=True).run_dir
    assert (kept / "checkpoints" / "best.ckpt.index").exists()


def test_leftover_partial_of_a_different_command_is_refused(tiny_bert, wnut_tiny, tmp_path):
    output = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_bert, wnut_tiny, output, callbacks=[CrashAtEpoch(1)])
    assert (tmp_path / "run.partial" / "backup").exists()
    with pytest.raises(RunDirectoryError, match=r"DIFFERENT command.*train\.learning_rate: 0\.001 there, 0\.002 now"):
        _train(tiny_bert, wnut_tiny, output, learning_rate=2e-3)
    other_data = dict(wnut_tiny, train=wnut_tiny["train"][:20])
    with pytest.raises(RunDirectoryError, match=r"data\.train differs.*--overwrite"):
        _train(tiny_bert, other_data, output)
    assert (tmp_path / "run.partial" / "backup").exists()  # nothing was touched


def test_resumed_run_keeps_the_history_of_every_epoch(tiny_bert, wnut_tiny, tmp_path, caplog):
    output = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_bert, wnut_tiny, output, callbacks=[CrashAtEpoch(2)], epochs=3)
    with caplog.at_level("WARNING", logger="kerastune_nlp"):
        result = _train(tiny_bert, wnut_tiny, output, epochs=3)
    assert "Resuming the interrupted run" in caplog.text and "at epoch 3, step 0" in caplog.text
    history = json.loads((result.run_dir / "history.json").read_text())
    assert len(history["loss"]) == 3 and len(history["val_entity_f1"]) == 3
    assert [e["epoch"] for e in result.metrics["dev_per_epoch"]] == [1, 2, 3]


def test_overwrite_replaces_only_a_run_directory(tiny_bert, wnut_tiny, tmp_path):
    data_folder = tmp_path / "my-data"
    data_folder.mkdir()
    (data_folder / "precious.conll").write_text("Paris\tB-location\n")
    with pytest.raises(RunDirectoryError, match="not a run directory.*did not create"):
        kt.train("ner", wnut_tiny["train"], wnut_tiny["dev"], output_dir=data_folder, overwrite=True,
                 model_config=kt.ModelConfig(backbone=str(tiny_bert)), verbose=0)
    assert (data_folder / "precious.conll").exists()

    run = _train(tiny_bert, wnut_tiny, tmp_path / "run", epochs=1).run_dir
    sibling = tmp_path / "run.old"
    sibling.mkdir()
    (sibling / "notes.txt").write_text("mine")
    first = (run / "model.h5").read_bytes()
    kt.train("ner", wnut_tiny["train"], wnut_tiny["dev"], output_dir=run, overwrite=True, verbose=0,
             model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=32),
             train_config=kt.TrainConfig(epochs=1, batch_size=8, learning_rate=5e-3))
    assert (run / "model.h5").read_bytes() != first
    assert (sibling / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-data", "run", "run.old"]


def test_damaged_weights_and_unwritable_output_are_package_errors(tiny_bert, wnut_tiny, tmp_path):
    run = _train(tiny_bert, wnut_tiny, tmp_path / "run", epochs=1).run_dir
    weights = run / "model.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RunDirectoryError, match=r"model\.h5.*1000 bytes.*truncated"):
        kt.load_run(run)
    with pytest.raises(RunDirectoryError, match="no run_config.json"):
        kt.load_run(tmp_path)



def test_unwritable_output_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(RunDirectoryError, match="not a writable folder"):
        staging.check_output(blocker / "run", False)


@pytest.mark.parametrize("text, expected", [("70/15/15", (0.7, 0.15, 0.15)), ("0.8,0.2", (0.8, 0.2)),
                                            ((0.6, 0.2, 0.2), (0.6, 0.2, 0.2))])
def test_split_accepts_ratios_and_percentages(text, expected):
    assert kt.DataConfig(split=text).split == pytest.approx(expected)


@pytest.mark.parametrize("text, message", [("70-15-15", "separated by commas or slashes"),
                                           ("60/20/10", "sum to 1.*sums to 90"), ("1", "two or three")])
def test_bad_split_names_the_setting(text, message):
    with pytest.raises(ConfigError, match=message):
        kt.DataConfig(split=text)


def test_text_column_equal_to_label_column_is_refused():
    with pytest.raises(ConfigError, match="text and label columns to differ"):
        kt.TextDataConfig(text_column="label", label_column="label")
