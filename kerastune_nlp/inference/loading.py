"""Reading what a saved model is made of, before a `Predictor` is built (see `inference.predictor`).

The task (with its fitted state) of a run or an export, an export's sidecar
facts and tokenizer folder, its backbone config: plain files, no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.inference.artifacts import (
    EXPORT_MARKER,
    EXPORT_TOKENIZER,
    SAVEDMODEL_SIDECAR,
    SAVEDMODEL_TOKENIZER,
    ResolvedArtifact,
)


def read_task(artifact: ResolvedArtifact):
    """The task (with its fitted state) of a resolved PATH, from its manifest or sidecar: no TensorFlow."""
    from kerastune_nlp.runs.manifest import read_manifest
    from kerastune_nlp.tasks import get_task

    if artifact.kind == "run":
        manifest = read_manifest(artifact.path)
        return get_task(manifest.task)(manifest.task_config, manifest.task_state)
    return task_of(sidecar_of(artifact)[0], artifact.target)


def sidecar_of(artifact: ResolvedArtifact) -> tuple[dict, Path]:
    """The export's facts and tokenizer folder: inside a SavedModel version, else beside the model file."""
    if artifact.kind in ("tflite", "onnx"):
        return _read_json(artifact.export_dir / EXPORT_MARKER), artifact.export_dir / EXPORT_TOKENIZER
    return _read_json(artifact.version / SAVEDMODEL_SIDECAR), artifact.version / SAVEDMODEL_TOKENIZER


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirectoryError(f"{str(path)!r} is missing: the artifact was not exported by kerastune-nlp, or "
                                "was copied without it. Export it again with `kerastune-nlp export`.") from None
    except ValueError as error:
        raise RunDirectoryError(f"{str(path)!r} is not valid JSON ({error}). Export the model again.") from error


def task_of(sidecar: dict, artifact: Path):
    import kerastune_nlp.config as cfg
    from kerastune_nlp.runs.manifest import _with_old_defaults
    from kerastune_nlp.tasks import get_task

    task_class = get_task(sidecar["task"])
    task_config = cfg.from_dict(task_class.config_class, _with_old_defaults(task_class, sidecar.get("task_config")),
                                str(artifact))
    return task_class(task_config, sidecar.get("task_state") or {})


def load_tokenizer(directory: Path):
    from kerastune_nlp.models import backbones

    if not directory.is_dir():
        raise RunDirectoryError(f"The tokenizer folder {str(directory)!r} is missing; export the model again.")
    return backbones.load_tokenizer(directory)


def backbone_config_of(sidecar: dict):
    from kerastune_nlp.backbones.config import parse_config

    values = dict(sidecar.get("backbone_config") or {})
    return parse_config(values, source="the export's backbone_config") if values.get("model_type") else None
