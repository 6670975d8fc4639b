"""Magnitude pruning of a finished run into a new, normal run directory.

`prune_run(run, output, sparsity=0.9)` fine-tunes the run's model briefly
while tensorflow-model-optimization (tfmot) zeroes the smallest-magnitude
weights of every Dense kernel in the encoder blocks, then saves the plain
model in the layout `load_run` reads, with a `pruning` block in
metrics.json: the real sparsity of each kernel, the gzip size of the weights
before and after, and the task metric of the run and of its pruned copy.

Why it is built this way (tfmot 0.8.1, see DESIGN.md):

- Our encoders list their block kernels themselves
  (`get_prunable_weights`), so `prune_low_magnitude` wraps the encoder
  layer as it is. The training model reuses the run model's own head
  layers, so the training model and the plain model share every variable.
- The schedule is fitted to the run: tfmot's default frequency (100 steps)
  prunes nothing in a short fine-tune. Sparsity rises over the first two
  thirds of the steps in about ten mask updates; the last third fine-tunes
  under the final mask.
- Stripping: the masks are applied once more after training and the plain
  model, which holds no pruning wrapper, is saved. That is what
  `strip_pruning` gives, without its `clone_model` (a rebuilt copy would no
  longer share the run model's variables).
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
import zlib
from pathlib import Path
from typing import Sequence

from kerastune_nlp.errors import ConfigError, MissingDependencyError
from kerastune_nlp.runs.splits import load_run_splits

logger = logging.getLogger("kerastune_nlp.export")

SCHEDULES = ("polynomial", "constant")
# A kernel may fall short of the target by at most this much (1 point).
TOLERANCE = 0.01
# Share of the steps over which sparsity rises, and mask updates in it.
PRUNING_SHARE = 2 / 3
MASK_UPDATES = 10
# Default fine-tuning rate: this share of the run's own peak rate.
LEARNING_RATE_SHARE = 0.5

QAT_NOTE = (
    "Quantization-aware training is not offered: tensorflow-model-optimization 0.8 cannot quantize the "
    "encoder (quantize_model annotates only the built-in layers of a model that is Sequential or "
    "Functional all the way down, and our encoder is one custom layer, neither Sequential nor "
    "Functional inside; tried on our BERT encoder, tfmot's QuantizeLayer fails on the int32 token ids). "
    "Use post-training quantization "
    "(TFLite dynamic-range int8, ONNX Runtime int8) from `kerastune-nlp export` instead."
)


@dataclasses.dataclass(frozen=True)
class PruningPlan:
    """When the masks change, fitted to the optimizer steps of one pruning run.

    Args:
        kind: str. "polynomial" (sparsity rises from 0 with a cubic
            decay, as in Zhu & Gupta 2017) or "constant" (the target from the first update).
        target: float. Final sparsity of every pruned kernel.
        total_steps: int. Optimizer steps of the whole fine-tune.
        begin_step, end_step: int. First and last step that updates masks.
        frequency: int. Steps between mask updates.
    """

    kind: str
    target: float
    total_steps: int
    begin_step: int
    end_step: int
    frequency: int

    def schedule(self, tfmot):
        """The tfmot `PruningSchedule`."""
        sparsity = tfmot.sparsity.keras
        if self.kind == "constant":
            return sparsity.ConstantSparsity(self.target, self.begin_step, self.end_step, self.frequency)
        return sparsity.PolynomialDecay(0.0, self.target, self.begin_step, self.end_step, frequency=self.frequency)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fit_schedule(total_steps: int, sparsity: float, kind: str = "polynomial") -> PruningPlan:
    """Fits begin/end step and frequency to a run of `total_steps` optimizer steps.

    The end step is a multiple of the frequency, so the last update lands on
    it and reaches the target exactly.

    Example:
    >>> fit_schedule(100, 0.9)
    PruningPlan(kind='polynomial', target=0.9, total_steps=100, begin_step=0, end_step=66, frequency=6)
    """
    check_settings(sparsity, 1, None, kind)
    if total_steps < 2:
        raise ConfigError(
            f"Expected at least 2 optimizer steps to prune gradually and then fine-tune. Received: "
            f"{total_steps} step(s) (training rows / batch size x epochs). Pass more --epochs."
        )
    end = max(1, math.floor(total_steps * PRUNING_SHARE))
    frequency = max(1, end // MASK_UPDATES)
    return PruningPlan(kind, float(sparsity), int(total_steps), 0, end - end % frequency, frequency)


def check_settings(sparsity: float, epochs: int, learning_rate: float | None, schedule: str) -> None:
    """Raises `ConfigError` for settings `prune_run` cannot use (pure Python: before TensorFlow)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 < sparsity < 1.0:
        raise ConfigError(
            f"Expected a target sparsity strictly between 0 and 1 (the share of each encoder kernel set to "
            f"zero). Received: `sparsity`={sparsity!r}. Pass e.g. 0.5, 0.7 or 0.9."
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"Expected `epochs` to be an int >= 1. Received: `epochs`={epochs!r}. Pass e.g. 1.")
    if learning_rate is not None and not 0.0 < learning_rate < 1.0:
        raise ConfigError(f"Expected `learning_rate` in (0, 1). Received: `learning_rate`={learning_rate!r}. "
                          "Leave it out to use half the run's own rate.")
    if schedule not in SCHEDULES:
        raise ConfigError(f"Unknown pruning schedule. Expected one of {list(SCHEDULES)}. "
                          f"Received: `schedule`={schedule!r}.")


def default_output(run_dir, sparsity: float) -> Path:
    """`<run>-pruned<percent>` beside the run, e.g. saved_models/wnut17-pruned90."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f"{run_dir.name}-pruned{round(100 * sparsity)}")


def gzip_size(path) -> int:
    """Bytes of `path` once gzip-compressed (level 6, streamed: no second copy in memory)."""
    compressor, size = zlib.compressobj(6, zlib.DEFLATED, 31), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            size += len(compressor.compress(chunk))
    return size + len(compressor.flush())


def encoder_kernels(backbone) -> list:
    """The Dense kernels of the backbone's encoder blocks: what pruning zeroes."""
    from kerastune_nlp.backbones import families

    return families.check_own_encoder(backbone).get_prunable_weights()  # exactly what tfmot masks


def kernel_name(variable) -> str:
    """A backbone variable's name without the model instance's scope: "bert/encoder/layer_._0/.../kernel"."""
    return variable.name.split(":")[0].split("/", 1)[-1]


def sparsity_of(variables) -> dict:
    """`kernel_name` -> share of exact zeros."""
    import numpy as np

    return {kernel_name(v): float(np.mean(v.numpy() == 0)) for v in variables}


def _import_tfmot():
    from kerastune_nlp._tf import tf  # noqa: F401  (tf_keras must be chosen before tfmot imports)

    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as error:
        raise MissingDependencyError(
            f"Pruning needs tensorflow-model-optimization ({error}). Install it with "
            "`pip install 'kerastune-nlp[export]'`."
        ) from error
    return tfmot


def pruning_model(tfmot, model, backbone, input_names, plan: PruningPlan):
    """A training model sharing `model`'s variables, with the backbone under a pruning wrapper.

    Returns `(training model, the tfmot wrapper)`; the wrapper's `pruning_vars`
    hold `(kernel, mask, threshold)` of every pruned kernel.
    """
    from kerastune_nlp._tf import keras
    from kerastune_nlp.backbones import families

    families.check_own_encoder(backbone)
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in input_names}
    hidden = backbone.output  # the last hidden state: what the run model's head reads
    # tfmot wraps any layer with `get_prunable_weights`, as our encoders have: no adapter layer.
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(backbone, pruning_schedule=plan.schedule(tfmot))
    head = keras.Model(hidden, model.output, name="head")  # the run model's own head layers
    return keras.Model(inputs, head(wrapped(inputs)), name="pruning"), wrapped


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
    from kerastune_nlp.runs.manifest import read_manifest
    from kerastune_nlp.tasks import get_task
    from kerastune_nlp.training.trainer import fingerprint

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
        return _write_run(task, manifest, data, layout, output, predictor, splits, metrics, fitted["history"],
                          parts)
    except BaseException:
        if layout.root.exists():
            shutil.rmtree(layout.root)
        raise


def _clear(layout) -> None:
    """Empties a staging folder that an interrupted run of this same command left (all but its fingerprint)."""
    from kerastune_nlp.runs.layout import RunLayout

    for path in layout.root.iterdir():
        if path.name != RunLayout.FINGERPRINT:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _load_model(task, manifest, run_dir: Path):
    """The run's model as `load_run` builds it (with the run's dropout), and its backbone layer."""
    from kerastune_nlp.runs.loading import rebuild_model

    return rebuild_model(task, manifest, run_dir, batch_size=max(32, manifest.train.batch_size))


def _scores(predictor, splits) -> dict:
    return {"dev": predictor.evaluate(splits["dev"]),
            "test": predictor.evaluate(splits["test"]) if splits.get("test") else None}


def _fine_tune(task, predictor, backbone, manifest, splits, sparsity, epochs, rate, schedule, verbose) -> dict:
    """Fine-tunes under the pruning wrapper; applies the final masks to the shared variables."""
    from kerastune_nlp import noise
    from kerastune_nlp._tf import tf
    from kerastune_nlp.data.batching import make_train_dataset
    from kerastune_nlp.training import fit_setup
    from kerastune_nlp.training.callbacks import StopOnNonFiniteLoss
    from kerastune_nlp.training.fit_setup import PAD_MULTIPLE
    from kerastune_nlp.training.optimizer import build_adamw

    tfmot = _import_tfmot()
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
    dataset = make_train_dataset(
        train.rows, predictor.input_names, predictor.pad_id, config.batch_size, config.seed,
        dense_labels=train.targets, pad_to_multiple_of=PAD_MULTIPLE,
        fixed_length=predictor.max_length if manifest.data.padding == "max_length" else None, epochs=epochs,
    )
    dev_callbacks, validation_data = task.validation(predictor, splits["dev"], encoded["dev"])
    fit_started = time.perf_counter()
    # UpdatePruningStep first: its epoch-end masking must precede the dev score.
    history = model.fit(dataset, validation_data=validation_data, epochs=epochs, steps_per_epoch=steps,
                        verbose=noise.fit_verbosity(verbose),
                        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), *dev_callbacks,
                                   StopOnNonFiniteLoss()], **task.fit_options(train))
    for weight, mask, _ in wrapped.pruning_vars:  # strip: the masks, once more, on the shared variables
        weight.assign(weight * mask)
    predictor.retrace()
    return {"plan": plan, "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "seconds": time.perf_counter() - fit_started, "updates": int(optimizer.iterations.numpy()),
            "batch_size": config.batch_size, "learning_rate": rate, "epochs": epochs, "train": train}


def monitored_value(task, scores: dict | None):
    """The task's headline metric (entity F1, accuracy, micro F1, MAE) from a scores dict, or None."""
    return task.primary_metric(scores) if scores else None


def _metrics(task, predictor, backbone, run_dir, layout, splits, fitted, kernels, source_scores, scores,
             matches, started) -> dict:
    import numpy as np

    from kerastune_nlp.models.lora import count_parameters
    from kerastune_nlp.runs.layout import RunLayout

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
    plan, train, history = fitted["plan"], fitted["train"], fitted["history"]
    return {
        "task": task.name,
        "dev": scores["dev"],
        "test": scores["test"],
        "dev_per_epoch": [{"epoch": i + 1, **{k: v[i] for k, v in history.items() if k.startswith("val_")}}
                          for i in range(len(history.get("loss", [])))],
        "training": {"precision": "float32", "strategy": "none", "replicas": 1,
                     "global_batch_size": fitted["batch_size"], "optimizer_updates": fitted["updates"],
                     "learning_rate": fitted["learning_rate"], "epochs": fitted["epochs"],
                     "parameters": count_parameters(predictor.model)},
        "timing": {"train_seconds": round(fitted["seconds"], 2),
                   "total_seconds": round(time.perf_counter() - started, 2)},
        "data": {"train": {"examples": len(splits["train"]), **train.stats}, "dev": len(splits["dev"]),
                 "test": len(splits["test"]), "train_real_tokens": train.real_tokens},
        "reports_describe": "test" if splits["test"] else "dev",
        "pruning": {
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
            "gzip_bytes": {"before": gzip_size(before), "after": gzip_size(after)},
            "metric": {"name": task.metric_name, **metric},
            "headline": {split: {"source": task.headline(source_scores[split]) if source_scores[split] else None,
                                 "pruned": task.headline(scores[split]) if scores[split] else None}
                         for split in ("dev", "test")},
            "quantization_aware_training": QAT_NOTE,
        },
    }


def _write_run(task, manifest, data, layout, output, predictor, splits, metrics, history, parts):
    from kerastune_nlp.evaluation import reports
    from kerastune_nlp.runs import staging
    from kerastune_nlp.runs.layout import RunLayout, write_json
    from kerastune_nlp.runs.manifest import Manifest, write_manifest
    from kerastune_nlp.training.trainer import RunResult

    gzip = metrics["pruning"]["gzip_bytes"]
    gzip["ratio"] = round(gzip["after"] / gzip["before"], 4)
    report_split = metrics["reports_describe"]
    task.write_reports(layout.root, predictor, splits[report_split], metrics[report_split])
    reports.write_training_curves(layout.root, history, task.monitor)
    write_json(layout / RunLayout.METRICS, metrics)
    write_json(layout / RunLayout.HISTORY, history)
    staging.prune(layout)
    write_manifest(layout, Manifest(
        task=task.name, data=data, model=manifest.model, train=manifest.train, task_config=task.config,
        task_state=task.state, backbone_directory=manifest.backbone_directory, fingerprint=parts,
        output=str(output),
    ))
    staging.commit(layout, output)
    return RunResult(Path(output), metrics, predictor)
