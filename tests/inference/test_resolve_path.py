"""`resolve_path`: every PATH form a user can give, read one way by predict, serve, evaluate and Python.

The resolver only looks at file names, so the layouts are built empty in
tmp_path (tests/inference/test_load_artifacts.py loads real ones).
"""

from pathlib import Path

import pytest

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.inference.artifacts import ACCEPTED, EXPORT_MARKER, VERSION_FILES, resolve_path
from kerastune_nlp.serving.registry import resolve_source

README = Path(__file__).parents[2] / "README.md"


def version(folder: Path, complete: bool = True) -> Path:
    for name in VERSION_FILES if complete else VERSION_FILES[:1]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    return folder


def export(folder: Path, *models: str, marker: bool = True) -> Path:
    for model in models:
        version(folder / "serving" / model / "1")
    (folder / "tflite").mkdir(parents=True, exist_ok=True)
    (folder / "tflite" / "model-float32.tflite").write_bytes(b"x")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"x")
    if marker:
        (folder / EXPORT_MARKER).write_text("{}")
    return folder


def refused(path, model=None) -> str:
    with pytest.raises(RunDirectoryError) as error:
        resolve_path(path, model)
    message = str(error.value)
    # The one message: the accepted forms, the PATH as given, then why.
    assert message.startswith(f"Expected PATH to be one of: {ACCEPTED}. Received: `PATH`={str(path)!r}, which ")
    return message


def test_run_directory(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_config.json").write_text("{}")
    found = resolve_path(tmp_path / "run")
    assert (found.kind, found.name, found.target) == ("run", "run", tmp_path / "run")
    assert resolve_source(tmp_path / "run").artifact == tmp_path / "run"


def test_run_directory_with_its_export_beneath(tmp_path):
    run = tmp_path / "run"
    export(run / "export", "run")
    (run / "run_config.json").write_text("{}")
    assert resolve_path(run).kind == "run"  # the run's own model, not its export
    found = resolve_path(run / "export")
    assert (found.kind, found.version, found.export_dir) == ("export", run / "export/serving/run/1", run / "export")


def test_export_folder_and_its_serving_folder_give_the_newest_complete_version(tmp_path):
    root = export(tmp_path / "exp", "ner")
    version(root / "serving/ner/2")
    version(root / "serving/ner/3", complete=False)
    for path in (root, root / "serving"):
        found = resolve_path(path)
        assert (found.kind, found.name, found.version) == ("export", "ner", root / "serving/ner/2")
        assert (found.model_dir, found.export_dir) == (root / "serving/ner", root)
        source = resolve_source(path)
        assert (source.name, source.base, source.artifact) == ("ner", root / "serving/ner", None)


def test_model_folder(tmp_path):
    root = export(tmp_path / "exp", "ner")
    found = resolve_path(root / "serving/ner")
    assert (found.kind, found.name, found.version, found.model_dir) == (
        "model_folder", "ner", root / "serving/ner/1", root / "serving/ner")
    assert resolve_source(root / "serving/ner", "tagger").name == "tagger"


def test_numbered_version_folder(tmp_path):
    folder = version(tmp_path / "serving/ner/7")
    found = resolve_path(folder)
    assert (found.kind, found.name, found.target, found.model_dir) == ("savedmodel", "ner", folder, None)
    source = resolve_source(folder)
    assert (source.name, source.artifact, source.base) == ("ner", folder, None)


def test_incomplete_version_is_refused_and_skipped(tmp_path):
    # Before: the Python loader loaded it (and failed inside TensorFlow); the server served it.
    folder = version(tmp_path / "serving/ner/3", complete=False)
    message = refused(folder)
    assert "incomplete SavedModel version folder (missing variables/variables.index, " \
           "assets.extra/kerastune_nlp.json)" in message
    version(tmp_path / "serving/ner/2")
    assert resolve_path(tmp_path / "serving/ner").version == tmp_path / "serving/ner/2"


def test_all_digit_folders_that_are_not_versions(tmp_path):
    # Before: the server took any folder with an all-digit subfolder for a model folder, and waited.
    (tmp_path / "photos/2024").mkdir(parents=True)
    (tmp_path / "photos/2024/beach.jpg").write_bytes(b"x")
    message = refused(tmp_path / "photos")
    assert "holds numbered folders (2024) but no complete SavedModel version" in message
    assert "is none of these" in refused(tmp_path / "photos/2024")


def test_serving_folder_without_the_export_marker(tmp_path):
    # Before: the server served it, the Python loader refused it. Its model folder still serves.
    root = export(tmp_path / "copied", "ner", marker=False)
    for path in (root, root / "serving"):
        message = refused(path)
        assert f"holds TF Serving model folders (ner) but no {EXPORT_MARKER}" in message
        assert f"Pass one model folder, e.g. {str(root / 'serving/ner')!r}." in message
    assert resolve_path(root / "serving/ner").kind == "model_folder"


def test_several_models_ask_for_one(tmp_path):
    # Before: ConfigError from the server, RunDirectoryError from the Python loader.
    root = export(tmp_path / "exp", "ner", "trec")
    message = refused(root)
    assert "is an export folder holding several models (ner, trec)" in message
    assert f"e.g. {str(root / 'serving/ner')!r} (`serve --model-name` also picks one)" in message
    assert resolve_path(root, model="trec").version == root / "serving/trec/1"
    assert resolve_source(root, "trec").base == root / "serving/trec"
    assert "no model named 'pos' (it holds ner, trec)" in refused(root, model="pos")


def test_export_folder_without_a_savedmodel_points_to_its_files(tmp_path):
    root = export(tmp_path / "exp")
    assert f"e.g. {str(root / 'onnx/model.onnx')!r}" in refused(root)


@pytest.mark.parametrize("suffix, kind, folder", [(".tflite", "tflite", "tflite"), (".onnx", "onnx", "onnx")])
def test_model_files_inside_their_export_folder(tmp_path, suffix, kind, folder):
    root = export(tmp_path / "exp", "ner")
    file = next((root / folder).glob(f"*{suffix}"))
    found = resolve_path(file)
    assert (found.kind, found.target, found.export_dir, found.name) == (kind, file, root, file.stem)
    assert resolve_source(file).artifact == file
    stray = tmp_path / f"stray{suffix}"
    stray.write_bytes(b"x")
    assert f"has no {EXPORT_MARKER} beside or above it" in refused(stray)


def test_missing_path_a_random_folder_and_a_random_file(tmp_path):
    assert refused(tmp_path / "nowhere").endswith("which does not exist.")
    (tmp_path / "notes").mkdir()
    assert "which is none of these" in refused(tmp_path / "notes")
    (tmp_path / "notes.txt").write_text("hello")
    assert "is a file but not a .tflite or .onnx model" in refused(tmp_path / "notes.txt")


def test_predict_serve_evaluate_and_python_refuse_with_the_same_message(tmp_path, capsys):
    from kerastune_nlp.cli import main
    from kerastune_nlp.inference import load_predictor

    (tmp_path / "photos/2024").mkdir(parents=True)
    expected = refused(tmp_path / "photos")
    with pytest.raises(RunDirectoryError) as error:
        load_predictor(tmp_path / "photos")
    assert str(error.value) == expected
    (tmp_path / "test.txt").write_text("x")
    for argv in (["predict", str(tmp_path / "photos"), "x"], ["serve", str(tmp_path / "photos")],
                 ["evaluate", str(tmp_path / "photos"), "--test", str(tmp_path / "test.txt")]):
        assert main(argv) == 2
        assert capsys.readouterr().err.strip() == f"error: {expected}"


def test_the_readme_table_lists_the_forms_the_message_lists():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Accepted PATH forms"):]
    table = table[: table.index("\n\n", table.index("|"))]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    forms = [row.split("|")[1].strip().replace("`", "") for row in rows]
    assert forms == ["<run>/", "<export>/serving/<name>/<version>/", "<export>/serving/<name>/",
                     "<export>/ or <export>/serving/", "<export>/tflite/*.tflite", "<export>/onnx/*.onnx"]
    for form in ("run directory", "SavedModel version folder", "TF Serving model folder", "export folder",
                 ".tflite", ".onnx"):
        assert form in ACCEPTED and form in table
