"""The bundled TREC question-classification data (Li and Roth, 2002).

Byte-identical copies of the published files live in `bundled/trec/`, with
their attribution in `bundled/trec/README.md`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerastune_nlp.errors import DataFileNotFoundError

TREC_DIR = Path(__file__).resolve().parent / "bundled" / "trec"
# The coarse classes by the numeric label written in the files.
TREC_LABEL_NAMES = {"0": "DESC", "1": "ENTY", "2": "ABBR", "3": "HUM", "4": "LOC", "5": "NUM"}
# TREC.train.all is ISO-8859-1 as published (one non-ASCII byte, 0xF0 on
# line 66); TREC.test.all is ASCII, which Latin-1 reads the same.
TREC_ENCODING = "latin-1"
TREC_SIZES = {"train": 5452, "test": 500}


def bundled_trec() -> dict[str, Path]:
    """Paths of the bundled TREC files: `{"train": Path, "test": Path}`.

    Read them with `read_text_file(path, file_format="label_text",
    encoding=TREC_ENCODING)`, or use `load_bundled_trec()`.

    Example:
    >>> paths = bundled_trec()
    >>> paths["train"].name
    'TREC.train.all'
    """
    paths = {"train": TREC_DIR / "TREC.train.all", "test": TREC_DIR / "TREC.test.all"}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DataFileNotFoundError(
            f"The bundled TREC files are missing: {missing}. The package was installed without its "
            "data files; reinstall kerastune-nlp (package data `data/bundled/*/*`)."
        )
    return paths


def load_bundled_trec(label_names: bool = True) -> dict[str, list]:
    """TREC train and test as `TextExample`s.

    Args:
        label_names: bool. Labels as class names (DESC, ENTY, ...) when
            True, as the file's digits ("0".."5") when False. Defaults to True.

    Example:
    >>> splits = load_bundled_trec()
    >>> len(splits["train"]), len(splits["test"])
    (5452, 500)
    """
    from kerastune_nlp.data.text_files import read_text_file

    splits = {}
    for split, path in bundled_trec().items():
        # `LABEL text` lines: the label is the line's first word, never empty.
        examples, _ = read_text_file(path, parse_label=lambda value, where, column: value,
                                     file_format="label_text", encoding=TREC_ENCODING, empty="error")
        if label_names:
            examples = [dataclasses.replace(e, label=TREC_LABEL_NAMES[e.label]) for e in examples]
        splits[split] = examples
    return splits
