"""Unlabelled in-domain text: a text file, a saved `datasets` folder, or a hub data set.

Every reader returns a `Corpus`: the non-blank texts in file order, where
they came from, and how many blank lines were skipped. Nothing here imports
TensorFlow, so the command line reads and checks the corpus before any
model loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from pathlib import Path

from kerastune_nlp.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    MissingDependencyError,
)

logger = logging.getLogger("kerastune_nlp.pretraining")

# Files `Dataset.save_to_disk` / `DatasetDict.save_to_disk` always write.
_DATASET_MARKERS = ("state.json", "dataset_dict.json")


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Texts for masked-language-model training.

    Args:
        texts: tuple of str. Non-blank documents or sentences, in source order.
        source: str. The file, folder or hub id they came from.
        kind: str. "text-file", "saved-dataset" or "hub-dataset".
        skipped: int. Blank lines or empty rows left out.
    """

    texts: tuple
    source: str
    kind: str
    skipped: int = 0

    def digest(self) -> str:
        """A hash of the texts, so a resumed run can prove it reads the same corpus."""
        hasher = hashlib.sha256()
        for text in self.texts:
            hasher.update(text.encode("utf-8"))
            hasher.update(b"\n")
        return hasher.hexdigest()[:16]


def load_corpus(source, *, text_column: str = "text", split: str = "train", encoding: str = "utf-8",
                argument: str = "corpus") -> Corpus:
    """Reads a text file (one document or sentence per line) or a folder saved with `save_to_disk`.

    Args:
        source: str or Path. The file or folder.
        text_column: str. The data set column holding the text. Defaults to "text".
        split: str. The split of a saved `DatasetDict`. Defaults to "train".
        encoding: str. Encoding of a text file. Defaults to "utf-8".
        argument: str. The argument name used in error messages. Defaults to "corpus".

    Example:
    >>> corpus = load_corpus("notes.txt")
    >>> len(corpus.texts), corpus.kind
    (1200, 'text-file')
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not any((path / marker).is_file() for marker in _DATASET_MARKERS):
            raise DataFormatError(
                f"Expected a text file or a folder written by `datasets`' save_to_disk (with state.json or "
                f"dataset_dict.json). Received: `{argument}`={str(source)!r}, a folder without them. Pass "
                "a text file with one document or sentence per line, or the saved data set's folder."
            )
        return read_saved_dataset(path, text_column=text_column, split=split)
    if not path.is_file():
        raise DataFileNotFoundError(
            f"Corpus file not found. Received: `{argument}`={str(source)!r}. Pass a text file with one "
            "document or sentence per line, or a folder saved with `datasets`' save_to_disk."
        )
    return read_text_file(path, encoding=encoding)


def read_text_file(path, encoding: str = "utf-8") -> Corpus:
    """The non-blank lines of a text file (whitespace trimmed), in order.

    Raises:
        DataFormatError: the file is not valid `encoding` (names the line)
            or holds no text.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataFileNotFoundError(f"Cannot read the corpus {str(path)!r}: {error.strerror or error}.") from error
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataFormatError(
            f"{str(path)!r}, line {line} (byte {column} of the line): not valid {encoding} ({error.reason}). "
            "Pass the file's encoding with --encoding (e.g. --encoding latin-1), or re-save it as UTF-8."
        ) from None
    lines = text.removeprefix("\ufeff").splitlines()
    texts = tuple(line.strip() for line in lines if line.strip())
    if not texts:
        raise DataFormatError(
            f"The corpus {str(path)!r} holds no text ({len(lines)} line(s), all blank). Expected one "
            "document or sentence per line."
        )
    return Corpus(texts, str(path), "text-file", len(lines) - len(texts))


def read_saved_dataset(path, *, text_column: str = "text", split: str = "train") -> Corpus:
    """The texts of one column of a data set saved with `Dataset.save_to_disk` (or a `DatasetDict`)."""
    datasets = _import_datasets()
    path = Path(path)
    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError, KeyError) as error:
        raise DataFormatError(
            f"Cannot read the saved data set {str(path)!r}: {type(error).__name__}: {str(error)[:300]}. "
            "Re-save it with `save_to_disk`."
        ) from error
    return _from_dataset(loaded, str(path), "saved-dataset", text_column, split)


def read_hub_dataset(name: str, *, text_column: str = "text", split: str = "train", cache_dir=None) -> Corpus:
    """The texts of one column of one split of a Hugging Face hub data set (needs the hub or its cache)."""
    from kerastune_nlp.data import hub

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Expected a hub data set id such as \"user/name\". Received: `dataset`={name!r}.")
    loaded = hub.load_from_hub(name, received=f"`dataset`={name!r}", cache_dir=cache_dir,
                               fix="Pass a local text file with --corpus, or a folder saved with save_to_disk.")
    return _from_dataset(loaded, name, "hub-dataset", text_column, split)


def _import_datasets():
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - datasets is a core dependency
        raise MissingDependencyError(
            "Reading a `datasets` data set needs the `datasets` package. Run `pip install datasets`, or "
            "pass a text file with --corpus."
        ) from error
    return datasets


def _from_dataset(loaded, source: str, kind: str, text_column: str, split: str) -> Corpus:
    """Picks the split and the column; lists of strings (e.g. `tokens`) are joined with spaces."""
    if isinstance(loaded, dict):  # a DatasetDict
        splits = list(loaded.keys())
        if split not in splits:
            raise ConfigError(
                f"Expected a split that the data set {source!r} has: {splits}. Received: `split`={split!r}. "
                f"Pass --split {splits[0]}."
            )
        table, where = loaded[split], f"{source}[{split}]"
    else:
        table, where = loaded, source
    if text_column not in table.column_names:
        raise DataFormatError(
            f"The data set {where!r} has no column {text_column!r}. Received: `text_column`={text_column!r}; "
            f"its columns are {table.column_names}. Pass --text-column with one of them."
        )
    texts, skipped = [], 0
    for row, value in enumerate(table[text_column], start=1):
        if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            value = " ".join(value)
        if value is None:
            skipped += 1
            continue
        if not isinstance(value, str):
            raise DataFormatError(
                f"{where!r} row {row}: expected text in column {text_column!r}. Received: a "
                f"{type(value).__name__} ({str(value)[:60]!r}). Pass --text-column with a text column."
            )
        if value.strip():
            texts.append(value.strip())
        else:
            skipped += 1
    if not texts:
        raise DataFormatError(
            f"The data set {where!r} holds no text in column {text_column!r} ({table.num_rows} row(s), all "
            "empty). Pass --text-column with a column that holds the text."
        )
    return Corpus(tuple(texts), where, kind, skipped)


def hold_out(corpus: Corpus, share: float, seed: int) -> tuple[Corpus, Corpus | None]:
    """Splits a seeded share of the texts off for scoring; both parts keep the source order.

    Returns `(train, held_out)`; `held_out` is None when `share` is 0.
    """
    if share <= 0:
        return corpus, None
    count = len(corpus.texts)
    held = max(1, round(count * share))
    if count - held < 1:
        raise DataFormatError(
            f"The corpus {corpus.source!r} has {count} text(s): too few to hold out a share of {share} for "
            "scoring and still train. Add text, pass --eval-file, or pass --eval-share 0."
        )
    chosen = set(random.Random(seed).sample(range(count), held))
    train = tuple(text for i, text in enumerate(corpus.texts) if i not in chosen)
    held_texts = tuple(text for i, text in enumerate(corpus.texts) if i in chosen)
    return (dataclasses.replace(corpus, texts=train),
            Corpus(held_texts, f"{corpus.source} (held-out {share:g}, seed {seed})", corpus.kind))
