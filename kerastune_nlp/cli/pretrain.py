"""`kerastune-nlp pretrain`: domain-adaptive continued pretraining (masked language modelling) of a backbone.

Settings, the output folder, the backbone's files and the corpus are all
read and checked before TensorFlow loads, so a bad flag or file is refused
in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from kerastune_nlp.config import DEFAULT_BACKBONE
from kerastune_nlp.pretraining.config import PretrainConfig

DESCRIPTION = (
    "Continue masked-language-model pretraining of a backbone on unlabelled in-domain text (a text file with one "
    "document or sentence per line, a folder saved with `datasets`' save_to_disk, or a hub data set), then "
    "fine-tune from the adapted backbone as from any other: `kerastune-nlp train --backbone OUTPUT`. Lines are "
    "packed into sequences of --max-length (no text is dropped); each sequence predicts --mlm-probability of its "
    "tokens (80% masked, 10% random, 10% unchanged), optionally whole words. A checkpoint without an MLM head "
    "(e.g. the bundled all-minilm-l6-v2) gets a new one, and the report says so. Masked-token accuracy and "
    "perplexity on held-out text (--eval-file, or a seeded --eval-share of the lines), masked the same way every "
    "time, are measured before and after and written to OUTPUT/pretraining.json."
)
EPILOG = (
    "The output folder appears only when complete (it is written as OUTPUT.partial and renamed). After a crash "
    "or Ctrl-C, rerun the same command to resume from the last backup; a different command refuses the leftover "
    "folder and names what differs."
)


def _converter(kind: str):
    optional = "None" in kind

    def convert(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        try:
            return int(text) if kind.startswith("int") else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.split(' ')[0]}, got {text!r}") from None

    return convert


def add_parser(commands) -> argparse.ArgumentParser:
    """Adds the `pretrain` subcommand to an argparse subparsers object."""
    parser = commands.add_parser("pretrain", help="continue masked-LM pretraining of a backbone on in-domain text",
                                 description=DESCRIPTION, epilog=EPILOG)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", metavar="FILE_OR_DIR",
                        help="text file (one document or sentence per line) or a folder saved with save_to_disk")
    source.add_argument("--dataset", metavar="HUB_ID", help="a Hugging Face hub data set (needs the hub or its cache)")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE,
                        help=f"bundled short name, local model folder or hub id (default {DEFAULT_BACKBONE})")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="the adapted backbone's folder (pass it to `train --backbone`)")
    parser.add_argument("--eval-file", metavar="FILE_OR_DIR",
                        help="held-out text scored before and after (default: --eval-share of the corpus lines)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier `pretrain` output at --output (anything else is refused)")
    for field in dataclasses.fields(PretrainConfig):
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata["help"].replace("%", "%%")
        kind = field.type if isinstance(field.type, str) else field.type.__name__
        if kind == "bool":
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
        elif kind == "str":
            parser.add_argument(flag, default=None, help=f"{help_text} (default {field.default})")
        else:
            parser.add_argument(flag, type=_converter(kind), default=None, metavar="N",
                                help=f"{help_text} (default {field.default})")
    return parser


def config_from_args(args) -> PretrainConfig:
    """The flags given on the command line over `PretrainConfig`'s defaults."""
    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(PretrainConfig)
             if getattr(args, field.name, None) is not None}
    return PretrainConfig(**given)


def run(args):
    """Checks the settings, pretrains, and prints the report's summary; returns the `PretrainResult`."""
    from kerastune_nlp.cli import console
    from kerastune_nlp.runs.layout import partial_path

    config = config_from_args(args)
    source = args.corpus or args.dataset
    args.staging_hint = partial_path(Path(args.output))
    print(f"Continuing masked-LM pretraining of {args.backbone} on {source}: {config.epochs} epoch(s), batch "
          f"{config.batch_size}, length {config.max_length}, lr {config.learning_rate}, mlm probability "
          f"{config.mlm_probability}{', whole-word masking' if config.whole_word_masking else ''}", flush=True)
    from kerastune_nlp.pretraining.pretrain import continue_pretraining

    result = continue_pretraining(args.corpus, dataset=args.dataset, output_dir=args.output, backbone=args.backbone,
                                  config=config, eval_file=args.eval_file, overwrite=args.overwrite,
                                  verbose=console.fit_verbosity())
    print()
    print(format_summary(result.report))
    print(f"\nAdapted backbone: {result.output_dir} (report: {result.output_dir / 'pretraining.json'})")
    print(f"Fine-tune from it: kerastune-nlp train --backbone {result.output_dir} ...")
    return result


def format_summary(report: dict) -> str:
    """The report as a few lines: head, corpus, scores before and after, time."""
    train = report["corpus"]["train"]
    held = report["corpus"]["held_out"]
    head = {"created": "created (the checkpoint had none; trained from random weights)",
            "partial": "partly created (some head weights were missing)", "loaded": "loaded from the checkpoint"}
    lines = [f"MLM head: {head[report['mlm_head']]}",
             f"corpus: {train['texts']} texts, {train['tokens']:,} tokens in {train['sequences']} sequences"
             + (f"; held out: {held['texts']} texts, {held['tokens']:,} tokens" if held else "; nothing held out")]
    evaluation = report.get("eval")
    if evaluation:
        before, after = evaluation["before"], evaluation["after"]
        lines.append(f"held-out masked-token accuracy: {before['masked_accuracy']:.4f} -> "
                     f"{after['masked_accuracy']:.4f} ({100 * evaluation['change']['masked_accuracy']:+.2f} points); "
                     f"perplexity {before['perplexity']:.2f} -> {after['perplexity']:.2f} "
                     f"({after['masked_tokens']} masked tokens)")
    timing = report["timing"]
    resumed = report.get("resumed_from")
    lines.append(f"training: {timing['steps_trained']} steps in {timing['train_seconds']:.0f}s "
                 f"({timing['tokens_per_second']:.0f} tokens/s)"
                 + (f"; resumed at epoch {resumed['epoch']}, step {resumed['step']}" if resumed else ""))
    return "\n".join(lines)
