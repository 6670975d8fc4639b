"""Every setting is reachable from Python, the CLI and a config file; a run reproduces from its manifest."""

import dataclasses
import json

import pytest

from kerastune_nlp import config as cfg
from kerastune_nlp.cli import build_parser, main
from kerastune_nlp.cli.flags import SHARED_SECTIONS, flag_name, settings_from_args, task_config_fields, type_name
from kerastune_nlp.errors import ConfigError

SAMPLE = {"int": "64", "int | None": "64", "int | str": "auto", "float": "0.25", "float | None": "0.25", "str": None, "str | None": None}


def _sample(field):
    choices = field.metadata.get("choices")
    if type_name(field) == "tuple":
        return (field.default_factory()[:1] or choices[:1]) if field.name != "split" else "0.6,0.2,0.2"
    if choices:
        return next(c for c in choices if c != field.default)
    if type_name(field) in ("str", "str | None"):
        return "x-value" if field.name not in ("encoding",) else "latin-1"
    return SAMPLE[type_name(field)]


def _all_fields():
    for section, config_class in SHARED_SECTIONS.items():
        for field in dataclasses.fields(config_class):
            yield section, field, None
    for name, (field, tasks) in task_config_fields().items():
        yield "task_config", field, tasks[0]


@pytest.mark.parametrize("section, field, task", list(_all_fields()), ids=lambda v: getattr(v, "name", v))
def test_every_field_has_a_flag_named_after_it_that_sets_it(section, field, task):
    if type_name(field) == "bool":
        argv = [flag_name(field.name) if not field.default else f"--no-{field.name.replace('_', '-')}"]
        expected = not field.default
    else:
        value = _sample(field)
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        argv, expected = [flag_name(field.name), text], value
    if field.name in ("dev", "test"):
        argv += ["--train", "t.csv"]
    args = build_parser().parse_args(["train", "--task", task or "ner", *argv])
    settings = settings_from_args(args)
    got = getattr(getattr(settings, section), field.name)
    if field.name == "split":
        assert got == pytest.approx((0.6, 0.2, 0.2))
    elif isinstance(expected, str) and type_name(field).startswith(("int", "float")):
        assert got == type(got)(expected)
    else:
        assert got == expected


def test_historical_flag_aliases_map_to_their_fields():
    for flag, (section, name) in cfg.FLAG_ALIASES.items():
        field = next(f for f in dataclasses.fields(
            SHARED_SECTIONS.get(section) or cfg.ClassificationConfig) if f.name == name)
        value = [] if type_name(field) == "bool" else [str(_sample(field))]
        task = "classification" if section == "task_config" else "ner"
        settings = settings_from_args(build_parser().parse_args(["train", "--task", task, flag, *value]))
        assert getattr(getattr(settings, section), name) != field.default, flag
    args = build_parser().parse_args(["train", "--nondeterministic"])
    assert settings_from_args(args).train.deterministic is False


def test_yaml_config_file_with_flag_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: classification\ndata:\n  max_length: 64\ntrain:\n  epochs: 5\n  learning_rate: 5.0e-5\n"
                    "task_config:\n  class_weights: true\n")
    args = build_parser().parse_args(["train", "--config", str(path), "--epochs", "2"])
    settings = settings_from_args(args)
    assert settings.task == "classification" and settings.data.max_length == 64
    assert (settings.train.epochs, settings.train.learning_rate) == (2, 5e-5)
    assert settings.task_config.class_weights is True


@pytest.mark.parametrize("text, message", [("train:\n  epocs: 2\n", "epocs.*did you mean 'epochs'"),
                                           ("trian: {}\n", r"Unknown keys \['trian'\]"),
                                           ("train: [1\n", "Cannot parse")])
def test_bad_config_files_name_the_problem(tmp_path, text, message, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path)]) == 2
    assert "bad.yaml" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=message):
        settings_from_args(build_parser().parse_args(["train", "--config", str(path)]))


@pytest.mark.slow
def test_a_run_reproduces_from_its_own_manifest(tiny_bert, tmp_path):
    data = tmp_path / "train.conll"
    from kerastune_nlp.data import bundled_wnut17

    lines = bundled_wnut17()["train"].read_text(encoding="utf-8").split("\n\n")[:40]
    data.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    common = ["--backbone", str(tiny_bert), "--max-length", "32", "--epochs", "1", "--learning-rate", "1e-3"]
    assert main(["train", "--train", str(data), *common, "--output", str(tmp_path / "first")]) == 0
    assert main(["train", "--config", str(tmp_path / "first" / "run_config.json"),
                 "--output", str(tmp_path / "second")]) == 0
    first, second = (json.loads((tmp_path / run / "history.json").read_text()) for run in ("first", "second"))
    assert first == second
    manifests = [json.loads((tmp_path / run / "run_config.json").read_text()) for run in ("first", "second")]
    assert all(manifests[0][k] == manifests[1][k] for k in ("task", "data", "model", "train", "task_config"))


def test_a_task_recipe_sets_defaults_under_flags_files_and_quick(monkeypatch, tmp_path):
    from kerastune_nlp.tasks import get_task

    task_class = get_task("classification")
    monkeypatch.setattr(task_class, "recipe", {"learning_rate": 5e-5, "batch_size": 16})

    def train_settings(*argv):
        return settings_from_args(build_parser().parse_args(["train", "--task", "classification", *argv])).train

    assert (train_settings().learning_rate, train_settings().batch_size) == (5e-5, 16)
    assert (train_settings("--learning-rate", "1e-4").learning_rate, train_settings().epochs) == (1e-4, 3)
    assert train_settings("--quick").learning_rate == cfg.QUICK_TRAINING["learning_rate"]
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  batch_size: 32\n")
    assert train_settings("--config", str(path)).batch_size == 32
    assert task_class().default_train_config().batch_size == 16
    assert settings_from_args(build_parser().parse_args(["train", "--task", "ner"])).train.batch_size == 8


def test_shipped_recipes_ner_keeps_2e_4_and_the_sequence_tasks_take_5e_5_batch_16():
    from kerastune_nlp.tasks import get_task

    assert get_task("ner")().default_train_config().learning_rate == 2e-4
    for name in ("classification", "multilabel", "regression"):
        train = get_task(name)().default_train_config()
        assert (train.learning_rate, train.batch_size, train.epochs) == (5e-5, 16, 3), name
