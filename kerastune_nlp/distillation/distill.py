"""`distill(teacher_run, output_dir, ...)`: a fine-tuned teacher into a smaller student run directory.

The staged trainer does the work: the splits are read and encoded once with
the teacher's tokenizer and label set, `StudentMaker` builds the frozen
teacher and the student, `Trainer.fit` trains with the usual dev metric,
best checkpoint and crash backups (a killed run resumes when rerun with the
same command), and `Trainer.finalize` writes a normal run directory
(`load_run`, `evaluate`, `predict`, `export`, `serve` read it) whose
metrics.json has a `distillation` block: teacher and student parameters,
weights size, CPU latency at batch 1 and the task metric side by side.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Sequence

from kerastune_nlp import config as cfg
from kerastune_nlp.distillation.students import INITS
from kerastune_nlp.errors import ConfigError, LabelError

logger = logging.getLogger("kerastune_nlp.distillation")

# TrainConfig fields that describe how the TEACHER's backbone was adapted
# (LoRA, freezing, per-layer rates): they do not carry over to a student of
# another depth, which trains every weight unless told otherwise.
_TEACHER_ONLY = ("peft", "freeze_embeddings", "freeze_layers", "unfreeze_layers_per_epoch", "layerwise_lr_decay")


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """What student to make and how much it listens to the teacher.

    Args:
        student_layers: int or None. Keep this many of the teacher's encoder
            blocks, evenly spread, the top one kept. With no student named
            at all: half the teacher's blocks.
        keep_layers: tuple of int or None. Keep exactly these blocks (0-based).
        student_backbone: str or None. A smaller pretrained backbone (short
            name, folder or hub id) with the teacher's tokenizer.
        student_init: str. For a layer subset: "teacher" (the fine-tuned
            teacher's embeddings, blocks and head) or "pretrained" (the
            teacher's pretrained backbone, new head). Defaults to "teacher".
        temperature: float. Softens both models' outputs in the teacher's
            term (> 0; 1 is no softening). Defaults to 2.0.
        alpha: float. Weight of the hard-label loss in [0, 1]; the teacher's
            term gets 1 - alpha. 1 trains without the teacher. Defaults to 0.5.
    """

    student_layers: int | None = None
    keep_layers: tuple | None = None
    student_backbone: str | None = None
    student_init: str = "teacher"
    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self):
        if self.keep_layers is not None:
            object.__setattr__(self, "keep_layers", tuple(int(i) for i in self.keep_layers))
        if self.student_init not in INITS:
            raise ConfigError(f"Expected `student_init` in {INITS}. Received: {self.student_init!r}.")
        if not self.temperature > 0:
            raise ConfigError(f"Expected `temperature` > 0 (1 leaves the outputs as they are; 2-4 are usual). "
                              f"Received: `temperature`={self.temperature}.")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"Expected `alpha` (the hard-label loss's weight) in [0, 1]. Received: "
                              f"`alpha`={self.alpha}.")
        named = [name for name in ("student_layers", "keep_layers", "student_backbone") if getattr(self, name)]
        if len(named) > 1:
            raise ConfigError(f"Name the student one way: `student_layers`, `keep_layers` or `student_backbone`. "
                              f"Received: {', '.join(f'`{n}`={getattr(self, n)!r}' for n in named)}.")
        if self.student_layers is not None and self.student_layers < 1:
            raise ConfigError(f"Expected `student_layers` >= 1. Received: {self.student_layers}.")


def student_train_config(teacher: cfg.TrainConfig, overrides: dict | None = None) -> cfg.TrainConfig:
    """The teacher's recipe without its backbone adaptation, plus `overrides` (TrainConfig fields)."""
    defaults = cfg.TrainConfig()
    base = dataclasses.replace(teacher, **{name: getattr(defaults, name) for name in _TEACHER_ONLY})
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cfg.TrainConfig)})
    if unknown:
        raise ConfigError(f"Unknown training settings {unknown}. Expected TrainConfig fields (epochs, "
                          "learning_rate, batch_size, ...).")
    return dataclasses.replace(base, **overrides)


def distill(teacher_run, output_dir, *, config: DistillConfig | None = None,
            train_overrides: dict | None = None, train: Sequence | None = None, dev: Sequence | None = None,
            test: Sequence | None = None, data_config: cfg.DataConfig | None = None, strategy=None,
            overwrite: bool = False, callbacks: Sequence = (), verbose: int | str = "auto"):
    """Distils a fine-tuned run into a smaller student; writes the student's run directory.

    Args:
        teacher_run: str or Path. A finished run directory (any task).
        output_dir: str or Path. The student run directory to create.
        config: `DistillConfig` or None. Which student, temperature and
            alpha. Defaults to `DistillConfig()` (half the teacher's blocks).
        train_overrides: dict or None. TrainConfig fields that differ from
            the teacher's recipe (e.g. `{"epochs": 5}`).
        train, dev, test: example lists, or None to re-read the teacher's
            data (or `data_config`'s files).
        data_config: `DataConfig` or None. Other data files to distil on
            (same label set); max_length stays the teacher's.
        strategy: a `tf.distribute.Strategy` or None (TrainConfig.strategy).
        overwrite: bool. Replace an existing RUN directory. Defaults to False.
        callbacks: more Keras callbacks.
        verbose: int or "auto". Keras `fit` verbosity; "auto" (the default) is a
            progress bar on a terminal, a line per epoch otherwise.

    Returns:
        A `RunResult`; `metrics["distillation"]` compares teacher and student.

    Example:
    >>> from kerastune_nlp.distillation import DistillConfig, distill
    >>> result = distill("saved_models/wnut17", "saved_models/wnut17-3l", config=DistillConfig(student_layers=3))
    >>> result.metrics["distillation"]["student_vs_teacher"]["speedup_predict"]
    """
    from kerastune_nlp.runs import staging
    from kerastune_nlp.runs.manifest import read_manifest
    from kerastune_nlp.runs.splits import load_run_splits
    from kerastune_nlp.tasks import get_task

    started = time.perf_counter()
    config = config or DistillConfig()
    teacher_run, output_dir = Path(teacher_run), Path(output_dir)
    manifest = read_manifest(teacher_run)
    task = get_task(manifest.task)(manifest.task_config, manifest.task_state)
    plan, tokenizer = _plan(manifest, teacher_run, config)  # before the data: a bad student is refused at once
    if data_config is not None and data_config.max_length != manifest.data.max_length:
        data_config = dataclasses.replace(data_config, max_length=manifest.data.max_length)
    try:
        splits, data, _ = load_run_splits(task, manifest, teacher_run, data_config, "Distilling",
                                          {"train": train, "dev": dev, "test": test})
    except LabelError as error:
        raise LabelError(f"The teacher run {str(teacher_run)!r} knows only its own labels "
                         f"{list(task.state.get('labels') or [])}, and the student learns from its outputs. "
                         f"{error} Or distil on data with the teacher's label set.") from None
    if plan.kind == "backbone":
        from kerastune_nlp.distillation.students import check_same_tokens
        from kerastune_nlp.models import backbones

        check_same_tokens(tokenizer, backbones.load_tokenizer(plan.resolved.directory), config.student_backbone,
                          task.raw_inputs_of(splits["train"][:32])["text"])
    staging.check_output(output_dir, overwrite)
    train_config = student_train_config(manifest.train, train_overrides)
    model_config = dataclasses.replace(manifest.model, backbone=config.student_backbone or manifest.model.backbone)
    parts = _fingerprint(task, splits, data, model_config, train_config, config, plan, teacher_run)
    staging.check_resumable(output_dir, parts, overwrite)
    return _run(task, manifest, teacher_run, output_dir, splits, data, model_config, train_config, config, plan,
                tokenizer, parts, strategy, overwrite, callbacks, verbose, started)


def _plan(manifest, teacher_run: Path, config: DistillConfig):
    from kerastune_nlp.backbones.config import parse_config
    from kerastune_nlp.distillation.students import plan_student
    from kerastune_nlp.models import backbones
    from kerastune_nlp.runs.layout import RunLayout

    layout = RunLayout(teacher_run)
    tokenizer = backbones.load_tokenizer(layout / RunLayout.TOKENIZER)
    teacher_config = parse_config(layout / RunLayout.BACKBONE_CONFIG / "config.json")
    plan = plan_student(teacher_config, tokenizer, student_layers=config.student_layers,
                        keep_layers=config.keep_layers, student_backbone=config.student_backbone,
                        init=config.student_init, teacher_backbone=manifest.model.backbone,
                        allow_pickle=manifest.model.allow_pickle)
    if plan.kind == "backbone":
        backbones.check_max_length(manifest.data.max_length, plan.config, config.student_backbone)
    return plan, tokenizer


def _fingerprint(task, splits, data, model_config, train_config, config, plan, teacher_run: Path) -> dict:
    from kerastune_nlp.distillation.students import weights_signature
    from kerastune_nlp.runs.layout import RunLayout
    from kerastune_nlp.training.trainer import fingerprint

    parts = fingerprint(task, splits, data, model_config, train_config, plan.resolved)
    parts.update({f"distill.{key}": value for key, value in dataclasses.asdict(config).items()})
    parts.update({f"student.{key}": value for key, value in plan.settings().items()})
    parts["teacher.weights"] = weights_signature(RunLayout(teacher_run).weights)
    return parts


def _run(task, manifest, teacher_run, output_dir, splits, data, model_config, train_config, config, plan,
         tokenizer, parts, strategy, overwrite, callbacks, verbose, started):
    from kerastune_nlp.distillation.model import StudentMaker
    from kerastune_nlp.training.trainer import PreparedData, Trainer

    def prepare():
        logger.info("student: %s; temperature %s, alpha %s", plan.description, config.temperature, config.alpha)
        # Encoded with the teacher's tokenizer and label set (no fit_state: the
        # labels must stay in the teacher's order).
        encoded = {name: task.encode(tokenizer, splits[name], data.max_length) for name in ("train", "dev")}
        return PreparedData(task, data, model_config, plan.resolved, plan.config, tokenizer, splits, encoded, parts)

    maker = StudentMaker(plan, teacher_run, manifest, config.temperature, config.alpha)

    def report(student, metrics, layout):
        return {"distillation": _report(maker.teacher, student, teacher_run, layout, splits, metrics, config, plan)}

    return Trainer(task, data, model_config, strategy).run(
        prepare, train_config, output_dir, fingerprint=parts, overwrite=overwrite, maker=maker, more_metrics=report,
        callbacks=callbacks, verbose=verbose, started=started, what="distillation")


def _report(teacher, student, teacher_run, layout, splits, metrics, config, plan) -> dict:
    from kerastune_nlp.distillation import report
    from kerastune_nlp.runs.layout import RunLayout

    task = student.task
    timed = splits["test"] or splits["dev"]
    teacher_scores = {"dev": teacher.evaluate(splits["dev"]),
                      "test": teacher.evaluate(splits["test"]) if splits["test"] else None}
    sides = {
        "teacher": report.describe_model(teacher, RunLayout(teacher_run).weights, teacher_scores,
                                         report.batch1_latency(teacher, timed)),
        "student": report.describe_model(student, layout.weights, {"dev": metrics["dev"], "test": metrics["test"]},
                                         report.batch1_latency(student, timed)),
    }
    return {
        "teacher_run": str(teacher_run),
        "recipe": {"description": plan.description, **plan.settings(), "temperature": config.temperature,
                   "alpha": config.alpha},
        **sides,
        "student_vs_teacher": report.comparison(sides["teacher"], sides["student"], task.metric_name,
                                                task.metric_higher_is_better),
        "teacher_scores": teacher_scores,
    }
