"""`tune(...)`: a hyperparameter search over the whole fine-tuning recipe, in a resumable folder.

    <search_dir>/
      search.json                 what search this is (refuses another one)
      keras_tuner/                KerasTuner's oracle and trial state (resume)
      trials/trial_<id>/          per trial: trial_result.json, epochs.jsonl, logs/ and
                                  best_weights.h5 (keep="best": model only, no optimizer)
      trials.csv  trials.md  objective_per_trial.png  objective_vs_learning_rate.png
      best_hyperparameters.json  best_config.yaml   (`train --config` reads it)
      best_run/                   the best configuration retrained (retrain_best)
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Mapping, Sequence

from kerastune_nlp import config as cfg
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.runs import owned_folder
from kerastune_nlp.tasks import Task, get_task
from kerastune_nlp.tuning import results
from kerastune_nlp.tuning.space import SearchSpace, apply, apply_encoding, build_space, check_task_fields

logger = logging.getLogger("kerastune_nlp.tuning")

SEARCH_FILE = "search.json"
KEEP_CHOICES = ("best", "none")
EARLY_STOP_CHOICES = ("median", "none")
SEARCH_KIND = "kerastune_nlp.search"
SEARCH_FOLDER = owned_folder.FolderKind(SEARCH_KIND, SEARCH_FILE, "search folder", "`kerastune-nlp tune`",
                                       "--search-dir")
# Objective names that are minimised unless a direction is given.
_MINIMISED = ("loss", "error", "mse", "mae")


@dataclasses.dataclass
class SearchResult:
    """What a search produced.

    Args:
        search_dir: Path. The search folder.
        objective: dict. `{"name", "direction"}`.
        trials: list of dict. Every trial record (see `trials.csv`).
        best: dict or None. The best trial's record.
        best_config: dict or None. The settings file of the best trial.
        files: list of str. Result files written into `search_dir`.
        run: RunResult or None. The best configuration retrained (`retrain_best`).
    """

    search_dir: Path
    objective: dict
    trials: list
    best: dict | None
    best_config: dict | None
    files: list
    run: object = None

    @property
    def best_hyperparameters(self) -> dict:
        values = (self.best or {}).get("hyperparameters") or {}
        return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def resolve_objective(objective, task: Task) -> tuple[str, str]:
    """`None` (the task's dev metric), `"name"`, `"name:min|max"` or `(name, direction)` -> (name, direction)."""
    if objective is None:
        return task.monitor, task.mode
    if isinstance(objective, (tuple, list)) and len(objective) == 2:
        name, direction = objective
    elif isinstance(objective, str) and objective.strip():
        name, _, direction = objective.strip().partition(":")
    else:
        raise ConfigError(f"Expected `objective` as a logged metric name, 'name:min' / 'name:max' or a (name, "
                          f"direction) pair. Received: `objective`={objective!r}.")
    if not direction:
        direction = task.mode if name == task.monitor else (
            "min" if any(word in name for word in _MINIMISED) else "max")
    if direction not in ("min", "max"):
        raise ConfigError(f"Expected the objective's direction to be 'min' or 'max'. Received: "
                          f"`objective`={objective!r}. Write e.g. 'val_loss:min'.")
    return name, direction


def _check_options(tuner: str, max_trials, keep: str, early_stop: str, hyperband_factor) -> None:
    from kerastune_nlp.tuning.tuner import TUNERS

    if tuner not in TUNERS:
        raise ConfigError(f"Unknown tuner. Expected one of {list(TUNERS)}. Received: `tuner`={tuner!r}. "
                          "Pass --tuner random, bayesian or hyperband.")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ConfigError(f"Expected `max_trials` to be an integer of at least 1. Received: "
                          f"`max_trials`={max_trials!r}. Pass e.g. --max-trials 10.")
    if keep not in KEEP_CHOICES:
        raise ConfigError(f"Expected `keep` to be one of {list(KEEP_CHOICES)}. Received: `keep`={keep!r}.")
    if early_stop not in EARLY_STOP_CHOICES:
        raise ConfigError(f"Expected `early_stop` to be one of {list(EARLY_STOP_CHOICES)}. Received: "
                          f"`early_stop`={early_stop!r}.")
    if tuner == "hyperband" and keep == "none":
        raise ConfigError("Hyperband continues promoted trials from their parent's weights, so it needs them "
                          "kept. Received: `tuner`='hyperband' with `keep`='none'. Pass keep='best' "
                          "(--keep best) or another tuner.")
    if not isinstance(hyperband_factor, int) or hyperband_factor < 2:
        raise ConfigError(f"Expected `hyperband_factor` to be an integer of at least 2. Received: "
                          f"`hyperband_factor`={hyperband_factor!r}.")


def search_fingerprint(run_parts: dict, *, tuner: str, space: SearchSpace, objective: tuple, early_stop: str,
                       hyperband_factor: int) -> dict:
    """What identifies a search: the base run's fingerprint (data hashes, settings) plus the search's own.

    `max_trials` is left out, so rerunning with more trials extends a search.
    """
    return {
        "search.tuner": tuner, "search.space": space.to_dict(), "search.objective": ":".join(objective),
        "search.early_stop": early_stop, "search.hyperband_factor": hyperband_factor if tuner == "hyperband" else None,
        **run_parts,
    }


def open_search_dir(search_dir: Path, fingerprint: dict, overwrite: bool) -> bool:
    """Creates the search folder, or reopens it for the same search; returns True when resuming.

    Raises:
        RunDirectoryError: the folder holds a different search (without
            `overwrite`) or something that is not a search folder at all.
    """
    reopened = owned_folder.open_in_place(search_dir, SEARCH_FOLDER, fingerprint, overwrite)
    return reopened and any((Path(search_dir) / results.TRIALS_DIR).glob("trial_*"))


def logged_metrics(trainer, prepared, train_config: cfg.TrainConfig) -> list[str]:
    """The names a trial's epoch logs will hold, found by building one model and scoring 8 dev examples.

    Run before the first trial, so an objective that is never logged fails
    in seconds instead of after a trial.
    """
    from kerastune_nlp.tasks.base import EncodedSplit
    from kerastune_nlp.training import fit_setup
    from kerastune_nlp.training.callbacks import validation
    from kerastune_nlp.tuning.trial import TrialRunner

    built = trainer.build_and_compile(prepared, train_config)
    try:
        task, encoded = prepared.task, prepared.encoded
        with fit_setup.build_scope(built.setup):
            _, metrics = task.loss_and_metrics(encoded["train"], built.steps_per_epoch, built.setup.replicas)
        names = ["loss", *[m if isinstance(m, str) else m.name for m in metrics]]
        dev = encoded["dev"]
        sample = EncodedSplit(dev.rows[:8], dev.targets[:8] if dev.targets is not None else None, dev.stats)
        callbacks, validation_data = validation(task, built.predictor, prepared.splits["dev"][:8], sample)
        if validation_data is not None:
            names += [f"val_{n}" for n in names]
        for callback in callbacks:
            if hasattr(callback, "to_logs") and hasattr(callback, "score"):
                names += list(callback.to_logs(callback.score()))
        return list(dict.fromkeys(names))
    finally:
        built = None
        TrialRunner._release()


def tune(task="ner", train: Sequence | None = None, dev: Sequence | None = None, test: Sequence | None = None,
         *, search_dir, tuner: str = "random", max_trials: int = 10, space: Mapping | SearchSpace | None = None,
         use_default_space: bool = True, objective=None, data_config: cfg.DataConfig | None = None,
         model_config: cfg.ModelConfig | None = None, train_config: cfg.TrainConfig | None = None,
         task_config=None, overwrite: bool = False, keep: str = "best", early_stop: str = "median",
         hyperband_factor: int = 3, retrain_best: bool = False, output_dir=None, strategy=None,
         callbacks: Sequence = (), verbose: int = 0) -> SearchResult:
    """Searches hyperparameters of a fine-tune with KerasTuner; data is read and encoded once.

    Rerunning the same call resumes: finished trials are kept, the running
    one continues from its crash backup. A folder holding another search is
    refused.

    Args:
        task: str or Task. Defaults to "ner".
        train, dev, test: example lists, or None to read them as
            `data_config` says (files, hub, or the task's bundled data).
        search_dir: str or Path. The search folder (created, or resumed).
        tuner: str. "random", "bayesian" or "hyperband". Defaults to "random".
        max_trials: int. Trials to run (a cap for Hyperband, whose brackets
            decide). Defaults to 10.
        space: mapping of setting -> dimension (`"1e-5:1e-3:log"`,
            `(low, high)`, `[a, b]`, a fixed value; see `tuning.space`) over
            the default space. Defaults to None.
        use_default_space: bool. Start from the default space. Defaults to True.
        objective: None for the task's dev metric (`task.monitor`, `task.mode`),
            or any logged metric as "name", "name:min|max" or (name, direction).
        data_config, model_config, train_config, task_config: the base
            settings; each trial overrides the searched ones.
        overwrite: bool. Discard a DIFFERENT search in `search_dir`. Defaults to False.
        keep: str. "best" keeps each trial's best weights, "none" none. Defaults to "best".
        early_stop: str. "median" stops a trial whose dev metric is below the
            median of finished trials at the same epoch; "none". Defaults to "median".
        hyperband_factor: int. Hyperband's reduction factor. Defaults to 3.
        retrain_best: bool. Retrain the best configuration into a run
            directory (`output_dir`, default `<search_dir>/best_run`). Defaults to False.
        strategy: a `tf.distribute.Strategy` or None.
        callbacks: more Keras callbacks for every trial's `fit`.
        verbose: int. Keras `fit` verbosity per trial. Defaults to 0.

    Example:
    >>> import kerastune_nlp as kt
    >>> from kerastune_nlp.tuning import tune
    >>> result = tune("classification", search_dir="saved_models/trec-search", max_trials=10,
    ...               space={"epochs": 2, "batch_size": [16, 32]}, data_config=kt.DataConfig(quick=True))
    >>> result.best_hyperparameters["learning_rate"]
    """
    from kerastune_nlp.training.trainer import gather
    from kerastune_nlp.tuning import tuner as tuner_module

    task_object = task if isinstance(task, Task) else get_task(task)(task_config)
    _check_options(tuner, max_trials, keep, early_stop, hyperband_factor)
    search_space = space if isinstance(space, SearchSpace) else build_space(space, use_defaults=use_default_space)
    check_task_fields(search_space, task_object)
    objective_name, direction = resolve_objective(objective, task_object)
    data_config, task_settings = apply_encoding(search_space.fixed(), data_config or cfg.DataConfig(),
                                                task_object.config)
    if task_settings is not task_object.config:
        task_object = type(task_object)(task_settings)
    base_train, base_model = apply(search_space.fixed(), train_config or task_object.default_train_config(),
                                   model_config or cfg.ModelConfig())
    if tuner_module.is_distributed() and overwrite:
        raise ConfigError("Expected `overwrite`=False in a distributed search: the chief and the workers share "
                          "the search folder. Received: `overwrite`=True. Delete the folder yourself first.")
    splits, run_parts = gather(task_object, train, dev, test, data_config, base_model, base_train)
    search_dir = Path(search_dir)
    parts = search_fingerprint(run_parts, tuner=tuner, space=search_space, objective=(objective_name, direction),
                               early_stop=early_stop, hyperband_factor=hyperband_factor)
    resuming = open_search_dir(search_dir, parts, overwrite)
    if resuming:
        logger.warning("Resuming the search in %s: finished trials are kept, an interrupted one continues "
                       "from its last backup.", search_dir)

    from kerastune_nlp.training.trainer import Trainer
    from kerastune_nlp.tuning.trial import SearchSettings, TrialRunner

    settings = SearchSettings(search_dir, objective_name, direction, base_train, base_model, keep, early_stop,
                              verbose, tuple(callbacks))
    trainer = Trainer(task_object, data_config, base_model, strategy)
    runner = None
    if not tuner_module.is_chief():  # the chief only serves the oracle
        trainer.start(base_train)
        prepared = trainer.prepare(splits["train"], splits["dev"], splits.get("test"))
        if objective_name != task_object.monitor:
            names = logged_metrics(trainer, prepared, base_train)
            if objective_name not in names:
                raise ConfigError(
                    f"The objective `{objective_name}` is never logged by the {task_object.name!r} task, so no "
                    f"trial could be scored. Expected one of {names}. Received: `objective`={objective!r}."
                )
        runner = TrialRunner(trainer, prepared, settings)
    oracle = tuner_module.build_oracle(tuner, search_space, objective=objective_name, direction=direction,
                                       max_trials=max_trials, seed=base_train.seed, base_epochs=base_train.epochs,
                                       hyperband_factor=hyperband_factor)
    keras_tuner = tuner_module.make_tuner(oracle, runner, search_dir=search_dir, overwrite=False,
                                          total_trials=max_trials)
    keras_tuner.search(verbose=0)

    trials = results.read_trials(search_dir)
    objective_info = {"name": objective_name, "direction": direction}
    best = results.best_trial(trials, direction)
    best_settings = None
    if best is not None:
        best_train, best_model = best_configs(best, base_train, base_model)
        best_data, best_task = best_encoding(best, data_config, task_object)
        best_settings = results.best_config(best_task, best_data, best_model, best_train)
    files = []
    if not tuner_module.is_distributed() or tuner_module.is_chief():
        files = results.write_results(search_dir, trials, objective_info, best_settings)
    result = SearchResult(search_dir, objective_info, trials, best, best_settings, files)
    if retrain_best and best is not None and files:
        from kerastune_nlp.training.trainer import train as train_run

        best_train, best_model = best_configs(best, base_train, base_model)
        best_data, best_task = best_encoding(best, data_config, task_object)
        result.run = train_run(best_task, splits["train"], splits["dev"], splits.get("test"),
                               output_dir=Path(output_dir or search_dir / "best_run"), data_config=best_data,
                               model_config=best_model, train_config=best_train, overwrite=overwrite,
                               strategy=trainer.strategy, verbose=verbose)
    return result


def best_encoding(best: dict, data_config: cfg.DataConfig, task):
    """The best trial's DataConfig and a fresh task with its task settings (max_length, truncation)."""
    data, task_settings = apply_encoding(best["hyperparameters"], data_config, task.config)
    return data, (task if task_settings is task.config else type(task)(task_settings))


def best_configs(best: dict, base_train: cfg.TrainConfig, base_model: cfg.ModelConfig):
    """The best trial's TrainConfig and ModelConfig (Hyperband: its full epoch budget)."""
    values = dict(best["hyperparameters"])
    train_config, model_config = apply(values, base_train, base_model)
    if "tuner/epochs" in values:
        train_config = dataclasses.replace(train_config, epochs=int(values["tuner/epochs"]))
    return train_config, model_config
