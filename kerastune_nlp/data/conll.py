"""Reading and writing CoNLL-format NER files.

Two layouts are read: `token<TAB>tag` (WNUT) and `token POS chunk tag`
(CoNLL-2003); by default the token is the first column and the tag the last.
Blank (or whitespace-only) lines separate sentences and `-DOCSTART-` lines
start documents (each sentence keeps its document's index, `Sentence.document`). Tags come back in IOB2; IOB1 files are converted. Every problem names
the file, the 1-based line and, where it helps, the 1-based column.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError

logger = logging.getLogger("kerastune_nlp.data")

TAG_SCHEMES = ("auto", "iob1", "iob2")
DOCSTART = "-DOCSTART-"


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence with one IOB2 tag per token.

    Args:
        tokens: tuple of str. The words.
        tags: tuple of str. `O`, `B-type` or `I-type` per word.
        source: str. Where it came from (a file path, or a hub split).
            Defaults to "<memory>".
        line: int. 1-based file line of its first token; 0 when it did not
            come from a file. Defaults to 0.
        document: int or None. Index of its document in the file (the
            `-DOCSTART-` lines before it, counting from 0); None when the file
            marks no documents. Defaults to None.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    source: str = "<memory>"
    line: int = 0
    document: int | None = None

    def __post_init__(self):
        # Lists would make the frozen dataclass unhashable; store tuples.
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "tags", tuple(self.tags))
        if len(self.tokens) != len(self.tags):
            raise ConfigError(
                f"Expected one tag per token. Received: {len(self.tokens)} tokens and "
                f"{len(self.tags)} tags (source {self.source}, line {self.line}). "
                "Pass tags of the same length as tokens."
            )


def is_valid_tag(tag: str) -> bool:
    """True for `O`, `B-<type>` and `I-<type>` with a non-empty type."""
    if tag == "O":
        return True
    entity = tag[2:]
    return tag[:2] in ("B-", "I-") and bool(entity) and entity == entity.strip()


def to_iob2(tags: Sequence[str]) -> tuple[list[str], list[int]]:
    """Converts IOB1 (or already IOB2) tags to IOB2.

    An `I-X` that starts a chunk (at the start, after `O`, or after a chunk of
    another type) becomes `B-X`. `B-X` is kept: in IOB1 it only marks the
    second of two adjacent chunks of the same type, which IOB2 also writes
    `B-X`.

    Returns:
        The IOB2 tags and the positions that were changed.
    """
    fixed, changed = list(tags), []
    previous = "O"
    for index, tag in enumerate(tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            fixed[index] = "B-" + tag[2:]
            changed.append(index)
        previous = tag
    return fixed, changed


def read_conll(
    path,
    *,
    encoding: str = "utf-8",
    tag_scheme: str = "auto",
    token_column: int = 0,
    tag_column: int = -1,
) -> list[Sentence]:
    """Reads a CoNLL file into sentences with IOB2 tags.

    A line holding a tab is split on tabs, any other line on ASCII spaces (a
    token may hold a no-break space or other Unicode whitespace). Every data
    line must have as many columns as the first one. Lines end at LF only (a
    CR before it is dropped), and a byte-order mark at the start of the file
    is dropped.

    Args:
        path: str or Path. The file.
        encoding: str. Text encoding, e.g. "latin-1". Defaults to "utf-8".
        tag_scheme: str. "iob2" validates strictly (a chunk starting with
            `I-` is an error); "iob1" converts IOB1 to IOB2; "auto" converts
            when some chunk starts with `I-` and logs how many tags changed.
            Defaults to "auto".
        token_column: int. Column of the token (negative counts from the
            end). Defaults to 0.
        tag_column: int. Column of the tag. Defaults to -1 (the last).

    Returns:
        A list of `Sentence`, in file order.

    Example:
    >>> from kerastune_nlp.data import bundled_wnut17
    >>> sentences = read_conll(bundled_wnut17()["train"])
    >>> sentences[0].tokens[:2], sentences[0].tags[:2]
    (('@paulwalk', 'It'), ('O', 'O'))
    """
    if tag_scheme not in TAG_SCHEMES:
        raise ConfigError(
            f"Expected `tag_scheme` to be one of {list(TAG_SCHEMES)}. Received: "
            f"`tag_scheme`={tag_scheme!r}. Use \"auto\" unless you know the file's scheme."
        )
    for name, value in (("token_column", token_column), ("tag_column", tag_column)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"Expected `{name}` to be an int. Received: `{name}`={value!r}.")
    path = Path(path)
    lines = decoded_lines(path, encoding)

    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []
    layout = None  # (column count, token index, tag index, line number) from the first data line
    converted: list[int] = []

    def close_sentence():
        if tokens:
            fixed, changed = to_iob2(tags)
            if changed:
                if tag_scheme == "iob2":
                    index = changed[0]
                    previous = tags[index - 1] if index else "(sentence start)"
                    raise DataFormatError(
                        f"{path}, line {numbers[index]}: {tags[index]!r} starts an entity, which "
                        f"IOB2 does not allow. Received: previous tag {previous!r}. If the file "
                        "is IOB1 (as the original CoNLL-2003 is), pass tag_scheme=\"iob1\" or "
                        f"\"auto\" (--tag-scheme); otherwise write B-{tags[index][2:]} there."
                    )
                converted.extend(numbers[i] for i in changed)
            sentences.append(Sentence(tuple(tokens), tuple(fixed), str(path), numbers[0], documents))
        tokens.clear()
        tags.clear()
        numbers.clear()

    documents, marked = 0, False  # the current sentence's document index; any -DOCSTART- seen
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            close_sentence()
            continue
        fields = _split_fields(line)
        if fields[0][1] == DOCSTART:
            close_sentence()
            if sentences or documents:  # a -DOCSTART- before any sentence opens document 0
                documents += 1
            marked = True
            continue
        if layout is None:
            layout = _layout(fields, token_column, tag_column, path, number, line)
        count, token_index, tag_index, first_number = layout
        if len(fields) != count:
            raise DataFormatError(
                f"{path}, line {number}: expected {count} columns like the first data line "
                f"(line {first_number}), found {len(fields)}. Received: {line!r}. Separate the "
                "columns with one tab (or spaces) as on the first data line, and keep tokens "
                "free of tabs."
            )
        token_start, token = fields[token_index]
        if not token.strip():
            raise DataFormatError(
                f"{path}, line {number}, column {token_start + 1}: empty or whitespace-only "
                f"token. Received: {line!r}. Remove the line, or put the token in column "
                f"{token_index + 1} of the line."
            )
        tag_start, raw_tag = fields[tag_index]
        tag = raw_tag.strip()
        if not is_valid_tag(tag):
            raise DataFormatError(
                f"{path}, line {number}, column {tag_start + 1}: expected a tag `O`, "
                f"`B-<type>` or `I-<type>`. Received: {tag!r}. Fix the tag (IOBES tags and "
                "bare types are not read), or pass tag_column= if the tag is in another column."
            )
        tokens.append(token)
        tags.append(tag)
        numbers.append(number)
    close_sentence()
    if not marked:  # a file without -DOCSTART- marks no documents
        sentences = [dataclasses.replace(sentence, document=None) for sentence in sentences]

    if not sentences:
        raise DataFormatError(
            f"{path}: expected `token<TAB>tag` lines with blank lines between sentences. "
            f"Received: no sentences in {len(lines)} line(s) (empty, blank or -DOCSTART- only). "
            "Check the path and that the file holds the data."
        )
    if converted:
        logger.info(
            "%s: converted %d IOB1 tag(s) to IOB2 (first at line %d; tag_scheme=%r).",
            path, len(converted), converted[0], tag_scheme,
        )
    return sentences


def _split_fields(line: str) -> list[tuple[int, str]]:
    """(start offset, text) of each column: on tabs if any, else on ASCII spaces."""
    fields = []
    separator = "\t" if "\t" in line else " "
    start = 0
    for part in line.split(separator):
        if separator == "\t" or part:
            fields.append((start, part))
        start += len(part) + 1
    return fields


def _layout(fields, token_column, tag_column, path, number, line):
    count = len(fields)
    if count < 2:
        raise DataFormatError(
            f"{path}, line {number}: expected at least 2 columns (token and tag) separated by "
            f"a tab or spaces. Received: {line!r}. Write one `token<TAB>tag` per line."
        )
    resolved = []
    for name, value in (("token_column", token_column), ("tag_column", tag_column)):
        if not -count <= value < count:
            raise ConfigError(
                f"Expected `{name}` within the {count} columns of {path} (first data line "
                f"{number}). Received: `{name}`={value}. Pass a column index from 0 to "
                f"{count - 1}, or a negative one counting from the end."
            )
        resolved.append(value % count)
    if resolved[0] == resolved[1]:
        raise ConfigError(
            f"Expected different token and tag columns. Received: `token_column`={token_column}, "
            f"`tag_column`={tag_column}, both column {resolved[0]} of {count}."
        )
    return count, resolved[0], resolved[1], number


def decoded_lines(path: Path, encoding: str) -> list[str]:
    """The file's lines without line ends, decoded line by line so errors know the line."""
    if not path.exists():
        raise DataFileNotFoundError(
            f"Expected an existing data file. Received: {str(path)!r}, which does not exist "
            f"(working directory {os.getcwd()!r}). Check the path."
        )
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir())[:5]
        raise DataFileNotFoundError(
            f"Expected a data file. Received: the directory {str(path)!r} (holding {inside}). "
            "Pass one file of it, e.g. its train file."
        )
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise ConfigError(
            f"Expected a text encoding Python knows, e.g. \"utf-8\" or \"latin-1\". "
            f"Received: `encoding`={encoding!r}."
        ) from None
    pieces, number, raw = [], 0, b""
    try:
        with open(path, "rb") as handle:
            # Iterating bytes splits on b"\n" only, so U+2028 or U+0085 inside a
            # token never break a line; for ASCII-compatible encodings raw line
            # N is text line N, so a decoding error knows its line.
            for number, raw in enumerate(handle, start=1):
                offset = 0
                pieces.append(decoder.decode(raw))
            # A multi-byte character cut off by the end of the file.
            offset = len(raw) - len(decoder.getstate()[0])
            pieces.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError as error:
        column = offset + error.start + 1
        bad = raw[column - 1:column - 1 + max(1, error.end - error.start)]
        raise DataFormatError(
            f"{path}, line {number}, byte column {column}: bytes that are not valid "
            f"{encoding} ({bad!r}). Received: `encoding`="
            f"{encoding!r}. Pass the file's encoding, e.g. encoding=\"latin-1\" "
            "(--encoding latin-1), or re-save the file as UTF-8."
        ) from None
    except OSError as error:
        raise DataFileNotFoundError(
            f"Expected a readable CoNLL file. Received: {str(path)!r}, which cannot be read "
            f"({error.strerror or error}). Check its permissions."
        ) from error
    # A byte-order mark is never part of the first token.
    text = "".join(pieces).removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def write_conll(
    path,
    sentences_tokens: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    *,
    encoding: str = "utf-8",
) -> None:
    """Writes `token<TAB>tag` lines, a blank line after each sentence, atomically.

    Everything is checked before the file is touched, and the file is written
    to a temporary file next to it and then renamed, so a reader never sees a
    half-written file. What is written reads back with `read_conll`.

    Args:
        path: str or Path. The file to write (its folder is created).
        sentences_tokens: sequence of sequences of str. Tokens per sentence;
            no tabs, line breaks or whitespace-only tokens.
        tags: sequence of sequences of str. One `O`/`B-X`/`I-X` tag per token.
        encoding: str. Text encoding. Defaults to "utf-8".

    Example:
    >>> write_conll("out.conll", [["Paris", "is"]], [["B-location", "O"]])
    """
    path = Path(path)
    if len(sentences_tokens) != len(tags):
        raise ConfigError(
            f"Expected one tag list per sentence. Received: {len(sentences_tokens)} sentences "
            f"and {len(tags)} tag lists. Pass the same number of each."
        )
    lines = []
    for index, (words, word_tags) in enumerate(zip(sentences_tokens, tags)):
        if isinstance(words, str) or isinstance(word_tags, str):
            raise ConfigError(
                f"Expected each sentence as a sequence of tokens and of tags. Received: a str in "
                f"sentence {index} ({str(words)[:40]!r}). Pass lists of tokens, e.g. [['Paris', 'is']]."
            )
        if not words or len(words) != len(word_tags):
            raise ConfigError(
                f"Expected a non-empty sentence with one tag per token. Received: sentence "
                f"{index} with {len(words)} tokens and {len(word_tags)} tags."
            )
        for position, (word, tag) in enumerate(zip(words, word_tags)):
            _check_writable(index, position, word, tag)
            lines.append(f"{word}\t{tag}\n")
        lines.append("\n")
    text = "".join(lines)
    try:
        data = text.encode(encoding)
    except LookupError:
        raise ConfigError(f"Expected a text encoding Python knows. Received: `encoding`={encoding!r}.") from None
    except UnicodeEncodeError as error:
        raise ConfigError(
            f"Expected text that {encoding} can encode. Received: {text[error.start:error.end]!r}. "
            "Write with encoding=\"utf-8\"."
        ) from None
    if path.is_dir():
        raise ConfigError(f"Expected a file path to write. Received: the directory {str(path)!r}.")
    atomic_write_bytes(path, data)


def _check_writable(index: int, position: int, word, tag) -> None:
    where = f"sentence {index}, token {position}"
    if not isinstance(word, str) or not word.strip() or any(c in word for c in "\t\n\r") or word == DOCSTART:
        raise ConfigError(
            f"Expected a non-empty token without tabs or line breaks at {where}, and not "
            f"{DOCSTART!r}, which readers skip. Received: {word!r}."
        )
    if not isinstance(tag, str) or not is_valid_tag(tag):
        raise ConfigError(f"Expected a tag `O`, `B-<type>` or `I-<type>` at {where}. Received: {tag!r}.")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes to a temporary file in the same folder, then renames it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; a data file should be readable
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
