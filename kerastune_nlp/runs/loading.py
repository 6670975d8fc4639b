"""`load_run(path)`: any finished run directory -> a `Predictor` for its task."""

from __future__ import annotations

from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.runs.layout import RunLayout
from kerastune_nlp.runs.manifest import read_manifest


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
    from kerastune_nlp.errors import BackboneError
    from kerastune_nlp.models import backbones
    from kerastune_nlp.predictor import Predictor

    layout = RunLayout(Path(path))
    try:
        config = parse_config(layout / RunLayout.BACKBONE_CONFIG / "config.json")
    except BackboneError as error:
        raise RunDirectoryError(f"Cannot read the backbone config in {str(layout.root)!r}: {error}. "
                                "The run directory is damaged; retrain it.") from error
    tokenizer = backbones.load_tokenizer(layout / RunLayout.TOKENIZER)
    backbone = backbones.build_backbone_model(config)
    dropout = manifest.model.dropout if manifest.model.dropout is not None else backbones.hidden_dropout(config)
    model = task.build_model(backbone, tokenizer.model_input_names, dropout=dropout,
                             initializer_range=getattr(config, "initializer_range", 0.02))
    load_weights(model, layout.weights)
    return Predictor(task, model, tokenizer, config, manifest.data.max_length, batch_size=batch_size), backbone


def load_weights(model, weights: Path) -> None:
    """Loads HDF5 weights, turning a damaged file into an error that says so."""
    try:
        model.load_weights(str(weights))
    except (OSError, ValueError, KeyError) as error:
        size = weights.stat().st_size if weights.exists() else 0
        raise RunDirectoryError(
            f"Cannot load the weights {str(weights)!r} ({size} bytes): {type(error).__name__}: "
            f"{str(error)[:200]}. The file is truncated or not this run's model; copy it again from "
            "where the run was written, or retrain."
        ) from error
