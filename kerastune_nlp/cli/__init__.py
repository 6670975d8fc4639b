"""The `kerastune-nlp` command: train, evaluate and predict, for every task.

Inputs are read and checked before TensorFlow loads, so a bad file or flag
is refused in about a second; TensorFlow's native start-up noise is hidden
unless --verbose.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from kerastune_nlp.cli import console
from kerastune_nlp.cli.flags import add_train_arguments, settings_from_args
from kerastune_nlp.cli.parsing import Parser, add_verbose, positive_int
from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError, KerastuneNLPError
from kerastune_nlp.inference.artifacts import PATH_FORMS

logger = logging.getLogger("kerastune_nlp")
EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def run_training(args) -> object:
    """Reads and checks everything, trains, and prints the task's reports."""
    from kerastune_nlp.runs import staging
    from kerastune_nlp.tasks import get_task

    settings = settings_from_args(args)
    task = get_task(settings.task)(settings.task_config)
    splits, data_name = task.load_splits(settings.data, settings.train.seed)
    task.check_splits(splits)
    output = Path(settings.output or f"saved_models/{settings.task}-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    staging.check_output(output, settings.overwrite)
    args.staging_hint = staging.partial_path(output)
    train_config = settings.train
    print(f"Fine-tuning {settings.model.backbone} for {settings.task} on {data_name}: "
          + ", ".join(f"{k} {len(v)}" for k, v in splits.items() if v)
          + f"; {train_config.epochs} epochs, batch {train_config.batch_size}, lr {train_config.learning_rate}",
          flush=True)
    from kerastune_nlp.training.trainer import train

    result = train(task, splits["train"], splits["dev"], splits.get("test"), output_dir=output,
                   data_config=settings.data, model_config=settings.model, train_config=train_config,
                   overwrite=settings.overwrite, verbose=console.fit_verbosity())
    metrics = result.metrics
    print()
    print(task.format_scores(metrics["dev"], "Dev set (best epoch)"))
    if metrics["test"]:
        print()
        print(task.format_scores(metrics["test"], "Test set"))
    print(f"\nTraining took {metrics['timing']['train_seconds']:.0f}s ({metrics['timing']['total_seconds']:.0f}s "
          f"in all). Run directory: {result.run_dir}")
    return result


def _evaluate(args) -> None:
    from kerastune_nlp.config import DataConfig
    from kerastune_nlp.inference.artifacts import resolve_path
    from kerastune_nlp.inference.loading import read_task
    from kerastune_nlp.inference.predictor import load_predictor

    artifact = resolve_path(args.run)  # a wrong PATH is refused before TensorFlow loads
    task = read_task(artifact)
    examples = task.read_file(args.test, DataConfig(encoding=args.encoding))
    task.check_examples(examples, "test")
    predictor = load_predictor(artifact.path, cache_size=0)
    scores = predictor.evaluate(examples)
    print(task.format_scores(scores, str(args.test)))
    if args.json:
        from kerastune_nlp.runs.layout import write_json

        write_json(Path(args.json), scores)


def read_input_lines(path, encoding: str) -> list[str]:
    """One entry per line of `path` (blank lines kept, so output line N answers input line N)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"Input file not found. Received: `--input`={str(path)!r}. "
                                    "Pass a text file with one input per line.")
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataFormatError(f"{str(path)!r}, line {line}: not valid {encoding} ({error.reason}). Pass the "
                              "file's encoding with --encoding (e.g. --encoding latin-1).") from None
    except LookupError:
        raise ConfigError(f"Unknown encoding. Received: `--encoding`={encoding!r}.") from None
    return [line.strip() for line in text.removeprefix("\ufeff").splitlines()]


def _predict(args) -> None:
    """Answers one input per line: JSON Lines (default) or the readable text format."""
    import json

    from kerastune_nlp.inference import load_predictor

    texts = list(args.text)
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        raise ConfigError(f"Expected non-empty texts. Received: an empty text argument (position {blank[0] + 1}).")
    if args.input:
        texts.extend(read_input_lines(args.input, args.encoding))
    elif not texts and not sys.stdin.isatty():
        texts.extend(line.strip() for line in sys.stdin.read().removeprefix("\ufeff").splitlines())
    if not texts:
        raise ConfigError("Nothing to predict. Pass texts as arguments, --input FILE (one per line), "
                          "or pipe lines into stdin.")
    if args.output and Path(args.output).exists():
        raise ConfigError(f"`--output` {args.output!r} already exists; pass a new file name (nothing is "
                          "overwritten).")
    predictor = load_predictor(args.run)
    task = predictor.task
    options = {"top_k": args.top_k} if task.supports_top_k and args.top_k else {}
    if task.has_entities and args.format == "jsonl":
        options = {"aggregation": args.aggregation}
    filled = [t for t in texts if t]
    if args.documents == "yes" or (args.documents == "auto" and predictor.document_context):
        from kerastune_nlp.cli.predict_documents import document_lines

        lines = document_lines(predictor, texts, args.format, args.aggregation)
    elif args.format == "jsonl":
        answers = iter(predictor.predict_json(filled, **options) if filled else [])
        lines = (json.dumps({"line": n, "text": text, **(next(answers) if text else {"blank": True})},
                            ensure_ascii=False, default=str) for n, text in enumerate(texts, 1))
    else:
        answers = iter(predictor.predict(filled, **options) if filled else [])
        lines = (task.format_prediction(text, next(answers)) if text else "" for text in texts)
    if not args.output:
        for line in lines:
            print(line)
        return
    # Written aside and renamed, so an interrupted run leaves no half-written answers file.
    target = Path(args.output)
    staged = target.with_name(f".{target.name}.partial")
    with open(staged, "w", encoding="utf-8") as output:
        for line in lines:
            print(line, file=output)
    staged.replace(target)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="kerastune-nlp",
        description="Fine-tune pretrained Transformers with TensorFlow/Keras for NER, classification, "
                    "multi-label classification and regression, then evaluate and predict from the run "
                    "directory it writes.",
    )
    add_verbose(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="fine-tune a backbone and write a run directory",
                                description="Fine-tune a backbone and write a run directory. Every setting "
                                            "is a flag named as its config field.")
    add_train_arguments(train)

    evaluate = commands.add_parser("evaluate", help="score a run directory or an exported model on a labelled file",
                                   description=f"Scores a model on a labelled file. PATH: {PATH_FORMS}.")
    evaluate.add_argument("run", metavar="PATH", help="run directory or exported model")
    evaluate.add_argument("--test", required=True, help="labelled file in the run's format (CoNLL, CSV, ...)")
    evaluate.add_argument("--encoding", default="utf-8")
    evaluate.add_argument("--json", help="also write the scores to this JSON file")

    predict = commands.add_parser(
        "predict", help="predict with a run directory or an exported model (JSON Lines out)",
        description="One answer per input line, in input order. Reads the texts given as arguments, "
                    f"--input FILE, or stdin. PATH: {PATH_FORMS}.")
    predict.add_argument("run", metavar="PATH", help="run directory or exported model")
    predict.add_argument("text", nargs="*", help="inputs; none and no --input: read stdin")
    predict.add_argument("--input", help="a file with one input per line; blank lines give a {\"blank\": true} line")
    predict.add_argument("--encoding", default="utf-8", help="encoding of --input (default utf-8)")
    predict.add_argument("--format", choices=("jsonl", "text"), default="jsonl",
                         help="jsonl (default): one JSON object per input line; text: readable lines "
                              "(for ner, words and punctuation, as CoNLL data)")
    predict.add_argument("--output", help="write the answers to this file instead of stdout")
    predict.add_argument("--top-k", type=positive_int, default=3, help="labels given per text (classification, multilabel)")
    predict.add_argument("--aggregation", choices=("first", "average", "max"), default="first",
                         help="ner: how a word's sub-tokens are combined (default first, as trained)")
    predict.add_argument("--documents", choices=("auto", "yes", "no"), default="auto",
                         help="ner: read the input lines as documents (one sentence per line; a blank or "
                              "-DOCSTART- line ends a document), each sentence with its document's context; "
                              "auto (default): when the model was trained with --context-size")
    for module in stage_commands():
        module.add_parser(commands).set_defaults(stage_command=module.run)
    for subcommand in commands.choices.values():
        add_verbose(subcommand, in_subcommand=True)  # `kerastune-nlp predict RUN "..." --verbose`
    return parser


# The later stages: each module adds its subcommand (`add_parser`) and runs it (`run`).
STAGE_COMMANDS = ("tune", "prune", "distill", "pretrain", "export", "serve")


def stage_commands() -> list:
    import importlib

    return [importlib.import_module(f"kerastune_nlp.cli.{name}") for name in STAGE_COMMANDS]


def _dispatch(args) -> int:
    try:
        if getattr(args, "stage_command", None) is not None:
            args.stage_command(args)
        elif args.command == "train":
            run_training(args)
        elif args.command == "evaluate":
            _evaluate(args)
        else:
            _predict(args)
    except KerastuneNLPError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        hint = getattr(args, "staging_hint", None)
        resume = (f" Rerun the same command to resume from the last backup in {str(hint)!r}."
                  if hint is not None and Path(hint).exists() else "")
        print(f"\nInterrupted.{resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


# Commands that have written and closed every output when they return; run as a
# program (not `main([...])` from Python), they skip the interpreter's teardown.
FAST_EXIT_COMMANDS = ("predict", "evaluate")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(args.verbose)
    code = _dispatch(args)
    if argv is None and args.command in FAST_EXIT_COMMANDS:
        console.exit_now(code)
    return code


def train_main(argv=None, *, task: str, description: str) -> int:
    """`kerastune-nlp train` with a default task, for the example scripts."""
    parser = Parser(description=description)
    add_verbose(parser)
    add_train_arguments(parser, default_task=task)
    args = parser.parse_args(argv)
    args.command = "train"
    console.configure(args.verbose)
    return _dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
