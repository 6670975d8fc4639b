"""Labelled texts as read from a file or a data set, and the row checks every text reader shares.

What a label looks like (a class name, a tuple of names, a number) is the
task's rule: readers take it as a `parse_label(value, where, column)`
callable and never ask which task they read for.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
from typing import Callable, Iterable, NamedTuple, Sequence, Union

from kerastune_nlp.errors import ConfigError, DataFormatError, LabelError

logger = logging.getLogger("kerastune_nlp.data")

EMPTY_CHOICES = ("drop", "error")
HUB_SOURCE_MARK = " ["  # sources of data sets look like "name [split]" and count rows

Label = Union[str, tuple, float]
# value of the label cell, "source, line N" for messages, the label column's name -> the label
LabelParser = Callable[[object, str, str], Label]


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


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"Expected `{name}` to be one of {list(choices)}. Received: `{name}`={value!r}.")


def where(example: TextExample) -> str:
    """`source, line N` (files) or `source, row N` (data sets)."""
    unit = "row" if example.source.endswith("]") and HUB_SOURCE_MARK in example.source else "line"
    return f"{example.source}, {unit} {example.line}"


def rows_to_examples(rows: Iterable, source: str, unit: str, parse_label: LabelParser, text_column: str,
                     pair_column: str | None, label_column: str, empty: str) -> ReadResult:
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
                raise DataFormatError(missing_columns_message(source, unit, number, missing, columns))
            if header is not None:
                duplicated = [c for c in wanted if header.count(c) > 1]
                if duplicated:
                    raise DataFormatError(
                        f"{source}, {unit} {number}: the header names column(s) {duplicated} more "
                        "than once. Rename the duplicates."
                    )
                continue
        text = _cell_text(row[text_column], text_column, source, unit, number)
        pair = _cell_text(row[pair_column], pair_column, source, unit, number) if pair_column else None
        blank = text_column if not text.strip() else (pair_column if pair_column and not pair.strip() else None)
        if blank:
            if empty == "error":
                raise DataFormatError(
                    f"{source}, {unit} {number}: empty or whitespace-only text in column {blank!r}. "
                    'Remove the row, or pass empty="drop" (--empty drop) to skip such rows.'
                )
            report.dropped_empty += 1
            report.dropped_lines.append(number)
            continue
        label = parse_label(row[label_column], f"{source}, {unit} {number}", label_column)
        examples.append(TextExample(text, label, pair, source, number))
    if report.dropped_empty:
        shown = ", ".join(map(str, report.dropped_lines[:10])) + (", ..." if report.dropped_empty > 10 else "")
        logger.warning("%s: dropped %d example(s) with empty or whitespace-only text (%ss %s).",
                       source, report.dropped_empty, unit, shown)
    if not examples:
        raise DataFormatError(
            f"{source} contains no examples"
            + (f" ({report.dropped_empty} had empty text)" if report.dropped_empty else "")
            + ". Check the file, its format and the column names."
        )
    report.read = len(examples)
    return ReadResult(examples, report)


def missing_columns_message(source, unit, number, missing, columns) -> str:
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
        f"{source}, {unit} {number}: expected text in column {column!r}. Received: {json.dumps(value)[:60]}."
    )


def check_labels(known: Iterable, other: Sequence[TextExample], split_name: str,
                 labels_of: Callable[[TextExample], Iterable]) -> None:
    """Raises LabelError naming labels of `other` that training never saw.

    Args:
        known: the labels training saw.
        other: dev or test examples.
        split_name: str. Their name in the message, e.g. "dev".
        labels_of: callable. The labels of one example (none for a value to predict).

    Example:
    >>> check_labels({"neg", "pos"}, dev, "dev", lambda e: (e.label,))
    """
    known = set(known)
    first_seen: dict = {}
    for example in other:
        for label in labels_of(example):
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
