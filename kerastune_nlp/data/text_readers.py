"""Reading labelled texts for sequence-level tasks.

Local files: CSV, TSV, JSON (a list of objects), JSON Lines, and the
`LABEL<SPACE>text` line format (TREC). Anything else `datasets` can load
(parquet, hub data sets) goes through `read_hub_dataset`. Every problem names
the file and the line (or row) and says how to fix it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
from pathlib import Path
from typing import Sequence, Union

from kerastune_nlp.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    HubUnavailableError,
    LabelError,
)

logger = logging.getLogger("kerastune_nlp.data")

TASKS = ("classification", "multilabel", "regression")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}

Label = Union[str, tuple, float]


@dataclasses.dataclass(frozen=True)
class TextExample:
    """One labelled text (or text pair).

    Args:
        text: str. The text.
        text_pair: str or None. Second text of a pair task.
        label: str (classification), tuple of str (multi-label) or float
            (regression).
        source: str. File it came from.
        line: int. 1-based line (or row for JSON) in that file.
    """

    text: str
    label: Label
    text_pair: str | None = None
    source: str = "<memory>"
    line: int = 0


@dataclasses.dataclass
class ReadReport:
    """What reading did besides returning examples."""

    path: str
    read: int = 0
    dropped_empty: int = 0


def read_text_file(
    path,
    *,
    task: str = "classification",
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    encoding: str = "utf-8",
    file_format: str | None = None,
    multilabel_separator: str = ",",
    empty: str = "drop",
) -> tuple[list[TextExample], ReadReport]:
    """Reads labelled texts from a local file.

    Args:
        path: the file.
        task: "classification", "multilabel" or "regression".
        text_column, text_pair_column, label_column: column (or JSON key)
            names. Ignored for the "label_text" format.
        encoding: str. Defaults to "utf-8".
        file_format: "csv", "tsv", "json", "jsonl" or "label_text"; None
            infers it from the suffix (anything else is "label_text").
        multilabel_separator: str. Separates labels in a multi-label cell
            (a JSON list is accepted too). Defaults to ",".
        empty: "drop" (counted in the report and logged) or "error" for
            empty or whitespace-only texts. Defaults to "drop".

    Example:
    >>> examples, report = read_text_file("TREC.train.all", encoding="latin-1")
    """
    if task not in TASKS:
        raise ConfigError(f"Expected `task` in {list(TASKS)}. Received: `task`={task!r}.")
    if empty not in ("drop", "error"):
        raise ConfigError(f'Expected `empty` to be "drop" or "error". Received: `empty`={empty!r}.')
    path = Path(path)
    file_format = file_format or FORMATS.get(path.suffix.lower(), "label_text")
    text = _read_text(path, encoding)
    if file_format == "label_text":
        rows = _label_text_rows(text, path)
        text_column, label_column, text_pair_column = "text", "label", None
    elif file_format in ("csv", "tsv"):
        rows = _delimited_rows(text, path, "\t" if file_format == "tsv" else ",")
    elif file_format == "json":
        rows = _json_rows(text, path)
    elif file_format == "jsonl":
        rows = _jsonl_rows(text, path)
    else:
        raise ConfigError(
            f"Expected `file_format` in csv, tsv, json, jsonl, label_text. Received: `file_format`={file_format!r}."
        )
    return _to_examples(rows, path, task, text_column, text_pair_column, label_column,
                        multilabel_separator, empty)


def _read_text(path: Path, encoding: str) -> str:
    if not path.exists():
        raise DataFileNotFoundError(f"Data file not found: {str(path)!r}. Check the path.")
    if path.is_dir():
        raise DataFileNotFoundError(f"Expected a data file, got the directory {str(path)!r}.")
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataFormatError(
            f"{path}, line {line}, column {column}: bytes that are not valid {encoding} "
            f"({data[error.start:error.start + 4]!r}). Pass the file's encoding, e.g. "
            "encoding=\"latin-1\" (--encoding latin-1), or re-save it as UTF-8."
        ) from None
    except LookupError as error:
        raise ConfigError(f"Unknown encoding. Received: `encoding`={encoding!r}.") from error


def _label_text_rows(text: str, path: Path):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, _, rest = line.strip().partition(" ")
        yield number, {"label": label, "text": rest}


def _delimited_rows(text: str, path: Path, delimiter: str):
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise DataFormatError(f"{path} is empty: expected a header row with column names.")
    for row in reader:
        if None in row:  # more cells than header columns
            raise DataFormatError(
                f"{path}, line {reader.line_num}: more cells than the {len(reader.fieldnames)} header "
                f"columns {reader.fieldnames}. Quote cells that contain {delimiter!r}."
            )
        yield reader.line_num, row


def _json_rows(text: str, path: Path):
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}, line {error.lineno}, column {error.colno}: invalid JSON ({error.msg}).") from None
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise DataFormatError(f"{path}: expected a JSON list of objects (one per example). Use .jsonl for JSON Lines.")
    for number, row in enumerate(payload, start=1):
        yield number, row


def _jsonl_rows(text: str, path: Path):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}, line {number}, column {error.colno}: invalid JSON ({error.msg}).") from None
        if not isinstance(row, dict):
            raise DataFormatError(f"{path}, line {number}: expected a JSON object. Received: {line[:60]!r}.")
        yield number, row


def _to_examples(rows, path, task, text_column, pair_column, label_column, separator, empty):
    report = ReadReport(str(path))
    examples = []
    checked_columns = False
    for number, row in rows:
        if not checked_columns:
            wanted = [c for c in (text_column, pair_column, label_column) if c]
            missing = [c for c in wanted if c not in row]
            if missing:
                raise DataFormatError(
                    f"{path}: missing column(s) {missing}. Found columns: {sorted(row)}. Pass "
                    "--text-column/--text-pair-column/--label-column (text_column=..., "
                    "label_column=...) with the right names."
                )
            checked_columns = True
        text = _cell_text(row.get(text_column))
        pair = _cell_text(row.get(pair_column)) if pair_column else None
        if not text.strip() or (pair_column and not pair.strip()):
            if empty == "error":
                raise DataFormatError(
                    f"{path}, line {number}: empty or whitespace-only text. Remove the row or "
                    "pass empty=\"drop\" (--empty drop) to skip such rows."
                )
            report.dropped_empty += 1
            continue
        label = _parse_label(row.get(label_column), task, separator, path, number)
        examples.append(TextExample(text, label, pair, str(path), number))
    if report.dropped_empty:
        logger.warning("%s: dropped %d examples with empty text.", path, report.dropped_empty)
    if not examples:
        raise DataFormatError(f"{path} contains no examples. Check the file and the column names.")
    report.read = len(examples)
    return examples, report


def _cell_text(value) -> str:
    return "" if value is None else str(value)


def _parse_label(value, task, separator, path, number) -> Label:
    if task == "regression":
        try:
            number_value = float(value)
        except (TypeError, ValueError):
            number_value = math.nan
        if not math.isfinite(number_value):
            raise DataFormatError(
                f"{path}, line {number}: the regression target must be a finite number. "
                f"Received: {value!r}. Fix the cell or drop the row."
            )
        return number_value
    if task == "multilabel":
        return _parse_multilabel(value, separator, path, number)
    if value is None or str(value).strip() == "":
        raise DataFormatError(f"{path}, line {number}: empty label. Every example needs a label.")
    return str(value).strip()


def _parse_multilabel(value, separator, path, number) -> tuple:
    if isinstance(value, list):
        labels = value
    else:
        cell = "" if value is None else str(value).strip()
        if cell.startswith("["):
            try:
                labels = json.loads(cell)
            except json.JSONDecodeError:
                raise DataFormatError(
                    f"{path}, line {number}: the multi-label cell {cell!r} starts like a JSON list but "
                    f"does not parse. Write it as [\"a\", \"b\"] or as a{separator}b."
                ) from None
        else:
            labels = [part.strip() for part in cell.split(separator)] if cell else []
    if not isinstance(labels, list) or any(not isinstance(x, str) or not x.strip() for x in labels):
        raise DataFormatError(
            f"{path}, line {number}: cannot parse the multi-label cell {value!r}: expected label "
            f"names separated by {separator!r} or a JSON list of strings, with no empty names."
        )
    return tuple(sorted(set(x.strip() for x in labels)))


def read_hub_dataset(
    name_or_path: str,
    split: str,
    *,
    task: str = "classification",
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    data_files=None,
) -> list[TextExample]:
    """Loads a split of anything `datasets.load_dataset` reads (hub name or local builder).

    Integer labels with ClassLabel names become their names.
    """
    import datasets

    try:
        table = datasets.load_dataset(name_or_path, split=split, data_files=data_files)
    except (ConnectionError, OSError, ValueError, RuntimeError) as error:
        raise HubUnavailableError(
            f"Could not load the data set {name_or_path!r} ({type(error).__name__}: {str(error)[:200]}). "
            "If you are offline, pass a local file (--train FILE) instead."
        ) from error
    feature = table.features.get(label_column)
    names = getattr(feature, "names", None)
    rows = (
        (i + 1, {**row, label_column: names[row[label_column]] if names else row[label_column]})
        for i, row in enumerate(table)
    )
    examples, _ = _to_examples(rows, f"{name_or_path}:{split}", task, text_column, text_pair_column,
                               label_column, ",", "drop")
    return examples


def label_set(examples: Sequence[TextExample], task: str) -> list[str]:
    if task == "multilabel":
        return sorted({label for e in examples for label in e.label})
    return sorted({e.label for e in examples})


def check_labels(train: Sequence[TextExample], other: Sequence[TextExample], split_name: str, task: str) -> None:
    """Raises LabelError naming labels of `other` that training never saw."""
    if task == "regression":
        return
    known = set(label_set(train, task))
    first_seen = {}
    for example in other:
        labels = example.label if task == "multilabel" else (example.label,)
        for label in labels:
            if label not in known and label not in first_seen:
                first_seen[label] = f"{example.source}, line {example.line}"
    if first_seen:
        where = "; ".join(f"{k!r} first at {v}" for k, v in sorted(first_seen.items()))
        raise LabelError(
            f"The {split_name} split has labels never seen in training: {where}. Training knows "
            f"{sorted(known)}. Add training examples of them or fix the {split_name} labels."
        )


def check_trainable(train: Sequence[TextExample], task: str) -> None:
    """Raises unless the training set can teach something (two classes, varied targets)."""
    if task == "regression":
        if len({e.label for e in train}) < 2:
            raise LabelError("The regression targets of the training set are all equal: nothing to learn.")
        return
    labels = label_set(train, task)
    if task == "classification" and len(labels) < 2:
        source = train[0].source if train else "the training data"
        raise LabelError(
            f"The training set ({source}) has a single class {labels}: a classifier needs at "
            "least two. Check the label column or add examples of other classes."
        )
    if task == "multilabel" and not labels:
        raise LabelError("The multi-label training set has no labels at all.")
