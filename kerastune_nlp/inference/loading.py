"""`load_predictor(path)`: a run directory or any exported artifact -> a `Predictor` with one API.

What it accepts:

    <run>/                          a run directory (`kerastune-nlp train`)
    <export>/serving/<name>/<v>/    a SavedModel version folder (`kerastune-nlp export`)
    <export>/serving/<name>/        a TF Serving model folder: its highest version
    <export>/                       an export folder with one served model: its highest version
    <export>/tflite/model-*.tflite  a TFLite file (LiteRT)
    <export>/onnx/model*.onnx       an ONNX file (ONNX Runtime)

An artifact answers through the `ids` signature (or the file's one
function) on the same Python tokenization as the run, so it gives the run's
labels; the task, labels and tokenizer come from the export's sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.export.exporter import EXPORT_MARKER
from kerastune_nlp.export.savedmodel import SIDECAR as SAVEDMODEL_SIDECAR
from kerastune_nlp.export.savedmodel import SIDECAR_TOKENIZER as SAVEDMODEL_TOKENIZER
from kerastune_nlp.runs.layout import RunLayout

# What a version folder holds once it is completely written (TF Serving's
# own test, plus our sidecar): half-copied folders are never loaded.
REQUIRED_FILES = ("saved_model.pb", "variables/variables.index", SAVEDMODEL_SIDECAR)
WHAT_IS_ACCEPTED = ("a run directory, a SavedModel version folder (serving/<name>/<version>), a TF Serving model "
                    "folder, an export folder, a .tflite or an .onnx file written by kerastune-nlp")


def load_predictor(path, batch_size: int = 32, cache_size: int = 1024, threads: int | None = None):
    """Loads any model this package wrote, for `predict`, `predict_entities` and `serve`.

    Args:
        path: str or Path. See the module docstring for what is accepted.
        batch_size: int. Rows per model call. Defaults to 32.
        cache_size: int. Recent answers kept (LRU); 0 disables. Defaults to 1024.
        threads: int or None. Threads for TFLite / ONNX Runtime (None: their default).

    Returns:
        A `Predictor` (an `ArtifactPredictor` for exported files).
    """
    from kerastune_nlp.runs.loading import load_run

    path = Path(path)
    if not path.exists():
        raise RunDirectoryError(f"{str(path)!r} does not exist. Pass {WHAT_IS_ACCEPTED}.")
    if path.is_dir() and (path / RunLayout.MANIFEST).is_file():
        predictor = load_run(path, batch_size=batch_size)
        predictor.cache.capacity = cache_size
        predictor.source = {"kind": "run", "path": str(path)}
        return predictor
    artifact = resolve_artifact(path)
    return _artifact_predictor(artifact, batch_size, cache_size, threads)


def resolve_artifact(path: Path) -> Path:
    """The SavedModel version folder or model file that `path` names (highest version of a model folder)."""
    if path.is_file():
        if path.suffix in (".tflite", ".onnx"):
            return path
        raise RunDirectoryError(f"{str(path)!r} is not a model file (expected .tflite or .onnx). Pass "
                                f"{WHAT_IS_ACCEPTED}.")
    if (path / "saved_model.pb").is_file():
        return path
    versions = numbered_versions(path)
    if versions:
        return versions[-1]
    models = [m for m in sorted((path / "serving").glob("*")) if m.is_dir() and numbered_versions(m)] \
        if (path / EXPORT_MARKER).is_file() else []
    if len(models) == 1:
        return numbered_versions(models[0])[-1]
    if len(models) > 1:
        raise RunDirectoryError(f"{str(path)!r} holds several served models ({[m.name for m in models]}); pass "
                                f"one of them, e.g. {str(models[0])!r}.")
    raise RunDirectoryError(f"{str(path)!r} is not something kerastune-nlp can load (no run_config.json, "
                            f"saved_model.pb or numbered version folders). Pass {WHAT_IS_ACCEPTED}.")


def is_complete_version(folder: Path) -> bool:
    """An all-digit version folder holding every `REQUIRED_FILES` (staging names are not digits)."""
    return folder.name.isdigit() and all((folder / name).is_file() for name in REQUIRED_FILES)


def numbered_versions(model_dir: Path) -> list[Path]:
    """Complete SavedModel version folders of a TF Serving model folder, lowest first."""
    if not model_dir.is_dir():
        return []
    return sorted((p for p in model_dir.iterdir() if p.is_dir() and is_complete_version(p)), key=lambda p: int(p.name))


def _artifact_predictor(artifact: Path, batch_size: int, cache_size: int, threads):
    from kerastune_nlp.export import runners

    if artifact.is_dir():
        sidecar, tokenizer_dir = _read_json(artifact / SAVEDMODEL_SIDECAR), artifact / SAVEDMODEL_TOKENIZER
        runner = runners.SavedModelRunner(artifact)
    else:
        root = _export_root(artifact)
        sidecar, tokenizer_dir = _read_json(root / EXPORT_MARKER), root / "tokenizer"
        runner = runners.TFLiteRunner(artifact, threads) if artifact.suffix == ".tflite" else \
            runners.OnnxRunner(artifact, threads)
    predictor = runners.ArtifactPredictor(_task_of(sidecar, artifact), runner, _tokenizer(tokenizer_dir),
                                          _backbone_config(sidecar), int(sidecar["max_length"]), batch_size)
    predictor.cache.capacity = cache_size
    predictor.source = {"kind": runner.kind, "path": str(artifact)}
    return predictor


def _export_root(artifact: Path) -> Path:
    """The export folder above a .tflite / .onnx file (it holds the sidecar and the tokenizer)."""
    for folder in (artifact.parent, artifact.parent.parent):
        if (folder / EXPORT_MARKER).is_file():
            return folder
    raise RunDirectoryError(f"No {EXPORT_MARKER} beside or above {str(artifact)!r}: the file must stay inside the "
                            "folder `kerastune-nlp export` wrote (it holds the task, labels and tokenizer).")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirectoryError(f"{str(path)!r} is missing: the artifact was not exported by kerastune-nlp, or "
                                "was copied without it. Export it again with `kerastune-nlp export`.") from None
    except ValueError as error:
        raise RunDirectoryError(f"{str(path)!r} is not valid JSON ({error}). Export the model again.") from error


def _task_of(sidecar: dict, artifact: Path):
    from kerastune_nlp import config as cfg
    from kerastune_nlp.runs.manifest import _with_old_defaults
    from kerastune_nlp.tasks import get_task

    task_class = get_task(sidecar["task"])
    where = str(artifact)
    task_config = cfg.from_dict(task_class.config_class, _with_old_defaults(task_class, sidecar.get("task_config")),
                                where)
    return task_class(task_config, sidecar.get("task_state") or {})


def _tokenizer(directory: Path):
    from kerastune_nlp.models import backbones

    if not directory.is_dir():
        raise RunDirectoryError(f"The tokenizer folder {str(directory)!r} is missing; export the model again.")
    return backbones.load_tokenizer(directory)


def _backbone_config(sidecar: dict):
    from kerastune_nlp.backbones.config import parse_config

    values = dict(sidecar.get("backbone_config") or {})
    return parse_config(values, source="the export's backbone_config") if values.get("model_type") else None
