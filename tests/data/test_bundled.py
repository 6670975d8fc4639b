"""The bundled WNUT-17 files: present, unchanged, attributed, and readable."""

import hashlib
from pathlib import Path

import pytest

import kerastune_nlp
from kerastune_nlp.data import LabelMap, bundled, bundled_wnut17, read_conll
from kerastune_nlp.errors import DataFileNotFoundError

# The shared data sets sit beside the repository (../shared/data).
SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "wnut17"
SOURCE_NAMES = {"train": "wnut17train.conll", "dev": "emerging.dev.conll", "test": "emerging.test.annotated"}
WNUT_TYPES = ("corporation", "creative-work", "group", "location", "person", "product")


def test_paths_live_inside_the_package():
    paths = bundled_wnut17()
    assert sorted(paths) == ["dev", "test", "train"]
    package = Path(kerastune_nlp.__file__).resolve().parent
    for split, path in paths.items():
        assert path.is_file() and path.name == f"{split}.conll"
        assert package in path.parents


def test_counts_and_strict_iob2():
    counts = {}
    for split, path in bundled_wnut17().items():
        sentences = read_conll(path, tag_scheme="iob2")
        counts[split] = (len(sentences), sum(len(s.tokens) for s in sentences))
    assert counts == {"train": (3394, 62730), "dev": (1009, 15733), "test": (1287, 23394)}


def test_all_six_types_in_train_and_the_other_splits_are_covered():
    splits = {split: read_conll(path) for split, path in bundled_wnut17().items()}
    label_map = LabelMap.from_sentences(splits["train"])
    assert label_map.entity_types == WNUT_TYPES and len(label_map) == 13
    label_map.check_covers(splits["dev"], "dev")
    label_map.check_covers(splits["test"], "test")


@pytest.mark.skipif(not SOURCE.is_dir(), reason="the shared source copy is only on the dev machine")
def test_files_are_byte_identical_to_the_published_ones():
    for split, path in bundled_wnut17().items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == hashlib.sha256((SOURCE / SOURCE_NAMES[split]).read_bytes()).hexdigest(), split


def test_readme_carries_license_and_citation():
    readme = (bundled_wnut17()["train"].parent / "README.md").read_text(encoding="utf-8")
    for needed in (
        "CC BY 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "leondz/emerging_entities_17",
        "e52a2d2a71ac1a051ca2d532eef28653c5c02603",
        "Derczynski",
        "Nichols",
        "van Erp",
        "Limsopatham",
        "Results of the WNUT2017 Shared Task on Novel and Emerging Entity",
        *SOURCE_NAMES.values(),
    ):
        assert needed in readme.replace("\n", " "), needed


def test_missing_package_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    with pytest.raises(DataFileNotFoundError, match=r"bundled WNUT-17 files.*installed without its data files"):
        bundled_wnut17()
