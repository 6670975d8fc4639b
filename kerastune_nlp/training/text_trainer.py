"""Fine-tuning for sequence-level tasks, into a run directory with reports."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from kerastune_nlp import config as cfg
from kerastune_nlp._tf import keras
from kerastune_nlp.data.batching import make_eval_dataset, make_train_dataset
from kerastune_nlp.data.text_readers import TASKS, TextExample, check_labels, check_trainable, label_set
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.evaluation import classification_metrics as cm
from kerastune_nlp.evaluation import reports
from kerastune_nlp.models import backbones
from kerastune_nlp.models.sequence_classifier import build_sequence_classifier
from kerastune_nlp.models.text_classifier import TextClassifier
from kerastune_nlp.training import devices, fit_setup, run_directory
from kerastune_nlp.training.callbacks import run_callbacks

logger = logging.getLogger("kerastune_nlp.training")

# What picks the best epoch, per task.
MONITOR = {"classification": ("val_accuracy", "max"), "multilabel": ("val_micro_f1", "max"),
           "regression": ("val_loss", "min")}


class MultiLabelF1Callback(keras.callbacks.Callback):
    """Logs `val_micro_f1` (threshold 0.5) on the dev set at each epoch end."""

    def __init__(self, classifier: TextClassifier, examples):
        super().__init__()
        self.classifier, self.examples = classifier, examples

    def on_epoch_end(self, epoch, logs=None):
        scores, _ = self.classifier.evaluate(self.examples)
        if logs is not None:
            logs["val_micro_f1"] = scores["micro"]["f1"]


@dataclasses.dataclass
class TextRunResult:
    run_dir: Path
    metrics: dict
    classifier: TextClassifier


def train_text_classifier(
    train: Sequence[TextExample],
    dev: Sequence[TextExample],
    test: Sequence[TextExample] | None = None,
    *,
    task: str = "classification",
    output_dir,
    model_config: cfg.ModelConfig = cfg.ModelConfig(),
    data_config: cfg.DataConfig = cfg.DataConfig(),
    train_config: cfg.TrainConfig = cfg.TrainConfig(),
    class_weights: bool = False,
    regression_loss: str = "mse",
    overwrite: bool = False,
    verbose: int = 1,
) -> TextRunResult:
    """Fine-tunes a backbone for classification, multi-label or regression.

    Writes into the run directory: weights, tokenizer, settings, metrics.json
    (dev and test), confusion_matrix.png (classification), curve_*.png
    (train vs validation per epoch) and worst_predictions.jsonl.

    Args:
        train, dev, test: `TextExample`s (test optional).
        task: "classification" (also binary sentiment), "multilabel" or
            "regression".
        output_dir: the run directory to create.
        class_weights: bool. Weight classes by inverse frequency (single-label
            classification). Defaults to False.
        regression_loss: "mse" or "mae". Defaults to "mse".
        overwrite: bool. Replace an existing run directory. Defaults to False.

    Example:
    >>> result = train_text_classifier(train, dev, test, task="classification",
    ...                                output_dir="saved_models/trec")
    """
    started = time.perf_counter()
    if task not in TASKS:
        raise ConfigError(f"Expected `task` in {list(TASKS)}. Received: `task`={task!r}.")
    if regression_loss not in ("mse", "mae"):
        raise ConfigError(f'Expected `regression_loss` "mse" or "mae". Received: {regression_loss!r}.')
    if class_weights and task != "classification":
        raise ConfigError(f"Class weights apply to single-label classification. Received: task={task!r}.")
    if not train or not dev:
        raise ConfigError("Expected non-empty `train` and `dev` example lists.")
    output_dir = Path(output_dir)
    run_directory.check_free(output_dir, overwrite)
    check_trainable(train, task)
    check_labels(train, dev, "dev", task)
    if test:
        check_labels(train, test, "test", task)

    resolved = backbones.resolve_backbone(model_config.backbone, allow_pickle=model_config.allow_pickle)
    backbone_config = backbones.load_config(resolved)
    backbones.check_max_length(data_config.max_length, backbone_config, model_config.backbone)
    tokenizer = backbones.load_tokenizer(resolved.directory)
    label_names = [] if task == "regression" else label_set(train, task)
    mean = std = None
    if task == "regression":
        values = np.asarray([e.label for e in train], np.float64)
        mean, std = float(values.mean()), float(values.std() or 1.0)

    # The strategy comes first: multi-worker collectives must be set up
    # before any other TensorFlow work.
    setup = fit_setup.start(train_config)
    output_dir = devices.worker_output_dir(output_dir, setup.strategy)
    staging = run_directory.staging_directory(output_dir, overwrite)
    dropout = model_config.dropout if model_config.dropout is not None else backbones.hidden_dropout(backbone_config)
    with fit_setup.build_scope(setup):
        backbone = backbones.load_pretrained_backbone(resolved)
        model = build_sequence_classifier(
            backbone, tokenizer.model_input_names,
            1 if task == "regression" else len(label_names), dropout=dropout,
            initializer_range=getattr(backbone_config, "initializer_range", 0.02), seed=train_config.seed,
        )
    classifier = TextClassifier(model, tokenizer, backbone_config, task, label_names, data_config.max_length,
                                target_mean=mean or 0.0, target_std=std or 1.0,
                                batch_size=max(32, train_config.batch_size))

    rows, truncated = classifier.encode([e.text for e in train], _pairs(train))
    targets = classifier.targets(train)
    dataset = make_train_dataset(rows, classifier.input_names, classifier.pad_id, train_config.batch_size,
                                 train_config.seed, dense_labels=targets, pad_to_multiple_of=setup.pad_multiple(),
                                 fixed_length=setup.fixed_length(data_config))
    dev_rows, _ = classifier.encode([e.text for e in dev], _pairs(dev))
    dev_dataset = _labelled_eval_dataset(classifier, dev_rows, classifier.targets(dev))
    loss, metrics = _loss_and_metrics(task, regression_loss)
    with fit_setup.build_scope(setup):
        extra = fit_setup.compile_for_training(
            setup, model, backbone, backbone_config,
            micro_steps_per_epoch=math.ceil(len(rows) / train_config.batch_size), loss=loss, metrics=metrics)

    monitor, mode = MONITOR[task]
    callbacks = extra + ([MultiLabelF1Callback(classifier, dev)] if task == "multilabel" else [])
    standard, best_path = run_callbacks(staging, monitor, mode, train_config.early_stopping_patience,
                                        backup_every_steps=train_config.checkpoint_every_steps)
    callbacks += standard
    fit_started = time.perf_counter()
    history = model.fit(dataset, validation_data=dev_dataset, epochs=train_config.epochs,
                        class_weight=_class_weights(targets, len(label_names)) if class_weights else None,
                        callbacks=callbacks, verbose=verbose)
    train_seconds = time.perf_counter() - fit_started
    training_summary = fit_setup.finish(setup, model, best_path, classifier)

    dev_scores, dev_outputs = classifier.evaluate(dev)
    if task == "multilabel":
        # The threshold is chosen on dev, then dev is re-scored with it.
        classifier.threshold = cm.choose_threshold(classifier.targets(dev), dev_outputs)
        dev_scores = cm.multilabel_scores(classifier.targets(dev), dev_outputs, label_names, classifier.threshold)
    test_scores, test_outputs = classifier.evaluate(test) if test else (None, None)
    classifier.save(staging)
    plain_history = {k: [float(v) for v in values] for k, values in history.history.items()}
    # Reports describe the test split when there is one, else dev.
    _write_reports(staging, classifier, task, plain_history, monitor, test or dev,
                   test_outputs if test else dev_outputs, test_scores or dev_scores)
    metrics_payload = {
        "task": task, "dev": dev_scores, "test": test_scores,
        "training": training_summary,
        "timing": {"train_seconds": round(train_seconds, 2),
                   "total_seconds": round(time.perf_counter() - started, 2)},
        "data": {"train": len(train), "dev": len(dev), "test": len(test) if test else 0,
                 "train_truncated": truncated, "train_real_tokens": int(sum(len(r.input_ids) for r in rows))},
    }
    run_directory.write_json(staging / "metrics.json", metrics_payload)
    run_directory.write_json(staging / "history.json", plain_history)
    run_directory.write_json(staging / "run_config.json", {
        "task": task, "backbone": model_config.backbone, "model": cfg.to_dict(model_config),
        "data": cfg.to_dict(data_config), "train": cfg.to_dict(train_config),
        "class_weights": class_weights, "regression_loss": regression_loss, "labels": label_names,
    })
    run_directory.commit(staging, output_dir)
    return TextRunResult(output_dir, metrics_payload, classifier)


def _pairs(examples):
    if any(e.text_pair is not None for e in examples):
        return [e.text_pair or "" for e in examples]
    return None


def _loss_and_metrics(task, regression_loss):
    if task == "classification":
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    if task == "multilabel":
        return keras.losses.BinaryCrossentropy(from_logits=True), [keras.metrics.BinaryAccuracy(threshold=0.0)]
    loss = keras.losses.MeanSquaredError() if regression_loss == "mse" else keras.losses.MeanAbsoluteError()
    return loss, [keras.metrics.MeanAbsoluteError(name="mae")]


def _class_weights(targets: np.ndarray, num_classes: int) -> dict:
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    weights = counts.sum() / (num_classes * np.maximum(counts, 1.0))
    return {i: float(w) for i, w in enumerate(weights)}


def _labelled_eval_dataset(classifier, rows, targets):
    dataset, order = make_eval_dataset(rows, classifier.input_names, classifier.pad_id, classifier.batch_size)
    ordered = targets[order]
    from kerastune_nlp._tf import tf

    label_batches = tf.data.Dataset.from_tensor_slices(ordered).batch(classifier.batch_size)
    return tf.data.Dataset.zip((dataset, label_batches))


def _write_reports(directory, classifier, task, history, monitor, examples, outputs, scores):
    reports.write_training_curves(directory, history, monitor)
    if task == "classification":
        reports.write_confusion_matrix(directory / "confusion_matrix.png", scores["confusion_matrix"],
                                       classifier.label_names)
    losses = classifier.per_example_loss(examples, outputs)
    rows = []
    for example, output in zip(examples, outputs):
        row = {"text": example.text, "gold": example.label, "source": example.source, "line": example.line}
        if example.text_pair is not None:
            row["text_pair"] = example.text_pair
        if task == "classification":
            row["predicted"] = classifier.label_names[int(np.argmax(output))]
            row["probability"] = float(np.max(output))
        elif task == "multilabel":
            row["predicted"] = [n for n, p in zip(classifier.label_names, output) if p >= classifier.threshold]
        else:
            row["predicted"] = float(output)
        rows.append(row)
    reports.write_worst_predictions(directory / "worst_predictions.jsonl", rows, losses)
