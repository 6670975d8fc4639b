"""Real searches on a tiny random-init backbone: trials vary the recipe, results land in the folder."""

import json
import math

import pytest
import yaml

import kerastune_nlp as kt
from kerastune_nlp.tuning import tune
from kerastune_nlp.tuning.results import read_trials


def _configs(tiny_bert):
    return dict(model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=32),
                train_config=kt.TrainConfig(learning_rate=1e-3, checkpoint_every_steps=None))


@pytest.fixture(scope="module")
def random_search(tiny_bert, trec_small, tmp_path_factory):
    """Three random trials with batch size and epochs searched, Trainer.prepare counted."""
    from kerastune_nlp.training.trainer import Trainer

    calls = []
    original = Trainer.prepare

    def counting_prepare(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    Trainer.prepare = counting_prepare
    try:
        train, dev = trec_small
        search_dir = tmp_path_factory.mktemp("search") / "trec"
        result = tune("classification", train, dev, dev, search_dir=search_dir, max_trials=3, tuner="random",
                      space={"batch_size": [8, 32], "epochs": "1:2", "learning_rate": "1e-4:3e-3:log"},
                      retrain_best=True, **_configs(tiny_bert))
    finally:
        Trainer.prepare = original
    return result, calls, len(train)


def test_each_trial_trains_its_own_batch_size_and_epochs(random_search):
    result, _, examples = random_search
    assert [t["status"] for t in result.trials] == ["completed"] * 3
    for trial in result.trials:
        values = trial["hyperparameters"]
        assert trial["steps_per_epoch"] == math.ceil(examples / values["batch_size"])
        assert trial["epochs_run"] == values["epochs"] == len(trial["curve"])
        assert trial["objective"]["value"] == max(trial["curve"])
    assert len({(t["hyperparameters"]["batch_size"], t["hyperparameters"]["epochs"],
                 t["hyperparameters"]["learning_rate"]) for t in result.trials}) == 3


def test_data_is_encoded_once_for_the_whole_search(random_search):
    _, calls, _ = random_search
    # One prepare for the three trials; the retrain of the best is a normal run (its own prepare).
    assert len(calls) == 2


def test_results_files_and_best_config_that_train_accepts(random_search):
    from kerastune_nlp.cli.flags import add_train_arguments, settings_from_args
    import argparse

    result, _, _ = random_search
    folder = result.search_dir
    for name in ("trials.csv", "trials.md", "objective_per_trial.png", "objective_vs_learning_rate.png",
                 "best_hyperparameters.json", "best_config.yaml"):
        assert (folder / name).stat().st_size > 0, name
    best = json.loads((folder / "best_hyperparameters.json").read_text())
    assert best["objective"]["value"] == max(t["objective"]["value"] for t in result.trials)
    assert best["hyperparameters"] == result.best_hyperparameters
    csv_lines = (folder / "trials.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and "learning_rate" in csv_lines[0] and "curve" in csv_lines[0]
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    settings = settings_from_args(parser.parse_args(["--config", str(folder / "best_config.yaml")]))
    assert settings.task == "classification"
    assert settings.train.learning_rate == pytest.approx(best["hyperparameters"]["learning_rate"])
    assert settings.train.batch_size == best["hyperparameters"]["batch_size"]
    assert settings.model.dropout == pytest.approx(best["hyperparameters"]["dropout"])
    assert yaml.safe_load((folder / "best_config.yaml").read_text())["train"]["epochs"] == settings.train.epochs


def test_each_trial_keeps_only_its_best_weights(random_search):
    result, _, _ = random_search
    for trial in result.trials:
        folder = result.search_dir / "trials" / f"trial_{trial['trial_id']}"
        assert (folder / "best_weights.h5").stat().st_size > 0
        assert not (folder / "backup").exists() and not (folder / "checkpoints").exists()


def test_retrained_best_is_a_normal_run_directory(random_search):
    result, _, _ = random_search
    assert result.run is not None and (result.run.run_dir / "run_config.json").exists()
    manifest = json.loads((result.run.run_dir / "run_config.json").read_text())
    assert manifest["train"]["batch_size"] == result.best_hyperparameters["batch_size"]
    assert kt.load_run(result.run.run_dir).predict(["What is the capital of France ?"])


def test_rerunning_a_finished_search_reruns_nothing(random_search, tiny_bert, trec_small):
    result, _, _ = random_search
    before = {t["trial_id"]: t["duration_seconds"] for t in read_trials(result.search_dir)}
    train, dev = trec_small
    again = tune("classification", train, dev, dev, search_dir=result.search_dir, max_trials=3, tuner="random",
                 space={"batch_size": [8, 32], "epochs": "1:2", "learning_rate": "1e-4:3e-3:log"},
                 **_configs(tiny_bert))
    assert {t["trial_id"]: t["duration_seconds"] for t in again.trials} == before


def test_an_impossible_combination_fails_its_trial_and_the_search_goes_on(tiny_bert, trec_small, tmp_path):
    train, dev = trec_small
    # LoRA cannot be combined with freezing layers: that trial fails with the reason; the other completes.
    result = tune("classification", train, dev, search_dir=tmp_path / "s", max_trials=2, use_default_space=False,
                  space={"peft": ["none", "lora"], "freeze_layers": 1, "epochs": 1}, keep="none",
                  **_configs(tiny_bert))
    by_peft = {t["hyperparameters"]["peft"]: t for t in result.trials}
    assert by_peft["lora"]["status"] == "failed"
    assert "cannot be combined with freeze_embeddings, freeze_layers" in by_peft["lora"]["reason"]
    assert by_peft["none"]["status"] == "completed"
    assert result.best["trial_id"] == by_peft["none"]["trial_id"]
    assert "failed" in (tmp_path / "s" / "trials.md").read_text()
    # keep="none": no weights stay behind, only the records.
    assert not list((tmp_path / "s" / "trials").glob("*/checkpoints"))
    assert not list((tmp_path / "s" / "trials").glob("*/best_weights.h5"))


def test_hyperband_continues_a_promoted_trial_from_its_parent(tiny_bert, trec_small, tmp_path):
    train, dev = trec_small
    result = tune("classification", train, dev, search_dir=tmp_path / "hb", tuner="hyperband", max_trials=3,
                  hyperband_factor=2, space={"epochs": "1:2", "batch_size": 16}, early_stop="none",
                  **_configs(tiny_bert))
    promoted = [t for t in result.trials if t["hyperparameters"].get("tuner/initial_epoch", 0) > 0]
    assert promoted, [t["hyperparameters"] for t in result.trials]
    child = promoted[0]
    parent = next(t for t in result.trials if t["trial_id"] == child["hyperparameters"]["tuner/trial_id"])
    assert {k: v for k, v in child["hyperparameters"].items() if not k.startswith("tuner/")} == \
        {k: v for k, v in parent["hyperparameters"].items() if not k.startswith("tuner/")}
    # Only the epochs beyond the parent's were trained, starting from its weights.
    epochs = [json.loads(line)["epoch"] for line in
              (tmp_path / "hb" / "trials" / f"trial_{child['trial_id']}" / "epochs.jsonl").read_text().splitlines()]
    assert epochs == [2]


def test_max_length_and_truncation_are_searched_with_one_encoding_each(tiny_bert, trec_small, tmp_path):
    train, dev = trec_small
    result = tune("classification", train, dev, dev, search_dir=tmp_path / "search", max_trials=4, tuner="random",
                  use_default_space=False, space={"max_length": [8, 32], "truncation": ["head", "tail", "head_tail"],
                                                  "epochs": 1, "learning_rate": 1e-3},
                  retrain_best=True, output_dir=tmp_path / "best", **_configs(tiny_bert))
    assert {t["status"] for t in result.trials} == {"completed"}
    for trial in result.trials:
        values, encoding = trial["hyperparameters"], trial["encoding"]
        assert (encoding["max_length"], encoding["truncation"]) == (values["max_length"], values["truncation"])
    truncated = {t["encoding"]["max_length"]: t["encoding"]["truncated"] for t in result.trials}
    assert truncated.get(8, 1) > 0 and truncated.get(32, 0) < truncated.get(8, len(train))
    best = result.best["hyperparameters"]
    assert result.best_config["data"]["max_length"] == best["max_length"]
    assert result.best_config["task_config"]["truncation"] == best["truncation"]
    manifest = json.loads((tmp_path / "best" / "run_config.json").read_text())
    assert manifest["data"]["max_length"] == best["max_length"]
    assert manifest["task_config"]["truncation"] == best["truncation"]


def test_truncation_is_refused_for_a_task_without_it(tiny_bert, tmp_path):
    from kerastune_nlp.errors import ConfigError

    with pytest.raises(ConfigError, match=r"`truncation` is a setting of the classification, multilabel, regression(, \w+)* tasks; the 'ner' task has "
                                          r"none\. Drop `truncation` from the search space"):
        tune("ner", search_dir=tmp_path / "s", space={"truncation": ["head", "tail"]}, **_configs(tiny_bert))
    assert not (tmp_path / "s").exists()


def test_context_size_is_searched_for_ner_with_one_encoding_each(tiny_bert, tmp_path):
    from pathlib import Path

    from kerastune_nlp.data import read_conll
    from kerastune_nlp.data.document_split import split_by_document

    wikigold = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikigold" / "wikigold.conll.txt"
    articles = [s for s in read_conll(wikigold) if s.document < 8]
    (train, dev), _ = split_by_document(articles, (0.75, 0.25), 0, "wikigold")
    result = tune("ner", train, dev, search_dir=tmp_path / "search", max_trials=3, tuner="random",
                  use_default_space=False, space={"context_size": "0,4,16", "epochs": 1, "learning_rate": 1e-3},
                  task_config=kt.NERDataConfig(), retrain_best=True, output_dir=tmp_path / "best",
                  **{**_configs(tiny_bert), "data_config": kt.DataConfig(max_length=64)})
    assert {t["status"] for t in result.trials} == {"completed"}
    sizes = {t["hyperparameters"]["context_size"]: t["encoding"] for t in result.trials}
    assert set(sizes) == {0, 4, 16}
    assert sizes[0]["context_size"] == 0 and sizes[0].get("context_windows", 0) == 0
    assert sizes[4]["context_size"] == 4 and sizes[16]["context_size"] == 16
    assert 0 < sizes[4]["context_windows"] and sizes[4]["context_tokens"] < sizes[16]["context_tokens"]
    manifest = json.loads((tmp_path / "best" / "run_config.json").read_text())
    assert manifest["task_config"]["context_size"] == result.best["hyperparameters"]["context_size"]


def test_context_size_auto_is_a_fixed_value_and_cannot_mix_with_numbers():
    from kerastune_nlp.errors import ConfigError
    from kerastune_nlp.tuning.space import Fixed, parse_dimension

    assert parse_dimension("context_size", "auto") == Fixed("auto")
    with pytest.raises(ConfigError, match=r"values of `context_size` in the search space to share one type\. "
                                          r"Received: `context_size`=0,auto\. `auto` is max_length // 4"):
        parse_dimension("context_size", "0,auto")
