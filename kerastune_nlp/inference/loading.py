"""`load_predictor(path)`: a run directory or any exported artifact -> a `Predictor` with one API.

PATH is read by `artifacts.resolve_path` (its docstring lists the forms).
A run directory is rebuilt as its Keras model (`load_run`); an artifact
answers through the `ids` signature (or the file's one function) on the
same Python tokenization as the run, so it gives the run's labels; the
task, labels and tokenizer come from the export's sidecar.
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
    resolve_path,
)
from kerastune_nlp.runs.layout import RunLayout


def load_predictor(path, batch_size: int = 32, cache_size: int = 1024, threads: int | None = None):
    """Loads any model this package wrote, for `predict`, `predict_entities` and `serve`.

    Args:
        path: str or Path. Any form `resolve_path` accepts.
        batch_size: int. Rows per model call. Defaults to 32.
        cache_size: int. Recent answers kept (LRU); 0 disables. Defaults to 1024.
        threads: int or None. Threads for TFLite / ONNX Runtime (None: their default).

    Returns:
        A `Predictor` (an `ArtifactPredictor` for exported files).
    """
    artifact = resolve_path(path)
    if artifact.kind == "run":
        predictor = load_run(artifact.path, batch_size=batch_size)
        predictor.source = {"kind": "run", "path": str(artifact.path)}
    else:
        predictor = _artifact_predictor(artifact, batch_size, threads)
    predictor.cache.capacity = cache_size
    return predictor


def load_run(path, batch_size: int = 32):
    """Rebuilds the trained model of a run directory; needs no pretrained backbone files.

    Args:
        path: str or Path. A folder `kerastune-nlp train` (or `kt.train`) wrote.
        batch_size: int. Rows per prediction batch. Defaults to 32.

    Returns:
        A `Predictor` whose `predict` / `evaluate` speak the run's task.

    Example:
    >>> predictor = load_run("saved_models/trec")
    >>> predictor.predict(["Who wrote Hamlet ?"])
    ['HUM']
    """
    from kerastune_nlp.runs.manifest import read_manifest
    from kerastune_nlp.tasks import get_task

    manifest = read_manifest(RunLayout(Path(path)).root)
    task = get_task(manifest.task)(manifest.task_config, manifest.task_state)
    predictor, _ = rebuild_model(task, manifest, path, batch_size)
    return predictor


def rebuild_model(task, manifest, path, batch_size: int = 32):
    """A run's Keras model rebuilt from its backbone config (with the run's dropout) and weights.

    Returns:
        `(predictor, backbone)`: a `Predictor` over the model, and the
        backbone layer inside it (for stages that fine-tune or prune it).
    """
    from kerastune_nlp.backbones.config import parse_config
    from kerastune_nlp.backbones.initializers import skip_initialization
    from kerastune_nlp.errors import BackboneError
    from kerastune_nlp.models import backbones
    from kerastune_nlp.predictor import Predictor
    from kerastune_nlp.runs.weights import load_weights

    layout = RunLayout(Path(path))
    try:
        config = parse_config(layout / RunLayout.BACKBONE_CONFIG / "config.json")
    except BackboneError as error:
        raise RunDirectoryError(f"Cannot read the backbone config in {str(layout.root)!r}: {error}. "
                                "The run directory is damaged; retrain it.") from error
    tokenizer = backbones.load_tokenizer(layout / RunLayout.TOKENIZER)
    # Every encoder weight is read from the run's weights below: skip the random draws
    # (22.6M truncated-normal values for MiniLM, about 0.6 s of a 2-core predict start-up).
    with skip_initialization():
        backbone = backbones.build_backbone_model(config)
    dropout = manifest.model.dropout if manifest.model.dropout is not None else backbones.hidden_dropout(config)
    model = task.build_model(backbone, tokenizer.model_input_names, dropout=dropout,
                             initializer_range=getattr(config, "initializer_range", 0.02))
    load_weights(model, layout.weights, backbone)
    return Predictor(task, model, tokenizer, config, manifest.data.max_length, batch_size=batch_size), backbone


def read_task(artifact: ResolvedArtifact):
    """The task (with its fitted state) of a resolved PATH, from its manifest or sidecar: no TensorFlow."""
    from kerastune_nlp.runs.manifest import read_manifest
    from kerastune_nlp.tasks import get_task

    if artifact.kind == "run":
        manifest = read_manifest(artifact.path)
        return get_task(manifest.task)(manifest.task_config, manifest.task_state)
    return _task_of(_sidecar(artifact)[0], artifact.target)


def _sidecar(artifact: ResolvedArtifact) -> tuple[dict, Path]:
    """The export's facts and tokenizer folder: inside a SavedModel version, else beside the model file."""
    if artifact.kind in ("tflite", "onnx"):
        return _read_json(artifact.export_dir / EXPORT_MARKER), artifact.export_dir / EXPORT_TOKENIZER
    return _read_json(artifact.version / SAVEDMODEL_SIDECAR), artifact.version / SAVEDMODEL_TOKENIZER


def _artifact_predictor(artifact: ResolvedArtifact, batch_size: int, threads):
    from kerastune_nlp.inference.runners import ArtifactPredictor, OnnxRunner, SavedModelRunner, TFLiteRunner

    sidecar, tokenizer_dir = _sidecar(artifact)
    if artifact.kind == "tflite":
        runner = TFLiteRunner(artifact.path, threads)
    elif artifact.kind == "onnx":
        runner = OnnxRunner(artifact.path, threads)
    else:
        runner = SavedModelRunner(artifact.version)
    predictor = ArtifactPredictor(_task_of(sidecar, artifact.target), runner, _tokenizer(tokenizer_dir),
                                  _backbone_config(sidecar), int(sidecar["max_length"]), batch_size)
    predictor.source = {"kind": runner.kind, "path": str(artifact.target)}
    return predictor


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirectoryError(f"{str(path)!r} is missing: the artifact was not exported by kerastune-nlp, or "
                                "was copied without it. Export it again with `kerastune-nlp export`.") from None
    except ValueError as error:
        raise RunDirectoryError(f"{str(path)!r} is not valid JSON ({error}). Export the model again.") from error


def _task_of(sidecar: dict, artifact: Path):
    import kerastune_nlp.config as cfg
    from kerastune_nlp.runs.manifest import _with_old_defaults
    from kerastune_nlp.tasks import get_task

    task_class = get_task(sidecar["task"])
    task_config = cfg.from_dict(task_class.config_class, _with_old_defaults(task_class, sidecar.get("task_config")),
                                str(artifact))
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
