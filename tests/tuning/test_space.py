"""The search space: its defaults, the written forms users change it with, and every bad-input message."""

import pytest

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.tuning.space import (
    DEFAULT_SPACE, Choice, Fixed, Range, apply, build_space, parse_dimension, parse_overrides,
)


def test_default_space_is_the_one_the_issue_asks_for():
    assert DEFAULT_SPACE == {
        "learning_rate": Range(1e-5, 5e-4, log=True), "batch_size": Choice((8, 16, 32)), "epochs": Range(2, 5),
        "weight_decay": Range(0.0, 0.1), "warmup_ratio": Range(0.0, 0.2), "dropout": Range(0.0, 0.3),
        "layerwise_lr_decay": Range(0.7, 1.0),
    }


def test_cli_written_forms_narrow_fix_and_add():
    space = build_space(parse_overrides(["learning_rate=1e-5:1e-3:log", "batch_size=16,32", "epochs=3",
                                         "layerwise_lr_decay=none", "freeze_layers=0:2"]))
    assert space.dimensions["learning_rate"] == Range(1e-5, 1e-3, log=True)
    assert space.dimensions["batch_size"] == Choice((16, 32))
    assert space.fixed() == {"epochs": 3, "layerwise_lr_decay": None}
    assert space.dimensions["freeze_layers"] == Range(0, 2)
    assert "epochs" not in space.searched() and "dropout" in space.searched()


def test_python_and_config_file_forms_agree_with_the_cli_form():
    assert parse_dimension("learning_rate", (1e-5, 1e-3, "log")) == parse_dimension("learning_rate", "1e-5:1e-3:log")
    assert parse_dimension("learning_rate", {"min": 1e-5, "max": 1e-3, "log": True}) == Range(1e-5, 1e-3, True)
    assert parse_dimension("batch_size", [16, 32]) == parse_dimension("batch_size", {"values": [16, 32]})
    assert parse_dimension("dropout", 0.1) == Fixed(0.1)
    assert parse_dimension("epochs", "2:4") == Range(2, 4) and isinstance(Range(2, 4).low, int)


def test_trial_values_land_on_the_configs_they_name():
    import kerastune_nlp as kt

    train, model = apply({"learning_rate": 3e-5, "batch_size": 32, "dropout": 0.2, "tuner/epochs": 4},
                         kt.TrainConfig(), kt.ModelConfig(backbone="x"))
    assert (train.learning_rate, train.batch_size, model.dropout, model.backbone) == (3e-5, 32, 0.2, "x")


@pytest.mark.parametrize("overrides, message", [
    ({"learning_rate": "1e-3:1e-5:log"}, r"MIN < MAX for `learning_rate`.*inverted range.*Write `learning_rate=1e-05:0.001:log`"),
    ({"epochs": "3:3"}, r"MIN < MAX for `epochs`.*empty range `epochs`=3:3\. To fix the value, write `epochs=3`"),
    ({"lerning_rate": "1e-4"}, r"Unknown hyperparameter in --space\. Expected one of \[.*\]\. Received: "
                               r"`lerning_rate`\. Did you mean 'learning_rate'\?"),
    ({"dropout": "0:1.5"}, r"`dropout`=0:1.5 in --space allows a value the setting refuses: Expected `dropout` "
                           r"to be in \[0, 1\)"),
    ({"weight_decay": "0:0.1:log"}, r"log range of positive numbers for `weight_decay`.*Drop `:log`"),
    ({"epochs": "2.5:4"}, r"Expected an integer for `epochs` in --space\. Received: `epochs`='2.5'"),
    ({"learning_rate": "1e-5:1e-3:cubic"}, r"Expected `learning_rate=MIN:MAX` or `learning_rate=MIN:MAX:log`"),
    ({"epochs": "none"}, r"`epochs` cannot be None in --space"),
])
def test_bad_space_messages_name_the_setting_and_the_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_space(overrides, where="--space")


def test_a_space_with_nothing_searched_is_refused():
    with pytest.raises(ConfigError, match="at least one searched"):
        build_space({"learning_rate": 1e-4}, use_defaults=False)


def test_space_flag_needs_name_equals_spec():
    with pytest.raises(ConfigError, match=r"Expected --space as NAME=MIN:MAX\[:log\].*Received: 'learning_rate'"):
        parse_overrides(["learning_rate"])
