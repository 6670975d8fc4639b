"""Magnitude pruning of a run directory: real sparsity per kernel, a loadable run, its pruning report, bad input."""

import argparse
import json
import shutil

import numpy as np
import pytest

import kerastune_nlp as kt
from kerastune_nlp import pruning
from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, RunDirectoryError, TrainingError



def _ner():
    paths = kt.bundled_wnut17()
    return kt.read_conll(paths["train"])[:40], kt.read_conll(paths["dev"])[:16]


@pytest.fixture(scope="module")
def ner_run(tiny_bert, tmp_path_factory):
    train, dev = _ner()
    result = kt.train("ner", train, dev, dev, output_dir=tmp_path_factory.mktemp("runs") / "ner",
                      model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=32),
                      train_config=kt.TrainConfig(epochs=1, batch_size=8, learning_rate=1e-3), verbose=0)
    return result.run_dir


def _prune(run_dir, output, sparsity, **options):
    train, dev = _ner()
    return pruning.prune_run(run_dir, output, sparsity=sparsity, train=train, dev=dev, test=dev, verbose=0, **options)


def _prune_with_the_cli(run_dir, output, sparsity, folder):
    """`kerastune-nlp prune` with the run's data as files (as when they moved since training)."""
    from kerastune_nlp.cli import prune

    parser = argparse.ArgumentParser(prog="kerastune-nlp")
    prune.add_parser(parser.add_subparsers(dest="command"))
    train, dev = _ner()
    flags = []
    for split, sentences in (("train", train), ("dev", dev), ("test", dev)):
        kt.write_conll(folder / f"{split}.conll", [s.tokens for s in sentences], [s.tags for s in sentences])
        flags += [f"--{split}", str(folder / f"{split}.conll")]
    return prune.run(parser.parse_args(["prune", str(run_dir), "--output", str(output), "--sparsity", str(sparsity),
                                        *flags]))


def _zeros_per_kernel(predictor):
    from kerastune_nlp.backbones import families

    backbone = next(layer for layer in predictor.model.layers if families.is_own_encoder(layer))
    return pruning.sparsity_of(pruning.encoder_kernels(backbone))


@pytest.mark.parametrize("sparsity, cli", [(0.5, True), (0.9, False)])
def test_pruned_run_reaches_the_target_on_every_kernel_and_loads(ner_run, tmp_path, capsys, sparsity, cli):
    if cli:
        result = _prune_with_the_cli(ner_run, tmp_path / "pruned", sparsity, tmp_path)
        printed = capsys.readouterr().out
        assert f"target {sparsity:.2%}; 12 encoder kernels" in printed and "test entity F1:" in printed
    else:
        result = _prune(ner_run, tmp_path / "pruned", sparsity)
    report = result.metrics["pruning"]
    # 2 layers x (query, key, value, attention output, intermediate, output) Dense kernels.
    assert len(report["kernels"]) == 12
    reloaded = kt.load_run(result.run_dir)  # a normal run directory, weights without wrappers
    measured = _zeros_per_kernel(reloaded)
    assert set(measured) == set(report["kernels"])
    for name, value in measured.items():
        assert abs(value - sparsity) <= 0.01, (name, value)
        assert value == pytest.approx(report["kernels"][name], abs=1e-6)
    assert report["overall_sparsity"] == pytest.approx(sparsity, abs=0.01)
    # The source run's kernels are dense: the pruning came from this call.
    assert max(_zeros_per_kernel(kt.load_run(ner_run)).values()) < 0.01
    _, dev = _ner()
    words = [s.tokens for s in dev]
    assert reloaded.predict(words) == result.predictor.predict(words)
    assert reloaded.evaluate(dev) == result.metrics["test"]

    on_disk = json.loads((result.run_dir / "metrics.json").read_text())
    block = on_disk["pruning"]
    assert block["target_sparsity"] == sparsity and block["data_matches_run"] is True
    assert block["schedule"]["frequency"] >= 1 and block["schedule"]["end_step"] <= block["schedule"]["total_steps"]
    assert set(block["gzip_bytes"]) == {"before", "after", "ratio"}
    assert block["metric"]["name"] == "entity F1"
    assert set(block["metric"]["test"]) >= {"source", "pruned"}
    assert "Quantization-aware training is not offered" in block["quantization_aware_training"]
    if sparsity == 0.9:
        assert block["gzip_bytes"]["after"] < block["gzip_bytes"]["before"]
    manifest = json.loads((result.run_dir / "run_config.json").read_text())
    assert "fingerprint.json" not in manifest["files"] and "model.h5" in manifest["files"]
    assert not (tmp_path / "pruned.partial").exists()


def test_a_schedule_that_does_not_fit_the_run_is_caught_and_nothing_is_written(ner_run, tmp_path, monkeypatch):
    # tfmot's default frequency (100 steps) in a 5-step fine-tune: no mask update ever happens.
    def unfitted(total_steps, sparsity, kind="polynomial"):
        return pruning.PruningPlan(kind, sparsity, total_steps, 0, 100, 100)

    monkeypatch.setattr(pruning.prune, "fit_schedule", unfitted)  # where prune_run looks it up
    with pytest.raises(TrainingError, match=r"missed the target sparsity 0.50 by more than 0.01 on 12 of 12 kernels"):
        _prune(ner_run, tmp_path / "out", 0.5)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_fit_schedule_ends_on_a_mask_update_within_the_run():
    for steps in (2, 3, 7, 100, 1000):
        plan = pruning.fit_schedule(steps, 0.7)
        assert 1 <= plan.end_step < steps and plan.end_step % plan.frequency == 0
        assert plan.end_step // plan.frequency <= 2 * pruning.MASK_UPDATES
    assert pruning.fit_schedule(1000, 0.9).frequency < 100  # tfmot's default would fit 6 updates at most
    with pytest.raises(ConfigError, match="at least 2 optimizer steps"):
        pruning.fit_schedule(1, 0.5)


def test_other_backbones_are_refused():
    from kerastune_nlp._tf import keras

    dense = keras.layers.Dense(2)
    model = keras.Sequential([keras.Input((3,)), dense])
    not_ours = (r"`backbone` of type tf_keras\.src\.layers\.core\.dense\.Dense, which is not a kerastune_nlp encoder\. "
                r"Build backbones with `kerastune_nlp\.backbones\.encoder\.build_encoder`")
    with pytest.raises(ConfigError, match=not_ours):
        pruning.encoder_kernels(dense)
    with pytest.raises(ConfigError, match=not_ours):
        pruning.pruning_model(pruning.import_tfmot(), model, dense, ["input_ids"], pruning.fit_schedule(10, 0.5))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, "0.5", True])
def test_bad_sparsity_is_refused_before_anything_loads(ner_run, tmp_path, bad):
    with pytest.raises(ConfigError, match=r"strictly between 0 and 1.*Received: `sparsity`="):
        pruning.prune_run(ner_run, tmp_path / "out", sparsity=bad)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_bad_settings_name_the_argument(ner_run, tmp_path):
    with pytest.raises(ConfigError, match="Received: `epochs`=0"):
        pruning.prune_run(ner_run, tmp_path / "out", epochs=0)
    with pytest.raises(ConfigError, match="Unknown pruning schedule.*Received: `schedule`='cubic'"):
        pruning.prune_run(ner_run, tmp_path / "out", schedule="cubic")


def test_not_a_run_directory_and_incomplete_runs_are_refused(ner_run, tmp_path):
    with pytest.raises(RunDirectoryError, match="no such folder"):
        pruning.prune_run(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunDirectoryError, match="no run_config.json"):
        pruning.prune_run(tmp_path / "plain", tmp_path / "out")
    broken = tmp_path / "broken"
    shutil.copytree(ner_run, broken)
    (broken / "model.h5").unlink()
    with pytest.raises(RunDirectoryError, match=r"incomplete: missing \['model.h5'\]"):
        pruning.prune_run(broken, tmp_path / "out")


def test_output_is_checked_before_training(ner_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("not a run")
    with pytest.raises(RunDirectoryError, match="already exists"):
        pruning.prune_run(ner_run, data)
    with pytest.raises(RunDirectoryError, match="Refusing to overwrite"):
        pruning.prune_run(ner_run, data, overwrite=True)
    assert (data / "keep.txt").exists()
    with pytest.raises(ConfigError, match="other than the run itself"):
        pruning.prune_run(ner_run, ner_run, overwrite=True)


def test_data_other_than_the_runs_is_refused_unless_given(ner_run, tmp_path):
    # This run was trained on examples passed from Python: re-reading its data
    # settings gives the bundled WNUT-17, which is not what it saw.
    with pytest.raises(RunDirectoryError, match="not what it was trained on.*passed again"):
        pruning.prune_run(ner_run, tmp_path / "out")
    moved = kt.DataConfig(train=str(tmp_path / "gone.conll"), max_length=32)
    with pytest.raises(DataFileNotFoundError, match=r"gone.conll.*no longer exists.*--train"):
        pruning.prune_run(ner_run, tmp_path / "out", data_config=moved)
    assert not (tmp_path / "out.partial").exists()


def test_cli_help_says_why_there_is_no_quantization_aware_training(capsys):
    from kerastune_nlp.cli import prune

    parser = argparse.ArgumentParser(prog="kerastune-nlp")
    prune.add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["prune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Quantization-aware training is not offered" in text and "Sequential nor Functional" in text
    args = parser.parse_args(["prune", "runs/x", "--sparsity", "0.7", "--schedule", "constant"])
    assert (args.run, args.sparsity, args.schedule, args.epochs, args.learning_rate) == \
        ("runs/x", 0.7, "constant", 1, None)
    with pytest.raises(ConfigError, match="Received: `sparsity`=1.5"):
        prune.run(parser.parse_args(["prune", "runs/x", "--sparsity", "1.5"]))


def test_gzip_size_is_the_gzip_length_and_shrinks_with_zeros(tmp_path):
    import gzip

    dense = np.random.default_rng(0).normal(size=4096).astype(np.float32)
    sparse = np.where(np.arange(4096) % 10 == 0, dense, 0).astype(np.float32)
    (tmp_path / "dense.bin").write_bytes(dense.tobytes())
    (tmp_path / "sparse.bin").write_bytes(sparse.tobytes())
    size = pruning.gzip_size(tmp_path / "dense.bin")
    assert abs(size - len(gzip.compress(dense.tobytes(), compresslevel=6))) <= 32  # header fields differ
    assert pruning.gzip_size(tmp_path / "sparse.bin") < 0.3 * size


@pytest.mark.parametrize("name", ["classification", "regression"])
def test_sequence_task_runs_prune_through_the_task_interface(name, tiny_bert, tmp_path):
    from tests.tasks import harness

    train, dev = harness.TASK_DATA[name]()
    run_dir = harness.train_tiny(name, tiny_bert, tmp_path / "run").run_dir
    result = pruning.prune_run(run_dir, tmp_path / "pruned", sparsity=0.7, train=train, dev=dev, test=dev, verbose=0)
    block = result.metrics["pruning"]
    assert block["overall_sparsity"] == pytest.approx(0.7, abs=0.01)
    task = kt.get_task(name)()
    assert block["metric"]["name"] == task.metric_name
    reloaded = kt.load_run(result.run_dir)
    assert max(abs(v - 0.7) for v in _zeros_per_kernel(reloaded).values()) <= 0.01
    assert reloaded.evaluate(dev) == result.metrics["test"]
