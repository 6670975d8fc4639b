"""Labelled texts from local files: CSV, TSV, JSON (a list of objects), JSON Lines, `LABEL<SPACE>text` lines (TREC).

Parsed with the standard library so every problem names the file and the
physical line. Anything else `datasets` can load (hub data sets, parquet,
arrow) goes through `data.text_datasets.read_hub_dataset`, whose problems name
the row.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Iterator

from kerastune_nlp.config import FILE_FORMATS
from kerastune_nlp.data.text_examples import EMPTY_CHOICES, LabelParser, ReadResult, check_choice, rows_to_examples
from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError

logger = logging.getLogger("kerastune_nlp.data")

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Binary tables: reading them as `LABEL text` lines would only produce noise.
_DATASETS_ONLY = {".parquet", ".arrow", ".feather", ".xlsx", ".xls", ".gz", ".zip", ".bz2", ".xz"}


def read_text_file(path, *, parse_label: LabelParser, text_column: str = "text",
                   text_pair_column: str | None = None, label_column: str = "label", encoding: str = "utf-8",
                   file_format: str | None = None, empty: str = "drop") -> ReadResult:
    """Reads labelled texts from a local file.

    Args:
        path: str or Path. The file.
        parse_label: callable `(cell value, "file, line N", column) -> label`:
            the task's label rule (`TextTask.parse_label`); it raises
            DataFormatError on a bad cell.
        text_column: str. Column (or JSON key) of the text. Defaults to "text".
        text_pair_column: str or None. Column of the second text of a pair
            task. Defaults to None.
        label_column: str. Column of the label. Defaults to "label". The
            three column names are ignored by the "label_text" format.
        encoding: str. The file's encoding, e.g. "latin-1". Defaults to
            "utf-8" (a leading byte-order mark is skipped).
        file_format: str or None. "csv", "tsv", "json", "jsonl" or
            "label_text"; None infers it from the suffix (.csv, .tsv, .json,
            .jsonl, .ndjson; any other suffix is read as "label_text").
            Defaults to None.
        empty: str. "drop" (counted in the report and logged) or "error" for
            empty or whitespace-only texts. Defaults to "drop".

    Returns:
        `ReadResult(examples, report)`: a list of `TextExample` and a
        `ReadReport`.

    Example:
    >>> examples, report = read_text_file("reviews.csv", parse_label=lambda value, where, column: value)
    """
    check_choice("empty", empty, EMPTY_CHOICES)
    if file_format is not None:
        check_choice("file_format", file_format, FILE_FORMATS)
    path = Path(path)
    if file_format is None:
        file_format = _infer_format(path)
    text = _read_text(path, encoding)
    if file_format == "label_text":
        rows = _label_text_rows(text, path)
        text_column, label_column, text_pair_column = "text", "label", None
    elif file_format in ("csv", "tsv"):
        rows = _delimited_rows(text, path, "\t" if file_format == "tsv" else ",")
    elif file_format == "json":
        rows = json_rows(text, path)
    else:
        rows = jsonl_rows(text, path)
    return rows_to_examples(rows, str(path), "line", parse_label, text_column, text_pair_column, label_column,
                            empty)


def _infer_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _DATASETS_ONLY:
        raise ConfigError(
            f"Cannot read {str(path)!r} as text lines: {suffix} files need the `datasets` loader. "
            f"Use read_hub_dataset({str(path)!r}, split=...) instead, or pass `file_format`."
        )
    if suffix not in FORMATS:
        logger.debug(
            "%s: suffix %r is not csv/tsv/json/jsonl; reading `LABEL text` lines.", path, suffix
        )
    return FORMATS.get(suffix, "label_text")


def _read_text(path: Path, encoding: str) -> str:
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(
            f"Unknown encoding. Received: `encoding`={encoding!r}. Use a Python codec name such as "
            "'utf-8', 'latin-1' or 'cp1252'."
        ) from None
    if not path.exists():
        raise DataFileNotFoundError(
            f"Data file not found: {str(path)!r} (working directory {os.getcwd()!r}). Check the "
            "path."
        )
    if path.is_dir():
        raise DataFileNotFoundError(
            f"Expected a data file, got the directory {str(path)!r}. Name a file in it."
        )
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataFormatError(
            f"{path}, line {line}, column {column}: bytes {data[error.start : error.end]!r} are "
            f"not valid {encoding} ({error.reason}). Received: `encoding`={encoding!r}. Pass the "
            "file's encoding, "
            'e.g. encoding="latin-1" or "cp1252" (--encoding latin-1), or re-save it as UTF-8.'
        ) from None
    if codec.name == "utf-8" and text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark is not content; left in, it renames the first column
    return text


def _physical_lines(text: str) -> Iterator[tuple[int, str]]:
    # Split on "\n" only: str.splitlines() also breaks at U+0085, which is the
    # cp1252 ellipsis byte 0x85 read as Latin-1, and would shift line numbers.
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def _label_text_rows(text: str, path: Path):
    for number, line in _physical_lines(text):
        if not line.strip():
            continue
        label, *rest = line.split(maxsplit=1)  # any run of spaces (or a tab) separates them
        yield number, {"label": label, "text": rest[0].strip() if rest else ""}


def _delimited_rows(text: str, path: Path, delimiter: str):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, header_line, previous_end = None, 0, 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataFormatError(
                f"{path}, line {reader.line_num}: malformed "
                f"{'TSV' if delimiter == chr(9) else 'CSV'} ({error}). Check the quoting of that "
                "row."
            ) from None
        start, previous_end = previous_end + 1, reader.line_num  # a quoted cell may span lines
        if not cells:
            continue  # blank line
        if header is None:
            header, header_line = cells, start
            yield start, None, header  # the header, so columns are checked before any row
            continue
        if len(cells) != len(header):
            raise DataFormatError(
                f"{path}, line {start}: {len(cells)} cells, but the header (line {header_line}) "
                f"has {len(header)} columns {header}. Quote cells that contain {delimiter!r} and "
                "check for missing cells."
            )
        yield start, dict(zip(header, cells)), None
    if header is None:
        raise DataFormatError(f"{path} is empty: expected a header row with column names.")


def json_rows(text: str, path: Path):
    """Objects of a top-level JSON list, each with the line where it starts."""
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position >= len(text) or text[position] != "[":
        raise DataFormatError(
            f"{path}, line {_line_of(text, position)}: expected a JSON list of objects, one per "
            "example. "
            'For one object per line, name the file .jsonl (or pass file_format="jsonl").'
        )
    position, line, counted_to = _skip_space(text, position + 1), 1, 0
    if position < len(text) and text[position] == "]":
        return
    while True:
        line += text.count("\n", counted_to, position)
        counted_to = position
        try:
            row, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"{path}, line {error.lineno}, column {error.colno}: invalid JSON ({error.msg})."
            ) from None
        if not isinstance(row, dict):
            raise DataFormatError(
                f"{path}, line {line}: expected a JSON object. Received: {json.dumps(row)[:60]}."
            )
        yield line, row, None
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
        elif position < len(text) and text[position] == "]":
            break
        else:
            raise DataFormatError(
                f"{path}, line {_line_of(text, position)}: invalid JSON (expected ',' or ']' after "
                "an object)."
            )
    trailing = _skip_space(text, position + 1)
    if trailing < len(text):
        raise DataFormatError(
            f"{path}, line {_line_of(text, trailing)}: extra data after the JSON list."
        )


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def jsonl_rows(text: str, path: Path):
    for number, line in _physical_lines(text):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"{path}, line {number}, column {error.colno}: invalid JSON ({error.msg})."
            ) from None
        if not isinstance(row, dict):
            raise DataFormatError(
                f"{path}, line {number}: expected a JSON object. Received: {line.strip()[:60]}."
            )
        yield number, row, None
