"""NER from JSON/JSONL rows with a document column: documents like CoNLL's -DOCSTART-, and every bad row named."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.config import NERDataConfig
from kerastune_nlp.data import read_conll
from kerastune_nlp.data.token_rows import read_token_rows
from kerastune_nlp.errors import ConfigError, DataFormatError
from kerastune_nlp.models.backbones import load_tokenizer
from kerastune_nlp.tasks.ner import NERTask

WIKIGOLD = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikigold" / "wikigold.conll.txt"


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _wikigold_rows(articles=6):
    """WikiGold's first articles as JSONL rows (one per sentence), the document id a string."""
    sentences = [s for s in read_conll(WIKIGOLD) if s.document < articles]
    return sentences, [{"tokens": list(s.tokens), "ner_tags": list(s.tags), "doc": f"article-{s.document}"}
                       for s in sentences]


def test_rows_with_a_document_column_encode_exactly_as_the_conll_file_does(tiny_bert, tmp_path):
    sentences, rows = _wikigold_rows()
    from_rows = read_token_rows(_write_jsonl(tmp_path / "wikigold.jsonl", rows), document_column="doc")
    assert [s.tokens for s in from_rows] == [s.tokens for s in sentences]
    assert [s.tags for s in from_rows] == [s.tags for s in sentences]
    assert [s.document for s in from_rows] == [s.document for s in sentences]
    tokenizer = load_tokenizer(tiny_bert)
    encoded = []
    for examples in (sentences, from_rows):
        task = NERTask(NERDataConfig(context_size=12))
        task.fit_state(examples)
        task.fit_encoding(examples, 48)
        encoded.append(task.encode(tokenizer, examples, 48))
    conll, jsonl = encoded
    assert conll.stats["context_windows"] > 0 and conll.stats == jsonl.stats
    for a, b in zip(conll.rows, jsonl.rows):
        assert np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.labels, b.labels)


def test_interleaved_documents_are_grouped_by_id_in_row_order_with_a_notice(tmp_path, caplog):
    rows = [{"tokens": ["a"], "ner_tags": ["O"], "doc": "x"}, {"tokens": ["b"], "ner_tags": ["O"], "doc": "y"},
            {"tokens": ["c"], "ner_tags": ["O"], "doc": "x"}, {"tokens": ["d"], "ner_tags": ["O"], "doc": "y"}]
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.data"):
        sentences = read_token_rows(_write_jsonl(tmp_path / "mixed.jsonl", rows), document_column="doc")
    assert "2 of 2 documents are interleaved with others (their rows are not consecutive)" in caplog.text
    assert [(s.tokens[0], s.document, s.line) for s in sentences] == [("a", 0, 1), ("b", 1, 2), ("c", 0, 3),
                                                                       ("d", 1, 4)]
    keys = NERTask.document_keys(sentences)
    assert keys[0][0] == keys[2][0] != keys[1][0] == keys[3][0]


def test_rows_without_a_document_id_are_named(tmp_path):
    rows = [{"tokens": ["a"], "ner_tags": ["O"], "doc": "x"}, {"tokens": ["b"], "ner_tags": ["O"]},
            {"tokens": ["c"], "ner_tags": ["O"], "doc": ""}, {"tokens": ["d"], "ner_tags": ["O"], "doc": None}]
    path = _write_jsonl(tmp_path / "gaps.jsonl", rows)
    with pytest.raises(DataFormatError, match=r"gaps.jsonl: 3 line\(s\) have no document id in 'doc' \(missing, "
                                              r"null or empty\): lines 2, 3, 4\. Give every row its document id"):
        read_token_rows(path, document_column="doc")


def test_a_document_column_no_row_has_lists_the_keys(tmp_path):
    path = _write_jsonl(tmp_path / "plain.jsonl", [{"tokens": ["a"], "ner_tags": ["O"], "id": 1}])
    with pytest.raises(ConfigError, match=r"no row has the document column 'document_id' \(--document-column\)\. "
                                          r"Received: keys \['id', 'ner_tags', 'tokens'\]"):
        read_token_rows(path, document_column="document_id")


def test_without_a_document_column_rows_have_no_documents_and_json_lists_read_too(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text("[\n" + json.dumps({"tokens": ["Jordan", "won"], "tags": ["I-PER", "O"]}) + ",\n"
                    + json.dumps({"tokens": ["in", "Amman"], "tags": ["O", "B-LOC"]}) + "\n]\n", encoding="utf-8")
    sentences = read_token_rows(path)
    assert [(s.tags, s.document, s.line) for s in sentences] == [(("B-PER", "O"), None, 2), (("O", "B-LOC"), None, 3)]
    with pytest.raises(DataFormatError, match=r"rows.json, line 2: 'I-PER' \(word 1\) starts an entity, which IOB2"):
        read_token_rows(path, tag_scheme="iob2")


@pytest.mark.parametrize("line, message", [
    ('{"tokens": ["a", "b"], "ner_tags": ["O"]}', r"bad.jsonl, line 2: expected one tag per token\. Received: 2 "
                                                  r"tokens and 1 tags"),
    ('{"tokens": ["a"], "ner_tags": ["PER"]}', r"bad.jsonl, line 2, word 1: expected a tag `O`, `B-<type>` or "
                                               r"`I-<type>`\. Received: 'PER'"),
    ('{"words": ["a"], "ner_tags": ["O"]}', r"bad.jsonl, line 2: expected keys `tokens` and `ner_tags` \(or "
                                            r"`tags`\)\. Received: keys \['ner_tags', 'words'\]"),
    ('{"tokens": ["a"], "ner_tags": ["O"]', r"bad.jsonl, line 2, column \d+: invalid JSON"),
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["ok"], "ner_tags": ["O"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=message):
        read_token_rows(path)


def test_a_document_column_on_a_conll_file_is_refused_with_the_fix(tmp_path):
    from kerastune_nlp.config import DataConfig

    task = NERTask(NERDataConfig(document_column="doc"))
    with pytest.raises(ConfigError, match=r"--document-column.*is read as CoNLL, which marks documents with "
                                          r"-DOCSTART- lines\. Drop --document-column for CoNLL files"):
        task.read_file(WIKIGOLD, DataConfig())


def test_the_cli_trains_on_jsonl_documents_with_context(tiny_bert, tmp_path):
    from kerastune_nlp.cli import main

    _, rows = _wikigold_rows(8)
    train = _write_jsonl(tmp_path / "train.jsonl", [r for r in rows if r["doc"] < "article-6"])
    test = _write_jsonl(tmp_path / "test.jsonl", [r for r in rows if r["doc"] >= "article-6"])
    output = tmp_path / "run"
    code = main(["train", "--task", "ner", "--backbone", str(tiny_bert), "--train", str(train), "--test", str(test),
                 "--document-column", "doc", "--context-size", "auto", "--max-length", "48", "--epochs", "1",
                 "--output", str(output)])
    assert code == 0
    manifest = json.loads((output / "run_config.json").read_text())
    assert manifest["task_config"]["document_column"] == "doc" and manifest["task_state"]["context_size"] == 12
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["data"]["train"]["context_windows"] > 0
