"""One trainer for every task, in stages a caller can drive separately.

    prepare          resolve the backbone, read the tokenizer, learn the task's
                     labels and encode train/dev once (no TensorFlow work)
    build_and_compile  a fresh model and optimizer from a `TrainConfig`
                     (many times on one prepared set: search, distillation)
    fit              `model.fit` with the task's dev metric, best checkpoint,
                     crash backups and the epoch log
    finalize         restore the best epoch, merge LoRA, final scores,
                     reports, write and commit the run directory

`Trainer.run` is the one run lifecycle: it opens the staging folder (or
reopens it to resume the same command) and chains the stages into one run
directory. `train(task=...)` and `distill` go through it; pruning and each
search trial drive `fit` themselves. The distribution strategy is passed in
(`strategy=`); it is never created behind the caller's back except by
`Trainer.start`, from `TrainConfig.strategy`, when none is given.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Sequence

from kerastune_nlp import config as cfg
from kerastune_nlp.runs import owned_folder
from kerastune_nlp.runs import staging as run_staging
from kerastune_nlp.runs.layout import RunLayout
from kerastune_nlp.runs.writing import run_metrics, write_run
from kerastune_nlp.tasks import Task, get_task
from kerastune_nlp.tasks.base import EncodedSplit

logger = logging.getLogger("kerastune_nlp.training")


@dataclasses.dataclass
class PreparedData:
    """What `Trainer.prepare` read and encoded; reusable by every build."""

    task: Task
    data_config: cfg.DataConfig
    model_config: cfg.ModelConfig
    resolved: object
    backbone_config: object
    tokenizer: object
    splits: dict
    encoded: dict
    fingerprint: dict


class PretrainedModel:
    """How `build_and_compile` makes a model: the pretrained backbone, a fresh head, trained as is.

    Other stages subclass it: distillation builds a smaller backbone from a
    teacher's layers and trains it through a model that adds the teacher's
    loss term (`kerastune_nlp.distillation`).
    """

    def backbone(self, prepared: "PreparedData"):
        """The backbone layer; called inside the strategy and dtype scope."""
        from kerastune_nlp.models import backbones

        return backbones.load_pretrained_backbone(prepared.resolved)

    def initialise(self, model, backbone) -> None:
        """Sets weights of the built model beyond the backbone's (nothing: the head starts fresh)."""

    def training_model(self, model, prepared: "PreparedData", steps_per_epoch: int, replicas: int):
        """The Keras model `fit` trains; its layers must be `model`'s, so checkpoints load into either."""
        return model


@dataclasses.dataclass
class BuiltModel:
    """One compiled model of a prepared set, with its predictor and devices."""

    model: object
    backbone: object
    predictor: object
    setup: object
    train_config: cfg.TrainConfig
    extra_callbacks: list
    steps_per_epoch: int


@dataclasses.dataclass
class RunResult:
    """What a finished run produced.

    Args:
        run_dir: Path. The completed run directory.
        metrics: dict. What metrics.json holds.
        predictor: Predictor. The trained model with the best dev weights.
    """

    run_dir: Path
    metrics: dict
    predictor: object


def fingerprint(task: Task, splits: dict, data: cfg.DataConfig, model: cfg.ModelConfig,
                train: cfg.TrainConfig | None, resolved=None) -> dict:
    """Named parts that identify a run: hashes of the examples and every setting.

    File paths are left out (the examples' content is hashed instead), so a
    moved data file still resumes while an edited one does not.
    """
    parts = {"task": task.name}
    for name in ("train", "dev", "test"):
        parts[f"data.{name}"] = owned_folder.digest([task.example_record(e) for e in splits.get(name) or []])
    sections = {"data": data, "model": model, "task_config": task.config}
    if train is not None:
        sections["train"] = train
    for section, config in sections.items():
        for key, value in cfg.to_dict(config).items():
            if section == "data" and key in ("train", "dev", "test", "dataset"):
                continue
            parts[f"{section}.{key}"] = value
    if resolved is not None:
        weights = Path(resolved.weights_file)
        parts["backbone.weights"] = f"{weights.name}:{weights.stat().st_size if weights.exists() else 0}"
    return parts


class Trainer:
    """Fine-tunes a backbone for one task.

    Args:
        task: a `Task` instance, or a registered task name.
        data_config: `DataConfig`. Defaults to `DataConfig()`.
        model_config: `ModelConfig`. Defaults to `ModelConfig()`.
        strategy: a `tf.distribute.Strategy` or None (then `TrainConfig.strategy`
            is resolved at the first build). Defaults to None.

    Example:
    >>> trainer = Trainer("classification")
    >>> prepared = trainer.prepare(train, dev, test)
    >>> for lr in (1e-4, 3e-4):          # no re-tokenization between builds
    ...     built = trainer.build_and_compile(prepared, TrainConfig(learning_rate=lr))
    ...     trainer.fit(built, prepared, verbose=0)
    """

    def __init__(self, task, data_config: cfg.DataConfig | None = None,
                 model_config: cfg.ModelConfig | None = None, strategy=None):
        self.task = get_task(task)() if isinstance(task, str) else task
        self.data_config = data_config or cfg.DataConfig()
        self.model_config = model_config or cfg.ModelConfig()
        self.strategy = strategy

    # -- the lifecycle -------------------------------------------------------------

    def start(self, train_config: cfg.TrainConfig):
        """Resolves the distribution strategy once, if none was given; returns it.

        First of all TensorFlow work: multi-worker collectives must be set up
        before anything else touches TensorFlow.
        """
        if self.strategy is None:
            from kerastune_nlp.training import devices

            self.strategy = devices.resolve_strategy(train_config.strategy)
        return self.strategy

    def open_run(self, train_config: cfg.TrainConfig, output_dir, fingerprint: dict, overwrite: bool = False,
                 what: str = "run") -> tuple[RunLayout, Path]:
        """Strategy, this worker's directory, and its staging folder (reopened to resume the same command).

        Returns:
            `(staging layout, this worker's output directory)`.
        """
        from kerastune_nlp.training import devices

        output_dir = devices.worker_output_dir(Path(output_dir), self.start(train_config))
        layout, resuming = run_staging.open_staging(output_dir, fingerprint, overwrite)
        if resuming:
            point = run_staging.resume_point(layout)
            where = (f" at epoch {point['epoch']}, step {point['step']} of {point['steps_per_epoch']}"
                     if point else "")
            logger.warning("Resuming the interrupted %s in %s%s (same data and settings).", what, layout.root, where)
        return layout, output_dir

    def run(self, prepare, train_config: cfg.TrainConfig, output_dir, *, fingerprint: dict, overwrite: bool = False,
            maker: PretrainedModel | None = None, more_metrics=None, callbacks: Sequence = (),
            verbose: int | str = "auto", started: float | None = None, what: str = "run") -> RunResult:
        """The whole run: open the staging folder (or resume), prepare, build, fit, finalize and commit.

        Every stage that trains into a run directory goes through here
        (`train`, `distill`); they differ only in what they prepare, the
        model `maker` and the `more_metrics` they add.

        Args:
            prepare: callable `() -> PreparedData`, called once the strategy
                exists and the staging folder is open.
            train_config: `TrainConfig`.
            output_dir: the run directory to create.
            fingerprint: dict. Named parts that identify the run (its resume key).
            overwrite: bool. Replace an existing RUN directory. Defaults to False.
            maker: `PretrainedModel` or None. How the model is made.
            more_metrics: callable `(predictor, metrics, layout) -> dict` or None.
                Sections added to metrics.json.
            callbacks: more Keras callbacks for `fit`.
            verbose: Keras `fit` verbosity (see `fit`).
            started: float or None. `time.perf_counter()` at the call's start.
            what: str. The stage's name in the resume message. Defaults to "run".
        """
        layout, output_dir = self.open_run(train_config, output_dir, fingerprint, overwrite, what)
        prepared = prepare()
        prepared.fingerprint = fingerprint
        built = self.build_and_compile(prepared, train_config, maker)
        self.fit(built, prepared, layout, callbacks=callbacks, verbose=verbose)
        return self.finalize(built, prepared, layout, output_dir, started=started, more_metrics=more_metrics)

    # -- stage 1 -----------------------------------------------------------------

    def prepare(self, train: Sequence, dev: Sequence, test: Sequence | None = None) -> PreparedData:
        """Checks the splits, resolves the backbone and encodes train and dev once."""
        from kerastune_nlp.models import backbones

        splits = {"train": list(train), "dev": list(dev), "test": list(test or [])}
        self.task.check_splits(splits)
        resolved = backbones.resolve_backbone(self.model_config.backbone,
                                              allow_pickle=self.model_config.allow_pickle)
        backbone_config = backbones.load_config(resolved)
        backbones.check_max_length(self.data_config.max_length, backbone_config, self.model_config.backbone)
        tokenizer = backbones.load_tokenizer(resolved.directory, backbone_config.vocab_size)
        self.task.fit_state(splits["train"])
        self.task.fit_encoding(splits["train"], self.data_config.max_length)
        encoded = {name: self.task.encode(tokenizer, splits[name], self.data_config.max_length)
                   for name in ("train", "dev")}
        logger.info("train: %s", encoded["train"].stats)
        parts = fingerprint(self.task, splits, self.data_config, self.model_config, None, resolved)
        return PreparedData(self.task, self.data_config, self.model_config, resolved, backbone_config,
                            tokenizer, splits, encoded, parts)

    # -- stage 2 -----------------------------------------------------------------

    def build_and_compile(self, prepared: PreparedData, train_config: cfg.TrainConfig,
                          maker: PretrainedModel | None = None) -> BuiltModel:
        """A fresh model (pretrained backbone + new head, unless `maker` says otherwise) and optimizer, compiled.

        `BuiltModel.model` is what `fit` trains (`maker.training_model`);
        `BuiltModel.predictor.model` is the plain model it shares layers with.
        """
        from kerastune_nlp.models import backbones
        from kerastune_nlp.inference.predictor import Predictor
        from kerastune_nlp.training import fit_setup

        maker = maker or PretrainedModel()

        setup = fit_setup.start(train_config, self.strategy)
        self.strategy = setup.strategy
        config = prepared.backbone_config
        dropout = self.model_config.dropout
        if dropout is None:
            dropout = backbones.hidden_dropout(config)
        with fit_setup.build_scope(setup):
            backbone = maker.backbone(prepared)
            model = prepared.task.build_model(backbone, prepared.tokenizer.model_input_names, dropout=dropout,
                                              initializer_range=getattr(config, "initializer_range", 0.02),
                                              seed=train_config.seed)
            maker.initialise(model, backbone)
        predictor = Predictor(prepared.task, model, prepared.tokenizer, config, prepared.data_config.max_length,
                              batch_size=max(32, train_config.batch_size))
        train = prepared.encoded["train"]
        steps = math.ceil(len(train.rows) / train_config.batch_size)
        with fit_setup.build_scope(setup):
            # Metrics hold variables: they must be created under the model's strategy.
            loss, metrics = prepared.task.loss_and_metrics(train, steps, setup.replicas)
            trained = maker.training_model(model, prepared, steps, setup.replicas)
            extra = fit_setup.compile_for_training(setup, trained, backbone, config, micro_steps_per_epoch=steps,
                                                   loss=loss, metrics=metrics)
        return BuiltModel(trained, backbone, predictor, setup, train_config, extra, steps)

    # -- stage 3 -----------------------------------------------------------------

    def fit(self, built: BuiltModel, prepared: PreparedData, layout: RunLayout | None = None,
            callbacks: Sequence = (), verbose: int | str = "auto", initial_epoch: int = 0) -> dict:
        """Trains; with a staging `layout`, also checkpoints, backs up and logs each epoch.

        `initial_epoch` continues a model whose earlier epochs were trained
        elsewhere (a Hyperband trial promoted from its parent's weights).

        `verbose`: Keras `fit` verbosity (0, 1 progress bar, 2 a line per
        epoch); "auto" (the default) is a progress bar on a terminal and a
        line per epoch when stdout is a file or a pipe (`noise.fit_verbosity`).

        Returns:
            The Keras history of this call (`{key: [per-epoch values]}`).
        """
        from kerastune_nlp import noise
        from kerastune_nlp.data.batching import make_train_dataset, train_steps
        from kerastune_nlp.training.callbacks import StopOnNonFiniteLoss, run_callbacks, validation, with_epoch_costs

        config, task, predictor = built.train_config, prepared.task, built.predictor
        train: EncodedSplit = prepared.encoded["train"]
        # A resumed run continues where Keras's crash backup stopped, on the batches it would have seen.
        start_epoch, start_step = _resume_position(layout, initial_epoch)
        dataset = make_train_dataset(
            train.rows, predictor.input_names, predictor.pad_id, config.batch_size, config.seed,
            dense_labels=train.targets, pad_to_multiple_of=built.setup.pad_multiple(),
            fixed_length=prepared.data_config.max_length if prepared.data_config.padding == "max_length" else None,
            epochs=config.epochs, start_epoch=start_epoch, start_step=start_step,
        )
        dev_callbacks, validation_data = validation(task, predictor, prepared.splits["dev"], prepared.encoded["dev"])
        built.dev_callbacks = dev_callbacks
        if layout is not None:
            standard, built.best_path = run_callbacks(layout, task.monitor, task.mode,
                                                      config.early_stopping_patience,
                                                      backup_every_steps=config.checkpoint_every_steps,
                                                      backup_every_seconds=config.checkpoint_every_seconds,
                                                      keep_optimizer_state=config.keep_optimizer_state)
            # Last of ours, so it times every epoch-end callback before it.
            ours = with_epoch_costs(layout, [*built.extra_callbacks, *dev_callbacks, *standard])
        else:
            standard, built.best_path = [StopOnNonFiniteLoss()], None
            ours = [*built.extra_callbacks, *dev_callbacks, *standard]
        started = time.perf_counter()
        history = built.model.fit(
            dataset, validation_data=validation_data, epochs=config.epochs, initial_epoch=initial_epoch,
            steps_per_epoch=train_steps(len(train.rows), config.batch_size), verbose=noise.fit_verbosity(verbose),
            callbacks=[*ours, *callbacks],
            **task.fit_options(train),
        )
        built.fit_seconds = getattr(built, "fit_seconds", 0.0) + time.perf_counter() - started
        return {key: [float(v) for v in values] for key, values in history.history.items()}

    # -- stage 4 -----------------------------------------------------------------

    def finalize(self, built: BuiltModel, prepared: PreparedData, layout: RunLayout, output_dir,
                 started: float | None = None, more_metrics=None) -> RunResult:
        """Best weights, plain model, final scores, reports; writes and commits the run directory.

        `more_metrics(predictor, metrics, layout) -> dict`, if given, adds
        sections to metrics.json (a stage's own report) before the run is committed.
        """
        from kerastune_nlp.runs.manifest import Manifest
        from kerastune_nlp.training import fit_setup
        from kerastune_nlp.training.callbacks import epoch_costs_path, read_epoch_log, summarize_epoch_costs

        task, predictor, splits = prepared.task, built.predictor, prepared.splits
        summary = fit_setup.finish(built.setup, built.model, getattr(built, "best_path", None), predictor)
        task.after_fit(predictor, splits["dev"])
        dev_scores = best_epoch_dev_scores(built, task) or predictor.evaluate(splits["dev"])
        test_scores = predictor.evaluate(splits["test"]) if splits["test"] else None
        predictor.save_model_files(layout.root)
        epochs = read_epoch_log(layout / RunLayout.EPOCH_LOG)
        history = {key: [e[key] for e in epochs if key in e] for key in dict.fromkeys(k for e in epochs for k in e)
                   if key != "epoch"}
        metrics = run_metrics(
            task, splits, prepared.encoded["train"], {"dev": dev_scores, "test": test_scores},
            dev_per_epoch=[{"epoch": e["epoch"], **{k: v for k, v in e.items() if k.startswith("val_")}}
                           for e in epochs],
            training=summary, train_seconds=getattr(built, "fit_seconds", 0.0), started=started,
            # Seconds of each epoch's end (dev scoring, decoding, best checkpoint,
            # backups) and bytes each epoch wrote; read before `prune` drops the file.
            epoch_end=summarize_epoch_costs(read_epoch_log(epoch_costs_path(layout))),
        )
        if more_metrics is not None:
            metrics.update(more_metrics(predictor, metrics, layout))
        manifest = Manifest(
            task=task.name, data=prepared.data_config, model=self.model_config, train=built.train_config,
            task_config=task.config, task_state=task.state,
            backbone_directory=str(prepared.resolved.directory) if prepared.resolved else "",
            fingerprint=prepared.fingerprint, output=str(output_dir),
        )
        write_run(layout, output_dir, predictor, splits, metrics, history, manifest,
                  keep_optimizer_state=built.train_config.keep_optimizer_state)
        return RunResult(Path(output_dir), metrics, predictor)


def best_epoch_dev_scores(built: BuiltModel, task: Task) -> dict | None:
    """The restored best epoch's dev scores as scored at that epoch's end, if nothing since can change them.

    Saves scoring dev a second time (4 s of a WNUT-17 run). None, so the
    caller rescores, when the task changes its outputs after fitting (a
    chosen threshold), LoRA adapters were merged (rounding), or the best
    epoch was scored before a resume.
    """
    best_path = getattr(built, "best_path", None)
    if best_path is None or type(task).after_fit is not Task.after_fit or built.train_config.peft != "none":
        return None
    score_file = Path(str(best_path)).with_suffix(".json")
    if not score_file.is_file() or not Path(str(best_path) + ".index").exists():
        return None
    epoch = json.loads(score_file.read_text()).get("epoch")
    for callback in getattr(built, "dev_callbacks", []):
        scores = getattr(callback, "scores_by_epoch", {}).get(epoch)
        if scores is not None:
            return scores
    return None


def gather(task: Task, train, dev, test, data_config: cfg.DataConfig, model_config: cfg.ModelConfig,
           train_config: cfg.TrainConfig) -> tuple[dict, dict]:
    """The opening of a run or a search: its splits and its fingerprint, before TensorFlow starts.

    The splits are the given example lists, or those `data_config` names
    (files, hub, bundled), checked; the fingerprint names the run (see `fingerprint`).
    """
    from kerastune_nlp.models import backbones

    if train is None:
        splits, _ = task.load_splits(data_config, train_config.seed)
    else:
        splits = {"train": list(train), "dev": list(dev or []), "test": list(test or [])}
    task.check_splits(splits)
    resolved = backbones.resolve_backbone(model_config.backbone, allow_pickle=model_config.allow_pickle)
    return splits, fingerprint(task, splits, data_config, model_config, train_config, resolved)


def train(task="ner", train: Sequence | None = None, dev: Sequence | None = None, test: Sequence | None = None,
          *, output_dir, data_config: cfg.DataConfig | None = None, model_config: cfg.ModelConfig | None = None,
          train_config: cfg.TrainConfig | None = None, task_config=None, strategy=None,
          overwrite: bool = False, callbacks: Sequence = (), verbose: int | str = "auto") -> RunResult:
    """Fine-tunes a backbone for `task` and writes a run directory: the main entry point.

    Without `train`, the splits are read as `data_config` says (its files, a
    hub data set, or the task's bundled data). Rerunning an interrupted call
    with the same data and settings resumes from its last crash backup.

    Args:
        task: str or Task. "ner", "classification", "multilabel", "regression"
            or any registered task. Defaults to "ner".
        train, dev, test: example lists (test optional), or None to read them.
        output_dir: the run directory to create.
        data_config, model_config, train_config: the shared settings.
        task_config: the task's own settings (e.g. `NERDataConfig`).
        strategy: a `tf.distribute.Strategy`, or None to resolve
            `train_config.strategy`.
        overwrite: bool. Replace an existing RUN directory (never anything
            else). Defaults to False.
        callbacks: more Keras callbacks, run after the built-in ones.
        verbose: int or "auto". Keras `fit` verbosity: 0 silent, 1 a progress
            bar, 2 a line per epoch. Defaults to "auto": a progress bar on a
            terminal, a line per epoch when stdout is a file or a pipe (a
            `\\r` progress bar there is one very long line).

    Example:
    >>> import kerastune_nlp as kt
    >>> result = kt.train(task="classification", output_dir="saved_models/trec")
    >>> result.metrics["test"]["accuracy"]
    """
    started = time.perf_counter()
    task_object = task if isinstance(task, Task) else get_task(task)(task_config)
    data_config = data_config or cfg.DataConfig()
    model_config = model_config or cfg.ModelConfig()
    train_config = train_config or task_object.default_train_config()
    splits, parts = gather(task_object, train, dev, test, data_config, model_config, train_config)
    output_dir = Path(output_dir)
    run_staging.check_output(output_dir, overwrite)
    # A leftover staging folder of another command is refused before TensorFlow starts.
    run_staging.check_resumable(output_dir, parts, overwrite)

    trainer = Trainer(task_object, data_config, model_config, strategy)
    return trainer.run(lambda: trainer.prepare(splits["train"], splits["dev"], splits.get("test")), train_config,
                       output_dir, fingerprint=parts, overwrite=overwrite, callbacks=callbacks, verbose=verbose,
                       started=started)


def _resume_position(layout: RunLayout | None, initial_epoch: int) -> tuple[int, int]:
    """`(epoch, batches of it already trained)` where fitting starts (0-based epoch).

    From the crash backup's progress (written with each Keras backup), else
    `initial_epoch` and 0.
    """
    point = run_staging.resume_point(layout) if layout is not None else None
    if not point:
        return initial_epoch, 0
    return max(initial_epoch, int(point["epoch"]) - 1), int(point["step"])
