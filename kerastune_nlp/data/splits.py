"""Seeded stratified train/validation/test splits of one labelled file."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from kerastune_nlp.data.text_readers import TextExample
from kerastune_nlp.errors import ConfigError, LabelError


def _stratum(example: TextExample, task: str, bins) -> str:
    if task == "regression":
        return str(sum(example.label > edge for edge in bins))
    if task == "multilabel":
        return example.label[0] if example.label else "<none>"
    return example.label


def stratified_split(
    examples: Sequence[TextExample],
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 42,
    task: str = "classification",
) -> tuple[list[TextExample], ...]:
    """Splits into len(ratios) parts keeping each class's share in each part.

    Classes are stratified by label (multi-label: by the first label;
    regression: by quartile of the target). Every class appears in every
    part, so each needs at least len(ratios) examples.

    Example:
    >>> train, dev, test = stratified_split(examples, (0.7, 0.15, 0.15), seed=1)
    >>> train, dev = stratified_split(train, (0.9, 0.1))
    """
    if len(ratios) < 2 or any(r <= 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError(
            f"Expected two or more positive ratios summing to 1. Received: `ratios`={tuple(ratios)}."
        )
    bins = []
    if task == "regression":
        values = sorted(e.label for e in examples)
        bins = [values[int(len(values) * q)] for q in (0.25, 0.5, 0.75)]
    groups = defaultdict(list)
    for example in examples:
        groups[_stratum(example, task, bins)].append(example)
    rng = random.Random(seed)
    parts: list[list[TextExample]] = [[] for _ in ratios]
    for key in sorted(groups):
        members = groups[key]
        if len(members) < len(ratios):
            raise LabelError(
                f"Class {key!r} has {len(members)} example(s); each class needs at least "
                f"{len(ratios)} to appear in every split. Add examples, merge the class, or pass "
                "your own splits."
            )
        rng.shuffle(members)
        # Every part after the first gets at least one; the first takes the rest.
        sizes = [max(1, round(len(members) * r)) for r in ratios[1:]]
        start = len(members) - sum(sizes)
        parts[0] += members[:start]
        for index, size in enumerate(sizes, start=1):
            parts[index] += members[start:start + size]
            start += size
    for part in parts:
        rng.shuffle(part)
    return tuple(parts)
