"""`prune_run`: magnitude pruning of a finished run into a new, normal run directory.

`prune_run(run, output, sparsity=0.9)` fine-tunes the run's model briefly
while tensorflow-model-optimization (tfmot) zeroes the smallest-magnitude
weights of every Dense kernel in the encoder blocks, then saves the plain
model in the layout `load_run` reads, with a `pruning` block in
metrics.json: the real sparsity of each kernel, the gzip size of the weights
before and after, and the task metric of the run and of its pruned copy.

Why it is built this way (tfmot 0.8.1, see DESIGN.md):

- The model is wrapped as `kernels.pruning_model` says: the encoder layer
  under tfmot's wrapper, the run model's own head layers, every variable
  shared with the plain model.
- The schedule is fitted to the run: tfmot's default frequency (100 steps)
  prunes nothing in a short fine-tune. Sparsity rises over the first two
  thirds of the steps in about ten mask updates; the last third fine-tunes
  under the final mask.
- Stripping: the masks are applied once more after training and the plain
  model, which holds no pruning wrapper, is saved. That is what
  `strip_pruning` gives, without its `clone_model` (a rebuilt copy would no
  longer share the run model's variables).
- Pruning is a model maker with its own metrics: it makes the training
  model and optimizer (one device, float32, AdamW without warmup), then
  `Trainer.fit` trains it and the trainer's `run_metrics` and `write_run`
  write the run directory. It keeps the last epoch, not the best one:
  sparsity reaches its target only late in the run.
- Only the encoder's Dense kernels are pruned. Embeddings (about half of
  MiniLM's 22.7M weights), biases, LayerNorms, the pooler and the head stay
  dense, so the file shrinks by less than the sparsity.
"""


from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Sequence

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.pruning.kernels import (encoder_kernels, gzip_size, import_tfmot, kernel_name, pruning_model,
                                           sparsity_of)
from kerastune_nlp.pruning.schedule import (LEARNING_RATE_SHARE, QAT_NOTE, TOLERANCE, check_settings,
                                            default_output, fit_schedule)
from kerastune_nlp.runs.splits import load_run_splits

logger = logging.getLogger("kerastune_nlp.pruning")


def prune_run(run_dir, output_dir=None, *, sparsity: float = 0.5, epochs: int = 1,
              learning_rate: float | None = None, schedule: str = "polynomial",
              train: Sequence | None = None, dev: Sequence | None = None, test: Sequence | None = None,
              data_config=None, overwrite: bool = False, verbose="auto"):
    """Prunes a run's encoder kernels to `sparsity` during a short fine-tune; writes a new run directory.

    The fine-tune runs on one device in float32 with AdamW (the run's batch
    size, seed and weight decay) and trains every weight, whatever the run's
    PEFT or freezing settings were. Quantization-aware training is not
    offered (see `QAT_NOTE`).

    Args:
        run_dir: str or Path. A finished run directory.
        output_dir: str, Path or None. The pruned run directory to create.
            Defaults to `<run>-pruned<percent>` beside the run.
        sparsity: float. Share of each encoder Dense kernel set to zero,
            in (0, 1). Defaults to 0.5.
        epochs: int. Passes over the training split. Defaults to 1.
        learning_rate: float or None. Peak AdamW rate (linear decay, no
            warmup). Defaults to half the run's rate.
        schedule: str. "polynomial" (gradual) or "constant". Defaults to
            "polynomial".
        train, dev, test: example lists, or None to re-read the run's data
            files (refused when they changed since training).
        data_config: `DataConfig` or None. Data settings to re-read the
            splits with (e.g. files that moved). Defaults to the run's own.
        overwrite: bool. Replace an existing RUN directory at `output_dir`.
            Defaults to False.
        verbose: int or "auto". Keras `fit` verbosity; "auto" is a progress bar on a terminal, a line
            per epoch otherwise (`noise.fit_verbosity`). Defaults to "auto".

    Returns:
        A `RunResult` whose `metrics["pruning"]` holds the per-kernel
        sparsity, gzip sizes and the metric before and after.

    Example:
    >>> result = prune_run("saved_models/wnut17", sparsity=0.9)
    >>> result.metrics["pruning"]["overall_sparsity"]
    0.9
    """
    started = time.perf_counter()
    check_settings(sparsity, epochs, learning_rate, schedule)
    from kerastune_nlp.runs import owned_folder, staging
    from kerastune_nlp.runs.layout import RunLayout
    from kerastune_nlp.runs.manifest import Manifest, read_manifest
    from kerastune_nlp.runs.writing import write_run
    from kerastune_nlp.tasks import get_task
    from kerastune_nlp.training.trainer import RunResult, fingerprint

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    output = Path(output_dir) if output_dir is not None else default_output(run_dir, sparsity)
    if output.resolve() == run_dir.resolve():
        raise ConfigError(f"Expected an output directory other than the run itself. Received: "
                          f"`output`={str(output)!r}. Pass another --output; the source run is kept.")
    staging.check_output(output, overwrite)
    task = get_task(manifest.task)(manifest.task_config, manifest.task_state)
    splits, data, matches = load_run_splits(task, manifest, run_dir, data_config, "Pruning",
                                         {"train": train, "dev": dev, "test": test})
    rate = learning_rate if learning_rate is not None else manifest.train.learning_rate * LEARNING_RATE_SHARE
    settings = {"prune.sparsity": float(sparsity), "prune.epochs": epochs, "prune.learning_rate": rate,
                "prune.schedule": schedule, "prune.source": owned_folder.digest(manifest.fingerprint),
                "prune.source_weights": (run_dir / RunLayout.WEIGHTS).stat().st_size}
    parts = {**fingerprint(task, splits, data, manifest.model, manifest.train), **settings}
    # A leftover <output>.partial of another command is refused before TensorFlow starts.
    staging.check_resumable(output, parts, overwrite)

    predictor, backbone = _load_model(task, manifest, run_dir)
    source_scores = _scores(predictor, splits)
    fitted = _fine_tune(task, predictor, backbone, manifest, splits, sparsity, epochs, rate, schedule, verbose)
    kernels = sparsity_of(encoder_kernels(backbone))
    short = {name: value for name, value in kernels.items() if value < sparsity - TOLERANCE}
    if short:
        from kerastune_nlp.errors import TrainingError

        raise TrainingError(
            f"Pruning missed the target sparsity {sparsity:.2f} by more than {TOLERANCE:.2f} on {len(short)} of "
            f"{len(kernels)} kernels (e.g. {next(iter(short))}: {next(iter(short.values())):.4f}) under the "
            f"schedule {fitted['plan'].to_dict()}. Pass more --epochs; nothing was written to {str(output)!r}."
        )
    task.after_fit(predictor, splits["dev"])
    scores = _scores(predictor, splits)
    # Pruning has no crash backup to resume from: the staging folder is ours
    # only while this call writes it, and goes away if writing fails.
    layout, _ = staging.open_staging(output, parts, overwrite)
    try:
        _clear(layout)
        predictor.save_model_files(layout.root)
        metrics = _metrics(task, predictor, backbone, run_dir, layout, splits, fitted, kernels, source_scores,
                           scores, matches, started)
        written = Manifest(task=task.name, data=data, model=manifest.model, train=manifest.train,
                           task_config=task.config, task_state=task.state,
                           backbone_directory=manifest.backbone_directory, fingerprint=parts, output=str(output))
        write_run(layout, output, predictor, splits, metrics, fitted["history"], written)
    except BaseException:
        if layout.root.exists():
            shutil.rmtree(layout.root)
        raise
    return RunResult(Path(output), metrics, predictor)


def _clear(layout) -> None:
    """Empties a staging folder that an interrupted run of this same command left (all but its fingerprint)."""
    from kerastune_nlp.runs.layout import RunLayout

    for path in layout.root.iterdir():
        if path.name != RunLayout.FINGERPRINT:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _load_model(task, manifest, run_dir: Path):
    """The run's model as `load_run` builds it (with the run's dropout), and its backbone layer."""
    from kerastune_nlp.inference.predictor import rebuild_model

    return rebuild_model(task, manifest, run_dir, batch_size=max(32, manifest.train.batch_size))


def _scores(predictor, splits) -> dict:
    return {"dev": predictor.evaluate(splits["dev"]),
            "test": predictor.evaluate(splits["test"]) if splits.get("test") else None}


def _fine_tune(task, predictor, backbone, manifest, splits, sparsity, epochs, rate, schedule, verbose) -> dict:
    """Fine-tunes under the pruning wrapper (`Trainer.fit`, no run folder); applies the final masks.

    Pruning makes its own model and optimizer (the run's model under tfmot's
    wrapper, AdamW without warmup, one device in float32); the fit itself is
    the trainer's, with `UpdatePruningStep` first: its epoch-end masking must
    precede the dev score.
    """
    from kerastune_nlp._tf import tf
    from kerastune_nlp.training import fit_setup
    from kerastune_nlp.training.optimizer import build_adamw
    from kerastune_nlp.training.trainer import BuiltModel, PreparedData, Trainer

    tfmot = import_tfmot()
    config = dataclasses.replace(manifest.train, epochs=epochs, learning_rate=rate, precision="float32",
                                 strategy="none", jit_compile=False, gradient_accumulation_steps=1)
    setup = fit_setup.start(config, tf.distribute.get_strategy())
    encoded = {name: task.encode(predictor.tokenizer, splits[name], predictor.max_length) for name in ("train", "dev")}
    train = encoded["train"]
    steps = math.ceil(len(train.rows) / config.batch_size)
    plan = fit_schedule(steps * epochs, sparsity, schedule)
    logger.info("Pruning to %.0f%% over %d steps: %s", 100 * sparsity, plan.total_steps, plan.to_dict())
    with fit_setup.build_scope(setup):
        model, wrapped = pruning_model(tfmot, predictor.model, backbone, predictor.input_names, plan)
        loss, metrics = task.loss_and_metrics(train, steps, 1)
        optimizer = build_adamw(rate, plan.total_steps, warmup_ratio=0.0, weight_decay=config.weight_decay)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    # The run's own data settings: its padding and max_length decide the batches.
    prepared = PreparedData(task, manifest.data, manifest.model, None, predictor.backbone_config, predictor.tokenizer,
                            splits, encoded, {})
    built = BuiltModel(model, backbone, predictor, setup, config, [tfmot.sparsity.keras.UpdatePruningStep()], steps)
    history = Trainer(task, manifest.data, manifest.model, setup.strategy).fit(built, prepared, verbose=verbose)
    for weight, mask, _ in wrapped.pruning_vars:  # strip: the masks, once more, on the shared variables
        weight.assign(weight * mask)
    predictor.retrace()
    return {"plan": plan, "history": history, "seconds": built.fit_seconds,
            "updates": int(optimizer.iterations.numpy()), "batch_size": config.batch_size, "learning_rate": rate,
            "epochs": epochs, "train": train}


def monitored_value(task, scores: dict | None):
    """The task's headline metric (entity F1, accuracy, micro F1, MAE) from a scores dict, or None."""
    return task.primary_metric(scores) if scores else None


def _metrics(task, predictor, backbone, run_dir, layout, splits, fitted, kernels, source_scores, scores,
             matches, started) -> dict:
    """metrics.json: the run directory's own sections (`run_metrics`) and the `pruning` block."""
    import numpy as np

    from kerastune_nlp.models.lora import count_parameters
    from kerastune_nlp.runs.layout import RunLayout
    from kerastune_nlp.runs.writing import run_metrics

    weights = {id(v): v for v in predictor.model.weights}.values()
    total = sum(v.shape.num_elements() for v in weights)
    zeros = sum(int(np.sum(v.numpy() == 0)) for v in weights)
    prunable = encoder_kernels(backbone)
    pruned_size = sum(v.shape.num_elements() for v in prunable)
    before, after = run_dir / RunLayout.WEIGHTS, layout.weights
    metric = {split: {"source": monitored_value(task, source_scores[split]),
                      "pruned": monitored_value(task, scores[split])} for split in ("dev", "test")}
    for values in metric.values():
        if values["source"] is not None and values["pruned"] is not None:
            values["change"] = round(values["pruned"] - values["source"], 6)
    plan, history = fitted["plan"], fitted["history"]
    gzip = {"before": gzip_size(before), "after": gzip_size(after)}
    metrics = run_metrics(
        task, splits, fitted["train"], scores,
        dev_per_epoch=[{"epoch": i + 1, **{k: v[i] for k, v in history.items() if k.startswith("val_")}}
                       for i in range(len(history.get("loss", [])))],
        training={"precision": "float32", "strategy": "none", "replicas": 1,
                  "global_batch_size": fitted["batch_size"], "optimizer_updates": fitted["updates"],
                  "learning_rate": fitted["learning_rate"], "epochs": fitted["epochs"],
                  "parameters": count_parameters(predictor.model)},
        train_seconds=fitted["seconds"], started=started,
    )
    metrics["pruning"] = {
        "source_run": str(run_dir),
        "target_sparsity": plan.target,
        "schedule": plan.to_dict(),
        "data_matches_run": matches,
        "kernels": {name: round(value, 6) for name, value in sorted(kernels.items())},
        "pruned_parameters": pruned_size,
        "overall_sparsity": round(sum(kernels[kernel_name(v)] * v.shape.num_elements()
                                      for v in prunable) / pruned_size, 6),
        "model_sparsity": round(zeros / total, 6),
        "model_parameters": total,
        "weights_file": RunLayout.WEIGHTS,
        "size_bytes": {"before": before.stat().st_size, "after": after.stat().st_size},
        "gzip_bytes": {**gzip, "ratio": round(gzip["after"] / gzip["before"], 4)},
        "metric": {"name": task.metric_name, **metric},
        "headline": {split: {"source": task.headline(source_scores[split]) if source_scores[split] else None,
                             "pruned": task.headline(scores[split]) if scores[split] else None}
                     for split in ("dev", "test")},
        "quantization_aware_training": QAT_NOTE,
    }
    return metrics
