"""`--split` for NER: by document where the file marks documents (never one article in two splits), else by sentence."""

import logging
from pathlib import Path

import pytest

from kerastune_nlp.config import DataConfig
from kerastune_nlp.data import bundled_wnut17, read_conll
from kerastune_nlp.data.document_split import split_by_document
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.tasks import get_task

WIKIGOLD = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikigold" / "wikigold.conll.txt"


@pytest.fixture(scope="module")
def documents_file(tmp_path_factory) -> Path:
    """WikiGold (146 articles, ../shared beside the repository), else WNUT-17 dev cut into 20 documents."""
    if WIKIGOLD.is_file():
        return WIKIGOLD
    lines = Path(bundled_wnut17()["dev"]).read_text(encoding="utf-8").split("\n\n")
    path = tmp_path_factory.mktemp("docs") / "documents.conll"
    chunks = ["\n\n".join(lines[i:i + 50]) for i in range(0, len(lines), 50)]
    path.write_text("".join(f"-DOCSTART- O\n\n{chunk.strip()}\n\n" for chunk in chunks), encoding="utf-8")
    return path


def test_docstart_lines_give_each_sentence_its_document(tmp_path):
    path = tmp_path / "docs.conll"
    path.write_text("-DOCSTART- O\n\nParis\tB-LOC\n\nis\tO\n\n-DOCSTART- O\n\nBob\tB-PER\n")
    assert [(s.tokens, s.document) for s in read_conll(path)] == [
        (("Paris",), 0), (("is",), 0), (("Bob",), 1)]
    (tmp_path / "plain.conll").write_text("Paris\tB-LOC\n\nBob\tB-PER\n")
    assert [s.document for s in read_conll(tmp_path / "plain.conll")] == [None, None]


def test_a_file_of_documents_is_split_by_document_in_file_order(documents_file):
    sentences = read_conll(documents_file)
    documents = {s.document for s in sentences}
    parts, description = split_by_document(sentences, (0.7, 0.15, 0.15), 42, "wikigold")
    assert sum(map(len, parts)) == len(sentences)  # nothing dropped
    in_part = [{s.document for s in part} for part in parts]
    assert not (in_part[0] & in_part[1] or in_part[0] & in_part[2] or in_part[1] & in_part[2])  # never cut
    assert set().union(*in_part) == documents
    sizes = [len(p) for p in in_part]
    assert sizes[0] > sizes[1] > 0 and sizes[2] > 0 and abs(sizes[1] - sizes[2]) <= 1
    for part in parts:  # file order kept inside each split
        assert [s.line for s in part] == sorted(s.line for s in part)
    assert description == (f"wikigold split by document with seed 42: {len(documents)} documents -> "
                           f"{sizes[0]}/{sizes[1]}/{sizes[2]} (train/dev/test), sentences "
                           f"{len(parts[0])}/{len(parts[1])}/{len(parts[2])}")
    assert split_by_document(sentences, (0.7, 0.15, 0.15), 42, "wikigold")[0] == parts  # seeded
    assert split_by_document(sentences, (0.7, 0.15, 0.15), 7, "wikigold")[0] != parts


def test_ner_with_one_file_makes_train_dev_and_test_and_says_how(documents_file, caplog):
    task = get_task("ner")()
    with caplog.at_level(logging.INFO, logger="kerastune_nlp.tasks"):
        splits, _ = task.load_splits(DataConfig(train=str(documents_file), split=(0.8, 0.1, 0.1)), seed=3)
    assert all(splits[name] for name in ("train", "dev", "test"))
    assert not {s.document for s in splits["train"]} & {s.document for s in splits["test"]}
    assert "No dev set given: the training data" in caplog.text and "split by document with seed 3" in caplog.text


def test_a_file_without_documents_is_split_by_sentence(caplog):
    task = get_task("ner")()
    with caplog.at_level(logging.INFO, logger="kerastune_nlp.tasks"):
        splits, _ = task.load_splits(DataConfig(train=str(bundled_wnut17()["dev"]), split=(0.8, 0.2)), seed=1)
    assert set(splits) == {"train", "dev"} and len(splits["train"]) + len(splits["dev"]) == 1009
    assert "split by sentence with seed 1: 1009 sentences -> 807/202 (train/dev)" in caplog.text


def test_too_few_documents_for_the_parts_is_a_clear_error(tmp_path):
    path = tmp_path / "two.conll"
    path.write_text("-DOCSTART- O\n\nParis\tB-LOC\n\n-DOCSTART- O\n\nBob\tB-PER\n")
    with pytest.raises(ConfigError, match=r"into 3 parts: it has 2 documents.*--split 0\.8,0\.2"):
        split_by_document(read_conll(path), (0.7, 0.15, 0.15), 0, "two.conll")
