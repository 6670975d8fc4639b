"""Keras callbacks for fine-tuning: dev entity F1 each epoch, and a NaN guard."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from kerastune_nlp._tf import keras
from kerastune_nlp.errors import TrainingError

logger = logging.getLogger("kerastune_nlp.training")


class EntityF1Callback(keras.callbacks.Callback):
    """Scores the dev set at each epoch end and logs `val_entity_f1`.

    Place it before EarlyStopping / ModelCheckpoint in the callback list so
    they (and KerasTuner) can monitor `val_entity_f1`.

    Args:
        tagger: an `NERTagger` sharing the model being trained.
        sentences: dev `Sentence`s with gold tags.
    """

    def __init__(self, tagger, sentences):
        super().__init__()
        self.tagger = tagger
        self.sentences = sentences
        self.history: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        scores = self.tagger.evaluate(self.sentences)
        overall = scores["overall"]
        if logs is not None:
            logs["val_entity_precision"] = overall["precision"]
            logs["val_entity_recall"] = overall["recall"]
            logs["val_entity_f1"] = overall["f1"]
        self.history.append({"epoch": epoch + 1, **overall})
        logger.info(
            "epoch %d: dev entity P/R/F1 %.4f/%.4f/%.4f (scored in %.0fs)",
            epoch + 1,
            overall["precision"],
            overall["recall"],
            overall["f1"],
            time.perf_counter() - started,
        )


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


# TensorFlow checkpoint format: matched by object, not by weight order, and
# loadable into a model whose variables are mirrored across replicas.
BEST_CHECKPOINT = "checkpoints/best.ckpt"


def restore_best(model, best_path: Path) -> bool:
    """Loads the best-epoch weights into `model`, if a best epoch was saved."""
    if not Path(str(best_path) + ".index").exists():
        return False
    model.load_weights(str(best_path)).expect_partial()
    return True


def run_callbacks(staging: Path, monitor: str, mode: str, patience: int | None = None,
                  backup_every_steps: int | None = None):
    """The callbacks every fine-tune uses, writing into the staging run folder.

    NaN guard; best-epoch checkpoint on `monitor`; crash backup of model and
    optimizer every `backup_every_steps` steps (else at epoch ends), so
    rerunning the same command resumes from the last backed-up step with the
    same total number of steps; TensorBoard logs; early stopping when
    `patience` is set. Callbacks that compute `monitor` must come before these
    in the list given to `fit`.

    Returns:
        `(callbacks, best_checkpoint_path)`.
    """
    best_path = Path(staging) / BEST_CHECKPOINT
    best_path.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        StopOnNonFiniteLoss(f"The best weights so far are in {str(best_path)!r}."),
        BestCheckpoint(str(best_path), monitor=monitor, mode=mode),
        StepBackup(str(Path(staging) / "backup"), save_freq=backup_every_steps or "epoch"),
        keras.callbacks.TensorBoard(str(Path(staging) / "logs"), write_graph=False),
    ]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    return callbacks, best_path
