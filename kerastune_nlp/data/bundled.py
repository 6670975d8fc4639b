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
