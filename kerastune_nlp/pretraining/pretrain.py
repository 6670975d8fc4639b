"""`continue_pretraining`: domain-adaptive masked-language-model training of a backbone.

Order of work: every cheap check first (settings, output folder, backbone
files, corpus reading, tokenizing, packing, sizes), then TensorFlow and the
model. The result is a backbone folder the resolver accepts like any other:
config.json, tokenizer files, model.safetensors (PyTorch naming: the encoder
and the MLM head) and pretraining.json, the report.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from kerastune_nlp.config import DEFAULT_BACKBONE
from kerastune_nlp.errors import BackboneError, ConfigError, DataFormatError, RunDirectoryError
from kerastune_nlp.models import backbones
from kerastune_nlp.pretraining import corpus as corpora
from kerastune_nlp.pretraining import output as outputs
from kerastune_nlp.pretraining.config import TRAINING_FIELDS, PretrainConfig
from kerastune_nlp.pretraining.packing import PackedSequences, pack, special_layout
from kerastune_nlp.runs import owned_folder
from kerastune_nlp.runs.layout import write_json

logger = logging.getLogger("kerastune_nlp.pretraining")
# Families whose base model has a pooler that their masked-LM class lacks.
_POOLER_FAMILIES = {"bert", "roberta", "xlm-roberta", "camembert"}


@dataclasses.dataclass(frozen=True)
class PretrainResult:
    """What `continue_pretraining` produced.

    Args:
        output_dir: Path. The adapted backbone folder (pass it as `backbone`).
        report: dict. The contents of its pretraining.json.
        model: the trained `TF...ForMaskedLM`, or None when an already
            finished staging folder was only moved into place.
    """

    output_dir: Path
    report: dict
    model: object = None


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Corpus, held-out text and their packed sequences, checked for size."""

    train: corpora.Corpus
    held_out: corpora.Corpus | None
    held_out_source: str | None
    tokenizer: object
    train_packed: PackedSequences
    eval_packed: PackedSequences | None


def continue_pretraining(corpus=None, *, output_dir, backbone: str = DEFAULT_BACKBONE,
                         config: PretrainConfig | None = None, dataset: str | None = None, eval_file=None,
                         overwrite: bool = False, callbacks=(), verbose: int | str = "auto") -> PretrainResult:
    """Continues masked-language-model pretraining of `backbone` on unlabelled in-domain text.

    Args:
        corpus: str or Path. A text file (one document or sentence per line)
            or a folder saved with `datasets`' `save_to_disk`. Give this or `dataset`.
        output_dir: str or Path. The adapted backbone's folder (must not
            exist, unless `overwrite` and it is an earlier pretraining output).
        backbone: str. Bundled short name, local folder or hub id. Defaults
            to "all-minilm-l6-v2".
        config: PretrainConfig or None. Settings. Defaults to `PretrainConfig()`.
        dataset: str or None. A Hugging Face hub data set id (needs the hub
            or the datasets cache). Defaults to None.
        eval_file: str, Path or None. Held-out text (file or saved data set)
            scored before and after; None holds out `config.eval_share` of
            the corpus lines. Defaults to None.
        overwrite: bool. Replace an earlier pretraining output at
            `output_dir`, and discard a different command's staging folder.
            Defaults to False.
        callbacks: sequence of Keras callbacks added to each epoch's `fit`.
        verbose: int or "auto". Keras verbosity (0 silent, 1 progress bar, 2 a
            line per epoch). Defaults to "auto": a progress bar on a terminal,
            a line per epoch when stdout is a file or a pipe.

    Returns:
        PretrainResult.

    Example:
    >>> result = continue_pretraining("notes.txt", output_dir="saved_models/minilm-notes",
    ...                               config=PretrainConfig(epochs=3, whole_word_masking=True))
    >>> result.report["eval"]["after"]["masked_accuracy"] > result.report["eval"]["before"]["masked_accuracy"]
    True
    >>> kt.train(task="ner", output_dir="saved_models/ner",
    ...          model_config=kt.ModelConfig(backbone=str(result.output_dir)))
    """
    config = config or PretrainConfig()
    if not isinstance(config, PretrainConfig):
        raise ConfigError(f"Expected `config` to be a PretrainConfig. Received: `config`={config!r}.")
    if (corpus is None) == (dataset is None):
        raise ConfigError("Expected exactly one source of text: `corpus` (a text file or a saved data set folder) "
                          f"or `dataset` (a hub id). Received: `corpus`={corpus!r}, `dataset`={dataset!r}.")
    output = Path(output_dir).expanduser()
    owned_folder.check_output(output, outputs.FOLDER, overwrite)
    resolved = backbones.resolve_backbone(backbone, allow_pickle=config.allow_pickle)
    backbone_config = backbones.load_config(resolved)
    limit = backbones.max_sequence_length(backbone_config)
    if config.max_length > limit:
        raise ConfigError(f"`max_length` exceeds what the backbone {backbone!r} can embed: it has {limit} positions. "
                          f"Received: `max_length`={config.max_length}. Pass --max-length {limit} or less.")
    backbones.check_tokenizer_fits(backbones.load_tokenizer(resolved.directory), backbone_config.vocab_size,
                                   resolved.directory)  # before the corpus is read and packed
    data = prepare_data(corpus, dataset, eval_file, resolved, config)
    fingerprint = {"backbone": {"name": backbone, "directory": str(resolved.directory.resolve())},
                   "corpus": data.train.digest(), "eval": data.held_out.digest() if data.held_out else None,
                   "settings": {name: getattr(config, name) for name in TRAINING_FIELDS}}
    staging, state = owned_folder.open_staging(output, outputs.FOLDER, fingerprint, overwrite)
    if state == "complete":
        report = _read_report(staging)
        outputs.commit(staging, output)
        return PretrainResult(output, report)
    started = time.perf_counter()
    model, trained, evals, head = _train(resolved, backbone_config, data, config, staging, callbacks, verbose)
    report = _report(backbone, resolved, head, data, config, evals, trained, time.perf_counter() - started)
    from kerastune_nlp.pretraining.mlm_model import save_mlm_checkpoint

    try:
        save_mlm_checkpoint(model, staging)
        data.tokenizer.save_pretrained(str(staging))
        report["files"] = sorted({p.name for p in staging.iterdir() if p.is_file()} - {outputs.FINGERPRINT}
                                 - set(outputs.STAGING_ONLY) | {outputs.REPORT})
        write_json(staging / outputs.REPORT, report)
    except OSError as error:
        raise RunDirectoryError(
            f"Cannot write the adapted backbone into {str(staging)!r}: {error.strerror or error}. Free some space "
            "and rerun the same command: it resumes from the last backup there."
        ) from error
    outputs.commit(staging, output)
    logger.info("Adapted backbone written to %s", output)
    return PretrainResult(output, report, model)


def prepare_data(corpus, dataset, eval_file, resolved, config: PretrainConfig) -> PreparedData:
    """Reads, holds out, tokenizes and packs the text; checks there is enough for one batch. No TensorFlow."""
    options = dict(text_column=config.text_column, split=config.split)
    if dataset is not None:
        source = corpora.read_hub_dataset(dataset, **options)
    else:
        source = corpora.load_corpus(corpus, encoding=config.encoding, **options)
    if eval_file is not None:
        train, held_out = source, corpora.load_corpus(eval_file, encoding=config.encoding, argument="eval_file",
                                                      **options)
        held_out_source = f"eval_file {held_out.source}"
    else:
        train, held_out = corpora.hold_out(source, config.eval_share, config.seed)
        held_out_source = (f"eval_share {config.eval_share} of the corpus lines (seed {config.seed})"
                           if held_out else None)
        if held_out is None:
            logger.warning("No held-out text (eval_share 0 and no eval file): the masked-token accuracy and "
                           "perplexity before and after are not measured.")
    tokenizer = backbones.load_tokenizer(resolved.directory)
    if tokenizer.mask_token_id is None:
        raise BackboneError(f"The tokenizer in {str(resolved.directory)!r} has no mask token, which masked-language-"
                            "model training needs. Pick a backbone trained with masking (BERT, RoBERTa, ...).")
    layout = special_layout(tokenizer, train.texts[0][:50])
    train_packed = pack(train.texts, tokenizer, config.max_length, layout)
    eval_packed = pack(held_out.texts, tokenizer, config.max_length, layout) if held_out else None
    if train_packed.tokens == 0:
        raise DataFormatError(f"The corpus {train.source!r} tokenizes to nothing ({len(train.texts)} text(s)): the "
                              "backbone's tokenizer drops every character. Check the file's content and encoding.")
    if train_packed.sequences < config.batch_size:
        capacity = layout.capacity(config.max_length)
        raise DataFormatError(
            f"The training text is too small for one batch: {len(train.texts)} text(s) gave {train_packed.tokens} "
            f"tokens, which pack into {train_packed.sequences} sequence(s) of {config.max_length}; one batch of "
            f"{config.batch_size} needs {config.batch_size} sequences, i.e. more than "
            f"{(config.batch_size - 1) * capacity} tokens ({config.batch_size - 1} x {capacity} per sequence, "
            f"line separators included). Received: `batch_size`={config.batch_size}, `max_length`="
            f"{config.max_length}. Add text, or pass a smaller --batch-size (at most {train_packed.sequences}) or "
            "--max-length."
        )
    if eval_packed is not None and eval_packed.tokens == 0:
        raise DataFormatError(f"The held-out text {held_out.source!r} tokenizes to nothing. Pass another --eval-file.")
    logger.info("Corpus %s: %s training, %s held out", train.source, train_packed.summary(),
                eval_packed.summary() if eval_packed else "nothing")
    return PreparedData(train, held_out, held_out_source, tokenizer, train_packed, eval_packed)


def _train(resolved, backbone_config, data: PreparedData, config: PretrainConfig, staging: Path, callbacks, verbose):
    """Builds the model, scores it, trains (resuming if a backup is there) and scores it again."""
    import json

    from kerastune_nlp._tf import keras
    from kerastune_nlp.pretraining import loop, masking
    from kerastune_nlp.pretraining.mlm_model import MaskedLMTrainer, head_group, load_mlm_model
    from kerastune_nlp.training.optimizer import build_adamw

    keras.utils.set_random_seed(config.seed)
    loaded = load_mlm_model(resolved, backbone_config, seed=config.seed)
    if loaded.head != "loaded":
        logger.warning("The checkpoint %s has no masked-LM head (%s): a new one is %s with random weights and "
                       "trained together with the encoder. The 'before' scores measure that untrained head.",
                       resolved.weights_file, ", ".join(loaded.missing_head_weights[:3]), loaded.head)
    model, tokenizer = loaded.model, data.tokenizer
    vocab_size = min(len(tokenizer), int(backbone_config.vocab_size))
    random_ids = masking.replacement_ids(vocab_size, tokenizer.all_special_ids)
    options = dict(mask_token_id=tokenizer.mask_token_id, random_ids=random_ids)
    steps = -(-data.train_packed.sequences // config.batch_size)
    # A created head starts random: it trains at a multiple of the encoder's rate.
    head_scale = config.new_head_lr_scale if loaded.head != "loaded" else 1.0
    optimizer = build_adamw(config.learning_rate, config.epochs * steps, config.warmup_ratio, config.weight_decay,
                            group_of=head_group(model), group_scales=(1.0, head_scale))
    trainer = MaskedLMTrainer(model)
    trainer.compile(optimizer=optimizer)
    eval_dataset, eval_batches = None, 0
    if data.eval_packed is not None:
        eval_batches = -(-data.eval_packed.sequences // config.batch_size)
        eval_dataset = loop.dataset_factory(data.eval_packed, config, stream=masking.EVAL_STREAM, **options)
    before_path = staging / outputs.BEFORE
    before = None
    if eval_dataset is not None:
        if before_path.is_file():  # resumed: the scores of the untouched model were taken before the crash
            before = json.loads(before_path.read_text(encoding="utf-8"))
        else:
            before = loop.evaluate(trainer, eval_dataset, eval_batches)
            write_json(before_path, before)
    trained = loop.train(trainer, optimizer, loop.dataset_factory(data.train_packed, config,
                                                                  stream=masking.TRAIN_STREAM, **options),
                         staging=staging, epochs=config.epochs, steps=steps, config=config, callbacks=callbacks,
                         verbose=verbose)
    trained["steps_per_epoch"] = steps
    after = loop.evaluate(trainer, eval_dataset, eval_batches) if eval_dataset is not None else None
    return model, trained, {"before": before, "after": after}, loaded


def _report(name, resolved, loaded, data: PreparedData, config: PretrainConfig, evals, trained, seconds) -> dict:
    before, after = evals["before"], evals["after"]
    evaluation = None
    if before is not None:
        evaluation = {"source": data.held_out_source, "seed": config.seed, "before": before, "after": after,
                      "change": {key: round(after[key] - before[key], 6)
                                 for key in ("masked_accuracy", "loss", "perplexity")}}
    positions = int(data.train_packed.lengths.sum())
    epochs_run = trained["steps_trained"] / max(trained["steps_per_epoch"], 1)
    return {
        "kind": outputs.KIND,
        "backbone": {"name": name, "directory": str(resolved.directory), "weights_format": resolved.weights_format,
                     "model_type": loaded.model.model_type, "class": type(loaded.model.encoder).__name__},
        "mlm_head": loaded.head,
        "head_learning_rate": config.learning_rate * (config.new_head_lr_scale if loaded.head != "loaded" else 1.0),
        "missing_head_weights": list(loaded.missing_head_weights),
        "corpus": {"source": data.train.source, "kind": data.train.kind, "skipped_blank": data.train.skipped,
                   "train": data.train_packed.summary(),
                   "held_out": data.eval_packed.summary() if data.eval_packed is not None else None},
        "settings": config.to_dict(),
        "eval": evaluation,
        "history": trained["history"],
        "resumed_from": trained["resumed_from"],
        "timing": {"total_seconds": round(seconds, 1), "train_seconds": round(trained["train_seconds"], 1),
                   "steps_per_epoch": trained["steps_per_epoch"], "steps_trained": trained["steps_trained"],
                   "optimizer_steps": trained["optimizer_steps"],
                   "tokens_per_second": round(positions * epochs_run / max(trained["train_seconds"], 1e-9), 1)},
        "notes": ([] if loaded.model.model_type not in _POOLER_FAMILIES else [
            "The pooler (a dense layer over the first token, unused by kerastune_nlp heads) is not part of the "
            "masked-LM model, so it is not carried over; a model that needs one initialises it anew."]),
    }


def _read_report(staging: Path) -> dict:
    import json

    return json.loads((staging / outputs.REPORT).read_text(encoding="utf-8"))
