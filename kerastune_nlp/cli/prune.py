"""`kerastune-nlp prune RUN`: magnitude pruning of a run directory into a new run directory.

Settings are checked and the run's manifest read before TensorFlow loads,
so a bad flag or folder is refused in about a second.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kerastune_nlp.cli import from_run
from kerastune_nlp.pruning import QAT_NOTE, SCHEDULES

DESCRIPTION = (
    "Prune a run: a short fine-tune from its weights while tensorflow-model-optimization zeroes the "
    "smallest weights of every Dense kernel in the encoder blocks until each reaches --sparsity. The "
    "result is a normal run directory (load_run, evaluate, predict and export read it) whose metrics.json "
    "has a `pruning` block: the real sparsity of each kernel, the gzip size of the weights before and "
    "after, and the task metric of the run and of the pruned copy. Embeddings, biases, LayerNorms and "
    "the head stay dense."
)


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None


def add_parser(commands) -> argparse.ArgumentParser:
    """Adds the `prune` subcommand to an argparse subparsers object."""
    parser = commands.add_parser("prune", help="magnitude-prune a run directory into a new run directory "
                                               "(no quantization-aware training: see --help)",
                                 description=DESCRIPTION, epilog=QAT_NOTE)
    parser.add_argument("run", help="run directory written by `train`")
    parser.add_argument("--output", help="the pruned run directory (default <RUN>-pruned<percent> beside RUN)")
    parser.add_argument("--sparsity", type=_fraction, default=0.5, metavar="S",
                        help="share of each encoder kernel set to zero, in (0, 1): e.g. 0.5, 0.7, 0.9 "
                             "(default 0.5)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training split (default 1)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak AdamW rate, decaying linearly to 0 (default half the run's rate)")
    parser.add_argument("--schedule", choices=SCHEDULES, default="polynomial",
                        help="polynomial: sparsity rises gradually over the first two thirds of the steps; "
                             "constant: the target from the first step (default polynomial)")
    from_run.add_data_arguments(parser, "the run's {split} file, if it moved since training (default: the path "
                                        "in its run_config.json)")
    return parser


def run(args):
    """Checks the settings, prunes, and prints the sparsity, sizes and metric; returns the `RunResult`."""
    from kerastune_nlp.cli import console
    from kerastune_nlp.pruning import check_settings, default_output, prune_run
    from kerastune_nlp.runs import staging
    from kerastune_nlp.runs.manifest import read_manifest

    check_settings(args.sparsity, args.epochs, args.learning_rate, args.schedule)
    manifest = read_manifest(args.run)
    output = Path(args.output) if args.output else default_output(args.run, args.sparsity)
    staging.check_output(output, args.overwrite)
    data_config = from_run.data_config(args, manifest)
    print(f"Pruning {args.run} to {args.sparsity:.0%} sparsity: {args.epochs} epoch(s), {args.schedule} schedule",
          flush=True)
    result = prune_run(args.run, output, sparsity=args.sparsity, epochs=args.epochs,
                       learning_rate=args.learning_rate, schedule=args.schedule, data_config=data_config,
                       overwrite=args.overwrite, verbose=console.fit_verbosity())
    print()
    print(format_summary(result.metrics["pruning"]))
    print(f"\nPruned run directory: {result.run_dir}")
    return result


def format_summary(pruning: dict) -> str:
    """The pruning block as a few lines: sparsity, sizes, metric before and after."""
    kernels = list(pruning["kernels"].values())
    gzip, size = pruning["gzip_bytes"], pruning["size_bytes"]
    lines = [
        f"sparsity: target {pruning['target_sparsity']:.2%}; {len(kernels)} encoder kernels "
        f"{min(kernels):.2%} to {max(kernels):.2%} (overall {pruning['overall_sparsity']:.2%}; whole model "
        f"{pruning['model_sparsity']:.2%} of {pruning['model_parameters']:,} weights)",
        f"weights file: {size['before'] / 1e6:.1f} MB -> {size['after'] / 1e6:.1f} MB; gzip "
        f"{gzip['before'] / 1e6:.1f} MB -> {gzip['after'] / 1e6:.1f} MB ({gzip['ratio']:.1%})",
    ]
    name = pruning["metric"]["name"]
    for split in ("dev", "test"):
        values, headline = pruning["metric"][split], pruning["headline"][split]
        if values["source"] is not None and values["pruned"] is not None:
            lines.append(f"{split} {name}: {values['source']:.4f} -> {values['pruned']:.4f} "
                         f"({100 * values['change']:+.2f} points)")
        elif headline["pruned"]:
            lines.append(f"{split}: {headline['source']} -> {headline['pruned']}")
    return "\n".join(lines)
