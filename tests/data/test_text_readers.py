"""Readers for sequence-level tasks: formats, columns, encodings, label checks, and every error."""

import json
import logging
from pathlib import Path

import pytest

from kerastune_nlp.data.bundled_trec import (
    TREC_ENCODING,
    TREC_LABEL_NAMES,
    bundled_trec,
    load_bundled_trec,
)
from kerastune_nlp.data.text_examples import ReadResult, TextExample
from kerastune_nlp.tasks import get_task
from kerastune_nlp.tasks.readers import read_hub_dataset, read_text_file
from kerastune_nlp.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    HubUnavailableError,
    LabelError,
)

SHARED_TREC = Path(__file__).resolve().parents[3] / "shared" / "data" / "trec"  # ../shared beside the repository


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# -- formats -------------------------------------------------------------------------


def test_csv_with_quoted_commas_pairs_and_a_cell_spanning_lines(tmp_path):
    path = _write(
        tmp_path,
        "d.csv",
        'premise,hypothesis,label\n"A man, smiling",He is happy,yes\n\n"two\nlines",C,no\nD,E,no\n',
    )
    examples, report = read_text_file(path, text_column="premise", text_pair_column="hypothesis")
    assert examples[0] == TextExample("A man, smiling", "yes", "He is happy", str(path), 2)
    # The quoted cell starts on line 4 and ends on 5; the next row is line 6.
    assert [(e.text, e.line) for e in examples[1:]] == [("two\nlines", 4), ("D", 6)]
    assert report.read == 3 and report.dropped_empty == 0


def test_result_is_a_named_pair():
    examples, report = result = read_text_file(bundled_trec()["test"], encoding=TREC_ENCODING)
    assert (
        isinstance(result, ReadResult) and result.examples is examples and result.report is report
    )


def test_tsv_json_jsonl_and_label_text(tmp_path):
    tsv = _write(tmp_path, "d.tsv", "text\tlabel\ngood, film\tpos\n")
    assert read_text_file(tsv).examples[0] == TextExample("good, film", "pos", None, str(tsv), 2)
    js = _write(
        tmp_path,
        "d.json",
        '[\n  {"text": "東京 is big 😀", "label": "loc"},\n\n  {"text": "b", "label": 3}\n]\n',
    )
    examples = read_text_file(js).examples
    assert [(e.text, e.label, e.line) for e in examples] == [
        ("東京 is big 😀", "loc", 2),
        ("b", "3", 4),
    ]
    jl = _write(
        tmp_path, "d.jsonl", '{"text": "a", "label": 1.5}\n\n{"text": "b", "label": " 2 "}\n'
    )
    examples = read_text_file(jl, task="regression").examples
    assert [e.label for e in examples] == [1.5, 2.0] and examples[1].line == 3
    lines = _write(tmp_path, "d.txt", "pos a good film\n\nneg  bad\n")
    assert [(e.label, e.text, e.line) for e in read_text_file(lines).examples] == [
        ("pos", "a good film", 1),
        ("neg", "bad", 3),
    ]


def test_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufefftext,label\r\ncafé,a\r\n".encode("utf-8"))
    assert read_text_file(path).examples[0] == TextExample("café", "a", None, str(path), 2)


def test_latin1_ellipsis_byte_does_not_split_a_line(tmp_path):
    # 0x85 is "…" in cp1252 and U+0085 (a line break to str.splitlines) in Latin-1.
    path = tmp_path / "d.txt"
    path.write_bytes(b"a wait\x85 what\nb second\n")
    examples = read_text_file(path, encoding="latin-1").examples
    assert [(e.label, e.line) for e in examples] == [("a", 1), ("b", 2)]
    assert read_text_file(path, encoding="cp1252").examples[0].text == "wait… what"


# -- the bundled TREC files (real data) ---------------------------------------------------


def test_bundled_trec_reads_with_latin1_and_fails_clearly_with_utf8():
    paths = bundled_trec()
    train, report = read_text_file(paths["train"], encoding="latin-1")
    test, _ = read_text_file(paths["test"], encoding="latin-1")
    assert (len(train), len(test)) == (5452, 500) and report.dropped_empty == 0
    assert {e.label for e in train} == set(TREC_LABEL_NAMES) == {"0", "1", "2", "3", "4", "5"}
    assert (
        train[65].line == 66 and "sister\u00f0city" in train[65].text
    )  # the one Latin-1 byte, 0xF0
    with pytest.raises(
        DataFormatError,
        match=r"TREC\.train\.all, line 66, column 53: bytes b'\\xf0' are not valid utf-8 .*latin-1",
    ):
        read_text_file(paths["train"], file_format="label_text")
    assert len(read_text_file(paths["test"]).examples) == 500  # ASCII reads as UTF-8 too


def test_load_bundled_trec_names_the_classes():
    splits = load_bundled_trec()
    assert (len(splits["train"]), len(splits["test"])) == (5452, 500)
    assert {e.label for e in splits["test"]} == {"DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"}
    assert splits["train"][0] == TextExample(
        "How did serfdom develop in and then leave Russia ?",
        "DESC",
        None,
        str(bundled_trec()["train"]),
        1,
    )
    assert load_bundled_trec(label_names=False)["test"][0].label in TREC_LABEL_NAMES


@pytest.mark.skipif(
    not SHARED_TREC.is_dir(), reason="the shared source copy is not on this machine"
)
def test_bundled_trec_is_byte_identical_to_the_source_and_attributed():
    for split, path in bundled_trec().items():
        assert path.read_bytes() == (SHARED_TREC / path.name).read_bytes(), split
    readme = (bundled_trec()["train"].parent / "README.md").read_text()
    for fact in (
        "Li and Roth (2002)",
        "Learning Question Classifiers",
        "harvardnlp/sent-conv-torch",
        "d61ded09c99c0199d8c5bca946cd65864de2b296",
        "ISO-8859-1 (Latin-1)",
        "0=DESC, 1=ENTY, 2=ABBR, 3=HUM,\n4=LOC, 5=NUM",
    ):
        assert fact in readme, fact


# -- errors --------------------------------------------------------------------------------


def test_missing_columns_lists_those_found(tmp_path):
    path = _write(tmp_path, "d.csv", "review,stars\nnice,5\n")
    with pytest.raises(
        DataFormatError,
        match=r"d\.csv, line 1: missing column\(s\) \['text', 'label'\]\. Found columns: \['review', 'stars'\]",
    ):
        read_text_file(path)
    close = _write(tmp_path, "c.csv", "Text,label\nnice,a\n")
    with pytest.raises(DataFormatError, match=r"Did you mean 'text' -> 'Text'\?"):
        read_text_file(close)


def test_a_json_lines_row_missing_a_key_names_its_line(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"text": "a", "label": "x"}\n{"txt": "b", "label": "y"}\n')
    with pytest.raises(
        DataFormatError,
        match=r"d\.jsonl, line 2: missing column\(s\) \['text'\]\. Found columns: \['txt', 'label'\]",
    ):
        read_text_file(path)


def test_file_not_decodable_names_line_and_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\nok,a\ncaf\xe9,b\n")
    with pytest.raises(
        DataFormatError, match=r"d\.csv, line 3, column 4: bytes b'\\xe9' are not valid utf-8"
    ):
        read_text_file(path)
    assert read_text_file(path, encoding="latin-1").examples[1].text == "café"


def test_empty_texts_dropped_with_count_and_log_or_refused(tmp_path, caplog):
    path = _write(tmp_path, "d.csv", "text,label\nok,a\n   ,b\n,a\nfine,b\n")
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.data"):
        examples, report = read_text_file(path)
    assert [e.text for e in examples] == ["ok", "fine"]
    assert (report.dropped_empty, report.dropped_lines, report.read) == (2, [3, 4], 2)
    assert "dropped 2 example(s) with empty or whitespace-only text (lines 3, 4)" in caplog.text
    with pytest.raises(
        DataFormatError, match=r"d\.csv, line 3: empty or whitespace-only text in column 'text'"
    ):
        read_text_file(path, empty="error")


def test_an_empty_pair_counts_as_empty(tmp_path):
    path = _write(
        tmp_path,
        "d.jsonl",
        '{"a": "x", "b": " ", "label": "n"}\n{"a": "y", "b": "z", "label": "p"}\n',
    )
    examples, report = read_text_file(path, text_column="a", text_pair_column="b")
    assert [(e.text, e.text_pair) for e in examples] == [("y", "z")] and report.dropped_empty == 1
    with pytest.raises(
        DataFormatError, match=r"line 1: empty or whitespace-only text in column 'b'"
    ):
        read_text_file(path, text_column="a", text_pair_column="b", empty="error")


def test_all_texts_empty_is_an_error(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\n ,a\n")
    with pytest.raises(DataFormatError, match=r"d\.csv contains no examples \(1 had empty text\)"):
        read_text_file(path)


def test_non_numeric_regression_target_names_row(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\na,1.0\nb,high\n")
    with pytest.raises(
        DataFormatError,
        match=r"d\.csv, line 3: the regression target must be a finite number\. Received: 'high'",
    ):
        read_text_file(path, task="regression")
    infinite = _write(tmp_path, "i.jsonl", '{"text": "a", "label": "inf"}\n')
    with pytest.raises(
        DataFormatError,
        match=r"line 1: the regression target must be a finite number\. Received: 'inf'",
    ):
        read_text_file(infinite, task="regression")


def test_multilabel_cells_parse_or_name_the_row(tmp_path):
    path = _write(
        tmp_path,
        "d.jsonl",
        '{"text": "a", "label": ["x", "y"]}\n{"text": "b", "label": "z, y,z"}\n{"text": "c", "label": ""}\n',
    )
    assert [e.label for e in read_text_file(path, task="multilabel").examples] == [
        ("x", "y"),
        ("z", "y"),
        (),
    ]
    semicolons = _write(tmp_path, "s.csv", 'text,label\na,"x; y"\n')
    assert read_text_file(semicolons, task="multilabel", multilabel_separator=";").examples[
        0
    ].label == ("x", "y")
    bad_json = _write(tmp_path, "bad.csv", 'text,label\na,x\nb,"[""x"", "\n')
    with pytest.raises(
        DataFormatError, match=r"bad\.csv, line 3: the multi-label cell .* does not parse"
    ):
        read_text_file(bad_json, task="multilabel")
    empty_name = _write(tmp_path, "e.csv", 'text,label\na,"x,,y"\n')
    with pytest.raises(
        DataFormatError, match=r"e\.csv, line 2: cannot parse the multi-label cell 'x,,y'"
    ):
        read_text_file(empty_name, task="multilabel")


def test_a_list_label_in_single_label_classification(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"text": "a", "label": ["x", "y"]}\n')
    with pytest.raises(
        DataFormatError, match=r"line 1: expected one label in column 'label'.*task=\"multilabel\""
    ):
        read_text_file(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataFileNotFoundError, match=r"Data file not found: '.*nope\.csv'"):
        read_text_file(tmp_path / "nope.csv")
    with pytest.raises(DataFileNotFoundError, match="got the directory"):
        read_text_file(tmp_path)


def test_malformed_rows_name_their_line(tmp_path):
    cells = _write(tmp_path, "d.csv", "text,label\na,b\nc,d,e\n")
    with pytest.raises(
        DataFormatError, match=r"d\.csv, line 3: 3 cells, but the header \(line 1\) has 2 columns"
    ):
        read_text_file(cells)
    jsonl = _write(tmp_path, "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label}\n')
    with pytest.raises(DataFormatError, match=r"d\.jsonl, line 2, column \d+: invalid JSON"):
        read_text_file(jsonl)
    js = _write(tmp_path, "d.json", '[{"text": "a", "label": "x"},\n {"text": }]')
    with pytest.raises(DataFormatError, match=r"d\.json, line 2, column 11: invalid JSON"):
        read_text_file(js)
    not_a_list = _write(tmp_path, "o.json", '{"text": "a"}')
    with pytest.raises(DataFormatError, match=r"o\.json, line 1: expected a JSON list of objects"):
        read_text_file(not_a_list)


def test_bad_arguments(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\na,b\n")
    with pytest.raises(ConfigError, match=r"Received: `task`='ner'"):
        read_text_file(path, task="ner")
    with pytest.raises(ConfigError, match=r"Received: `empty`='skip'"):
        read_text_file(path, empty="skip")
    with pytest.raises(ConfigError, match=r"Received: `file_format`='xml'"):
        read_text_file(path, file_format="xml")
    with pytest.raises(ConfigError, match=r"Unknown encoding\. Received: `encoding`='klingon'"):
        read_text_file(path, encoding="klingon")
    with pytest.raises(
        ConfigError, match=r"\.parquet files need the `datasets` loader\. Use read_hub_dataset"
    ):
        read_text_file(tmp_path / "d.parquet")


# -- through `datasets` -----------------------------------------------------------------


def test_read_hub_dataset_from_a_local_csv(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\ngood,pos\n ,neg\nbad,neg\n")
    examples = read_hub_dataset(str(path), "train", cache_dir=str(tmp_path / "cache"))
    assert [(e.text, e.label, e.line) for e in examples] == [("good", "pos", 1), ("bad", "neg", 3)]
    assert examples[0].source == f"{path} [train]"
    with pytest.raises(
        DataFormatError,
        match=r"d\.csv \[train\], row 1: missing column\(s\) \['sentence'\]\. Found columns: \['text', 'label'\]",
    ):
        read_hub_dataset(
            str(path), "train", text_column="sentence", cache_dir=str(tmp_path / "cache")
        )


def test_read_hub_dataset_maps_class_label_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["neg", "pos"]),
            "tags": datasets.Sequence(datasets.ClassLabel(names=["x", "y"])),
        }
    )
    table = datasets.Dataset.from_dict(
        {"text": ["a", "b"], "label": [1, 0], "tags": [[1], [0, 1]]}, features=features
    )
    table.to_parquet(str(tmp_path / "d.parquet"))
    cache = str(tmp_path / "cache")
    assert [
        e.label for e in read_hub_dataset(str(tmp_path / "d.parquet"), "train", cache_dir=cache)
    ] == ["pos", "neg"]
    tagged = read_hub_dataset(
        str(tmp_path / "d.parquet"),
        "train",
        task="multilabel",
        label_column="tags",
        cache_dir=cache,
    )
    assert [e.label for e in tagged] == [("y",), ("x", "y")]


def test_read_hub_dataset_errors(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(
        HubUnavailableError, match=r"'nobody/no-such-set'.*If you are offline, pass a local file"
    ):
        read_hub_dataset("nobody/no-such-set", "train", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataFileNotFoundError, match=r"not found: '.*missing\.csv'"):
        read_hub_dataset(str(tmp_path / "missing.csv"), "train")
    single = _write(tmp_path, "f.csv", "text,label\na,b\n")
    with pytest.raises(ConfigError, match=r"is a single file, which is itself the split asked for"):
        read_hub_dataset(str(single), "train", data_files={"train": "other.csv"})
    folder = tmp_path / "folder"
    folder.mkdir()
    _write(folder, "train.csv", "text,label\ngood,pos\n")
    with pytest.raises(ConfigError, match=r"has no split 'test\[:5\]'"):
        read_hub_dataset(str(folder), "test[:5]", cache_dir=str(tmp_path / "cache"))
    assert (
        read_hub_dataset(str(folder), "train", cache_dir=str(tmp_path / "cache"))[0].text == "good"
    )


# -- label checks ---------------------------------------------------------------------------


def _check_splits(task, train, **others):
    get_task(task)().check_splits({"train": train, **others})


def test_unseen_dev_labels_are_named_with_their_first_row():
    train = [TextExample("a", "x", source="train.csv", line=2), TextExample("b", "y")]
    dev = [
        TextExample("c", "z", source="dev.csv", line=5),
        TextExample("d", "x", source="dev.csv", line=6),
        TextExample("e", "z", source="dev.csv", line=7),
        TextExample("f", "w", source="dev.csv", line=9),
    ]
    with pytest.raises(
        LabelError,
        match=r"The dev split has 2 label\(s\) never seen in training: "
        r"'w' first at dev\.csv, line 9; 'z' first at dev\.csv, line 5\. "
        r"Training has \['x', 'y'\]",
    ):
        _check_splits("classification", train, dev=dev)
    _check_splits("classification", train, dev=dev[1:2])  # known labels pass


def test_check_labels_multilabel_hub_rows_and_regression():
    train = [TextExample("a", ("x", "y")), TextExample("b", ("y",))]
    test = [TextExample("c", ("y", "q"), source="imdb [test]", line=4)]
    with pytest.raises(LabelError, match=r"The test split .* 'q' first at imdb \[test\], row 4"):
        _check_splits("multilabel", train, dev=train, test=test)
    # nothing to check for values
    _check_splits("regression", [TextExample("a", 1.0), TextExample("c", 2.0)], dev=[TextExample("b", 99.0)])


def test_check_trainable_refuses_what_cannot_be_learned():
    def check(task, train):
        get_task(task)().check_trainable(train)

    train = [TextExample("a", "x", source="train.csv", line=2), TextExample("b", "x")]
    with pytest.raises(
        LabelError,
        match=r"The training set \(train\.csv\) has a single class \['x'\] \(2 examples\)",
    ):
        check("classification", train)
    with pytest.raises(
        LabelError, match=r"regression targets of the training set \(<memory>\) are all 3\.0"
    ):
        check("regression", [TextExample("a", 3.0), TextExample("b", 3.0)])
    with pytest.raises(
        LabelError, match=r"Every training example .* has the same label set \['a', 'b'\]"
    ):
        check("multilabel", [TextExample("a", ("a", "b")), TextExample("b", ("b", "a"))])
    for task in ("classification", "multilabel", "regression"):
        with pytest.raises(LabelError, match="The training set is empty"):
            check(task, [])
    check("classification", [TextExample("a", "x"), TextExample("b", "y")])
    check("multilabel", [TextExample("a", ("x",)), TextExample("b", ())])


def test_example_fields_are_json_friendly():
    example = read_text_file(bundled_trec()["test"], encoding=TREC_ENCODING).examples[0]
    assert json.loads(json.dumps(example.__dict__))["line"] == 1
