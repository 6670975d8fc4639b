"""Data sets shipped inside the package, so defaults work offline."""

from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def bundled_wnut17() -> dict[str, Path]:
    """Paths of the bundled WNUT-17 NER splits (CC BY 4.0, see bundled/wnut17/README.md).

    Example:
    >>> sentences = read_conll(bundled_wnut17()["train"])
    """
    folder = BUNDLED_DIR / "wnut17"
    return {split: folder / f"{split}.conll" for split in ("train", "dev", "test")}


# Coarse TREC classes by the numeric label in the files.
TREC_LABEL_NAMES = {"0": "DESC", "1": "ENTY", "2": "ABBR", "3": "HUM", "4": "LOC", "5": "NUM"}
# TREC.train.all is Latin-1 as published; TREC.test.all is ASCII.
TREC_ENCODING = "latin-1"


def bundled_trec() -> dict[str, Path]:
    """Paths of the bundled TREC question-classification files (see bundled/trec/README.md)."""
    folder = BUNDLED_DIR / "trec"
    return {"train": folder / "TREC.train.all", "test": folder / "TREC.test.all"}


def load_bundled_trec():
    """TREC train and test as `TextExample`s with class names (DESC, ENTY, ...) as labels."""
    import dataclasses

    from kerastune_nlp.data.text_readers import read_text_file

    splits = {}
    for split, path in bundled_trec().items():
        examples, _ = read_text_file(path, file_format="label_text", encoding=TREC_ENCODING)
        splits[split] = [dataclasses.replace(e, label=TREC_LABEL_NAMES[e.label]) for e in examples]
    return splits
