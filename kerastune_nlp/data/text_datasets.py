"""Labelled texts from anything `datasets` loads: a hub data set, a local parquet/arrow/csv/json file, a folder."""

from __future__ import annotations

from kerastune_nlp.data import hub
from kerastune_nlp.data.text_examples import (
    EMPTY_CHOICES,
    HUB_SOURCE_MARK,
    LabelParser,
    TextExample,
    check_choice,
    missing_columns_message,
    rows_to_examples,
)
from kerastune_nlp.errors import DataFormatError

_FIX = "If you are offline, pass a local file instead (read_text_file(path), or --train FILE)."


def read_hub_dataset(name_or_path: str, split: str, *, parse_label: LabelParser, text_column: str = "text",
                     text_pair_column: str | None = None, label_column: str = "label", config_name: str | None = None,
                     data_files=None, empty: str = "drop", cache_dir=None) -> list[TextExample]:
    """Loads one split through the `data.hub` gateway and turns its rows into examples.

    Integer labels with ClassLabel names become their names (a list of
    ClassLabel ids becomes a list of names) before `parse_label` sees them.
    Rows are counted from 1; empty texts are dropped and logged (or refused,
    by `empty`).

    Args:
        name_or_path: str. A hub id ("stanfordnlp/imdb"), a local data file
            (.csv, .tsv, .json, .jsonl, .parquet, .arrow; the file is the
            split asked for) or a local folder.
        split: str. The split, e.g. "train", "validation", "test[:10%]".
        parse_label, text_column, text_pair_column, label_column, empty: as in
            `data.text_files.read_text_file`.
        config_name: str or None. The data set's configuration. Defaults to None.
        data_files: passed to `datasets.load_dataset`. Defaults to None.
        cache_dir: str or None. The `datasets` cache. Defaults to its own.

    Example:
    >>> train = read_hub_dataset("reviews.csv", "train", parse_label=lambda value, where, column: value)
    """
    check_choice("empty", empty, EMPTY_CHOICES)
    table = hub.load_split(str(name_or_path), split, config_name=config_name, data_files=data_files,
                           cache_dir=cache_dir, fix=_FIX)
    missing = [c for c in (text_column, text_pair_column, label_column) if c and c not in table.column_names]
    source = f"{name_or_path}{HUB_SOURCE_MARK}{split}]"
    if missing:
        raise DataFormatError(missing_columns_message(source, "row", 1, missing, table.column_names))
    names = _class_names(table.features.get(label_column))

    def rows():
        for index, row in enumerate(table):
            label = row[label_column]
            if names is not None and label is not None:
                label = [names[i] for i in label] if isinstance(label, list) else names[label]
            yield index + 1, {**row, label_column: label}

    return rows_to_examples(rows(), source, "row", parse_label, text_column, text_pair_column, label_column,
                            empty).examples


def _class_names(feature):
    names = getattr(feature, "names", None)
    if names is None:  # List(ClassLabel) / Sequence(ClassLabel) of a multi-label column
        names = getattr(getattr(feature, "feature", None), "names", None)
    return names
