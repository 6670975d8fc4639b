"""Reading labelled texts for sequence-level tasks.

Local files: CSV, TSV, JSON (a list of objects), JSON Lines, and the
`LABEL<SPACE>text` line format (TREC). They are parsed with the standard
library so every problem can name the file and the physical line; anything
else `datasets` can load (hub data sets, parquet, arrow) goes through
`read_hub_dataset`, whose problems name the row.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import difflib
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence, Union

from kerastune_nlp.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    HubUnavailableError,
    LabelError,
)

logger = logging.getLogger("kerastune_nlp.data")

TASKS = ("classification", "multilabel", "regression")
FILE_FORMATS = ("csv", "tsv", "json", "jsonl", "label_text")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Binary tables: reading them as `LABEL text` lines would only produce noise.
_DATASETS_ONLY = {".parquet", ".arrow", ".feather", ".xlsx", ".xls", ".gz", ".zip", ".bz2", ".xz"}
_HUB_SOURCE_MARK = " ["  # sources of `read_hub_dataset` look like "name [split]" and count rows

Label = Union[str, tuple, float]


@dataclasses.dataclass(frozen=True)
class TextExample:
    """One labelled text (or text pair).

    Field order is `text, label, text_pair, source, line` so that
    `TextExample("great film", "pos")` reads naturally; pass the rest by
    keyword.

    Args:
        text: str. The text.
        label: str (classification), tuple of str (multi-label) or float
            (regression).
        text_pair: str or None. Second text of a pair task. Defaults to None.
        source: str. File (or data set and split) it came from. Defaults to
            "<memory>".
        line: int. 1-based line of a file, or row of a data set. Defaults
            to 0 (unknown).
    """

    text: str
    label: Label
    text_pair: str | None = None
    source: str = "<memory>"
    line: int = 0


@dataclasses.dataclass
class ReadReport:
    """What reading did besides returning examples.

    Args:
        path: str. The file read.
        read: int. Examples returned.
        dropped_empty: int. Examples dropped for empty or whitespace-only text.
        dropped_lines: list of int. Their lines (or rows), in file order.
    """

    path: str
    read: int = 0
    dropped_empty: int = 0
    dropped_lines: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ReadResult(NamedTuple):
    """`(examples, report)`: unpack it, or use the names."""

    examples: list
    report: ReadReport


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
) -> ReadResult:
    """Reads labelled texts from a local file.

    Args:
        path: str or Path. The file.
        task: str. "classification", "multilabel" or "regression".
            Defaults to "classification".
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
        multilabel_separator: str. Separates labels in a multi-label cell; a
            JSON list (in the cell or as the JSON value) works too. An empty
            cell means "no label applies". Defaults to ",".
        empty: str. "drop" (counted in the report and logged) or "error" for
            empty or whitespace-only texts. Defaults to "drop".

    Returns:
        `ReadResult(examples, report)`: a list of `TextExample` and a
        `ReadReport`.

    Example:
    >>> from kerastune_nlp.data.bundled_trec import bundled_trec
    >>> examples, report = read_text_file(bundled_trec()["train"], encoding="latin-1")
    >>> len(examples), examples[0].label
    (5452, '0')
    """
    _check_choice("task", task, TASKS)
    _check_choice("empty", empty, ("drop", "error"))
    if file_format is not None:
        _check_choice("file_format", file_format, FILE_FORMATS)
    if not multilabel_separator:
        raise ConfigError(
            "Expected a non-empty `multilabel_separator`. Received: `multilabel_separator`=''."
        )
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
        rows = _json_rows(text, path)
    else:
        rows = _jsonl_rows(text, path)
    return _to_examples(
        rows,
        str(path),
        "line",
        task,
        text_column,
        text_pair_column,
        label_column,
        multilabel_separator,
        empty,
    )


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(
            f"Expected `{name}` to be one of {list(choices)}. Received: `{name}`={value!r}."
        )


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


def _json_rows(text: str, path: Path):
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


def _jsonl_rows(text: str, path: Path):
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


def _to_examples(
    rows: Iterable,
    source: str,
    unit: str,
    task: str,
    text_column: str,
    pair_column: str | None,
    label_column: str,
    separator: str,
    empty: str,
) -> ReadResult:
    """Turns `(number, row)` or `(number, row, header)` items into examples."""
    wanted = [c for c in (text_column, pair_column, label_column) if c]
    report = ReadReport(source)
    examples = []
    for item in rows:
        number, row, header = item if len(item) == 3 else (*item, None)
        if header is not None or row is not None:
            columns = header if header is not None else list(row)
            missing = [c for c in wanted if c not in columns]
            if missing:
                raise DataFormatError(
                    _missing_columns_message(source, unit, number, missing, columns)
                )
            if header is not None:
                duplicated = [c for c in wanted if header.count(c) > 1]
                if duplicated:
                    raise DataFormatError(
                        f"{source}, {unit} {number}: the header names column(s) {duplicated} more "
                        "than once. Rename the duplicates."
                    )
                continue
        text = _cell_text(row[text_column], text_column, source, unit, number)
        pair = (
            _cell_text(row[pair_column], pair_column, source, unit, number) if pair_column else None
        )
        blank = (
            text_column
            if not text.strip()
            else (pair_column if pair_column and not pair.strip() else None)
        )
        if blank:
            if empty == "error":
                raise DataFormatError(
                    f"{source}, {unit} {number}: empty or whitespace-only text in column "
                    f"{blank!r}. "
                    'Remove the row, or pass empty="drop" (--empty drop) to skip such rows.'
                )
            report.dropped_empty += 1
            report.dropped_lines.append(number)
            continue
        label = _parse_label(row[label_column], task, separator, source, unit, number, label_column)
        examples.append(TextExample(text, label, pair, source, number))
    if report.dropped_empty:
        shown = ", ".join(map(str, report.dropped_lines[:10])) + (
            ", ..." if report.dropped_empty > 10 else ""
        )
        logger.warning(
            "%s: dropped %d example(s) with empty or whitespace-only text (%ss %s).",
            source,
            report.dropped_empty,
            unit,
            shown,
        )
    if not examples:
        raise DataFormatError(
            f"{source} contains no examples"
            + (f" ({report.dropped_empty} had empty text)" if report.dropped_empty else "")
            + ". Check the file, its format and the column names."
        )
    report.read = len(examples)
    return ReadResult(examples, report)


def _missing_columns_message(source, unit, number, missing, columns) -> str:
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in columns], n=1, cutoff=0.6)
        lowered = [c for c in columns if str(c).strip().lower() == name.lower()]
        if lowered or close:
            hints.append(f"{name!r} -> {(lowered or close)[0]!r}?")
    return (
        f"{source}, {unit} {number}: missing column(s) {missing}. Found columns: {list(columns)}. "
        + (f"Did you mean {', '.join(hints)} " if hints else "")
        + "Pass text_column=..., text_pair_column=..., label_column=... "
        "(--text-column/--text-pair-column/--label-column) with the file's names."
    )


def _cell_text(value, column, source, unit, number) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # pandas' empty cell
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise DataFormatError(
        f"{source}, {unit} {number}: expected text in column {column!r}. Received: "
        f"{json.dumps(value)[:60]}."
    )


def _parse_label(value, task, separator, source, unit, number, column) -> Label:
    where = f"{source}, {unit} {number}"
    if task == "regression":
        number_value = math.nan
        if not isinstance(value, bool):
            try:
                number_value = float(value.strip() if isinstance(value, str) else value)
            except (TypeError, ValueError):
                pass
        if not math.isfinite(number_value):
            raise DataFormatError(
                f"{where}: the regression target must be a finite number. Received: {value!r} in "
                f"column {column!r}. Fix the cell or drop the row."
            )
        return number_value
    if task == "multilabel":
        return _parse_multilabel(value, separator, where)
    if isinstance(value, (list, tuple, dict)):
        raise DataFormatError(
            f"{where}: expected one label in column {column!r}. Received: "
            f"{json.dumps(value)[:60]}. "
            'For several labels per example use task="multilabel".'
        )
    if value is None or str(value).strip() == "":
        raise DataFormatError(
            f"{where}: empty label in column {column!r}. Every example needs a label."
        )
    return str(value).strip()


def _parse_multilabel(value, separator, where) -> tuple:
    if isinstance(value, (list, tuple)):
        labels = list(value)
    elif value is None:
        labels = []
    else:
        cell = str(value).strip()
        if cell.startswith("["):
            try:
                labels = json.loads(cell)
            except json.JSONDecodeError:
                raise DataFormatError(
                    f"{where}: the multi-label cell {cell!r} starts like a JSON list but does not "
                    "parse. "
                    f'Write it as ["a", "b"] or as a{separator}b.'
                ) from None
        else:
            labels = [part.strip() for part in cell.split(separator)] if cell else []
    if not isinstance(labels, list) or not all(_is_label_name(x) for x in labels):
        raise DataFormatError(
            f"{where}: cannot parse the multi-label cell {value!r}: expected label names separated "
            f"by {separator!r}, or a JSON list of strings, with no empty names."
        )
    # Written order is kept (the first label is the one splits stratify by); repeats go.
    return tuple(dict.fromkeys(str(x).strip() for x in labels))


def _is_label_name(value) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, str) and bool(value.strip())) or isinstance(value, int)


# -- data sets through `datasets` ----------------------------------------------

_LOADERS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".ndjson": ("json", {}),
    ".parquet": ("parquet", {}),
    ".arrow": ("arrow", {}),
}


def read_hub_dataset(
    name_or_path: str,
    split: str,
    *,
    task: str = "classification",
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    config_name: str | None = None,
    data_files=None,
    multilabel_separator: str = ",",
    empty: str = "drop",
    cache_dir=None,
) -> list[TextExample]:
    """Loads one split through `datasets.load_dataset` (a hub name, a local file or folder).

    Integer labels with ClassLabel names become their names (for multi-label,
    a list of ClassLabel ids becomes a tuple of names). Rows are counted from
    1; empty texts are dropped and logged (or refused, by `empty`).

    Args:
        name_or_path: str. A hub id ("stanfordnlp/imdb"), a local data file
            (.csv, .tsv, .json, .jsonl, .parquet, .arrow; the file is the
            split asked for) or a local folder.
        split: str. The split, e.g. "train", "validation", "test[:10%]".
        task, text_column, text_pair_column, label_column,
            multilabel_separator, empty: as in `read_text_file`.
        config_name: str or None. The data set's configuration. Defaults to None.
        data_files: passed to `datasets.load_dataset`. Defaults to None.
        cache_dir: str or None. The `datasets` cache. Defaults to its own.

    Example:
    >>> train = read_hub_dataset("reviews.csv", "train")          # a local file
    >>> dev = read_hub_dataset("stanfordnlp/imdb", "test[:500]")   # needs the hub
    """
    _check_choice("task", task, TASKS)
    _check_choice("empty", empty, ("drop", "error"))
    table = _load_split(str(name_or_path), split, config_name, data_files, cache_dir)
    missing = [
        c
        for c in (text_column, text_pair_column, label_column)
        if c and c not in table.column_names
    ]
    source = f"{name_or_path}{_HUB_SOURCE_MARK}{split}]"
    if missing:
        raise DataFormatError(
            _missing_columns_message(source, "row", 1, missing, table.column_names)
        )
    names = _class_names(table.features.get(label_column))

    def rows():
        for index, row in enumerate(table):
            label = row[label_column]
            if names is not None and label is not None:
                label = [names[i] for i in label] if isinstance(label, list) else names[label]
            yield index + 1, {**row, label_column: label}

    return _to_examples(
        rows(),
        source,
        "row",
        task,
        text_column,
        text_pair_column,
        label_column,
        multilabel_separator,
        empty,
    ).examples


def _class_names(feature):
    names = getattr(feature, "names", None)
    if names is None:  # List(ClassLabel) / Sequence(ClassLabel) of a multi-label column
        names = getattr(getattr(feature, "feature", None), "names", None)
    return names


def _load_split(name: str, split: str, config_name, data_files, cache_dir):
    import datasets

    path = Path(name).expanduser()
    # A hub id is "name" or "owner/name"; anything else path-like is meant to be local.
    looks_local = (
        path.exists()
        or name.startswith((".", "~", "/"))
        or "\\" in name
        or name.count("/") > 1
        or path.suffix.lower() in _LOADERS
    )
    if looks_local and not path.exists():
        raise DataFileNotFoundError(f"Data file or folder not found: {name!r}. Check the path.")
    kwargs = {}
    if path.is_file():
        if path.suffix.lower() not in _LOADERS:
            raise ConfigError(
                f"Cannot tell how to load {name!r} from its suffix. Expected one of "
                f"{sorted(_LOADERS)}. "
                'For `LABEL text` lines use read_text_file(path, file_format="label_text").'
            )
        if data_files is not None or config_name:
            raise ConfigError(
                f"{name!r} is a single file, which is itself the split asked for: `data_files` and "
                "`config_name` apply to hub ids and folders only. Received: "
                f"`data_files`={data_files!r}, `config_name`={config_name!r}."
            )
        builder, kwargs = _LOADERS[path.suffix.lower()]
        base = split.split("[")[0]  # "train[:10%]" slices the file loaded as "train"
        args, data_files = (builder,), {base: str(path)}
    elif path.is_dir():
        args = (str(path),)
    else:
        _check_hub_reachable(name)
        args = (name,)
    if config_name:
        args += (config_name,)
    try:
        return datasets.load_dataset(
            *args, split=split, data_files=data_files, cache_dir=cache_dir, **kwargs
        )
    except ValueError as error:
        if "Unknown split" in str(error) or "Bad split" in str(error):
            raise ConfigError(
                f"The data set {name!r} has no split {split!r} ({error}). Received: "
                f"`split`={split!r}."
            ) from None
        if looks_local:
            raise DataFormatError(f"{name}: `datasets` could not read it ({error}).") from error
        raise HubUnavailableError(_offline_message(name, error)) from error
    except (ConnectionError, OSError) as error:
        # datasets raises ConnectionError, DatasetNotFoundError (a FileNotFoundError)
        # or LocalEntryNotFoundError offline; all mean "cannot get it from the hub".
        if looks_local:
            raise DataFormatError(
                f"{name}: `datasets` could not read it ({type(error).__name__}: {error})."
            ) from error
        raise HubUnavailableError(_offline_message(name, error)) from error


def _offline_message(name: str, error: Exception) -> str:
    return (
        f"Could not load the data set {name!r} from the Hugging Face hub ({type(error).__name__}: "
        f"{str(error)[:200]}). Received: `name_or_path`={name!r}. If you are offline, pass a local "
        "file instead (read_text_file(path), or --train FILE)."
    )


def _check_hub_reachable(name: str) -> None:
    """Fails in under a second offline, where `datasets` retries for ~25 s."""
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return  # the user asked for the cache only; `datasets` answers from it
    from huggingface_hub import HfApi

    try:
        HfApi().dataset_info(name, timeout=10)
    except Exception as error:  # noqa: BLE001 - any failure means we cannot download it
        raise HubUnavailableError(
            _offline_message(name, error)
            + " To use a copy already in the datasets cache, set HF_DATASETS_OFFLINE=1."
        ) from error


# -- label checks ----------------------------------------------------------------


def infer_task(examples: Sequence[TextExample]) -> str:
    """ "classification" (str labels), "multilabel" (tuples) or "regression" (floats)."""
    kinds = set()
    for example in examples:
        label = example.label
        if isinstance(label, tuple):
            kinds.add("multilabel")
        elif isinstance(label, (int, float)) and not isinstance(label, bool):
            kinds.add("regression")
        elif isinstance(label, str):
            kinds.add("classification")
        else:
            raise ConfigError(
                f"Expected str, tuple or float labels. Received: {label!r} at {where(example)}."
            )
    if len(kinds) != 1:
        raise ConfigError(
            "Expected one kind of label (str, tuple or float). Received: "
            f"{sorted(kinds) or 'no examples'}. Pass `task` explicitly."
        )
    return kinds.pop()


def where(example: TextExample) -> str:
    """`source, line N` (files) or `source, row N` (data sets)."""
    unit = "row" if example.source.endswith("]") and _HUB_SOURCE_MARK in example.source else "line"
    return f"{example.source}, {unit} {example.line}"


def label_set(examples: Sequence[TextExample], task: str | None = None) -> list[str]:
    """Sorted distinct labels (each label of a multi-label example counts)."""
    task = task or infer_task(examples)
    if task == "multilabel":
        return sorted({label for e in examples for label in e.label})
    return sorted({e.label for e in examples})


def check_labels(
    train: Sequence[TextExample],
    other: Sequence[TextExample],
    split_name: str,
    task: str | None = None,
) -> None:
    """Raises LabelError naming labels of `other` that training never saw.

    Args:
        train: the training examples.
        other: dev or test examples.
        split_name: str. Their name in the message, e.g. "dev".
        task: str or None. Inferred from the label types when None. Nothing
            is checked for regression.

    Example:
    >>> check_labels(train, dev, "dev")
    """
    task = task or infer_task(list(train) + list(other))
    if task == "regression":
        return
    known = set(label_set(train, task))
    first_seen: dict[str, TextExample] = {}
    for example in other:
        for label in example.label if task == "multilabel" else (example.label,):
            if label not in known and label not in first_seen:
                first_seen[label] = example
    if first_seen:
        found = "; ".join(f"{k!r} first at {where(v)}" for k, v in sorted(first_seen.items()))
        shown = sorted(known)
        known_text = f"{shown[:20]}{' ...' if len(shown) > 20 else ''}"
        raise LabelError(
            f"The {split_name} split has {len(first_seen)} label(s) never seen in training: "
            f"{found}. Training has {known_text}. Add training examples of them, or fix or drop "
            f"those {split_name} examples."
        )


def check_trainable(train: Sequence[TextExample], task: str | None = None) -> None:
    """Raises LabelError unless the training set can teach something.

    Classification needs two classes; multi-label needs label sets that
    differ; regression needs targets that differ.

    Example:
    >>> check_trainable(train, "classification")
    """
    if not train:
        raise LabelError(
            "The training set is empty. Check the file and the `empty`/cleaning settings."
        )
    task = task or infer_task(train)
    source = train[0].source
    if task == "regression":
        if len({e.label for e in train}) < 2:
            raise LabelError(
                f"The regression targets of the training set ({source}) are all "
                f"{train[0].label!r}: nothing to learn. Check the label column."
            )
        return
    if task == "classification":
        labels = label_set(train, task)
        if len(labels) < 2:
            raise LabelError(
                f"The training set ({source}) has a single class {labels} ({len(train)} examples): "
                "a classifier needs at least two. Check the label column or add examples of other "
                "classes."
            )
        return
    if len({frozenset(e.label) for e in train}) < 2:
        raise LabelError(
            f"Every training example ({source}) has the same label set {sorted(train[0].label)}: "
            "nothing to learn. Check the label column and `multilabel_separator`."
        )
