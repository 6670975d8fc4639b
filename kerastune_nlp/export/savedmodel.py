"""SavedModel in the layout TF Serving loads: `<base>/<model_name>/<version>/`.

A version folder appears only complete and verified: the model is saved
into a hidden staging folder beside `<base>/<model_name>` (TF Serving only
looks at numeric folder names), loaded back, run, compared with the Keras
model, and only then renamed into place. A crash or a full disk leaves at
most the hidden folder, which the next export removes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from kerastune_nlp.errors import ConfigError, RunDirectoryError
from kerastune_nlp.inference.artifacts import SAVEDMODEL_SIDECAR, SAVEDMODEL_TOKENIZER

STAGING_PREFIX = ".staging-"


def next_version(model_dir: Path) -> int:
    """One more than the highest numeric version folder (1 for a new model)."""
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] \
        if model_dir.is_dir() else []
    return max(versions, default=0) + 1


def version_folder(base: Path, name: str, version: int | None, overwrite: bool) -> tuple[Path, int]:
    """Where version `version` goes, refusing an existing one unless `overwrite`."""
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ConfigError(f"Expected a model name of letters, digits, '-', '_' or '.'. Received: --name {name!r}.")
    model_dir = base / name
    if version is None:
        version = next_version(model_dir)
    if version < 1:
        raise ConfigError(f"Expected a positive version number. Received: --version {version}.")
    target = model_dir / str(version)
    if target.exists():
        if not overwrite:
            raise RunDirectoryError(f"The version folder {str(target)!r} already exists, and TF Serving may be "
                                    "serving it. Pass a new --version (or none, for the next number), or "
                                    "--overwrite to replace it.")
        if not (target / "saved_model.pb").is_file():
            raise RunDirectoryError(f"{str(target)!r} is not a SavedModel version folder (no saved_model.pb); "
                                    "refusing to replace it. Move it away or choose another --version.")
    return target, version


def write_saved_model(module, signatures: dict, target: Path, sidecar: dict, tokenizer, verify) -> Path:
    """Saves, verifies with `verify(loaded)` and renames into `target` atomically.

    Args:
        module: the `ServingModule`.
        signatures: concrete functions by signature name.
        target: the final `<base>/<name>/<version>` folder.
        sidecar: JSON facts a Predictor needs to read the model back (task, labels ...).
        tokenizer: the HF tokenizer, saved beside for clients that tokenize themselves.
        verify: callable(staged folder) -> None; loads and checks it, raises to stop the export.
    """
    from kerastune_nlp._tf import tf

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent.parent / f"{STAGING_PREFIX}{target.parent.name}-{target.name}-{os.getpid()}"
    for stale in target.parent.parent.glob(f"{STAGING_PREFIX}{target.parent.name}-{target.name}-*"):
        shutil.rmtree(stale)  # our own hidden leftovers of a crashed export
    try:
        tf.saved_model.save(module, str(staging), signatures=signatures)
        (staging / "assets.extra").mkdir(exist_ok=True)
        (staging / SAVEDMODEL_SIDECAR).write_text(json.dumps(sidecar, indent=2))
        tokenizer.save_pretrained(str(staging / SAVEDMODEL_TOKENIZER))
        verify(staging)
        if target.exists():
            retired = target.parent.parent / f"{STAGING_PREFIX}retired-{target.parent.name}-{target.name}"
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def write_serving_config(base: Path, names: list[str], batching: dict) -> list[Path]:
    """TF Serving's model config list and batching parameters, beside the model folders."""
    entries = "\n".join(
        "  config {\n"
        f"    name: \"{name}\"\n"
        f"    base_path: \"/models/{name}\"\n"
        "    model_platform: \"tensorflow\"\n"
        "    model_version_policy { latest { num_versions: 2 } }\n"
        "  }" for name in sorted(names))
    config = base / "models.config"
    config.write_text("model_config_list {\n" + entries + "\n}\n")
    params = base / "batching_parameters.txt"
    params.write_text("".join(f"{key} {{ value: {value} }}\n" for key, value in batching.items()))
    return [config, params]


DEFAULT_BATCHING = {
    "max_batch_size": 32,
    "batch_timeout_micros": 5000,
    "num_batch_threads": 2,
    "max_enqueued_batches": 100,
}


def docker_command(base: Path) -> str:
    """The documented way to serve the folder with the official image."""
    return (f"docker run --rm -p 8501:8501 -p 8500:8500 -v {base.resolve()}:/models tensorflow/serving "
            "--model_config_file=/models/models.config --enable_batching "
            "--batching_parameters_file=/models/batching_parameters.txt")
