"""Every bad input of a search is refused with a message naming the argument and the fix."""

import json

import pytest

import kerastune_nlp as kt
from kerastune_nlp.errors import ConfigError, RunDirectoryError
from kerastune_nlp.tuning import tune
from kerastune_nlp.tuning.trial import MedianStop


def _tune(tiny_bert, trec_small, search_dir, **options):
    train, dev = trec_small
    options.setdefault("space", {"epochs": 1, "batch_size": 16})
    return tune("classification", train, dev, search_dir=search_dir,
                model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=32),
                **options)


@pytest.mark.parametrize("options, message", [
    ({"tuner": "grid"}, r"Unknown tuner\. Expected one of \['random', 'bayesian', 'hyperband'\]\. Received: "
                        r"`tuner`='grid'\. Pass --tuner random, bayesian or hyperband"),
    ({"max_trials": 0}, r"Expected `max_trials` to be an integer of at least 1\. Received: `max_trials`=0"),
    ({"tuner": "hyperband", "keep": "none"}, r"Hyperband continues promoted trials.*Pass keep='best'"),
    ({"space": {"learning_rate": "5e-4:1e-5"}}, r"inverted range `learning_rate`=0.0005:1e-05"),
    ({"space": {"learnig_rate": "1e-4"}}, r"Unknown hyperparameter .*Did you mean 'learning_rate'"),
    ({"objective": "val_loss:up"}, r"direction to be 'min' or 'max'.*Write e\.g\. 'val_loss:min'"),
])
def test_bad_options_fail_before_any_folder_is_written(options, message, tiny_bert, trec_small, tmp_path):
    with pytest.raises(ConfigError, match=message):
        _tune(tiny_bert, trec_small, tmp_path / "s", **options)
    assert not (tmp_path / "s").exists()


def test_an_objective_that_is_never_logged_fails_before_the_first_trial(tiny_bert, trec_small, tmp_path):
    with pytest.raises(ConfigError, match=r"The objective `val_f1` is never logged by the 'classification' task.*"
                                          r"Expected one of \['loss', 'accuracy', 'val_loss', 'val_accuracy'\]"):
        _tune(tiny_bert, trec_small, tmp_path / "s", objective="val_f1")
    assert not list((tmp_path / "s").glob("trials/trial_*"))


def test_a_folder_of_a_different_search_is_refused(tiny_bert, trec_small, tmp_path):
    folder = tmp_path / "s"
    first = _tune(tiny_bert, trec_small, folder, max_trials=1)
    assert [t["status"] for t in first.trials] == ["completed"]
    with pytest.raises(RunDirectoryError, match=r"holds a DIFFERENT search \(.*search.tuner: 'random' there, "
                                                r"'bayesian' now.*pass --overwrite"):
        _tune(tiny_bert, trec_small, folder, max_trials=1, tuner="bayesian")
    assert len(list(folder.glob("trials/trial_*"))) == 1


def test_a_folder_that_is_not_a_search_is_never_touched(tiny_bert, trec_small, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "precious.csv").write_text("keep me")
    with pytest.raises(RunDirectoryError, match=r"was not written by `kerastune-nlp tune`.*--overwrite included"):
        _tune(tiny_bert, trec_small, folder, overwrite=True)
    assert (folder / "precious.csv").read_text() == "keep me"


def test_median_rule_stops_only_a_trial_clearly_below_finished_ones():
    peers = [[0.5, 0.6, 0.7], [0.4, 0.7, 0.8], [0.3, 0.5, 0.9]]
    stopper = MedianStop("val_accuracy", "max", peers)
    assert stopper.should_stop(0, 0.1) is None  # the first epoch is always run
    reason = stopper.should_stop(1, 0.2)
    assert reason and "median 0.6000 of 3 finished trials" in reason
    good = MedianStop("val_accuracy", "max", peers)
    assert good.should_stop(0, 0.5) is None and good.should_stop(1, 0.65) is None
    too_few = MedianStop("val_accuracy", "max", peers[:2])
    assert too_few.should_stop(0, 0.0) is None and too_few.should_stop(1, 0.0) is None
    losses = MedianStop("val_loss", "min", [[1.0, 0.8], [1.1, 0.9], [0.9, 0.7]])
    assert losses.should_stop(0, 2.0) is None and "worse than the median 0.8000" in losses.should_stop(1, 1.5)
