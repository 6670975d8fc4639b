"""The tag set of an NER task and checks that splits agree on it."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from pathlib import Path

from kerastune_nlp.data.conll import atomic_write_bytes, is_valid_tag
from kerastune_nlp.errors import LabelError


class LabelMap:
    """An ordered, immutable tag set: `O` first, then `B-`/`I-` of each type.

    Entity types are sorted alphabetically, so the same types always give the
    same ids. Both `B-` and `I-` of every type are present, even if training
    never shows an `I-` of some type, so any valid tagging can be predicted.

    Args:
        labels: sequence of str. The tags in that canonical order (use
            `from_labels`, `from_types` or `from_sentences`).

    Example:
    >>> label_map = LabelMap.from_types(["person", "location"])
    >>> label_map.labels
    ('O', 'B-location', 'I-location', 'B-person', 'I-person')
    >>> label_map.id("B-person"), label_map.tag(0)
    (3, 'O')
    """

    __slots__ = ("_ids", "_labels")

    def __init__(self, labels: Sequence[str]):
        labels = tuple(labels)
        bad = [tag for tag in labels if not isinstance(tag, str) or not is_valid_tag(tag)]
        if bad:
            raise LabelError(
                f"Expected tags `O`, `B-<type>` or `I-<type>`. Received: {bad[:5]} in "
                f"{list(labels)[:12]}. Fix or drop these labels."
            )
        types = {tag[2:] for tag in labels if tag != "O"}
        canonical = _canonical(types)
        if labels != canonical:
            raise LabelError(
                f"Expected the labels `O` first, then `B-`/`I-` of each entity type in alphabetical "
                f"order, each once: {list(canonical)[:12]}. Received: {list(labels)[:12]}. Build the "
                "map with LabelMap.from_types(types) or from_sentences(train)."
            )
        object.__setattr__(self, "_labels", labels)
        object.__setattr__(self, "_ids", {tag: i for i, tag in enumerate(labels)})

    def __setattr__(self, name, value):
        raise AttributeError(f"LabelMap is immutable; cannot set {name!r}. Build a new one.")

    def __reduce__(self):
        # Pickle and deepcopy through the constructor, which __setattr__ allows.
        return (self.__class__, (self._labels,))

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        """A map from a full, canonical label list (validated), as `save` writes it."""
        if isinstance(labels, str):
            raise LabelError(f"Expected a list of labels. Received: the string {labels!r}.")
        return cls(list(labels))

    @classmethod
    def from_types(cls, entity_types: Iterable[str]) -> LabelMap:
        """A map over `entity_types` (e.g. ["person", "location"])."""
        return cls(_canonical(set(entity_types)))

    @classmethod
    def from_sentences(cls, sentences) -> LabelMap:
        """A map over every entity type tagged in `sentences` (both `B-` and `I-` of each)."""
        types = set()
        for sentence in sentences:
            for offset, tag in enumerate(sentence.tags):
                if tag == "O":
                    continue
                if not is_valid_tag(tag):
                    raise LabelError(
                        f"{_where(sentence, offset)}: expected a tag `O`, `B-<type>` or `I-<type>`. "
                        f"Received: {tag!r}. Fix the tag in the data."
                    )
                types.add(tag[2:])
        return cls.from_types(types)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def entity_types(self) -> tuple[str, ...]:
        """The entity types, sorted (e.g. ("location", "person"))."""
        return tuple(tag[2:] for tag in self._labels if tag.startswith("B-"))

    def __len__(self) -> int:
        return len(self._labels)

    def __eq__(self, other) -> bool:
        return isinstance(other, LabelMap) and other._labels == self._labels

    def __hash__(self) -> int:
        return hash(self._labels)

    def __repr__(self) -> str:
        return f"LabelMap({list(self._labels)})"

    def id(self, tag: str) -> int:
        """The integer id of `tag`."""
        try:
            return self._ids[tag]
        except (KeyError, TypeError):
            raise LabelError(
                f"Expected one of the {len(self)} known tags {list(self._labels)[:12]}. Received: "
                f"{tag!r}. Check the tag, or rebuild the label map from data that has it."
            ) from None

    def tag(self, index: int) -> str:
        """The tag with integer id `index` (numpy integers are accepted)."""
        try:
            position = operator.index(index)
        except TypeError:
            raise LabelError(f"Expected an integer label id. Received: {index!r}.") from None
        if not 0 <= position < len(self._labels):
            raise LabelError(
                f"Expected a label id from 0 to {len(self._labels) - 1}. Received: {index!r}. "
                "The model and the label map disagree; load both from the same run directory."
            )
        return self._labels[position]

    def check_covers(self, sentences, split_name: str) -> None:
        """Raises LabelError naming entity types of `sentences` the map lacks.

        Each unseen type is listed with the file and line where it first
        appears, so it can be found and fixed.
        """
        known = set(self.entity_types)
        first_seen: dict[str, str] = {}
        for sentence in sentences:
            for offset, tag in enumerate(sentence.tags):
                entity = tag[2:]
                if tag != "O" and entity not in known and entity not in first_seen:
                    first_seen[entity] = _where(sentence, offset)
        if first_seen:
            where = "; ".join(f"{t!r} first at {loc}" for t, loc in sorted(first_seen.items()))
            raise LabelError(
                f"Expected the {split_name} split to use only entity types seen in training "
                f"{sorted(known)}. Received: {len(first_seen)} unseen type(s): {where}. Add "
                f"training examples of these types, or map them to O (or to a known type) in "
                f"the {split_name} data."
            )

    def save(self, path) -> None:
        """Writes `{"labels": [...]}` as JSON, atomically."""
        text = json.dumps({"labels": list(self._labels)}, indent=2) + "\n"
        atomic_write_bytes(Path(path), text.encode("utf-8"))

    @classmethod
    def load(cls, path) -> LabelMap:
        """Reads a map written by `save`; every problem names the file."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise LabelError(
                f"Cannot read the label map {str(path)!r}: {error}. Expected a JSON file "
                '{"labels": ["O", "B-...", ...]} as training writes it; check the run directory.'
            ) from error
        labels = payload.get("labels") if isinstance(payload, dict) else None
        if not isinstance(labels, list):
            raise LabelError(
                f"Expected {str(path)!r} to hold a JSON object with a list `labels`. Received: "
                f"{str(payload)[:80]}. Rewrite it with LabelMap.save, or retrain."
            )
        try:
            return cls.from_labels(labels)
        except LabelError as error:
            raise LabelError(f"In the label map {str(path)!r}: {error}") from None


def _canonical(types) -> tuple[str, ...]:
    return ("O",) + tuple(f"{prefix}-{t}" for t in sorted(types) for prefix in ("B", "I"))


def _where(sentence, offset: int) -> str:
    """`file, line N` of a token read from a file, else `source, token N`."""
    if sentence.line > 0:
        return f"{sentence.source}, line {sentence.line + offset}"
    return f"{sentence.source}, token {offset + 1}"
