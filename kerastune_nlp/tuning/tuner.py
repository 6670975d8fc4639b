"""The KerasTuner side: oracles by name, and a `Tuner` whose trials run on our trainer.

KerasTuner 1.4.8 drives Keras 3 and refuses tf_keras models in its stock
tuners, so `FineTuneTuner.run_trial` trains with our own `Trainer` (through
`TrialRunner`) and hands KerasTuner a dict of metrics. Its oracles,
bookkeeping (resume) and chief/worker mode are used as they are.
"""

from __future__ import annotations

import logging
import os

from kerastune_nlp.errors import ConfigError, MissingDependencyError
from kerastune_nlp.tuning import results
from kerastune_nlp.tuning.space import Choice, Fixed, Range, SearchSpace, _kind

logger = logging.getLogger("kerastune_nlp.tuning")

TUNERS = ("random", "bayesian", "hyperband")
PROJECT_NAME = "keras_tuner"


def import_keras_tuner():
    try:
        import keras_tuner
    except ImportError as error:
        raise MissingDependencyError(
            "Hyperparameter search needs KerasTuner. Install it with `pip install 'kerastune-nlp[tune]'` "
            f"(keras-tuner>=1.4.8,<1.5). Received: {error}."
        ) from error
    return keras_tuner


def is_distributed() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ


def is_chief() -> bool:
    return is_distributed() and "chief" in os.environ.get("KERASTUNER_TUNER_ID", "")


def hyperparameters(space: SearchSpace, hyperband: bool):
    """The searched dimensions as KerasTuner `HyperParameters`, declared up front.

    Hyperband schedules the epochs itself, so `epochs` is left out for it.
    """
    kt = import_keras_tuner()
    hp = kt.HyperParameters()
    for name, dimension in sorted(space.searched().items()):
        if hyperband and name == "epochs":
            continue
        if isinstance(dimension, Range):
            sampling = "log" if dimension.log else "linear"
            if _kind(name) == "int":
                hp.Int(name, int(dimension.low), int(dimension.high), sampling=sampling)
            else:
                hp.Float(name, float(dimension.low), float(dimension.high), sampling=sampling)
        elif isinstance(dimension, Choice):
            hp.Choice(name, list(dimension.values))
    return hp


def hyperband_max_epochs(space: SearchSpace, base_epochs: int) -> int:
    """The most epochs Hyperband gives a trial: the top of the `epochs` dimension."""
    dimension = space.dimensions.get("epochs")
    if isinstance(dimension, Range):
        return int(dimension.high)
    if isinstance(dimension, Choice):
        return int(max(dimension.values))
    if isinstance(dimension, Fixed):
        return int(dimension.value)
    return base_epochs


def build_oracle(name: str, space: SearchSpace, *, objective: str, direction: str, max_trials: int,
                 seed: int, base_epochs: int, hyperband_factor: int = 3):
    """A KerasTuner oracle by name with the space declared up front.

    Hyperband runs as many trials as its brackets hold (about
    `max_epochs / factor` configurations per bracket); `max_trials` caps it.
    """
    kt = import_keras_tuner()
    if name not in TUNERS:
        raise ConfigError(f"Unknown tuner. Expected one of {list(TUNERS)}. Received: `tuner`={name!r}.")
    common = dict(objective=kt.Objective(objective, direction), seed=seed,
                  hyperparameters=hyperparameters(space, name == "hyperband"),
                  tune_new_entries=False, allow_new_entries=False,
                  # A failing trial is recorded and the search goes on, even when
                  # every trial fails: the tables then list each reason.
                  max_consecutive_failed_trials=max_trials + 1)
    if name == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if name == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    max_epochs = hyperband_max_epochs(space, base_epochs)
    if max_epochs < 2:
        raise ConfigError(f"Expected Hyperband's `epochs` dimension to reach at least 2 epochs (it trains "
                          f"candidates briefly, then the best longer). Received: max {max_epochs} epochs. "
                          "Pass e.g. --space epochs=1:4.")
    oracle = kt.oracles.HyperbandOracle(max_epochs=max_epochs, factor=hyperband_factor, **common)
    oracle.max_trials = max_trials
    return oracle


def make_tuner(oracle, runner, *, search_dir, overwrite: bool, total_trials: int):
    """A `FineTuneTuner` (a `keras_tuner.Tuner` subclass) over `runner`'s trials."""
    kt = import_keras_tuner()

    class FineTuneTuner(kt.Tuner):
        """Runs each trial with `TrialRunner` and reports progress and the best so far."""

        def run_trial(self, trial, *args, **kwargs):
            from kerastune_nlp.tuning.trial import TrialFailed

            values = dict(trial.hyperparameters.values)
            number = len(list((search_dir / results.TRIALS_DIR).glob("trial_*"))) + (
                0 if results.trial_dir(search_dir, trial.trial_id).exists() else 1)
            logger.info("trial %d/%d (id %s) started: %s", number, total_trials, trial.trial_id,
                        ", ".join(f"{k} {_short(v)}" for k, v in values.items()))
            try:
                metrics = runner.run(trial.trial_id, values)
            except TrialFailed as failure:
                logger.warning("trial %d/%d (id %s) failed: %s", number, total_trials, trial.trial_id,
                               failure.reason.splitlines()[0][:300])
                raise kt.errors.FailedTrialError(failure.reason) from None
            _log_best(search_dir, runner.settings, number, total_trials, trial.trial_id, metrics)
            return metrics

    return FineTuneTuner(oracle=oracle, directory=str(search_dir), project_name=PROJECT_NAME,
                         overwrite=overwrite)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _log_best(search_dir, settings, number: int, total: int, trial_id: str, metrics: dict) -> None:
    trials = results.read_trials(search_dir)
    best = results.best_trial(trials, settings.direction)
    this = next((t for t in trials if t["trial_id"] == trial_id), {})
    note = " (stopped early)" if this.get("status") == "stopped" else ""
    best_text = (f"best so far {settings.objective} {best['objective']['value']:.4f} (trial {best['trial_id']})"
                 if best else "no finished trial yet")
    logger.info("trial %d/%d (id %s) done%s: %s %.4f in %.0fs; %s", number, total, trial_id, note,
                settings.objective, metrics[settings.objective], this.get("duration_seconds", 0.0), best_text)
