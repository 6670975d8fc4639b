"""Keras callbacks for fine-tuning: dev scores each epoch, epoch log, NaN guard, best checkpoint, crash backup.

`EpochCosts` records what each epoch end costs (dev scoring, decoding, best
checkpoint, backups) and the bytes written, for metrics.json.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from kerastune_nlp._tf import keras
from kerastune_nlp.errors import TrainingError

logger = logging.getLogger("kerastune_nlp.training")


class DevScoreCallback(keras.callbacks.Callback):
    """Scores the dev set at each epoch end and puts the task's dev metrics into the logs.

    Place it before EarlyStopping / the best checkpoint in the callback list
    so they (and KerasTuner) can monitor what it logs.

    Args:
        score: callable returning the task's scores dict for the dev set.
        to_logs: callable mapping that dict to `{log_key: float}`.
        description: str. What the logged numbers are, for the console.
    """

    def __init__(self, score, to_logs, description: str = "dev"):
        super().__init__()
        self.score, self.to_logs, self.description = score, to_logs, description
        self.costs = {}
        self.scores_by_epoch = {}  # 1-based epoch -> the full scores dict

    def on_epoch_end(self, epoch, logs=None):
        from kerastune_nlp.evaluation.iob_decoding import decoding_seconds

        started, decoded = time.perf_counter(), decoding_seconds()
        scores = self.score()
        self.scores_by_epoch[epoch + 1] = scores
        entries = self.to_logs(scores)
        seconds = time.perf_counter() - started
        # Decoding is timed inside the decoder: the task drives it, between forward passes.
        self.costs = {"dev_scoring_seconds": seconds, "decoding_seconds": decoding_seconds() - decoded}
        if logs is not None:
            logs.update(entries)
        logger.info("epoch %d: %s %s (scored in %.1fs)", epoch + 1, self.description,
                    "/".join(f"{v:.4f}" for v in entries.values()), seconds)


def validation(task, predictor, dev, dev_encoded) -> tuple[list, object]:
    """`(callbacks, validation_data)` that put `task`'s dev metric into the epoch logs."""
    score = task.dev_score(predictor, dev)
    callbacks = [] if score is None else [DevScoreCallback(score.score, score.to_logs, score.description)]
    return callbacks, task.validation_data(predictor, dev_encoded)


class EpochLog(keras.callbacks.Callback):
    """Appends each finished epoch's logs to a JSON-lines file in the staging folder.

    The file outlives a crash, so a resumed run reports the history of every
    epoch, not only of those after the resume.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def read_epoch_log(path: Path) -> list[dict]:
    """Epoch entries in order, the latest entry of each epoch winning (a resumed epoch repeats)."""
    path = Path(path)
    if not path.is_file():
        return []
    by_epoch = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            by_epoch[entry["epoch"]] = entry
    return [by_epoch[e] for e in sorted(by_epoch)]


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops at the first NaN or infinite batch loss with advice on what to try.

    The best checkpoint written so far is left untouched.

    Args:
        checkpoint_hint: str. Where the best weights so far are, for the message.
    """

    def __init__(self, checkpoint_hint: str = ""):
        super().__init__()
        self.checkpoint_hint = checkpoint_hint
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise TrainingError(
                f"The training loss became {loss} at epoch {self._epoch + 1}, batch {batch + 1}. "
                "Try a lower --learning-rate (e.g. a third of it), a longer warmup, or float32 "
                f"instead of mixed precision. {self.checkpoint_hint}"
            )


class StepBackup(keras.callbacks.BackupAndRestore):
    """Crash backup (model and optimizer) every `every_seconds` or `every_steps`, and at every epoch end.

    A backup writes about three times the model's size (weights plus Adam's
    two slots: 272 MB for MiniLM, 0.6-0.7 s here), so the default interval is
    time-based: at most ten minutes of work is lost, whatever the step time,
    and a short epoch writes one backup (its end), not one per 200 steps.
    The epoch-end backup is recorded as the epoch's last batch, so a resume
    starts the next epoch; a run killed while scoring dev loses nothing.

    Args:
        backup_dir: str. Where the backups go.
        every_steps: int or None. Back up after this many steps. Defaults to None.
        every_seconds: float or None. Back up at the first step end this long
            after the last backup (or the start). Defaults to None.
        clock: callable returning seconds; tests pass a fake one.

    With several workers, the seconds interval is not used (the workers'
    clocks could pick different steps, and a backup is a collective step):
    they back up every `every_steps` steps and at epoch ends.
    """

    def __init__(self, backup_dir: str, every_steps: int | None = None, every_seconds: float | None = None,
                 clock=time.monotonic):
        # An int save_freq makes Keras record the step in each backup and resume
        # mid-epoch; when to back up is decided in `on_train_batch_end`.
        super().__init__(backup_dir, save_freq=every_steps or 1)
        self.every_steps, self.every_seconds, self.clock = every_steps, every_seconds, clock
        self.costs = {}
        self._last = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.every_seconds and _multi_worker(self.model):
            logger.warning("With several workers, crash backups run every %s steps and at epoch ends; "
                           "the %ss interval is not used (set --checkpoint-every STEPS to bound lost work).",
                           self.every_steps, self.every_seconds)
            self.every_seconds = None
        self._last = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.costs = {"backup_seconds": 0.0, "backup_bytes": 0, "backups": 0, "epoch_end_backup_seconds": 0.0}

    def on_train_batch_end(self, batch, logs=None):
        self._training_state.backup_if_preempted()
        self._batches_count += 1
        due = bool(self.every_steps) and self._batches_count >= self.every_steps
        due = due or (bool(self.every_seconds) and self.clock() - self._last >= self.every_seconds)
        if due:
            self._batches_count = 0
            self._backup(epoch=self._current_epoch, batch=batch)

    def on_epoch_end(self, epoch, logs=None):
        steps = (self.params or {}).get("steps")
        if steps:
            started = time.perf_counter()
            self._batches_count = 0
            self._backup(epoch=epoch, batch=steps - 1)
            self.costs["epoch_end_backup_seconds"] = time.perf_counter() - started

    def _backup(self, epoch, batch=0):
        started = time.perf_counter()
        super()._backup(epoch=epoch, batch=batch)
        # Where a resume will start, for the console (the checkpoint holds the same).
        epoch, batch = int(epoch), int(batch)
        steps = int((self.params or {}).get("steps") or 0)
        finished_epoch = bool(steps) and batch >= steps - 1
        progress = {"epoch": epoch + (2 if finished_epoch else 1), "step": 0 if finished_epoch else batch + 1,
                    "steps_per_epoch": steps}
        (Path(self.backup_dir) / "progress.json").write_text(json.dumps(progress) + "\n")
        self._last = self.clock()
        if self.costs:
            self.costs["backup_seconds"] += time.perf_counter() - started
            self.costs["backup_bytes"] += _latest_backup_bytes(Path(self.backup_dir))
            self.costs["backups"] += 1


def _multi_worker(model) -> bool:
    """Whether `model` trains under a strategy spanning several workers."""
    extended = model.distribute_strategy.extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def _latest_backup_bytes(backup_dir: Path) -> int:
    """Size of the newest backup checkpoint (Keras keeps one, under `chief/`)."""
    from kerastune_nlp._tf import tf

    latest = tf.train.latest_checkpoint(str(backup_dir / "chief"))
    return _checkpoint_bytes(latest) if latest else 0


def _checkpoint_bytes(prefix: str) -> int:
    """Bytes of a TensorFlow checkpoint: its `.index` and `.data-*` files."""
    prefix = Path(prefix)
    return sum(f.stat().st_size for f in prefix.parent.glob(prefix.name + ".*") if f.is_file())


def _directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).exists() else 0


class BestCheckpoint(keras.callbacks.Callback):
    """Writes the model's weights when `monitor` improves; remembers the best score across a resume.

    Model only (the layers' weights, 91 MB for MiniLM, 0.1-0.2 s here),
    unless `with_optimizer`: the optimizer's slots would double the bytes and
    triple the time, and only `keep_optimizer_state` runs keep them. A
    TensorFlow checkpoint of `model.layers`, matched by object, so it loads
    into a model mirrored across replicas (`restore_best` reads it). The
    score is written next to the weights after them; a resumed run reads it
    back, so an epoch worse than one before the crash cannot replace the
    best weights.

    Written synchronously: `tf.train.CheckpointOptions(
    experimental_enable_async_checkpoint=True)` works with TF 2.21 (the write
    returns in 0.03 s instead of 0.1-0.2 s), but a kill during the
    background write could leave the score file and the weights of two
    different epochs, for 0.1-0.2 s a epoch.

    Args:
        filepath: str. The checkpoint prefix (`.../best.ckpt`).
        monitor: str. The logged key to watch.
        mode: str. "max" or "min".
        with_optimizer: bool. Also save the optimizer state. Defaults to False.
    """

    def __init__(self, filepath: str, monitor: str, mode: str, with_optimizer: bool = False):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"Expected mode 'max' or 'min'. Received: mode={mode!r}.")
        self.filepath, self.monitor, self.mode, self.with_optimizer = filepath, monitor, mode, with_optimizer
        self.best = -math.inf if mode == "max" else math.inf
        self.costs = {}
        self.score_file = Path(filepath).with_suffix(".json")
        if self.score_file.exists() and Path(filepath + ".index").exists():
            self.best = json.loads(self.score_file.read_text())["best"]

    def on_epoch_end(self, epoch, logs=None):
        self.costs = {"checkpoint_seconds": 0.0, "checkpoint_bytes": 0}
        current = (logs or {}).get(self.monitor)
        if current is None:
            logger.warning("The best checkpoint watches %r, which this epoch did not log (logged: %s).",
                           self.monitor, ", ".join(sorted(logs or {})))
            return
        current = float(current)
        if not (current > self.best if self.mode == "max" else current < self.best):
            return
        started = time.perf_counter()
        _weights_checkpoint(self.model, self.with_optimizer).write(self.filepath)
        self.best = current
        self.score_file.write_text(json.dumps({"monitor": self.monitor, "best": current,
                                               "epoch": epoch + 1}) + "\n")
        self.costs = {"checkpoint_seconds": time.perf_counter() - started,
                      "checkpoint_bytes": _checkpoint_bytes(self.filepath)}


def _weights_checkpoint(model, with_optimizer: bool):
    """The `tf.train.Checkpoint` the best weights are written to and read from."""
    from kerastune_nlp._tf import tf

    parts = {"layers": model.layers}
    if with_optimizer and model.optimizer is not None:
        parts["optimizer"] = model.optimizer
    return tf.train.Checkpoint(**parts)


class EpochCosts(keras.callbacks.Callback):
    """Appends what each epoch cost to a JSON-lines file: seconds of training and of the epoch end, bytes written.

    Place it after every callback whose cost it reports (they expose a
    `costs` dict, reset each epoch); the epoch end is timed from the last
    training step to this callback's `on_epoch_end`.

    Args:
        path: Path. The JSON-lines file (kept across a resume).
        callbacks: the callbacks whose `costs` are summed.
        watched: Path or None. A folder whose other growth (logs, epoch log)
            counts as bytes written; `skip` names its subfolders counted by
            the callbacks themselves.
    """

    def __init__(self, path: Path, callbacks, watched: Path | None = None, skip=()):
        super().__init__()
        self.path, self.callbacks, self.watched, self.skip = Path(path), list(callbacks), watched, set(skip)
        self._begin = self._last_step = 0.0
        self._other_bytes = 0

    def _other(self) -> int:
        if self.watched is None or not Path(self.watched).exists():
            return 0
        return sum(_directory_bytes(p) if p.is_dir() else p.stat().st_size
                   for p in Path(self.watched).iterdir() if p.name not in self.skip)

    def on_epoch_begin(self, epoch, logs=None):
        self._begin = self._last_step = time.perf_counter()
        self._other_bytes = self._other()

    def on_train_batch_end(self, batch, logs=None):
        self._last_step = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        costs = {}
        for callback in self.callbacks:
            for key, value in (getattr(callback, "costs", None) or {}).items():
                costs[key] = costs.get(key, 0) + value
        entry = {"epoch": epoch + 1, "epoch_seconds": now - self._begin,
                 "train_seconds": self._last_step - self._begin, "epoch_end_seconds": now - self._last_step,
                 **costs, "other_bytes": max(0, self._other() - self._other_bytes)}
        entry["epoch_end_share"] = entry["epoch_end_seconds"] / max(entry["epoch_seconds"], 1e-9)
        entry["bytes_written"] = (entry.get("backup_bytes", 0) + entry.get("checkpoint_bytes", 0)
                                  + entry["other_bytes"])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()})
                         + "\n")


def summarize_epoch_costs(entries: list[dict]) -> dict:
    """metrics.json's `epoch_end`: per-epoch costs, and their means over epochs."""
    if not entries:
        return {"per_epoch": []}
    keys = [k for k in entries[0] if k != "epoch" and isinstance(entries[0][k], (int, float))]
    mean = {k: round(sum(e.get(k, 0) for e in entries) / len(entries), 4) for k in keys}
    return {"per_epoch": entries, "mean": mean}


def restore_best(model, best_path: Path) -> bool:
    """Loads the best-epoch weights into `model` (and its optimizer state, if saved), if a best epoch was saved."""
    if not Path(str(best_path) + ".index").exists():
        return False
    _weights_checkpoint(model, with_optimizer=True).read(str(best_path)).expect_partial()
    return True


def run_callbacks(layout, monitor: str, mode: str, patience: int | None = None,
                  backup_every_steps: int | None = None, backup_every_seconds: float | None = None,
                  keep_optimizer_state: bool = False):
    """The callbacks every fine-tune uses, writing into the staging run folder.

    Epoch log (survives a resume); NaN guard; best-epoch checkpoint on
    `monitor` (model only unless `keep_optimizer_state`; TensorFlow format:
    matched by object, loadable into a model mirrored across replicas);
    crash backup of model and optimizer every `backup_every_seconds`
    seconds or `backup_every_steps` steps and at epoch ends, so rerunning
    the same command resumes from the last backed-up step with the same
    total number of steps; TensorBoard logs; early stopping when `patience`
    is set; last, `EpochCosts` (see `with_epoch_costs`). Callbacks that
    compute `monitor` must come before these in the list.

    Args:
        layout: the staging `RunLayout`.

    Returns:
        `(callbacks, best_checkpoint_path)`.
    """
    from kerastune_nlp.runs.layout import RunLayout

    best_path = layout.best_checkpoint
    best_path.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        EpochLog(layout / RunLayout.EPOCH_LOG),
        StopOnNonFiniteLoss(f"The best weights so far are in {str(best_path)!r}."),
        BestCheckpoint(str(best_path), monitor=monitor, mode=mode, with_optimizer=keep_optimizer_state),
        StepBackup(str(layout / RunLayout.BACKUP), every_steps=backup_every_steps,
                   every_seconds=backup_every_seconds),
        keras.callbacks.TensorBoard(str(layout / RunLayout.LOGS), write_graph=False),
    ]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    return callbacks, best_path


EPOCH_COSTS = "epoch_costs.jsonl"


def epoch_costs_path(layout) -> Path:
    """Where `EpochCosts` writes: beside the backup, so it survives a resume and is pruned with it."""
    from kerastune_nlp.runs.layout import RunLayout

    return layout / RunLayout.BACKUP / EPOCH_COSTS


def with_epoch_costs(layout, callbacks: list) -> list:
    """`callbacks` followed by an `EpochCosts` over them, writing to `epoch_costs_path(layout)`."""
    from kerastune_nlp.runs.layout import RunLayout

    costs = EpochCosts(epoch_costs_path(layout), callbacks, watched=layout.root,
                       skip={RunLayout.BACKUP, RunLayout.CHECKPOINTS})
    return [*callbacks, costs]
