"""One trial of a search: configs from the sampled values, our trainer, a record on disk, memory given back.

`TrialRunner.run(trial_id, values)` is everything KerasTuner's `run_trial`
needs, kept apart from KerasTuner so the rules here read (and test) on their
own:

- each trial trains in `trials/trial_<id>/` with the run directory's staging
  callbacks (epoch log, best checkpoint, crash backup), so a killed search
  resumes the running trial from its last backup, not from scratch;
- a Hyperband trial promoted from a parent starts from the parent's best
  weights at the parent's epoch count;
- a trial that is clearly worse than the median of finished trials at the
  same epoch stops early (the median stopping rule of Google Vizier,
  Golovin et al. 2017);
- NaN losses, impossible settings and out-of-memory become a failed record
  with the reason; the model and graph are released after every trial.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import shutil
import statistics
import time
from pathlib import Path

from kerastune_nlp import config as cfg
from kerastune_nlp._tf import keras, tf
from kerastune_nlp.errors import KerastuneNLPError
from kerastune_nlp.runs.layout import RunLayout, write_json
from kerastune_nlp.training.callbacks import read_epoch_log, restore_best
from kerastune_nlp.tuning import results, space as space_module

logger = logging.getLogger("kerastune_nlp.tuning")

# Per trial with keep="best": the best epoch's model weights only (no optimizer slots).
BEST_WEIGHTS = "best_weights.h5"
# The median rule waits for this many finished trials and this many epochs,
# so early noise does not kill a trial that would have caught up.
MEDIAN_MIN_TRIALS = 3
MEDIAN_GRACE_EPOCHS = 1


def resident_mb() -> float | None:
    """This process's resident memory (VmRSS) in MiB, from /proc (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class TrialFailed(Exception):
    """A trial could not finish; `reason` says why (recorded, and the search goes on)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def running_best(curve, direction: str) -> list[float]:
    best, out = None, []
    for value in curve:
        if value is not None and math.isfinite(value) and results.is_better(value, best, direction):
            best = value
        out.append(best)
    return out


class MedianStop(keras.callbacks.Callback):
    """Stops a trial whose best-so-far objective is worse than the median of finished trials at that epoch.

    Args:
        monitor: str. The objective's log key.
        direction: str. "max" or "min".
        peer_curves: list of per-epoch objective lists of finished trials.
        min_trials: int. Peers needed before stopping anything.
        grace_epochs: int. Epochs always run.
    """

    def __init__(self, monitor: str, direction: str, peer_curves, min_trials: int = MEDIAN_MIN_TRIALS,
                 grace_epochs: int = MEDIAN_GRACE_EPOCHS):
        super().__init__()
        self.monitor, self.direction = monitor, direction
        self.peers = [running_best(c, direction) for c in peer_curves]
        self.min_trials, self.grace_epochs = min_trials, grace_epochs
        self.own: list[float] = []
        self.reason: str | None = None

    def should_stop(self, epoch: int, value: float) -> str | None:
        """Why to stop after 0-based `epoch` with objective `value`, or None."""
        self.own.append(value)
        mine = running_best(self.own, self.direction)[-1]
        if epoch + 1 <= self.grace_epochs or mine is None:
            return None
        at_epoch = [p[epoch] for p in self.peers if len(p) > epoch and p[epoch] is not None]
        if len(at_epoch) < self.min_trials:
            return None
        median = statistics.median(at_epoch)
        if results.is_better(median, mine, self.direction) and median != mine:
            return (f"stopped after epoch {epoch + 1}: best {self.monitor} so far {mine:.4f} is worse than the "
                    f"median {median:.4f} of {len(at_epoch)} finished trials at that epoch")
        return None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        reason = self.should_stop(epoch, float(value))
        if reason:
            self.reason = reason
            self.model.stop_training = True
            logger.info("trial %s", reason)


class EpochProgress(keras.callbacks.Callback):
    """One log line per epoch with the objective, so a long trial shows it is moving."""

    def __init__(self, monitor: str, epochs: int):
        super().__init__()
        self.monitor, self.epochs = monitor, epochs

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        logger.info("  epoch %d/%d: %s %s", epoch + 1, self.epochs, self.monitor,
                    "not logged" if value is None else f"{float(value):.4f}")


@dataclasses.dataclass
class SearchSettings:
    """What every trial of one search shares."""

    search_dir: Path
    objective: str
    direction: str
    base_train: cfg.TrainConfig
    base_model: cfg.ModelConfig
    keep: str = "best"
    early_stop: str = "median"
    verbose: int = 0
    callbacks: tuple = ()


class TrialRunner:
    """Runs trials on one prepared data set with one `Trainer`.

    Args:
        trainer: a `Trainer` whose `prepare` has run.
        prepared: its `PreparedData` (encoded once for the whole search).
        settings: `SearchSettings`.
    """

    def __init__(self, trainer, prepared, settings: SearchSettings):
        self.trainer, self.prepared, self.settings = trainer, prepared, settings
        # Encodings for searched max_length / truncation values, each made once.
        self._encodings: dict[str, object] = {}

    def prepared_for(self, values: dict):
        """The data encoded as this trial's `max_length` and `truncation` say (cached per combination)."""
        from kerastune_nlp.models import backbones

        base = self.prepared
        data, task_settings = space_module.apply_encoding(values, base.data_config, base.task.config)
        if data == base.data_config and task_settings == base.task.config:
            return base
        key = repr((data.max_length, task_settings))
        if key not in self._encodings:
            backbones.check_max_length(data.max_length, base.backbone_config, self.settings.base_model.backbone)
            task = type(base.task)(task_settings, dict(base.task.state))
            task.fit_encoding(base.splits["train"], data.max_length)  # e.g. this trial's context_size
            encoded = {name: task.encode(base.tokenizer, base.splits[name], data.max_length)
                       for name in ("train", "dev")}
            logger.info("encoded for max_length %d, %s: train %s", data.max_length,
                        getattr(task_settings, "truncation", "head"), encoded["train"].stats)
            self._encodings[key] = dataclasses.replace(base, task=task, data_config=data, encoded=encoded)
        return self._encodings[key]

    def peer_curves(self, trial_id: str) -> list[list]:
        return [t.get("curve") or [] for t in results.read_trials(self.settings.search_dir)
                if t["trial_id"] != trial_id and t["status"] in results.SCORED]

    def run(self, trial_id: str, values: dict) -> dict:
        """Trains one trial; returns `{objective: best value, ...}` or raises `TrialFailed`."""
        settings = self.settings
        folder = results.trial_dir(settings.search_dir, trial_id)
        folder.mkdir(parents=True, exist_ok=True)
        record_path = folder / results.TRIAL_RESULT
        previous = json.loads(record_path.read_text()) if record_path.is_file() else None
        if previous and previous["status"] != "running" and previous.get("hyperparameters") == values:
            # Finished before a kill that came ahead of KerasTuner's own bookkeeping.
            return self._replay(previous)
        record = {
            "trial_id": trial_id, "status": "running", "hyperparameters": values,
            "objective": {"name": settings.objective, "direction": settings.direction, "value": None},
            "resumed": bool(previous), "duration_seconds": (previous or {}).get("duration_seconds", 0.0),
        }
        write_json(record_path, record)
        started = time.perf_counter()
        built = None
        try:
            built, history_epochs, stopper, prepared = self._train(trial_id, values, folder)
            record["encoding"] = {"max_length": prepared.data_config.max_length,
                                  "truncation": prepared.task.truncation, **prepared.encoded["train"].stats}
            if "context_size" in prepared.task.state:
                record["encoding"]["context_size"] = prepared.task.state["context_size"]
            record.update(self._score(history_epochs, stopper))
            record["fit_seconds"] = round(getattr(built, "fit_seconds", 0.0), 2)
        except TrialFailed as failure:
            record.update(status="failed", reason=failure.reason)
        except Exception as error:  # anything else a trial raises: recorded, and the search goes on
            logger.exception("trial %s raised an unexpected error", trial_id)
            record.update(status="failed", reason=f"{type(error).__name__}: {str(error).strip()[:2000]}")
        finally:
            record["duration_seconds"] = round(record["duration_seconds"] + time.perf_counter() - started, 2)
            if built is not None:
                record["steps_per_epoch"] = built.steps_per_epoch
            built = None
            self._release()
            record["resident_mb_after"] = resident_mb()
        write_json(record_path, record)
        self._prune(folder, record["status"])
        if record["status"] == "failed":
            raise TrialFailed(record["reason"])
        return {settings.objective: record["objective"]["value"]}

    def _replay(self, record: dict) -> dict:
        if record["status"] == "failed":
            raise TrialFailed(record.get("reason", "failed"))
        return {self.settings.objective: record["objective"]["value"]}

    def _train(self, trial_id: str, values: dict, folder: Path):
        settings, trainer = self.settings, self.trainer
        try:
            train_config, model_config = space_module.apply(values, settings.base_train, settings.base_model)
        except KerastuneNLPError as error:
            raise TrialFailed(f"{type(error).__name__}: {error}") from None
        initial_epoch, parent = 0, values.get("tuner/trial_id")
        if "tuner/epochs" in values:
            # Hyperband's budget for this trial, in total epochs.
            train_config = dataclasses.replace(train_config, epochs=int(values["tuner/epochs"]))
        trainer.model_config = model_config
        stopper = None
        try:
            prepared = self.prepared_for(values)
            built = trainer.build_and_compile(prepared, train_config)
            if parent is not None:
                initial_epoch = self._continue_from(built, parent, int(values.get("tuner/initial_epoch", 0)))
            callbacks = [EpochProgress(settings.objective, train_config.epochs), *settings.callbacks]
            if settings.early_stop == "median":
                stopper = MedianStop(settings.objective, settings.direction, self.peer_curves(trial_id))
                callbacks.append(stopper)
            trainer.fit(built, prepared, RunLayout(folder), callbacks=callbacks, verbose=settings.verbose,
                        initial_epoch=initial_epoch)
            if settings.keep == "best" and restore_best(built.model, folder / RunLayout.BEST_CHECKPOINT):
                # The model alone (HDF5), not the checkpoint's optimizer slots: a third of the size.
                built.model.save_weights(str(folder / BEST_WEIGHTS))
        except (KerastuneNLPError, tf.errors.ResourceExhaustedError, MemoryError) as error:
            # NaN loss (TrainingError), a batch the replicas cannot divide (ConfigError), out of memory.
            kind = "out of memory" if not isinstance(error, KerastuneNLPError) else type(error).__name__
            raise TrialFailed(f"{kind}: {str(error).strip()[:2000]}") from None
        finally:
            trainer.model_config = settings.base_model
        return built, read_epoch_log(folder / RunLayout.EPOCH_LOG), stopper, prepared

    def _continue_from(self, built, parent: str, initial_epoch: int) -> int:
        """Starts from the parent's best weights, with the rate schedule already `initial_epoch` epochs in."""
        weights = results.trial_dir(self.settings.search_dir, parent) / BEST_WEIGHTS
        if not weights.is_file():
            raise TrialFailed(f"Hyperband promoted this trial from trial {parent}, whose weights are gone "
                              f"(expected {str(weights)!r}). Keep weights (keep='best') with Hyperband.")
        built.model.load_weights(str(weights))
        # The schedule spans this trial's whole budget; the parent's epochs count as done.
        updates = initial_epoch * built.steps_per_epoch // built.train_config.gradient_accumulation_steps
        built.setup.optimizer.iterations.assign(updates)
        logger.info("continuing from trial %s's best weights at epoch %d", parent, initial_epoch)
        return initial_epoch

    def _score(self, epochs: list[dict], stopper: MedianStop | None) -> dict:
        settings = self.settings
        if not epochs:
            raise TrialFailed("No epoch finished (was the training set empty?).")
        logged = sorted(epochs[-1])
        if settings.objective not in epochs[-1]:
            raise TrialFailed(f"The objective `{settings.objective}` was not logged. Logged: {logged}.")
        curve = [e.get(settings.objective) for e in epochs]
        finite = [(v, e["epoch"]) for v, e in zip(curve, epochs) if v is not None and math.isfinite(v)]
        if not finite:
            raise TrialFailed(f"The objective `{settings.objective}` was never a finite number: {curve}.")
        best_value, best_epoch = finite[0]
        for value, epoch in finite[1:]:
            if results.is_better(value, best_value, settings.direction):
                best_value, best_epoch = value, epoch
        history = {k: [e.get(k) for e in epochs] for k in logged if k != "epoch"}
        stopped = stopper is not None and stopper.reason is not None
        return {"status": "stopped" if stopped else "completed", "stop_reason": stopper.reason if stopped else None,
                "objective": {"name": settings.objective, "direction": settings.direction, "value": best_value},
                "best_epoch": best_epoch, "epochs_run": len(epochs), "curve": curve, "history": history}

    def _prune(self, folder: Path, status: str) -> None:
        """Bounded disk: drop the crash backup and the checkpoint; keep only the best model weights (or none)."""
        for name in (RunLayout.BACKUP, RunLayout.CHECKPOINTS):
            if (folder / name).is_dir():
                shutil.rmtree(folder / name)

    @staticmethod
    def _release() -> None:
        """Gives back the trial's model, graph and optimizer memory (keras-tuner #873, #1031)."""
        keras.backend.clear_session()
        gc.collect()
