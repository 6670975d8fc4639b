"""The owned-folder protocol on its own: kind markers, fingerprints, staging, commit, refusals (no TensorFlow)."""

import json

import pytest

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.runs import owned_folder
from kerastune_nlp.runs.owned_folder import FolderKind

THING = FolderKind("kerastune_nlp.thing", "thing.json", "thing folder", "`kerastune-nlp thing`")


def _finish(staging, marker=THING.marker, kind=THING.kind):
    (staging / marker).write_text(json.dumps({"kind": kind}))
    (staging / "weights.bin").write_text("new")


def test_a_staged_folder_appears_by_commit_and_replaces_only_its_own_kind(tmp_path):
    output = tmp_path / "out"
    staging, state = owned_folder.open_staging(output, THING, {"data": "0123456789abcdef"})
    assert state == "fresh" and staging.name == "out.partial"
    assert json.loads((staging / "fingerprint.json").read_text())["kind"] == THING.kind
    _finish(staging)
    owned_folder.commit(staging, output, THING)
    assert THING.is_ours(output) and not staging.exists() and not (output / "fingerprint.json").exists()

    with pytest.raises(RunDirectoryError, match="already exists"):
        owned_folder.check_output(output, THING, overwrite=False)
    staging, _ = owned_folder.open_staging(output, THING, {"data": "0123456789abcdef"}, overwrite=True)
    _finish(staging)
    owned_folder.commit(staging, output, THING)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the earlier folder is gone, nothing beside it


def test_what_is_not_ours_is_never_replaced(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thing.json").write_text(json.dumps({"kind": "someone.else"}))
    with pytest.raises(RunDirectoryError, match=r"not a thing folder written by `kerastune-nlp thing`.*did not create"):
        owned_folder.check_output(precious, THING, overwrite=True)
    (tmp_path / "other.partial").mkdir()
    with pytest.raises(RunDirectoryError, match=r"other\.partial' exists but was not created by `kerastune-nlp thing`"):
        owned_folder.check_output(tmp_path / "other", THING, overwrite=True)
    staging, _ = owned_folder.open_staging(tmp_path / "new", THING, {})
    with pytest.raises(RunDirectoryError, match="Refusing to replace"):
        owned_folder.commit(staging, precious, THING)
    assert (precious / "thing.json").is_file() and staging.is_dir()


def test_a_different_command_is_refused_and_named_a_resumed_one_reopened(tmp_path):
    output = tmp_path / "out"
    first = {"data": "0123456789abcdef", "settings": {"learning_rate": 0.01, "epochs": 2}}
    staging, _ = owned_folder.open_staging(output, THING, first)
    (staging / "backup").mkdir()
    (staging / "backup" / "ckpt").write_text("step 3")
    assert owned_folder.open_staging(output, THING, first) == (staging, "resume")
    other = {"data": "fedcba9876543210", "settings": {"learning_rate": 0.001, "epochs": 2}}
    with pytest.raises(RunDirectoryError, match=r"DIFFERENT command \(data differs \(other data\); "
                                                r"settings\.learning_rate: 0\.01 there, 0\.001 now\)"):
        owned_folder.open_staging(output, THING, other)
    assert owned_folder.open_staging(output, THING, other, overwrite=True) == (staging, "fresh")
    assert not (staging / "backup").exists()


def test_a_folder_written_in_place_is_reopened_and_an_unknown_one_refused(tmp_path):
    search = FolderKind("kerastune_nlp.search", "search.json", "search folder", "`kerastune-nlp tune`", "--search-dir")
    folder = tmp_path / "s"
    assert owned_folder.open_in_place(folder, search, {"tuner": "random"}, overwrite=False) is False
    assert owned_folder.open_in_place(folder, search, {"tuner": "random"}, overwrite=False) is True
    with pytest.raises(RunDirectoryError, match=r"holds a DIFFERENT search \(tuner: 'random' there, 'bayesian' now"):
        owned_folder.open_in_place(folder, search, {"tuner": "bayesian"}, overwrite=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.csv").write_text("keep me")
    with pytest.raises(RunDirectoryError, match=r"not written by `kerastune-nlp tune`.*--overwrite included"):
        owned_folder.open_in_place(data, search, {}, overwrite=True)
    assert (data / "keep.csv").read_text() == "keep me"
