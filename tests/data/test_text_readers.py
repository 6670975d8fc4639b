"""Readers for sequence-level tasks: formats, columns, encodings, and every error."""

import json

import pytest

from kerastune_nlp.data.bundled import TREC_ENCODING, bundled_trec, load_bundled_trec
from kerastune_nlp.data.text_readers import (
    TextExample,
    check_labels,
    check_trainable,
    read_text_file,
)
from kerastune_nlp.errors import DataFileNotFoundError, DataFormatError, LabelError


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_with_quoted_commas_and_pairs(tmp_path):
    path = _write(tmp_path, "d.csv", 'premise,hypothesis,label\n"A man, smiling",He is happy,yes\nB,C,no\n')
    examples, report = read_text_file(path, text_column="premise", text_pair_column="hypothesis")
    assert examples[0] == TextExample("A man, smiling", "yes", "He is happy", str(path), 2)
    assert report.read == 2


def test_tsv_json_and_jsonl(tmp_path):
    tsv = _write(tmp_path, "d.tsv", "text\tlabel\ngood film\tpos\n")
    assert read_text_file(tsv)[0][0].label == "pos"
    js = _write(tmp_path, "d.json", json.dumps([{"text": "東京 is big 😀", "label": "loc"}]))
    assert read_text_file(js)[0][0].text == "東京 is big 😀"
    jl = _write(tmp_path, "d.jsonl", '{"text": "a", "label": 1.5}\n\n{"text": "b", "label": "2"}\n')
    examples, _ = read_text_file(jl, task="regression")
    assert [e.label for e in examples] == [1.5, 2.0] and examples[1].line == 3


def test_bundled_trec_reads_with_latin1_and_fails_clearly_with_utf8():
    splits = load_bundled_trec()
    assert (len(splits["train"]), len(splits["test"])) == (5452, 500)
    assert {e.label for e in splits["test"]} == {"DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"}
    assert "sister\u00f0city" in splits["train"][65].text  # the one Latin-1 byte (0xF0), decoded
    with pytest.raises(DataFormatError, match=r"TREC\.train\.all, line \d+, column \d+: .*latin-1"):
        read_text_file(bundled_trec()["train"], file_format="label_text")
    assert TREC_ENCODING == "latin-1"


def test_missing_columns_lists_those_found(tmp_path):
    path = _write(tmp_path, "d.csv", "review,stars\nnice,5\n")
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['text', 'label'\]. Found columns: \['review', 'stars'\]"):
        read_text_file(path)


def test_empty_texts_dropped_with_count_or_refused(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\nok,a\n   ,b\n,a\nfine,b\n")
    examples, report = read_text_file(path)
    assert len(examples) == 2 and report.dropped_empty == 2
    with pytest.raises(DataFormatError, match=r"d\.csv, line 3: empty or whitespace-only text"):
        read_text_file(path, empty="error")


def test_non_numeric_regression_target_names_row(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\na,1.0\nb,high\n")
    with pytest.raises(DataFormatError, match=r"line 3: the regression target must be a finite number. Received: 'high'"):
        read_text_file(path, task="regression")


def test_multilabel_cells(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"text": "a", "label": ["x", "y"]}\n{"text": "b", "label": "y, z"}\n')
    assert [e.label for e in read_text_file(path, task="multilabel")[0]] == [("x", "y"), ("y", "z")]
    bad = _write(tmp_path, "bad.csv", 'text,label\na,"[""x"", "\n')
    with pytest.raises(DataFormatError, match=r"bad\.csv, line 2: the multi-label cell .* does not parse"):
        read_text_file(bad, task="multilabel")


def test_missing_file(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="nope.csv"):
        read_text_file(tmp_path / "nope.csv")


def test_unseen_dev_labels_and_single_class_training():
    train = [TextExample("a", "x", source="train.csv", line=2), TextExample("b", "y")]
    dev = [TextExample("c", "z", source="dev.csv", line=5)]
    with pytest.raises(LabelError, match=r"'z' first at dev\.csv, line 5"):
        check_labels(train, dev, "dev", "classification")
    with pytest.raises(LabelError, match=r"train\.csv\) has a single class \['x'\]"):
        check_trainable(train[:1], "classification")
