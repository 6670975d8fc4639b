"""Reading a finished run's data again, for stages that continue from it (pruning, distillation)."""

from __future__ import annotations

import logging
from pathlib import Path

from kerastune_nlp.errors import DataFileNotFoundError, RunDirectoryError

logger = logging.getLogger("kerastune_nlp.runs")


def check_data_files(run_dir, data, settings_from: str, fix) -> None:
    """Refuses, before any reading, a data file of the run that is no longer where the run says.

    Args:
        run_dir: the run directory (named in the message).
        data: the `DataConfig` whose `train`/`dev`/`test` files are read.
        settings_from: str. Where those paths came from ("run_config.json").
        fix: callable, split name -> the sentence saying how to point at the file.
    """
    for name in ("train", "dev", "test"):
        path = getattr(data, name)
        if path and not Path(path).exists():
            raise DataFileNotFoundError(
                f"The run {str(run_dir)!r} was trained on {path!r}, which no longer exists. Received: "
                f"`{name}`={path!r} from its {settings_from}. {fix(name)}"
            )


def changed_splits(task, splits: dict, fingerprint: dict) -> list[str]:
    """The splits whose examples differ from the ones the run recorded (its fingerprint's hashes)."""
    from kerastune_nlp.runs.owned_folder import digest

    return [name for name in ("train", "dev", "test")
            if splits.get(name) and fingerprint.get(f"data.{name}") is not None
            and fingerprint[f"data.{name}"] != digest([task.example_record(e) for e in splits[name]])]


def load_run_splits(task, manifest, run_dir: Path, data_config, purpose: str,
                    given: dict) -> tuple[dict, object, bool]:
    """A run's splits (re-read from its data settings, or given) and whether they are the run's own.

    Args:
        task: the run's task, with its state (labels): examples with labels it
            does not know are refused.
        manifest: the run's `Manifest`.
        data_config: `DataConfig` or None (the run's own settings).
        purpose: str. What the splits are for ("Pruning"), for the log.
        given: dict of example lists (`train`, `dev`, `test`), or empty.

    Returns:
        `(splits, data_config, matches)`.
    """
    from kerastune_nlp.runs.owned_folder import digest

    data = data_config or manifest.data
    if given.get("train") is not None:
        splits = {name: list(given.get(name) or []) for name in ("train", "dev", "test")}
        source = "the examples passed in"
    else:
        check_data_files(run_dir, data, "data settings" if data_config else "run_config.json",
                         lambda name: f"Pass the file's new place with --{name} (Python: `data_config=`).")
        splits, _ = task.load_splits(data, manifest.train.seed)
        source = f"{data.train!r}" if data.train else (data.dataset or "the task's bundled data set")
    task.check_splits(splits)
    for name in ("train", "dev", "test"):
        if splits.get(name):
            task.check_examples(splits[name], name)
    expected = manifest.fingerprint.get("data.train")
    matches = expected is None or expected == digest([task.example_record(e) for e in splits["train"]])
    if not matches and data_config is None and given.get("train") is None:
        raise RunDirectoryError(
            f"The training data read again for {str(run_dir)!r} is not what it was trained on. Expected the "
            f"run's own {len(splits['train'])}-example training split. Received: different examples from "
            f"{source} (their hash differs from the run's fingerprint). Pass the data it was trained on: "
            "--train/--dev/--test FILE (Python: `data_config=`, or `train=`, `dev=`, `test=` example lists; "
            "a run trained on examples passed from Python needs them passed again)."
        )
    if not matches:
        logger.warning("%s %s on other training data than it was trained on (%s).", purpose, run_dir, source)
    return splits, data, matches
