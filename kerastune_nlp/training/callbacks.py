"""Keras callbacks for fine-tuning: dev scores each epoch, epoch log, NaN guard, best checkpoint, crash backup."""

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

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        entries = self.to_logs(self.score())
        if logs is not None:
            logs.update(entries)
        logger.info("epoch %d: %s %s (scored in %.0fs)", epoch + 1, self.description,
                    "/".join(f"{v:.4f}" for v in entries.values()), time.perf_counter() - started)


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
    """Crash backup every `save_freq` steps and at every epoch end.

    Keras backs up either per epoch or per N steps; a run killed just after an
    epoch (while scoring dev, say) would then lose up to N steps. The epoch-end
    backup is recorded as the epoch's last batch, so a resume starts the next
    epoch.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        steps = (self.params or {}).get("steps")
        if isinstance(self.save_freq, int) and steps:
            self._batches_count = 0
            self._backup(epoch=epoch, batch=steps - 1)

    def _backup(self, epoch, batch=0):
        super()._backup(epoch=epoch, batch=batch)
        # Where a resume will start, for the console (the checkpoint holds the same).
        epoch, batch = int(epoch), int(batch)
        steps = int((self.params or {}).get("steps") or 0)
        finished_epoch = bool(steps) and batch >= steps - 1
        progress = {"epoch": epoch + (2 if finished_epoch else 1), "step": 0 if finished_epoch else batch + 1,
                    "steps_per_epoch": steps}
        (Path(self.backup_dir) / "progress.json").write_text(json.dumps(progress) + "\n")


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint (best only) that remembers its best score across a resume.

    The score is written next to the weights; a resumed run reads it back, so
    an epoch worse than one before the crash cannot replace the best weights.
    """

    def __init__(self, filepath: str, monitor: str, mode: str):
        super().__init__(filepath, monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True)
        self.score_file = Path(filepath).with_suffix(".json")
        if self.score_file.exists() and Path(filepath + ".index").exists():
            self.best = json.loads(self.score_file.read_text())["best"]

    def on_epoch_end(self, epoch, logs=None):
        previous = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != previous:
            self.score_file.write_text(json.dumps({"monitor": self.monitor, "best": float(self.best),
                                                   "epoch": epoch + 1}) + "\n")


def restore_best(model, best_path: Path) -> bool:
    """Loads the best-epoch weights into `model`, if a best epoch was saved."""
    if not Path(str(best_path) + ".index").exists():
        return False
    model.load_weights(str(best_path)).expect_partial()
    return True


def run_callbacks(layout, monitor: str, mode: str, patience: int | None = None,
                  backup_every_steps: int | None = None):
    """The callbacks every fine-tune uses, writing into the staging run folder.

    Epoch log (survives a resume); NaN guard; best-epoch checkpoint on
    `monitor` (TensorFlow format: matched by object, loadable into a model
    mirrored across replicas); crash backup of model and optimizer every
    `backup_every_steps` steps and at epoch ends, so rerunning the same
    command resumes from the last backed-up step with the same total number
    of steps; TensorBoard logs; early stopping when `patience` is set.
    Callbacks that compute `monitor` must come before these in the list.

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
        BestCheckpoint(str(best_path), monitor=monitor, mode=mode),
        StepBackup(str(layout / RunLayout.BACKUP), save_freq=backup_every_steps or "epoch"),
        keras.callbacks.TensorBoard(str(layout / RunLayout.LOGS), write_graph=False),
    ]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    return callbacks, best_path
