"""Fixtures for training tests: a dropout-free tiny backbone, so runs compare exactly."""

import json
import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_bert_no_dropout(tiny_bert, tmp_path_factory):
    directory = tmp_path_factory.mktemp("backbones") / "bert-no-dropout"
    shutil.copytree(tiny_bert, directory)
    config = json.loads((directory / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (directory / "config.json").write_text(json.dumps(config))
    return directory
