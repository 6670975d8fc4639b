"""The tag set of an NER task and checks that splits agree on it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from kerastune_nlp.errors import LabelError


class LabelMap:
    """An ordered, immutable tag set: `O` first, then `B-`/`I-` of each type.

    Both `B-` and `I-` of every entity type are present, even if training
    never shows an `I-` of some type, so any valid tagging can be predicted.

    Args:
        labels: sequence of str. Tags, `O` first.

    Example:
    >>> label_map = LabelMap.from_sentences(train_sentences)
    >>> label_map.id("B-person"), label_map.tag(0)
    """

    def __init__(self, labels: Sequence[str]):
        labels = tuple(labels)
        if not labels or labels[0] != "O":
            raise LabelError(f"Expected `O` as the first label. Received: {list(labels)[:5]}.")
        bad = [t for t in labels[1:] if not (t[:2] in ("B-", "I-") and len(t) > 2)]
        if bad or len(set(labels)) != len(labels):
            raise LabelError(
                f"Expected distinct labels `O`, `B-<type>`, `I-<type>`. Received: {list(labels)}."
            )
        self.labels = labels
        self._ids = {tag: i for i, tag in enumerate(labels)}

    @classmethod
    def from_types(cls, entity_types: Iterable[str]) -> "LabelMap":
        types = sorted(set(entity_types))
        return cls(["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")])

    @classmethod
    def from_sentences(cls, sentences) -> "LabelMap":
        return cls.from_types(tag[2:] for s in sentences for tag in s.tags if tag != "O")

    @property
    def entity_types(self) -> tuple[str, ...]:
        return tuple(t[2:] for t in self.labels if t.startswith("B-"))

    def __len__(self) -> int:
        return len(self.labels)

    def __eq__(self, other) -> bool:
        return isinstance(other, LabelMap) and other.labels == self.labels

    def __repr__(self) -> str:
        return f"LabelMap({list(self.labels)})"

    def id(self, tag: str) -> int:
        try:
            return self._ids[tag]
        except KeyError:
            raise LabelError(f"Unknown tag {tag!r}. Known: {list(self.labels)}.") from None

    def tag(self, index: int) -> str:
        return self.labels[index]

    def check_covers(self, sentences, split_name: str) -> None:
        """Raises LabelError naming entity types of `sentences` that the map lacks."""
        known = set(self.entity_types)
        first_seen: dict[str, str] = {}
        for sentence in sentences:
            for offset, tag in enumerate(sentence.tags):
                entity = tag[2:]
                if tag != "O" and entity not in known and entity not in first_seen:
                    first_seen[entity] = f"{sentence.source}, line {sentence.line + offset}"
        if first_seen:
            where = "; ".join(f"{t!r} first at {loc}" for t, loc in sorted(first_seen.items()))
            raise LabelError(
                f"The {split_name} split has entity types never seen in training: {where}. "
                f"Training knows {sorted(known)}. Add training examples of these types, or map "
                f"them to O (or to a known type) in the {split_name} file."
            )

    def save(self, path) -> None:
        path = Path(path)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump({"labels": list(self.labels)}, handle, indent=2)
            handle.write("\n")
        os.replace(handle.name, path)

    @classmethod
    def load(cls, path) -> "LabelMap":
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            labels = payload["labels"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LabelError(
                f"Cannot read the label map {str(path)!r}: {error}. Expected JSON "
                '{"labels": ["O", "B-...", ...]} as written by training.'
            ) from error
        return cls(labels)
