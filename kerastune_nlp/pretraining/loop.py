"""The training loop of continued pretraining: one `fit` per epoch, crash backups, exact resume, scoring.

A backup (model, optimizer and the position `[epoch, step]`) is a
TensorFlow checkpoint in `<output>.partial/backup/`, written every
`checkpoint_every_steps` steps or `checkpoint_every_seconds` seconds and at
every epoch end. Each epoch's order and masks are a function of (seed,
epoch), so a resumed run skips the batches already trained and sees the
same batches, masked the same way, as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.errors import TrainingError
from kerastune_nlp.pretraining import masking
from kerastune_nlp.pretraining.output import BACKUP, HISTORY
from kerastune_nlp.runs.layout import write_json

logger = logging.getLogger("kerastune_nlp.pretraining")


class CrashBackup(keras.callbacks.Callback):
    """Saves `checkpoint` every `every_steps` steps or `every_seconds` seconds, and at the epoch's end.

    Also writes the epoch log (`history`) before the epoch-end backup, so
    the two never disagree after a kill.
    """

    def __init__(self, manager, progress, *, epoch: int, start_step: int, steps: int, every_steps=None,
                 every_seconds=None, history: list, history_path: Path, clock=time.monotonic):
        super().__init__()
        self.manager, self.progress = manager, progress
        self.epoch, self.start_step, self.steps = epoch, start_step, steps
        self.every_steps, self.every_seconds, self.clock = every_steps, every_seconds, clock
        self.history, self.history_path = history, history_path
        self.last = clock()

    def on_train_batch_end(self, batch, logs=None):
        step = self.start_step + batch + 1
        due = bool(self.every_steps) and step % self.every_steps == 0
        due = due or (bool(self.every_seconds) and self.clock() - self.last >= self.every_seconds)
        if due and step < self.steps:
            self._save(self.epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": self.epoch + 1, **{key: round(float(value), 6) for key, value in (logs or {}).items()}}
        entry["perplexity"] = _perplexity(entry.get("loss"))
        if self.start_step:
            entry["resumed_at_step"] = self.start_step  # the metrics cover the steps after the resume
        self.history.append(entry)
        write_json(self.history_path, self.history)
        self._save(self.epoch + 1, 0)

    def _save(self, epoch: int, step: int):
        self.progress.assign([epoch, step])
        self.manager.save()
        self.last = self.clock()


class NonFiniteLoss(keras.callbacks.Callback):
    """Stops with a clear error when the loss becomes NaN or infinite."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise TrainingError(
                f"The masked-LM loss became {loss} at epoch {self.epoch + 1}, batch {batch + 1}. Try a lower "
                "--learning-rate (e.g. a third of it) or a longer warmup. Rerun the same command to resume "
                "from the last backup."
            )


def _perplexity(loss) -> float | None:
    if loss is None:
        return None
    return round(math.exp(min(float(loss), 700.0)), 4)


# Up to this many held-out batches are scored eagerly: tracing the model
# into a graph costs more (about 3 s for MiniLM on 2 cores) than it saves.
EAGER_EVAL_BATCHES = 32


def evaluate(trainer, dataset, batches: int) -> dict:
    """Masked-token accuracy, loss and perplexity over a (deterministically masked) dataset of `batches` batches."""
    if batches <= EAGER_EVAL_BATCHES:
        step = lambda features: trainer._sums(features, training=False)  # noqa: E731
    else:
        step = getattr(trainer, "_graph_eval_step", None)
        if step is None:  # traced once per trainer: the scores before and after share it
            step = trainer._graph_eval_step = tf.function(lambda features: trainer._sums(features, training=False))
    loss_sum, correct, count = 0.0, 0.0, 0.0
    for features in dataset:
        sums = step(features)
        loss_sum, correct, count = (loss_sum + float(sums[0]), correct + float(sums[1]), count + float(sums[2]))
    loss = loss_sum / max(count, 1.0)
    return {"masked_accuracy": round(correct / max(count, 1.0), 6), "loss": round(loss, 6),
            "perplexity": _perplexity(loss), "masked_tokens": int(count)}


def train(trainer, optimizer, train_dataset_for, *, staging: Path, epochs: int, steps: int, config,
          callbacks=(), verbose: int | str = "auto") -> dict:
    """Trains `epochs` epochs of `steps` steps, resuming from the staging folder's backup if there is one.

    Args:
        trainer: a compiled `MaskedLMTrainer`.
        optimizer: its optimizer (built here, so a backup restores into it).
        train_dataset_for: callable `(epoch, skip_batches) -> tf.data.Dataset`.
        staging: Path. The staging folder (holds `backup/` and the epoch log).
        epochs, steps: int. Epochs, and steps per epoch.
        config: PretrainConfig. For the backup intervals.
        callbacks: extra Keras callbacks, called after the backup.
        verbose: int or "auto". Keras verbosity (see `noise.fit_verbosity`).

    Returns:
        `{"history": [...], "resumed_from": {"epoch", "step"} or None, "train_seconds": s,
        "steps_trained": n (in this process), "optimizer_steps": n (in all, a resumed run's included)}`.
    """
    from kerastune_nlp import noise

    verbose = noise.fit_verbosity(verbose)
    optimizer.build(trainer.trainable_variables)
    progress = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="progress")
    checkpoint = tf.train.Checkpoint(model=trainer, optimizer=optimizer, progress=progress)
    manager = tf.train.CheckpointManager(checkpoint, str(staging / BACKUP), max_to_keep=1)
    history_path = staging / HISTORY
    history, resumed_from = [], None
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        epoch, step = (int(v) for v in progress.numpy())
        resumed_from = {"epoch": epoch + 1, "step": step}
        history = json.loads(history_path.read_text(encoding="utf-8")) if history_path.is_file() else []
        logger.info("Resuming from the crash backup in %s: epoch %d, step %d of %d.", staging / BACKUP,
                    epoch + 1, step, steps)
    start_epoch, start_step = (int(v) for v in progress.numpy())
    started, trained = time.perf_counter(), 0
    for epoch in range(start_epoch, epochs):
        skip = start_step if epoch == start_epoch else 0
        if verbose:
            logger.info("Epoch %d/%d%s", epoch + 1, epochs, f" (resumed at step {skip})" if skip else "")
        backup = CrashBackup(manager, progress, epoch=epoch, start_step=skip, steps=steps,
                             every_steps=config.checkpoint_every_steps, every_seconds=config.checkpoint_every_seconds,
                             history=history, history_path=history_path)
        trainer.fit(train_dataset_for(epoch, skip), epochs=1, verbose=verbose,
                    callbacks=[NonFiniteLoss(epoch), backup, *callbacks])
        trained += steps - skip
    return {"history": history, "resumed_from": resumed_from, "train_seconds": time.perf_counter() - started,
            "steps_trained": trained, "optimizer_steps": int(optimizer.iterations.numpy())}


def dataset_factory(packed, config, *, mask_token_id: int, random_ids, stream: int):
    """`(epoch, skip_batches) -> dataset` for training (shuffled), or a fixed-mask dataset for scoring."""
    common = dict(batch_size=config.batch_size, seed=config.seed, probability=config.mlm_probability,
                  max_predictions=config.max_predictions, whole_word=config.whole_word_masking,
                  mask_token_id=mask_token_id, random_ids=random_ids)
    if stream == masking.EVAL_STREAM:
        return masking.masked_dataset(packed, stream=stream, **common)
    return lambda epoch, skip: masking.masked_dataset(packed, stream=stream, epoch=epoch, shuffle=True,
                                                      skip_batches=skip, **common)
