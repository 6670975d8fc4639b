"""NER rows: one sentence per row of a JSON/JSONL file or a hub table (`tokens` and tags), with documents.

A row is an object like `{"tokens": ["Jordan", "won"], "ner_tags": ["B-PER", "O"],
"doc_id": "a17"}`. The tags are strings (`O`, `B-<type>`, `I-<type>`; IOB1 is
converted to IOB2 as in CoNLL files) or ids into `tag_names`. With a
`document_column`, rows with the same value form one document, in row order;
every row must have a value. Rows of one document need not be consecutive:
interleaved documents are grouped by their id (the order inside each
document stays the row order) and a notice says how many were interleaved.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Sequence

from kerastune_nlp.data.conll import Sentence, decoded_lines, is_valid_tag, to_iob2
from kerastune_nlp.data.text_files import json_rows, jsonl_rows
from kerastune_nlp.errors import ConfigError, DataFormatError

logger = logging.getLogger("kerastune_nlp.data")

SUFFIXES = (".json", ".jsonl")
TOKENS_COLUMN = "tokens"
TAG_COLUMNS = ("ner_tags", "tags")


def is_token_rows_file(path) -> bool:
    """True for files read as NER rows (by suffix); anything else is read as CoNLL."""
    return Path(path).suffix.lower() in SUFFIXES


def read_token_rows(path, *, encoding: str = "utf-8", tag_scheme: str = "auto",
                    document_column: str | None = None) -> list[Sentence]:
    """Reads a `.json` (a list of row objects) or `.jsonl` (one object per line) NER file.

    Args:
        path: str or Path. The file.
        encoding: str. Text encoding. Defaults to "utf-8".
        tag_scheme: str. "iob2" refuses a chunk starting with `I-`; "auto"
            and "iob1" convert IOB1 to IOB2. Defaults to "auto".
        document_column: str or None. The key holding each row's document
            id. Defaults to None (no documents).

    Returns:
        A list of `Sentence` (`line` is the 1-based line where the row starts).
    """
    path = Path(path)
    text = "\n".join(decoded_lines(path, encoding))  # names the line of a decoding error
    parse = jsonl_rows if path.suffix.lower() == ".jsonl" else json_rows  # the text tasks' JSON readers
    rows = [(line, row) for line, row, _ in parse(text, path)]
    return sentences_from_rows(rows, str(path), unit="line", tag_scheme=tag_scheme, document_column=document_column)


def sentences_from_rows(rows: Iterable[tuple[int, object]], source: str, *, unit: str = "row",
                        tag_scheme: str = "auto", document_column: str | None = None,
                        tag_names: Sequence[str] | None = None) -> list[Sentence]:
    """Sentences from `(number, row mapping)` pairs; every problem names `source` and the row's `unit` number.

    Args:
        rows: iterable of (1-based number, mapping with `tokens` and `ner_tags` or `tags`).
        source: str. The file or `hub-id[split]`, for messages and `Sentence.source`.
        unit: str. What a number counts: "line", "item" or "row".
        tag_scheme: str. As in `read_token_rows`.
        document_column: str or None. The key of the document id.
        tag_names: sequence of str or None. Names of integer tag ids (a hub
            ClassLabel); None: tags must be strings.
    """
    sentences, converted, empty = [], 0, 0
    document_ids, missing, columns = {}, [], set()
    last_document, interleaved = None, set()
    for number, row in rows:
        where = f"{source}, {unit} {number}"
        if not isinstance(row, dict):
            raise DataFormatError(f"{where}: expected an object with `tokens` and `ner_tags`. Received: "
                                  f"{type(row).__name__} {str(row)[:80]!r}.")
        columns.update(row)
        tokens, tags = _tokens_and_tags(row, where, tag_names)
        if not tokens:
            empty += 1
            continue
        fixed, changed = to_iob2(tags)
        if changed and tag_scheme == "iob2":
            raise DataFormatError(f"{where}: {tags[changed[0]]!r} (word {changed[0] + 1}) starts an entity, which "
                                  "IOB2 does not allow. Pass tag_scheme=\"iob1\" or \"auto\" (--tag-scheme) if "
                                  "the data is IOB1.")
        converted += len(changed)
        document = None
        if document_column is not None:
            value = row.get(document_column)
            if value is None or (isinstance(value, str) and not value.strip()):
                missing.append(number)
                continue
            key = json.dumps(value, sort_keys=True)
            if key in document_ids and key != last_document:
                interleaved.add(key)
            document = document_ids.setdefault(key, len(document_ids))
            last_document = key
        sentences.append(Sentence(tuple(tokens), tuple(fixed), source, number, document))
    if document_column is not None and missing:
        if document_column not in columns:
            raise ConfigError(f"{source}: no row has the document column {document_column!r} "
                              f"(--document-column). Received: keys {sorted(columns)}. Pass the key that holds "
                              "the document id, or leave --document-column out.")
        shown = ", ".join(str(n) for n in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise DataFormatError(f"{source}: {len(missing)} {unit}(s) have no document id in {document_column!r} "
                              f"(missing, null or empty): {unit}s {shown}. Give every row its document id, or "
                              "leave --document-column out to read sentences without documents.")
    if not sentences:
        raise DataFormatError(f"{source}: expected rows with `tokens` and `ner_tags` (or `tags`). Received: no "
                              f"sentences ({empty} empty row(s)). Check the path and that the file holds the data.")
    if empty:
        logger.info("%s: skipped %d row(s) with no tokens.", source, empty)
    if converted:
        logger.info("%s: converted %d IOB1 tag(s) to IOB2 (tag_scheme=%r).", source, converted, tag_scheme)
    if interleaved:
        logger.warning("%s: %d of %d documents are interleaved with others (their rows are not consecutive); "
                       "each is read as one document, its sentences in row order.", source, len(interleaved),
                       len(document_ids))
    return sentences


def _tokens_and_tags(row: dict, where: str, tag_names) -> tuple[list[str], list[str]]:
    tag_column = next((c for c in TAG_COLUMNS if c in row), None)
    if TOKENS_COLUMN not in row or tag_column is None:
        raise DataFormatError(f"{where}: expected keys `tokens` and `ner_tags` (or `tags`). Received: keys "
                              f"{sorted(row)}. Rename the keys, or convert the file to CoNLL.")
    tokens, tags = row[TOKENS_COLUMN], row[tag_column]
    if not isinstance(tokens, list) or not isinstance(tags, list):
        raise DataFormatError(f"{where}: expected `tokens` and `{tag_column}` as lists. Received: "
                              f"{type(tokens).__name__} and {type(tags).__name__}.")
    if len(tokens) != len(tags):
        raise DataFormatError(f"{where}: expected one tag per token. Received: {len(tokens)} tokens and "
                              f"{len(tags)} tags.")
    for index, token in enumerate(tokens):
        if not isinstance(token, str) or not token.strip():
            raise DataFormatError(f"{where}, word {index + 1}: expected a non-empty string token. Received: "
                                  f"{token!r}.")
    named = []
    for index, tag in enumerate(tags):
        if isinstance(tag, int) and not isinstance(tag, bool) and tag_names is not None:
            if not 0 <= tag < len(tag_names):
                raise DataFormatError(f"{where}, word {index + 1}: tag id {tag} is outside the {len(tag_names)} "
                                      "tag names.")
            tag = tag_names[tag]
        if not isinstance(tag, str) or not is_valid_tag(tag):
            raise DataFormatError(f"{where}, word {index + 1}: expected a tag `O`, `B-<type>` or `I-<type>`. "
                                  f"Received: {tag!r}. Write the tags as IOB strings (IOBES and bare types "
                                  "are not read).")
        named.append(tag)
    return tokens, named
