"""Seeded train/dev/test splits of NER sentences that never cut a document in two.

A file with `-DOCSTART-` lines is split by document: the sentences of one
article all land in the same split, so the test scores are not helped by
names the model read in the same article during training. A file without
documents is split by sentence. Within each split the file's order is kept
(documents stay whole and in order, which context windows will read).
"""

from __future__ import annotations

import random
from typing import Sequence

from kerastune_nlp.data.splits import _sizes
from kerastune_nlp.errors import ConfigError

SPLIT_NAMES = ("train", "dev", "test")


def split_by_document(sentences: Sequence, shares: Sequence[float], seed: int,
                      source: str) -> tuple[list[list], str]:
    """`len(shares)` parts of `sentences` (by document where the file marks documents) and what was done.

    Args:
        sentences: sequence of `Sentence`, in file order.
        shares: two or three positive shares summing to 1 (train, dev[, test]).
        seed: int. Same seed, same split.
        source: str. The data's name in messages (the file or the `--split` flag).

    Returns:
        `(parts, description)`: the parts, then one line saying how they were
        made ("by document: 146 documents -> 102/22/22 (train/dev/test), ...").

    Raises:
        ConfigError: fewer documents (or sentences) than parts.
    """
    by_document = any(getattr(sentence, "document", None) is not None for sentence in sentences)
    groups: dict = {}
    for index, sentence in enumerate(sentences):
        key = (sentence.source, sentence.document) if by_document else index
        groups.setdefault(key, []).append(sentence)
    unit = "documents" if by_document else "sentences"
    keys = list(groups)
    if len(keys) < len(shares):
        raise ConfigError(
            f"Cannot split {source} into {len(shares)} parts: it has {len(keys)} {unit}"
            f"{' (split by document, never inside one)' if by_document else ''}. Pass --dev and --test files, "
            f"or --split with fewer parts (e.g. --split 0.8,0.2)."
        )
    random.Random(seed).shuffle(keys)
    parts, start = [], 0
    for size in _sizes(len(keys), tuple(shares)):
        chosen = set(keys[start:start + size])
        start += size
        parts.append([sentence for key in groups if key in chosen for sentence in groups[key]])  # file order
    names = "/".join(SPLIT_NAMES[:len(shares)])
    counts = "/".join(str(len(part)) for part in parts)
    units = "/".join(str(len({(s.source, s.document) for s in p})) for p in parts) if by_document else counts
    description = (f"{source} split by {'document' if by_document else 'sentence'} with seed {seed}: "
                   f"{len(keys)} {unit} -> {units} ({names})"
                   + (f", sentences {counts}" if by_document else ""))
    return parts, description
