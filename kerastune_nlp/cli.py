"""The `kerastune-nlp` command: train, evaluate and predict from run directories."""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

from kerastune_nlp import config as cfg
from kerastune_nlp.errors import ConfigError, KerastuneNLPError

logger = logging.getLogger("kerastune_nlp")

# --quick: a seeded subset that trains in about 2 minutes on 2 CPU cores. Small
# batches and a higher rate give its few hundred steps a real (non-zero) score.
QUICK_SIZES = {"train": 800, "dev": 200, "test": 400}
QUICK_TRAINING = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-4}


def add_ner_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `kerastune-nlp train --task ner` and examples/ner_conll.py."""
    data = parser.add_argument_group(
        "data (default: bundled WNUT-17 for ner, bundled TREC for classification)")
    data.add_argument("--train", help="training file: CoNLL for ner; CSV/TSV/JSON/JSONL/`label text` otherwise")
    data.add_argument("--dev", help="development file; if omitted, a seeded share of --train is held out")
    data.add_argument("--test", help="test file, scored once at the end")
    data.add_argument("--dataset", help="a data set through `datasets`, e.g. conll2003 (needs the hub)")
    data.add_argument("--encoding", default="utf-8", help="encoding of the data files (default utf-8)")
    data.add_argument("--tag-scheme", default="auto", choices=["auto", "iob1", "iob2"],
                      help="tag scheme of the files; IOB1 is converted to IOB2 (default auto)")
    defaults_t, defaults_d = cfg.TrainConfig(), cfg.DataConfig()
    model = parser.add_argument_group("model and training")
    model.add_argument("--backbone", default=cfg.DEFAULT_BACKBONE,
                       help="bundled short name, local model folder, or hub id "
                            f"(default {cfg.DEFAULT_BACKBONE}, bundled)")
    model.add_argument("--allow-pickle", action="store_true",
                       help="allow loading pytorch_model.bin (a pickle: only for files you trust)")
    model.add_argument("--epochs", type=int, help=f"default {defaults_t.epochs}")
    model.add_argument("--batch-size", type=int,
                       help=f"sentences per batch (default {defaults_t.batch_size})")
    model.add_argument("--learning-rate", type=float,
                       help=f"peak AdamW learning rate (default {defaults_t.learning_rate})")
    model.add_argument("--max-length", type=int, default=defaults_d.max_length,
                       help="sub-tokens per window; longer sentences are split into overlapping "
                            f"windows (default {defaults_d.max_length})")
    model.add_argument("--label-all-subtokens", action="store_true",
                       help="train on every sub-token, not only the first of each word")
    model.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better dev entity F1")
    model.add_argument("--seed", type=int, default=defaults_t.seed, help=f"default {defaults_t.seed}")
    _add_speed_arguments(parser, defaults_t)
    run = parser.add_argument_group("run")
    run.add_argument("--output", help="run directory (default saved_models/ner-<data>-<time>)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    run.add_argument("--quick", action="store_true",
                     help="a seeded subset (%(train)d/%(dev)d/%(test)d sentences) for a run of "
                          "about 2 minutes that still prints a real report; unless given, "
                          "epochs/batch size/learning rate become %(epochs)d/%(batch_size)d/"
                          "%(learning_rate)g" % {**QUICK_SIZES, **QUICK_TRAINING})


def _add_speed_arguments(parser: argparse.ArgumentParser, defaults: cfg.TrainConfig) -> None:
    speed = parser.add_argument_group("speed and scale")
    speed.add_argument("--precision", default=defaults.precision, choices=cfg.PRECISIONS,
                       help="auto: mixed_float16 on GPUs, mixed_bfloat16 on TPUs, float32 on CPUs "
                            f"(default {defaults.precision})")
    speed.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    speed.add_argument("--gradient-accumulation", type=int, default=defaults.gradient_accumulation_steps,
                       metavar="N", help="micro-batches per optimizer update (default 1)")
    speed.add_argument("--strategy", default=defaults.strategy, choices=cfg.STRATEGIES,
                       help="devices: none, mirrored (this machine's GPUs), multiworker (TF_CONFIG), "
                            "tpu, or auto (default); --batch-size is the global batch")
    speed.add_argument("--padding", default="bucket", choices=cfg.PADDINGS,
                       help="bucket: pad each batch of similar lengths (default); max_length: pad "
                            "every row to --max-length")
    speed.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every_steps,
                       metavar="STEPS", help="crash backup every STEPS steps and at epoch ends "
                                             f"(default {defaults.checkpoint_every_steps})")
    speed.add_argument("--nondeterministic", action="store_true",
                       help="allow non-deterministic kernels (faster on GPUs)")
    tuning = parser.add_argument_group("fine-tuning strategy")
    tuning.add_argument("--layerwise-lr-decay", type=float, metavar="FACTOR",
                        help="each lower layer gets FACTOR times the rate of the one above (e.g. 0.9)")
    tuning.add_argument("--unfreeze-per-epoch", type=int, metavar="K",
                        help="gradual unfreezing: K more layers train each epoch, top first")
    tuning.add_argument("--freeze-embeddings", action="store_true", help="keep the embeddings fixed")
    tuning.add_argument("--freeze-layers", type=int, default=0, metavar="K",
                        help="keep the bottom K encoder layers fixed")
    tuning.add_argument("--peft", default="none", choices=cfg.PEFT_METHODS,
                        help="lora: low-rank adapters on attention; bitfit: biases only (default none)")
    tuning.add_argument("--lora-rank", type=int, default=defaults.lora_rank)
    tuning.add_argument("--lora-alpha", type=float, default=defaults.lora_alpha)
    tuning.add_argument("--lora-dropout", type=float, default=defaults.lora_dropout)
    tuning.add_argument("--lora-targets", default=",".join(defaults.lora_targets),
                        help=f"comma-separated, from {','.join(cfg.LORA_TARGETS)} (default query,value)")


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the sequence-level tasks (classification, multilabel, regression)."""
    text = parser.add_argument_group("text tasks (--task classification|multilabel|regression)")
    text.add_argument("--text-column", default="text", help="column/key of the text (default text)")
    text.add_argument("--text-pair-column", help="column/key of the second text of a pair task")
    text.add_argument("--label-column", default="label", help="column/key of the label (default label)")
    text.add_argument("--format", dest="file_format", choices=["csv", "tsv", "json", "jsonl", "label_text"],
                      help="file format (default: from the suffix; otherwise `LABEL text` lines)")
    text.add_argument("--empty", default="drop", choices=["drop", "error"],
                      help="empty texts: drop them with a count, or stop (default drop)")
    text.add_argument("--clean", default="nfc,whitespace,drop_empty",
                      help="comma-separated cleaning steps: nfc, nfkc, whitespace, html, urls, "
                           "lowercase, dedupe, drop_empty, or 'none' (default nfc,whitespace,drop_empty)")
    text.add_argument("--split", default="0.7,0.15,0.15",
                      help="train/dev/test ratios when only --train is given (stratified, seeded)")
    text.add_argument("--augment", choices=["none", "eda"], default="none",
                      help="augment the training split with EDA (needs WordNet or --synonyms)")
    text.add_argument("--synonyms", help="synonym table for EDA: word<TAB>syn1,syn2 per line")
    text.add_argument("--augment-per-example", type=int, default=4, help="EDA variants per example")
    text.add_argument("--class-weights", action="store_true", help="weight classes by inverse frequency")
    text.add_argument("--loss", default="mse", choices=["mse", "mae"], help="regression loss (default mse)")


def load_text_splits(args) -> tuple[dict, str]:
    """Train/dev/test `TextExample`s as the flags ask, cleaned and (train only) augmented."""
    from kerastune_nlp.data import augment, cleaning
    from kerastune_nlp.data.bundled_trec import load_bundled_trec
    from kerastune_nlp.data.splits import stratified_split
    from kerastune_nlp.data.text_readers import read_hub_dataset, read_text_file

    columns = dict(task=args.task, text_column=args.text_column, text_pair_column=args.text_pair_column,
                   label_column=args.label_column)
    if args.dataset:
        splits = {ours: read_hub_dataset(args.dataset, split, **columns)
                  for ours, split in (("train", "train"), ("dev", "validation"), ("test", "test"))}
        name = args.dataset
    elif args.train:
        splits = {
            split: read_text_file(path, encoding=args.encoding, file_format=args.file_format,
                                  empty=args.empty, **columns)[0]
            for split, path in (("train", args.train), ("dev", args.dev), ("test", args.test)) if path
        }
        name = Path(args.train).stem
    elif args.task == "classification":
        splits, name = load_bundled_trec(), "trec"
    else:
        raise ConfigError(f"--task {args.task} needs data: pass --train FILE (and --dev/--test) or --dataset NAME.")
    if "dev" not in splits:
        if "test" in splits:
            splits["train"], splits["dev"] = stratified_split(splits["train"], (0.9, 0.1), args.seed, args.task)
        else:
            ratios = tuple(float(r) for r in args.split.split(","))
            splits["train"], splits["dev"], splits["test"] = stratified_split(
                splits["train"], ratios, args.seed, args.task)
        logger.info("Split with seed %d: %s", args.seed, {k: len(v) for k, v in splits.items()})
    if args.clean and args.clean != "none":
        steps = [s.strip() for s in args.clean.split(",") if s.strip()]
        for split in list(splits):
            splits[split], report = cleaning.clean_examples(splits[split], steps)
            logger.info("cleaning %s: %s", split, report)
    if args.quick:
        for split, size in QUICK_SIZES.items():
            if len(splits.get(split) or []) > size:
                splits[split] = random.Random(args.seed).sample(list(splits[split]), size)
    if args.augment == "eda":
        synonyms = augment.default_synonyms(args.synonyms)
        splits["train"], report = augment.eda_augment(splits["train"], synonyms, n_aug=args.augment_per_example,
                                                      seed=args.seed)
        print(f"EDA augmentation added {report.added} training examples to {report.original}.")
    return splits, name


def run_text_training(args):
    """Trains a sequence-level model from parsed flags and prints its reports."""
    from kerastune_nlp.evaluation.classification_metrics import format_scores
    from kerastune_nlp.training.text_trainer import train_text_classifier

    model_config, data_config, train_config = configs_from_args(args)
    splits, data_name = load_text_splits(args)
    output = args.output or f"saved_models/{args.task}-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"Fine-tuning {model_config.backbone} for {args.task} on {data_name}: "
          + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    result = train_text_classifier(
        splits["train"], splits["dev"], splits.get("test"), task=args.task, output_dir=output,
        model_config=model_config, data_config=data_config, train_config=train_config,
        class_weights=args.class_weights, regression_loss=args.loss, overwrite=args.overwrite,
    )
    print()
    print(format_scores(args.task, result.metrics["dev"], "Dev set (best epoch):"))
    if result.metrics["test"]:
        print()
        print(format_scores(args.task, result.metrics["test"], "Test set:"))
    print(f"\nTraining took {result.metrics['timing']['train_seconds']:.0f}s. Run directory: {result.run_dir} "
          "(metrics.json, curve_*.png, worst_predictions.jsonl"
          + (", confusion_matrix.png)" if args.task == "classification" else ")"))
    return result


def load_ner_splits(args) -> tuple[dict, str]:
    """The train/dev/test sentences the flags ask for, and a short data name."""
    from kerastune_nlp.data import bundled_wnut17, load_hub_conll, read_conll

    if args.dataset and args.train:
        raise ConfigError(
            f"Pass either --dataset or --train/--dev/--test, not both. "
            f"Received: `--dataset`={args.dataset!r}, `--train`={args.train!r}."
        )
    if args.dataset:
        splits, name = load_hub_conll(args.dataset), args.dataset
    else:
        if args.train:
            paths, name = {"train": args.train, "dev": args.dev, "test": args.test}, Path(args.train).stem
        else:
            if args.dev or args.test:
                raise ConfigError("--dev/--test need --train as well. Received: no `--train`.")
            paths, name = bundled_wnut17(), "wnut17"
        splits = {
            split: read_conll(path, encoding=args.encoding, tag_scheme=args.tag_scheme)
            for split, path in paths.items()
            if path
        }
    if not splits.get("dev"):
        rng = random.Random(args.seed)
        train = list(splits["train"])
        rng.shuffle(train)
        held_out = max(1, len(train) // 10)
        splits["dev"], splits["train"] = train[:held_out], train[held_out:]
        logger.info("No dev set given: held out %d of %d training sentences (seed %d).",
                    held_out, len(train), args.seed)
    if args.quick:
        for split, size in QUICK_SIZES.items():
            if splits.get(split) and len(splits[split]) > size:
                splits[split] = random.Random(args.seed).sample(list(splits[split]), size)
    return splits, name


def _training_value(args, name):
    """An explicit flag wins, then the --quick preset, then the TrainConfig default."""
    value = getattr(args, name)
    if value is not None:
        return value
    if args.quick:
        return QUICK_TRAINING[name]
    return getattr(cfg.TrainConfig(), name)


def configs_from_args(args):
    return (
        cfg.ModelConfig(backbone=args.backbone, allow_pickle=args.allow_pickle),
        cfg.DataConfig(
            max_length=args.max_length,
            label_all_subtokens=args.label_all_subtokens,
            encoding=args.encoding,
            tag_scheme=args.tag_scheme,
            padding=args.padding,
        ),
        cfg.TrainConfig(
            epochs=_training_value(args, "epochs"),
            batch_size=_training_value(args, "batch_size"),
            learning_rate=_training_value(args, "learning_rate"),
            seed=args.seed,
            early_stopping_patience=args.early_stopping,
            precision=args.precision,
            jit_compile=args.xla,
            gradient_accumulation_steps=args.gradient_accumulation,
            strategy=args.strategy,
            layerwise_lr_decay=args.layerwise_lr_decay,
            unfreeze_layers_per_epoch=args.unfreeze_per_epoch,
            freeze_embeddings=args.freeze_embeddings,
            freeze_layers=args.freeze_layers,
            peft=args.peft,
            lora_rank=args.lora_rank,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            lora_targets=tuple(t.strip() for t in args.lora_targets.split(",") if t.strip()),
            checkpoint_every_steps=args.checkpoint_every,
            deterministic=not args.nondeterministic,
        ),
    )


def run_ner_training(args):
    """Trains from parsed flags and prints the dev summary and the test report."""
    from kerastune_nlp.evaluation.ner_metrics import format_report
    from kerastune_nlp.training.ner_trainer import train_ner

    model_config, data_config, train_config = configs_from_args(args)
    splits, data_name = load_ner_splits(args)
    output = args.output or f"saved_models/ner-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(
        f"Fine-tuning {model_config.backbone} on {data_name}: "
        + ", ".join(f"{k} {len(v)} sentences" for k, v in splits.items() if v)
        + f"; {train_config.epochs} epochs, batch {train_config.batch_size}, "
        f"lr {train_config.learning_rate}"
    )
    result = train_ner(
        splits["train"], splits["dev"], splits.get("test"),
        output_dir=output,
        model_config=model_config,
        data_config=data_config,
        train_config=train_config,
        overwrite=args.overwrite,
    )
    metrics = result.metrics
    print()
    print(format_report(metrics["dev"], "Dev set, entity level (best epoch):"))
    if metrics["test"]:
        print()
        print(format_report(metrics["test"], "Test set, entity level:"))
    print()
    print(f"Training took {metrics['timing']['train_seconds']:.0f}s "
          f"({metrics['timing']['total_seconds']:.0f}s in all). Run directory: {result.run_dir}")
    return result


def _run_task(run: str) -> str:
    settings = Path(run) / "run_config.json"
    if not settings.is_file():
        raise ConfigError(f"{run!r} is not a run directory (no run_config.json). Pass a folder `train` wrote.")
    return json.loads(settings.read_text())["task"]


def _evaluate(args) -> None:
    task = _run_task(args.run)
    if task == "ner":
        from kerastune_nlp.data import read_conll
        from kerastune_nlp.evaluation.ner_metrics import format_report
        from kerastune_nlp.models.ner_tagger import NERTagger

        tagger = NERTagger.load(args.run)
        sentences = read_conll(args.test, encoding=args.encoding, tag_scheme=args.tag_scheme)
        tagger.label_map.check_covers(sentences, "test")
        scores = tagger.evaluate(sentences, progress=True)
        print(format_report(scores, f"{args.test}, entity level:"))
    else:
        from kerastune_nlp.data.text_readers import check_labels, read_text_file
        from kerastune_nlp.data.text_readers import TextExample
        from kerastune_nlp.evaluation.classification_metrics import format_scores
        from kerastune_nlp.models.text_classifier import TextClassifier

        classifier = TextClassifier.load(args.run)
        examples, _ = read_text_file(
            args.test, task=task, text_column=args.text_column, text_pair_column=args.text_pair_column,
            label_column=args.label_column, encoding=args.encoding, file_format=args.file_format)
        if task != "regression":
            known = [TextExample("", tuple(classifier.label_names) if task == "multilabel" else name)
                     for name in classifier.label_names]
            check_labels(known, examples, "test", task)
        scores, _ = classifier.evaluate(examples)
        print(format_scores(task, scores, f"{args.test}:"))
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2) + "\n")


def _predict(args) -> None:
    texts = list(args.text)
    if args.input:
        with open(args.input, encoding=args.encoding) as handle:
            texts.extend(line for line in (raw.strip() for raw in handle) if line)
    if not texts:
        raise ConfigError("Nothing to predict. Pass texts as arguments or --input FILE (one per line).")
    task = _run_task(args.run)
    if task == "ner":
        from kerastune_nlp.models.ner_tagger import NERTagger

        tagger = NERTagger.load(args.run)
        for text, tags in zip(texts, tagger.predict(texts)):
            print(" ".join(f"{w}/{t}" if t != "O" else w for w, t in zip(text.split(), tags)))
        return
    from kerastune_nlp.models.text_classifier import TextClassifier

    classifier = TextClassifier.load(args.run)
    if task == "regression":
        for text, value in zip(texts, classifier.predict(texts)):
            print(f"{value:.4f}\t{text}")
        return
    for text, top in zip(texts, classifier.predict_top_k(texts, k=args.top_k)):
        print("  ".join(f"{label} {p:.3f}" for label, p in top) + f"\t{text}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerastune-nlp",
        description="Fine-tune pretrained Transformers with TensorFlow/Keras, then evaluate and "
                    "predict from the run directory it writes.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="fine-tune a backbone and write a run directory",
                                description="Fine-tune a backbone and write a run directory.")
    train.add_argument("--task", default="ner", choices=["ner", "classification", "multilabel", "regression"],
                       help="ner: token classification on CoNLL files (default); classification "
                            "(multi-class or binary sentiment), multilabel, regression: one label per text")
    add_ner_train_arguments(train)
    add_text_arguments(train)

    evaluate = commands.add_parser("evaluate", help="score a run directory on a labelled file")
    evaluate.add_argument("run", help="run directory written by `train`")
    evaluate.add_argument("--test", required=True, help="labelled file in CoNLL format")
    evaluate.add_argument("--encoding", default="utf-8")
    evaluate.add_argument("--tag-scheme", default="auto", choices=["auto", "iob1", "iob2"])
    evaluate.add_argument("--text-column", default="text")
    evaluate.add_argument("--text-pair-column")
    evaluate.add_argument("--label-column", default="label")
    evaluate.add_argument("--format", dest="file_format", choices=["csv", "tsv", "json", "jsonl", "label_text"])
    evaluate.add_argument("--json", help="also write the scores to this JSON file")

    predict = commands.add_parser("predict", help="tag sentences with a run directory")
    predict.add_argument("run", help="run directory written by `train`")
    predict.add_argument("text", nargs="*", help="sentences (words split on whitespace)")
    predict.add_argument("--input", help="a file with one sentence per line")
    predict.add_argument("--encoding", default="utf-8")
    predict.add_argument("--top-k", type=int, default=3, help="labels shown per text (classification)")
    return parser


def configure_logging(verbose: bool = False) -> None:
    import warnings

    # transformers' TF generation utilities warn about their own deprecations.
    warnings.filterwarnings("ignore", message=".*seed_generator.*")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        if args.command == "train" and args.task == "ner":
            run_ner_training(args)
        elif args.command == "train":
            run_text_training(args)
        elif args.command == "evaluate":
            _evaluate(args)
        else:
            _predict(args)
    except KerastuneNLPError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
