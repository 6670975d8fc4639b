"""`kerastune-nlp distill TEACHER_RUN`: knowledge distillation into a smaller student run directory.

    kerastune-nlp distill saved_models/wnut17                       # half the teacher's blocks
    kerastune-nlp distill saved_models/wnut17 --student-layers 2 --temperature 4 --alpha 0.3
    kerastune-nlp distill saved_models/trec --student-backbone path/to/small-bert --epochs 5

Settings and the teacher's manifest are checked before TensorFlow loads, so a
bad flag or folder is refused in about a second.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kerastune_nlp.cli import from_run

DESCRIPTION = (
    "Distil a fine-tuned run (the teacher) into a smaller student for the same task: the student learns from "
    "the gold labels and from the teacher's temperature-softened outputs, mixed by --alpha. The student is a "
    "subset of the teacher's encoder blocks (default half of them, initialised from the fine-tuned teacher) or "
    "a smaller pretrained backbone with the teacher's tokenizer. The result is a normal run directory "
    "(evaluate, predict, export and serve read it) whose metrics.json compares teacher and student: "
    "parameters, size, CPU latency at batch 1 and the task metric. Rerun an interrupted command to resume."
)


def _layers(text: str) -> tuple:
    from kerastune_nlp.distillation.students import parse_layer_list
    from kerastune_nlp.errors import ConfigError

    try:
        return parse_layer_list(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(commands) -> argparse.ArgumentParser:
    """Adds the `distill` subcommand to an argparse subparsers object."""
    parser = commands.add_parser("distill", help="distil a run directory into a smaller, faster student run",
                                 description=DESCRIPTION)
    parser.add_argument("teacher", metavar="TEACHER_RUN", help="run directory written by `train` (any task)")
    parser.add_argument("--output", help="the student run directory (default <TEACHER_RUN>-student<N>l beside it)")
    student = parser.add_argument_group("student (one of; default: half the teacher's blocks)")
    student.add_argument("--student-layers", type=int, metavar="N",
                         help="keep N of the teacher's encoder blocks, evenly spread, the top one kept "
                              "(ModernBERT: block 0 kept too)")
    student.add_argument("--keep-layers", type=_layers, metavar="I,J,...",
                         help="keep exactly these blocks (0-based, e.g. 0,2,4)")
    student.add_argument("--student-backbone", metavar="NAME_OR_DIR",
                         help="a smaller pretrained backbone with the teacher's tokenizer (new head)")
    student.add_argument("--student-init", choices=("teacher", "pretrained"), default="teacher",
                         help="layer subsets: start from the fine-tuned teacher's blocks and head (default), or "
                              "from the teacher's pretrained backbone with a new head")
    loss = parser.add_argument_group("loss")
    loss.add_argument("--temperature", type=float, default=2.0,
                      help="softens both models' outputs in the teacher's term (default 2)")
    loss.add_argument("--alpha", type=float, default=0.5,
                      help="weight of the gold-label loss in [0, 1]; the teacher's term gets 1 - alpha; 1 trains "
                           "without the teacher (default 0.5)")
    training = parser.add_argument_group("training (default: the teacher's recipe)")
    training.add_argument("--epochs", type=int)
    training.add_argument("--learning-rate", type=float)
    training.add_argument("--batch-size", type=int)
    training.add_argument("--seed", type=int)
    from_run.add_data_arguments(parser, "{split} file (default: the teacher's, from its run_config.json); its "
                                        "labels must be the teacher's")
    return parser


def default_output(teacher: str, layers: int | None) -> Path:
    teacher = Path(teacher)
    return teacher.with_name(f"{teacher.name}-student{layers}l" if layers else f"{teacher.name}-student")


def run(args):
    """Checks the settings, distils, and prints the teacher/student table; returns the `RunResult`."""
    from kerastune_nlp.cli import console
    from kerastune_nlp.distillation.distill import DistillConfig, student_train_config
    from kerastune_nlp.runs import staging
    from kerastune_nlp.runs.manifest import read_manifest

    config = DistillConfig(student_layers=args.student_layers, keep_layers=args.keep_layers,
                           student_backbone=args.student_backbone, student_init=args.student_init,
                           temperature=args.temperature, alpha=args.alpha)
    manifest = read_manifest(args.teacher)
    overrides = {name: getattr(args, name) for name in ("epochs", "learning_rate", "batch_size", "seed")
                 if getattr(args, name) is not None}
    train_config = student_train_config(manifest.train, overrides)  # checks the values
    layers = args.student_layers or (len(args.keep_layers) if args.keep_layers else None)
    output = Path(args.output) if args.output else default_output(args.teacher, layers)
    staging.check_output(output, args.overwrite)
    args.staging_hint = staging.partial_path(output)
    data_config = from_run.data_config(args, manifest)
    print(f"Distilling {args.teacher} ({manifest.task}) into {output}: temperature {config.temperature}, alpha "
          f"{config.alpha}; {train_config.epochs} epochs, batch {train_config.batch_size}, lr "
          f"{train_config.learning_rate}", flush=True)
    from kerastune_nlp.distillation import distill
    from kerastune_nlp.distillation.report import format_report

    result = distill(args.teacher, output, config=config, train_overrides=overrides, data_config=data_config,
                     overwrite=args.overwrite, verbose=console.fit_verbosity())
    block = result.metrics["distillation"]
    print(f"\nStudent: {block['recipe']['description']}")
    print(format_report(block))
    print(f"\nStudent run directory: {result.run_dir}")
    return result
