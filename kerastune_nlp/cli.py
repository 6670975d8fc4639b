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
    data = parser.add_argument_group("data (default: the bundled WNUT-17 data set)")
    data.add_argument("--train", help="training file in CoNLL format (token ... tag per line)")
    data.add_argument("--dev", help="development file; if omitted, 10%% of --train is held out")
    data.add_argument("--test", help="test file, scored once at the end")
    data.add_argument("--dataset", help="a hub data set through `datasets`, e.g. conll2003 (needs internet)")
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
    run = parser.add_argument_group("run")
    run.add_argument("--output", help="run directory (default saved_models/ner-<data>-<time>)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    run.add_argument("--quick", action="store_true",
                     help="a seeded subset (%(train)d/%(dev)d/%(test)d sentences) for a run of "
                          "about 2 minutes that still prints a real report; unless given, "
                          "epochs/batch size/learning rate become %(epochs)d/%(batch_size)d/"
                          "%(learning_rate)g" % {**QUICK_SIZES, **QUICK_TRAINING})


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
        ),
        cfg.TrainConfig(
            epochs=_training_value(args, "epochs"),
            batch_size=_training_value(args, "batch_size"),
            learning_rate=_training_value(args, "learning_rate"),
            seed=args.seed,
            early_stopping_patience=args.early_stopping,
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


def _evaluate(args) -> None:
    from kerastune_nlp.data import read_conll
    from kerastune_nlp.evaluation.ner_metrics import format_report
    from kerastune_nlp.models.ner_tagger import NERTagger

    tagger = NERTagger.load(args.run)
    sentences = read_conll(args.test, encoding=args.encoding, tag_scheme=args.tag_scheme)
    tagger.label_map.check_covers(sentences, "test")
    scores = tagger.evaluate(sentences, progress=True)
    print(format_report(scores, f"{args.test}, entity level:"))
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2) + "\n")


def _predict(args) -> None:
    from kerastune_nlp.models.ner_tagger import NERTagger

    texts = list(args.text)
    if args.input:
        with open(args.input, encoding=args.encoding) as handle:
            texts.extend(line for line in (raw.strip() for raw in handle) if line)
    if not texts:
        raise ConfigError("Nothing to tag. Pass sentences as arguments or --input FILE (one per line).")
    tagger = NERTagger.load(args.run)
    for text, tags in zip(texts, tagger.predict(texts)):
        print(" ".join(f"{word}/{tag}" if tag != "O" else word for word, tag in zip(text.split(), tags)))


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
    train.add_argument("--task", default="ner", choices=["ner"],
                       help="ner: token classification on CoNLL files (default)")
    add_ner_train_arguments(train)

    evaluate = commands.add_parser("evaluate", help="score a run directory on a labelled file")
    evaluate.add_argument("run", help="run directory written by `train`")
    evaluate.add_argument("--test", required=True, help="labelled file in CoNLL format")
    evaluate.add_argument("--encoding", default="utf-8")
    evaluate.add_argument("--tag-scheme", default="auto", choices=["auto", "iob1", "iob2"])
    evaluate.add_argument("--json", help="also write the scores to this JSON file")

    predict = commands.add_parser("predict", help="tag sentences with a run directory")
    predict.add_argument("run", help="run directory written by `train`")
    predict.add_argument("text", nargs="*", help="sentences (words split on whitespace)")
    predict.add_argument("--input", help="a file with one sentence per line")
    predict.add_argument("--encoding", default="utf-8")
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
        if args.command == "train":
            run_ner_training(args)
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
