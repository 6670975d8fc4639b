"""A run finds its data again from any directory, and says which file moved or changed."""

import dataclasses
import json
import logging
import shutil

import pytest

import kerastune_nlp as kt
from kerastune_nlp.errors import DataFileNotFoundError
from kerastune_nlp.export.exporter import evaluation_examples
from kerastune_nlp.runs.manifest import read_manifest
from kerastune_nlp.runs.splits import load_run_splits


def _write_conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s.tokens, s.tags)) for s in sentences) + "\n",
                    encoding="utf-8")


@pytest.fixture(scope="module")
def run_from_relative_paths(tiny_bert, tmp_path_factory):
    """A tiny NER run trained from `train.conll`-style paths typed relative to the data folder."""
    import os

    paths = kt.bundled_wnut17()
    data = tmp_path_factory.mktemp("data")
    for split, count in (("train", 24), ("dev", 12), ("test", 12)):
        _write_conll(data / f"{split}.conll", kt.read_conll(paths[split])[:count])
    before = os.getcwd()
    os.chdir(data)
    try:
        result = kt.train("ner", output_dir=data.parent / "run", model_config=kt.ModelConfig(backbone=str(tiny_bert)),
                          data_config=kt.DataConfig(train="train.conll", dev="dev.conll", test="test.conll",
                                                    max_length=32),
                          train_config=kt.TrainConfig(epochs=1, batch_size=8, learning_rate=1e-3), verbose=0)
    finally:
        os.chdir(before)
    return result.run_dir, data


def test_the_manifest_stores_absolute_data_paths(run_from_relative_paths):
    run, data = run_from_relative_paths
    stored = json.loads((run / "run_config.json").read_text())["data"]
    assert {split: stored[split] for split in ("train", "dev", "test")} == {
        split: str(data / f"{split}.conll") for split in ("train", "dev", "test")}


def test_export_and_prune_reread_the_data_from_another_directory(run_from_relative_paths, tmp_path, monkeypatch):
    run, _ = run_from_relative_paths
    monkeypatch.chdir(tmp_path)
    manifest = read_manifest(run)
    task = kt.get_task("ner")(manifest.task_config, manifest.task_state)
    examples, evaluated_on = evaluation_examples(task, manifest, run_dir=run)
    assert (len(examples), evaluated_on) == (12, "the run's test split")
    splits, _, matches = load_run_splits(task, manifest, run, None, "Pruning", {})
    assert matches and [len(splits[s]) for s in ("train", "dev", "test")] == [24, 12, 12]


def test_a_moved_data_file_is_named_with_the_flag_that_points_at_it(run_from_relative_paths, tmp_path):
    run, data = run_from_relative_paths
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    manifest = read_manifest(copy)
    moved = tmp_path / "elsewhere.conll"
    shutil.copy(data / "test.conll", moved)
    manifest.data = dataclasses.replace(manifest.data, test=str(tmp_path / "gone.conll"))
    task = kt.get_task("ner")(manifest.task_config, manifest.task_state)
    with pytest.raises(DataFileNotFoundError, match=r"was trained on '.*gone.conll', which no longer exists\. "
                                                    r"Received: `test`=.* from its run_config.json\. Pass --test FILE"):
        evaluation_examples(task, manifest, run_dir=copy)
    with pytest.raises(DataFileNotFoundError, match=r"gone.conll'.*Pass the file's new place with --test"):
        load_run_splits(task, manifest, copy, None, "Pruning", {})
    # Pointing at the new place works.
    assert len(evaluation_examples(task, manifest, test_file=moved, run_dir=copy)[0]) == 12


def test_a_changed_test_file_is_scored_with_a_warning(run_from_relative_paths, tmp_path, caplog):
    run, data = run_from_relative_paths
    manifest = read_manifest(run)
    edited = tmp_path / "test.conll"
    _write_conll(edited, kt.read_conll(str(data / "test.conll"))[:10])
    manifest.data = dataclasses.replace(manifest.data, test=str(edited))
    task = kt.get_task("ner")(manifest.task_config, manifest.task_state)
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.export"):
        examples, _ = evaluation_examples(task, manifest, run_dir=run)
    assert len(examples) == 10
    assert "The run's test split read again from" in caplog.text and "changed since training" in caplog.text
