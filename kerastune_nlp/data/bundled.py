"""Data sets shipped inside the package, so defaults work offline."""

from __future__ import annotations

from pathlib import Path

from kerastune_nlp.errors import DataFileNotFoundError

# Next to this module, so it resolves inside an installed (unzipped) package
# as well as in a checkout; the files are package data (bundled/**/*).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
WNUT17_FILES = {"train": "train.conll", "dev": "dev.conll", "test": "test.conll"}


def bundled_wnut17() -> dict[str, Path]:
    """Paths of the bundled WNUT-17 NER splits: `{"train", "dev", "test"}`.

    WNUT-2017 Emerging and Rare Entities (CC BY 4.0; attribution and
    citation in `bundled/wnut17/README.md`): `token<TAB>tag`, IOB2, six types.
    Train holds 3,394 sentences (62,730 tokens), dev 1,009, test 1,287
    (23,394 tokens).

    Example:
    >>> from kerastune_nlp.data import read_conll
    >>> splits = {name: read_conll(path) for name, path in bundled_wnut17().items()}
    >>> len(splits["train"])
    3394
    """
    folder = BUNDLED_DIR / "wnut17"
    paths = {split: folder / name for split, name in WNUT17_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DataFileNotFoundError(
            f"Expected the bundled WNUT-17 files in {str(folder)!r}. Received: missing {missing}. "
            "The package was installed without its data files; reinstall it (its package data "
            "includes kerastune_nlp/data/bundled/**/*), or pass --train/--dev/--test."
        )
    return paths
