"""The run manifest (`run_config.json`): written when a run finishes, read by everything after.

It holds the task, every setting (one section per config dataclass), what
the task learned from the training set (labels, threshold, scaling), the
file list and the package version. `kerastune-nlp train --config` accepts it
as a config file, so a run can be reproduced from its own directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from kerastune_nlp import config as cfg
from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.runs.layout import RunLayout, file_list, write_json
from kerastune_nlp.runs.staging import MANIFEST_KIND

MANIFEST_VERSION = 1
# Keys a manifest carries beyond a config file's; a config reader skips them.
RECORD_ONLY_KEYS = ("kind", "manifest_version", "package_version", "created", "task_state", "files",
                    "backbone_directory", "fingerprint", "output")


@dataclasses.dataclass
class Manifest:
    """What a run directory is.

    Args:
        task: str. The task name.
        data, model, train: the shared `DataConfig`, `ModelConfig`, `TrainConfig`.
        task_config: the task's own config dataclass.
        task_state: dict. What the task learned from the training set.
        backbone_directory: str. Where the pretrained backbone was read from.
        files: list of str. Every file of the run, relative.
        package_version: str. The kerastune_nlp version that wrote it.
    """

    task: str
    data: cfg.DataConfig
    model: cfg.ModelConfig
    train: cfg.TrainConfig
    task_config: object
    task_state: dict
    backbone_directory: str = ""
    files: list = dataclasses.field(default_factory=list)
    package_version: str = ""
    fingerprint: dict = dataclasses.field(default_factory=dict)
    output: str = ""

    def to_dict(self) -> dict:
        return {
            "kind": MANIFEST_KIND,
            "manifest_version": MANIFEST_VERSION,
            "package_version": self.package_version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "task": self.task,
            "output": self.output,
            "data": data_with_absolute_paths(cfg.to_dict(self.data)),
            "model": cfg.to_dict(self.model),
            "train": cfg.to_dict(self.train),
            "task_config": cfg.to_dict(self.task_config),
            "task_state": self.task_state,
            "backbone_directory": self.backbone_directory,
            "fingerprint": self.fingerprint,
            "files": self.files,
        }


def data_with_absolute_paths(data: dict) -> dict:
    """The data section with its files as absolute paths.

    Stages that read a run's data again (export, prune, distill) run from
    any directory; `train.txt` as typed would only be found from the one the
    run was trained in. A local `dataset` folder is made absolute too; a hub
    id is left as it is.
    """
    data = dict(data)
    for key in ("train", "dev", "test"):
        if data.get(key):
            data[key] = os.path.abspath(data[key])
    if data.get("dataset") and Path(data["dataset"]).exists():
        data["dataset"] = os.path.abspath(data["dataset"])
    return data


def write_manifest(layout: RunLayout, manifest: Manifest) -> None:
    """Writes the manifest last, listing every other file of the run."""
    from kerastune_nlp.version import __version__

    manifest.package_version = __version__
    manifest.files = [f for f in file_list(layout.root) if f not in layout.staging_only
                      and not f.startswith(RunLayout.BACKUP + "/")] + [RunLayout.MANIFEST]
    write_json(layout.manifest, manifest.to_dict())


def read_manifest(path) -> Manifest:
    """Reads and checks a run directory's manifest."""
    from kerastune_nlp.tasks import get_task

    layout = RunLayout(Path(path))
    if not layout.root.is_dir():
        raise RunDirectoryError(
            f"{str(layout.root)!r} is not a run directory (no such folder). Pass a folder that "
            "`kerastune-nlp train` wrote."
        )
    try:
        payload = json.loads(layout.manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirectoryError(
            f"{str(layout.root)!r} is not a run directory (no {RunLayout.MANIFEST}). Pass a folder that "
            "`kerastune-nlp train` wrote; an interrupted run lives in <run>.partial and is finished by "
            "rerunning its command."
        ) from None
    except ValueError as error:
        raise RunDirectoryError(f"{str(layout.manifest)!r} is not valid JSON ({error}); the run directory "
                                "is damaged. Retrain it.") from error
    if payload.get("kind") != MANIFEST_KIND:
        raise RunDirectoryError(
            f"{str(layout.manifest)!r} was not written by kerastune-nlp {MANIFEST_VERSION}-format runs "
            "(no `kind` marker). Retrain with this version."
        )
    missing = [f for f in payload.get("files", []) if not (layout.root / f).exists()]
    if missing:
        raise RunDirectoryError(
            f"The run directory {str(layout.root)!r} is incomplete: missing {missing[:5]}. Restore the "
            "files or retrain."
        )
    task_class = get_task(payload["task"])
    where = str(layout.manifest)
    return Manifest(
        task=payload["task"],
        data=cfg.from_dict(cfg.DataConfig, payload.get("data"), where),
        model=cfg.from_dict(cfg.ModelConfig, payload.get("model"), where),
        train=cfg.from_dict(cfg.TrainConfig, payload.get("train"), where),
        task_config=cfg.from_dict(task_class.config_class, _with_old_defaults(task_class, payload.get("task_config")),
                                  where),
        task_state=payload.get("task_state") or {},
        backbone_directory=payload.get("backbone_directory", ""),
        files=payload.get("files", []),
        package_version=payload.get("package_version", ""),
        fingerprint=payload.get("fingerprint") or {},
        output=payload.get("output", ""),
    )


# Settings added after runs were written, with the value those runs were trained with.
_OLD_DEFAULTS = {"truncation": "head", "context_size": 0}


def _with_old_defaults(task_class, values):
    """A run written before a setting existed keeps the behaviour it was trained with (not today's default)."""
    if not isinstance(values, dict):
        return values
    own = {f.name for f in dataclasses.fields(task_class.config_class)} if dataclasses.is_dataclass(
        task_class.config_class) else set()
    return {**{k: v for k, v in _OLD_DEFAULTS.items() if k in own and k not in values}, **values}
