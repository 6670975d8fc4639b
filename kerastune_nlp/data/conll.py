"""Reading and writing CoNLL-format NER files.

Two layouts are read: `token<TAB>tag` (WNUT) and `token POS chunk tag`
(CoNLL-2003); the token is the first column and the tag the last. Blank lines
separate sentences, `-DOCSTART-` lines are skipped. Tags come back in IOB2;
IOB1 files are converted. Every problem names the file, line and column.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError

logger = logging.getLogger("kerastune_nlp.data")

TAG_SCHEMES = ("auto", "iob1", "iob2")


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence with one IOB2 tag per token.

    Args:
        tokens: tuple of str. The words.
        tags: tuple of str. `O`, `B-type` or `I-type` per word.
        source: str. File it came from. Defaults to "<memory>".
        line: int. 1-based line of its first token. Defaults to 0.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    source: str = "<memory>"
    line: int = 0


def read_conll(
    path,
    *,
    encoding: str = "utf-8",
    tag_scheme: str = "auto",
    token_column: int = 0,
    tag_column: int = -1,
) -> list[Sentence]:
    """Reads a CoNLL file into sentences with IOB2 tags.

    Args:
        path: str or Path. The file.
        encoding: str. Text encoding. Defaults to "utf-8".
        tag_scheme: str. "iob2" validates strictly; "iob1" converts IOB1 to
            IOB2; "auto" converts when a chunk starts with `I-`. Defaults to
            "auto".
        token_column: int. Column of the token. Defaults to 0.
        tag_column: int. Column of the tag. Defaults to -1 (the last).

    Example:
    >>> sentences = read_conll("train.conll")
    >>> sentences[0].tokens[:3], sentences[0].tags[:3]
    """
    if tag_scheme not in TAG_SCHEMES:
        raise ConfigError(
            f"Expected `tag_scheme` to be one of {list(TAG_SCHEMES)}. Received: `tag_scheme`={tag_scheme!r}."
        )
    path = Path(path)
    lines = _decoded_lines(path, encoding)
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    expected_columns = None
    converted = 0

    def close_sentence():
        nonlocal converted
        if tokens:
            fixed, changes = _to_iob2(tags, tag_scheme, path, first_line)
            converted += changes
            sentences.append(Sentence(tuple(tokens), tuple(fixed), str(path), first_line))
        tokens.clear()
        tags.clear()

    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            close_sentence()
            continue
        # Split on tabs when present, else on ASCII spaces only: a token may
        # hold a no-break space or other Unicode whitespace.
        columns = line.split("\t") if "\t" in line else [c for c in line.split(" ") if c != ""]
        if columns[0] == "-DOCSTART-":
            close_sentence()
            continue
        if expected_columns is None:
            expected_columns = len(columns)
            if expected_columns < 2:
                raise DataFormatError(
                    f"{path}, line {number}: expected at least 2 columns (token and tag) separated "
                    f"by a tab or spaces. Received: {line!r}. Write one `token<TAB>tag` per line."
                )
        elif len(columns) != expected_columns:
            raise DataFormatError(
                f"{path}, line {number}: expected {expected_columns} columns like the first data "
                f"line, found {len(columns)}. Received: {line!r}. Fix the line or its separators."
            )
        token, tag = columns[token_column], columns[tag_column].strip()
        if not token.strip():
            raise DataFormatError(
                f"{path}, line {number}, column 1: empty token. Received: {line!r}. "
                "Remove the line or put the token in the first column."
            )
        if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
            column = line.rfind(tag) + 1 if tag else len(line)
            raise DataFormatError(
                f"{path}, line {number}, column {column}: expected a tag `O`, `B-<type>` or "
                f"`I-<type>`. Received: {tag!r}. Fix the tag (IOBES and bare types are not read)."
            )
        if not tokens:
            first_line = number
        tokens.append(token)
        tags.append(tag)
    close_sentence()
    if not sentences:
        raise DataFormatError(
            f"{path} contains no sentences. Expected `token<TAB>tag` lines with blank lines between "
            "sentences. Check the path and that the file is not empty."
        )
    if converted:
        logger.info("%s: converted %d IOB1 tags to IOB2.", path, converted)
    return sentences


def _decoded_lines(path: Path, encoding: str) -> list[str]:
    if not path.exists():
        raise DataFileNotFoundError(f"Data file not found: {str(path)!r}. Check the path.")
    if path.is_dir():
        raise DataFileNotFoundError(f"Expected a data file, got the directory {str(path)!r}. Pass a file in it.")
    try:
        import codecs

        codecs.lookup(encoding)
    except LookupError as error:
        raise ConfigError(f"Unknown encoding. Received: `encoding`={encoding!r}.") from error
    lines = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                lines.append(raw.decode(encoding))
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    f"{path}, line {number}, column {error.start + 1}: bytes that are not valid "
                    f"{encoding} ({raw[error.start:error.start + 4]!r}). Pass the file's encoding, "
                    "e.g. encoding=\"latin-1\" (--encoding latin-1), or re-save it as UTF-8."
                ) from None
    return lines


def _to_iob2(tags: list[str], scheme: str, path: Path, first_line: int) -> tuple[list[str], int]:
    """IOB2 tags and how many were changed; strict IOB2 raises on a chunk starting with I-."""
    fixed, changes = list(tags), 0
    previous = "O"
    for i, tag in enumerate(tags):
        starts_chunk = tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:])
        if starts_chunk:
            if scheme == "iob2":
                raise DataFormatError(
                    f"{path}, line {first_line + i}: {tag!r} starts an entity, which IOB2 does not "
                    f"allow (previous tag {previous!r}). If the file is IOB1 (as CoNLL-2003 is), pass "
                    "tag_scheme=\"iob1\" or \"auto\" (--tag-scheme); otherwise make it B-"
                    f"{tag[2:]}."
                )
            fixed[i] = "B-" + tag[2:]
            changes += 1
        previous = tag
    return fixed, changes


def write_conll(
    path, sentences_tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], *, encoding="utf-8"
) -> None:
    """Writes `token<TAB>tag` lines, a blank line between sentences, atomically."""
    path = Path(path)
    if len(sentences_tokens) != len(tags):
        raise ConfigError(
            f"Expected one tag list per sentence. Received: {len(sentences_tokens)} sentences, "
            f"{len(tags)} tag lists."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding=encoding, dir=path.parent, delete=False, suffix=".tmp", newline="\n"
    ) as handle:
        for index, (words, word_tags) in enumerate(zip(sentences_tokens, tags)):
            if len(words) != len(word_tags):
                raise ConfigError(
                    f"Sentence {index} has {len(words)} tokens but {len(word_tags)} tags."
                )
            for word, tag in zip(words, word_tags):
                handle.write(f"{word}\t{tag}\n")
            handle.write("\n")
    os.replace(handle.name, path)
