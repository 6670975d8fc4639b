"""What a saved model looks like on disk, and `resolve_path`: the one reading of a user's PATH.

The writers (`train`, `export`) take these names from here; every reader
(`load_predictor`, `load_run`, the server's registry, `predict`, `serve`,
`evaluate`) turns a PATH into a `ResolvedArtifact` through `resolve_path`,
from the file system alone (no TensorFlow), so a wrong PATH fails in a
second with one message.

Accepted forms (the README's table says the same):

    <run>/                              run directory: holds run_config.json
    <export>/serving/<name>/<version>/  SavedModel version folder, complete
    <export>/serving/<name>/            TF Serving model folder: its highest complete version
    <export>/  or  <export>/serving/    export folder (holds kerastune_export.json) with one model
    <export>/tflite/*.tflite            TFLite file inside its export folder
    <export>/onnx/*.onnx                ONNX file inside its export folder

Where the two earlier resolvers disagreed, the safer rule holds: a
numbered folder is a version only when complete (an all-digit folder that
is not is never a version, so a half-copied one is never loaded); a
folder of model folders counts only as an export folder `kerastune-nlp
export` wrote (its marker there or one level up), since only that folder
carries the task, labels and tokenizer the .tflite / .onnx files need;
several models in one export folder ask for a choice.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.runs.layout import RunLayout

# Beside every export (`kerastune-nlp export --output <export>`): task, labels, max length, backbone config.
EXPORT_MARKER = "kerastune_export.json"
EXPORT_TOKENIZER = "tokenizer"  # for clients of the id-based artifacts
SERVING_FOLDER = "serving"  # <export>/serving/<name>/<version>/: the layout TF Serving loads
# Inside each SavedModel version folder: the same facts and the tokenizer, so a version folder stands alone.
SAVEDMODEL_SIDECAR = "assets.extra/kerastune_nlp.json"
SAVEDMODEL_TOKENIZER = "assets.extra/tokenizer"
# What a version folder holds once completely written (TF Serving's own test, plus our sidecar).
VERSION_FILES = ("saved_model.pb", "variables/variables.index", SAVEDMODEL_SIDECAR)
MODEL_FILE_KINDS = {".tflite": "tflite", ".onnx": "onnx"}
RAW_SIGNATURE = "serving_default"  # raw strings in, tokenized inside the graph
IDS_SIGNATURE = "ids"  # token ids in, for any backbone
# Raw strings plus the document context around them: NER runs trained with a context size only.
CONTEXT_SIGNATURE = "text_with_context"

# For help texts; `ACCEPTED` (in every refusal) says what identifies each.
PATH_FORMS = ("a run directory, a SavedModel version folder (<export>/serving/<name>/<version>), a TF Serving model "
              "folder (<export>/serving/<name>: its newest version; `serve` watches it for new ones), an export "
              "folder, or a .tflite / .onnx file inside one")
KINDS = ("run", "savedmodel", "model_folder", "export", "tflite", "onnx")
ACCEPTED = ("a run directory (holds run_config.json); a SavedModel version folder "
            "(<export>/serving/<name>/<version>/ holding saved_model.pb, variables/ and assets.extra/); "
            "a TF Serving model folder (<export>/serving/<name>/: its highest complete version); an export "
            f"folder (holds {EXPORT_MARKER} and one model under serving/) or its serving/ folder; "
            "a .tflite or .onnx file inside its export folder")


@dataclasses.dataclass(frozen=True)
class ResolvedArtifact:
    """What a PATH names.

    Args:
        kind: str. One of `KINDS`.
        path: Path. The PATH as given (user folder expanded).
        name: str. The model's natural name: the run folder, the model
            folder (a version's parent) or the file's stem.
        version: Path or None. The SavedModel version folder to load (for
            "savedmodel", "model_folder" and "export").
        model_dir: Path or None. The TF Serving model folder to watch for
            new versions ("model_folder" and "export").
        export_dir: Path or None. The folder holding `EXPORT_MARKER`
            ("export", "tflite", "onnx").
    """

    kind: str
    path: Path
    name: str
    version: Path | None = None
    model_dir: Path | None = None
    export_dir: Path | None = None

    @property
    def target(self) -> Path:
        """What is read to answer: the run directory, the version folder or the model file."""
        return self.version if self.version is not None else self.path


def resolve_path(path, model: str | None = None) -> ResolvedArtifact:
    """Says what PATH is, or refuses it with the one message listing `ACCEPTED`.

    Args:
        path: str or Path. Any of the forms in the module docstring.
        model: str or None. Which model of an export folder (`serve --model-name`); other forms ignore it.

    Returns:
        A `ResolvedArtifact`.

    Example:
    >>> resolve_path("saved_models/wnut17-export").version
    PosixPath('saved_models/wnut17-export/serving/wnut17/1')
    """
    path = Path(path).expanduser()
    if not path.exists():
        _refuse(path, "does not exist")
    if path.is_file():
        kind = MODEL_FILE_KINDS.get(path.suffix)
        if kind is None:
            _refuse(path, "is a file but not a .tflite or .onnx model")
        root = next((d for d in (path.parent, path.parent.parent) if (d / EXPORT_MARKER).is_file()), None)
        if root is None:
            _refuse(path, f"has no {EXPORT_MARKER} beside or above it", "A model file must stay inside the "
                    "folder `kerastune-nlp export` wrote: that folder holds its task, labels and tokenizer.")
        return ResolvedArtifact(kind, path, path.stem, export_dir=root)
    if (path / RunLayout.MANIFEST).is_file():
        return ResolvedArtifact("run", path, path.name)
    if (path / "saved_model.pb").is_file():
        missing = [name for name in VERSION_FILES if not (path / name).is_file()]
        if missing:
            _refuse(path, f"is an incomplete SavedModel version folder (missing {', '.join(missing)})",
                    "Wait until it is completely copied, or export the model again with `kerastune-nlp export`.")
        return ResolvedArtifact("savedmodel", path, path.parent.name if path.name.isdigit() else path.name,
                                version=path)
    versions = numbered_versions(path)
    if versions:
        return ResolvedArtifact("model_folder", path, path.name, version=versions[-1], model_dir=path)
    return _export_folder(path, model)


def _export_folder(path: Path, model: str | None) -> ResolvedArtifact:
    """An export folder, or its serving/ folder; anything else is refused with the closest form."""
    root = path if (path / EXPORT_MARKER).is_file() else \
        path.parent if path.name == SERVING_FOLDER and (path.parent / EXPORT_MARKER).is_file() else None
    base = root or path
    models = model_folders(base / SERVING_FOLDER if (base / SERVING_FOLDER).is_dir() else path)
    if root is None:
        if models:
            _refuse(path, f"holds TF Serving model folders ({', '.join(m.name for m in models)}) but no "
                    f"{EXPORT_MARKER}, so it is not an export folder kerastune-nlp wrote",
                    f"Pass one model folder, e.g. {str(models[0])!r}.")
        digits = sorted(p.name for p in _numbered(path))
        if digits:
            _refuse(path, f"holds numbered folders ({', '.join(digits)}) but no complete SavedModel version "
                    f"(each needs {', '.join(VERSION_FILES)})")
        _refuse(path, "is none of these")
    if not models:
        files = sorted(p for kind in MODEL_FILE_KINDS for p in root.glob(f"*/*{kind}"))
        _refuse(path, "is an export folder with no complete SavedModel version under serving/",
                f"Pass one of its model files, e.g. {str(files[0])!r}." if files else "Export the model again.")
    if model is not None:
        chosen = next((m for m in models if m.name == model), None)
        if chosen is None:
            _refuse(path, f"is an export folder with no model named {model!r} (it holds "
                    f"{', '.join(m.name for m in models)})", "Pass one of those names.")
    elif len(models) > 1:
        _refuse(path, f"is an export folder holding several models ({', '.join(m.name for m in models)})",
                f"Pass one model folder, e.g. {str(models[0])!r} (`serve --model-name` also picks one).")
    else:
        chosen = models[0]
    return ResolvedArtifact("export", path, chosen.name, version=numbered_versions(chosen)[-1], model_dir=chosen,
                            export_dir=root)


def _refuse(path: Path, reason: str, fix: str = "") -> None:
    raise RunDirectoryError(f"Expected PATH to be one of: {ACCEPTED}. Received: `PATH`={str(path)!r}, which "
                            f"{reason}." + (f" {fix}" if fix else ""))


def is_complete_version(folder: Path) -> bool:
    """An all-digit folder holding every `VERSION_FILES` (hidden staging names are not digits)."""
    return folder.name.isdigit() and all((folder / name).is_file() for name in VERSION_FILES)


def _numbered(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()] if folder.is_dir() else []


def numbered_versions(model_dir: Path) -> list[Path]:
    """The complete version folders of a TF Serving model folder, lowest first."""
    return sorted((p for p in _numbered(Path(model_dir)) if is_complete_version(p)), key=lambda p: int(p.name))


def model_folders(serving: Path) -> list[Path]:
    """The model folders (each with at least one complete version) of a serving/ folder, by name."""
    if not serving.is_dir():
        return []
    return sorted(p for p in serving.iterdir() if p.is_dir() and not p.name.startswith(".") and numbered_versions(p))
