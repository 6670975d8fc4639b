"""`kerastune-nlp tune`: flags, a config file with search sections, progress lines, the best config."""

import argparse
import csv
import logging

import pytest
import yaml

from kerastune_nlp.cli import tune as tune_cli
from kerastune_nlp.errors import ConfigError


def _parser():
    parser = argparse.ArgumentParser(prog="kerastune-nlp")
    parser.add_argument("-v", "--verbose", action="store_true")
    tune_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _write_csv(path, examples):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([e.text, e.label] for e in examples)
    return str(path)


def test_help_documents_the_search_flags(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["tune", "--help"])
    out = capsys.readouterr().out
    for flag in ("--search-dir", "--tuner", "--max-trials", "--space", "--objective", "--keep", "--early-stop",
                 "--retrain-best", "--no-default-space", "--learning-rate", "--quick"):
        assert flag in out, flag


def test_config_file_search_sections_merge_under_flags(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({
        "task": "classification", "train": {"learning_rate": 1e-4, "seed": 7}, "model": {"dropout": 0.2},
        "search_space": {"learning_rate": {"min": 1e-5, "max": 1e-3, "log": True}, "epochs": 2},
        "tune": {"tuner": "bayesian", "max_trials": 5},
    }))
    args = _parser().parse_args(["tune", "--config", str(config), "--seed", "3", "--max-trials", "6",
                                 "--space", "epochs=1:3"])
    space, options = tune_cli.split_config_file(args)
    from kerastune_nlp.cli.flags import settings_from_args

    settings = settings_from_args(args)
    assert settings.task == "classification" and settings.model.dropout == 0.2
    assert (settings.train.learning_rate, settings.train.seed) == (1e-4, 3)  # flags win over the file
    assert space == {"learning_rate": {"min": 1e-5, "max": 1e-3, "log": True}, "epochs": 2}
    assert tune_cli.tune_options(args, options, quick=False) | {} == {
        **tune_cli.TUNE_DEFAULTS, "tuner": "bayesian", "max_trials": 6}


def test_unknown_tune_key_in_the_config_file_is_named(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({"tune": {"max_trails": 5}}))
    args = _parser().parse_args(["tune", "--config", str(config)])
    with pytest.raises(ConfigError, match=r"Unknown keys \['max_trails'\] in the `tune:` section"):
        tune_cli.split_config_file(args)


def test_tune_command_prints_progress_and_writes_a_best_config(tiny_bert, trec_small, tmp_path, caplog, capsys):
    train, dev = trec_small
    args = _parser().parse_args([
        "tune", "--task", "classification", "--train", _write_csv(tmp_path / "train.csv", train),
        "--dev", _write_csv(tmp_path / "dev.csv", dev), "--backbone", str(tiny_bert), "--max-length", "32",
        "--search-dir", str(tmp_path / "search"), "--max-trials", "2", "--no-default-space",
        "--space", "learning_rate=1e-4:3e-3:log", "--space", "epochs=1", "--space", "batch_size=16",
    ])
    with caplog.at_level(logging.INFO, logger="kerastune_nlp.tuning"):
        result = tune_cli.run(args)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "trial 1/2 (id 0) started: learning_rate" in messages
    assert "trial 2/2 (id 1) done: val_accuracy" in messages and "best so far val_accuracy" in messages
    out = capsys.readouterr().out
    assert "Searching 2 trials (random) for classification" in out
    assert f"kerastune-nlp train --config {tmp_path / 'search' / 'best_config.yaml'}" in out
    saved = yaml.safe_load((tmp_path / "search" / "best_config.yaml").read_text())
    assert saved["data"]["train"].endswith("train.csv") and saved["train"]["epochs"] == 1
    assert saved["train"]["learning_rate"] == pytest.approx(result.best_hyperparameters["learning_rate"])


def test_output_without_retrain_best_is_refused_before_any_work(tmp_path):
    args = _parser().parse_args(["tune", "--task", "classification", "--quick", "--output", str(tmp_path / "best")])
    with pytest.raises(ConfigError, match=r"`--output` '.*best' is used only with --retrain-best: the search "
                                          r"itself goes to --search-dir"):
        tune_cli.run(args)
    assert not (tmp_path / "best").exists()


def test_output_from_the_config_file_without_retrain_best_names_the_file(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({"task": "classification", "output": str(tmp_path / "best"),
                                      "tune": {"max_trials": 2}}))
    args = _parser().parse_args(["tune", "--config", str(config)])
    with pytest.raises(ConfigError, match=r"`output:` in .*search.yaml '.*best' is used only with --retrain-best"):
        tune_cli.run(args)
