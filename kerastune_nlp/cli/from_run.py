"""Flags and checks of the commands that start from a finished run and write a new one (distill, prune)."""

from __future__ import annotations

import argparse
import dataclasses

SPLITS = ("train", "dev", "test")


def add_data_arguments(parser: argparse.ArgumentParser, split_help: str) -> None:
    """`--train/--dev/--test FILE` (the run's data, if it moved) and `--overwrite`.

    Args:
        split_help: str. Help of each split flag, with `{split}` in it.
    """
    for split in SPLITS:
        parser.add_argument(f"--{split}", metavar="FILE", default=None, help=split_help.format(split=split))
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing RUN directory at --output (anything else is refused)")


def data_config(args: argparse.Namespace, manifest):
    """The run's `DataConfig` with the split files given on the command line, or None when none was given."""
    moved = {split: getattr(args, split) for split in SPLITS if getattr(args, split)}
    return dataclasses.replace(manifest.data, **moved) if moved else None
