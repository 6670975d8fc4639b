"""Fine-tuning a token classifier end to end, into a run directory."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Sequence

from kerastune_nlp import config as cfg
from kerastune_nlp._tf import keras
from kerastune_nlp.data.batching import make_train_dataset
from kerastune_nlp.data.conll import Sentence
from kerastune_nlp.data.labels import LabelMap
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.models import backbones
from kerastune_nlp.models.losses import MaskedAccuracy, MaskedSparseCategoricalCrossentropy
from kerastune_nlp.models.ner_tagger import NERTagger
from kerastune_nlp.models.token_classifier import build_token_classifier
from kerastune_nlp.training import devices, fit_setup, run_directory
from kerastune_nlp.training.callbacks import EntityF1Callback, run_callbacks

logger = logging.getLogger("kerastune_nlp.training")

@dataclasses.dataclass
class NERRunResult:
    """What `train_ner` produced.

    Args:
        run_dir: Path. The completed run directory.
        metrics: dict. What metrics.json holds (dev, test, timing, data).
        tagger: NERTagger. The trained tagger with the best dev weights.
    """

    run_dir: Path
    metrics: dict
    tagger: NERTagger


def train_ner(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    test: Sequence[Sentence] | None = None,
    *,
    output_dir,
    model_config: cfg.ModelConfig = cfg.ModelConfig(),
    data_config: cfg.DataConfig = cfg.DataConfig(),
    train_config: cfg.TrainConfig = cfg.TrainConfig(),
    overwrite: bool = False,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 1,
) -> NERRunResult:
    """Fine-tunes a pretrained backbone for NER and writes a run directory.

    The dev set picks the best epoch by entity F1 (`val_entity_f1`); those
    weights are restored before the final dev and test scores.

    Args:
        train: training sentences (IOB2 tags).
        dev: development sentences, scored every epoch.
        test: optional test sentences, scored once at the end.
        output_dir: path of the run directory to create.
        model_config: `ModelConfig`.
        data_config: `DataConfig`.
        train_config: `TrainConfig`.
        overwrite: bool. Replace an existing run directory. Defaults to False.
        extra_callbacks: more Keras callbacks, run after the built-in ones.
        verbose: int. Keras `fit` verbosity (0 silent, 1 progress bar, 2 a
            line per epoch). Defaults to 1.

    Example:
    >>> splits = {k: read_conll(p) for k, p in bundled_wnut17().items()}
    >>> result = train_ner(splits["train"], splits["dev"], splits["test"],
    ...                    output_dir="saved_models/wnut17")
    >>> result.metrics["test"]["overall"]["f1"]
    """
    started = time.perf_counter()
    for name, split in (("train", train), ("dev", dev)):
        if not split:
            raise ConfigError(f"Expected a non-empty `{name}` split. Received: `{name}` with 0 sentences.")
    output_dir = Path(output_dir)
    run_directory.check_free(output_dir, overwrite)

    label_map = LabelMap.from_sentences(train)
    label_map.check_covers(dev, "dev")
    if test:
        label_map.check_covers(test, "test")

    resolved = backbones.resolve_backbone(model_config.backbone, allow_pickle=model_config.allow_pickle)
    backbone_config = backbones.load_config(resolved)
    backbones.check_max_length(data_config.max_length, backbone_config, model_config.backbone)
    tokenizer = backbones.load_tokenizer(resolved.directory)

    # The strategy comes first: multi-worker collectives must be set up
    # before any other TensorFlow work.
    setup = fit_setup.start(train_config)
    # Every check has passed: only now does anything appear on disk.
    output_dir = devices.worker_output_dir(output_dir, setup.strategy)
    staging = run_directory.staging_directory(output_dir, overwrite)
    dropout = model_config.dropout
    if dropout is None:
        dropout = backbones.hidden_dropout(backbone_config)
    with fit_setup.build_scope(setup):
        backbone = backbones.load_pretrained_backbone(resolved)
        model = build_token_classifier(
            backbone,
            tokenizer.model_input_names,
            len(label_map),
            dropout=dropout,
            initializer_range=getattr(backbone_config, "initializer_range", 0.02),
            seed=train_config.seed,
        )
    tagger = NERTagger(
        model,
        tokenizer,
        label_map,
        backbone_config,
        max_length=data_config.max_length,
        window_stride=data_config.stride,
        label_all_subtokens=data_config.label_all_subtokens,
        batch_size=max(train_config.batch_size, 32),
    )

    train_windows, train_stats = tagger.encoder.encode(
        [s.tokens for s in train], [s.tags for s in train]
    )
    logger.info("train: %s", train_stats)
    dataset = make_train_dataset(
        train_windows, tagger.input_names, tagger.pad_id, train_config.batch_size, train_config.seed,
        pad_to_multiple_of=setup.pad_multiple(), fixed_length=setup.fixed_length(data_config),
    )
    steps_per_epoch = math.ceil(len(train_windows) / train_config.batch_size)
    labelled_tokens = sum(int((w.labels >= 0).sum()) for w in train_windows)
    with fit_setup.build_scope(setup):
        extra = fit_setup.compile_for_training(
            setup, model, backbone, backbone_config, micro_steps_per_epoch=steps_per_epoch,
            # Normalised by the mean labelled tokens of a micro-batch on one
            # replica, so per-replica losses sum to the global mean and
            # accumulated micro-batches average to the large batch.
            loss=MaskedSparseCategoricalCrossentropy(
                tokens_per_batch=labelled_tokens / steps_per_epoch / setup.replicas
            ),
            metrics=[MaskedAccuracy()],
        )

    entity_f1 = EntityF1Callback(tagger, dev)
    standard, best_path = run_callbacks(staging, "val_entity_f1", "max", train_config.early_stopping_patience,
                                        backup_every_steps=train_config.checkpoint_every_steps)
    callbacks = [*extra, entity_f1, *standard]
    callbacks.extend(extra_callbacks)

    fit_started = time.perf_counter()
    history = model.fit(dataset, epochs=train_config.epochs, callbacks=callbacks, verbose=verbose)
    train_seconds = time.perf_counter() - fit_started
    training_summary = fit_setup.finish(setup, model, best_path, tagger)

    dev_scores = tagger.evaluate(dev, progress=verbose > 0)
    test_scores = tagger.evaluate(test, progress=verbose > 0) if test else None
    tagger.save(staging)
    metrics = {
        "dev": dev_scores,
        "test": test_scores,
        "dev_per_epoch": entity_f1.history,
        "training": training_summary,
        "timing": {
            "train_seconds": round(train_seconds, 2),
            "total_seconds": round(time.perf_counter() - started, 2),
        },
        "data": {
            "train": dataclasses.asdict(train_stats),
            "train_real_tokens": int(sum(len(w) for w in train_windows)),
            "dev_sentences": len(dev),
            "test_sentences": len(test) if test else 0,
        },
    }
    run_directory.write_json(staging / "metrics.json", metrics)
    run_directory.write_json(staging / "history.json", _plain(history.history))
    run_directory.write_json(
        staging / "run_config.json",
        {
            "task": "ner",
            "backbone": model_config.backbone,
            "backbone_directory": str(resolved.directory),
            "model": cfg.to_dict(model_config),
            "data": cfg.to_dict(data_config),
            "train": cfg.to_dict(train_config),
            "labels": list(label_map.labels),
        },
    )
    run_directory.commit(staging, output_dir)
    return NERRunResult(run_dir=output_dir, metrics=metrics, tagger=tagger)


def _plain(history: dict) -> dict:
    return {key: [float(v) for v in values] for key, values in history.items()}
