"""Seeded stratified train/validation/test splits of one labelled set."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Callable, Sequence

from kerastune_nlp.data.text_examples import TextExample
from kerastune_nlp.errors import ConfigError, LabelError

NO_LABEL = "<no label>"
# examples, number of parts -> {stratum: its examples}; a task's `strata` picks one.
Strata = Callable[[list, int], dict]


def stratified_split(
    examples: Sequence[TextExample],
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 42,
    strata: Strata | None = None,
) -> tuple[list[TextExample], ...]:
    """Splits into `len(ratios)` parts, keeping each stratum's share in each part.

    Strata come from `strata`: `by_label` (a class per example),
    `by_first_label` (the first of several labels as written; `NO_LABEL`
    for an empty label set) or `by_quantile` (bins of a numeric target, of
    equal count by rank, so ties cannot empty a bin); a task names its own
    (`TextTask.strata`). Every stratum appears in every part, so each needs
    at least `len(ratios)` examples; within a stratum, part sizes follow the
    ratios by largest remainder.

    Args:
        examples: sequence of `TextExample`.
        ratios: sequence of float. Two or more positive shares summing to 1;
            the first part is the training part. Defaults to (0.7, 0.15, 0.15).
        seed: int. Same seed, same split. Defaults to 42.
        strata: callable `(examples, parts) -> {stratum: examples}`.
            Defaults to `by_label`.

    Returns:
        A tuple of lists, one per ratio, each shuffled.

    Example:
    >>> train, dev, test = stratified_split(examples, (0.7, 0.15, 0.15), seed=1)
    >>> train, dev = stratified_split(train, (0.9, 0.1), strata=by_first_label)
    """
    ratios = tuple(ratios)
    if (
        len(ratios) < 2
        or any(not r > 0 for r in ratios)
        or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6)
    ):
        raise ConfigError(
            f"Expected two or more positive ratios summing to 1. Received: `ratios`={ratios}. For "
            "example (0.8, 0.1, 0.1)."
        )
    if not examples:
        raise ConfigError("Expected examples to split. Received: an empty sequence.")
    groups = (strata or by_label)(list(examples), len(ratios))
    too_small = {key: len(members) for key, members in groups.items() if len(members) < len(ratios)}
    if too_small:
        listed = "; ".join(
            f"Class {key!r} has {count} example(s)" for key, count in sorted(too_small.items())
        )
        raise LabelError(
            f"{listed}. Each class needs at least {len(ratios)} to appear in every one of the "
            f"{len(ratios)} splits {ratios}. Add examples, merge or drop the class, or pass your "
            "own dev and test files."
        )
    rng = random.Random(seed)
    parts: list[list[TextExample]] = [[] for _ in ratios]
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        start = 0
        for part, size in zip(parts, _sizes(len(members), ratios)):
            part += members[start : start + size]
            start += size
    for part in parts:
        rng.shuffle(part)
    return tuple(parts)


def by_label(examples: list, parts: int) -> dict[str, list]:
    """One stratum per label."""
    groups: dict[str, list] = defaultdict(list)
    for example in examples:
        groups[example.label].append(example)
    return groups


def by_first_label(examples: list, parts: int) -> dict[str, list]:
    """One stratum per first label of a label tuple; `NO_LABEL` for an empty one."""
    groups: dict[str, list] = defaultdict(list)
    for example in examples:
        groups[example.label[0] if example.label else NO_LABEL].append(example)
    return groups


def by_quantile(examples: list, parts: int, bins: int = 4) -> dict[str, list]:
    """Quantile bins of a numeric label (fewer than `bins` when the data is small)."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ConfigError(f"Expected a positive int. Received: `bins`={bins!r}.")
    if len(examples) < parts:
        raise LabelError(
            f"{len(examples)} example(s) cannot fill {parts} splits. Add examples or use fewer ratios."
        )
    groups: dict[str, list] = defaultdict(list)
    bins = max(1, min(bins, len(examples) // parts))
    order = sorted(range(len(examples)), key=lambda i: float(examples[i].label))  # stable: ties by position
    for rank, index in enumerate(order):
        groups[f"bin {rank * bins // len(examples)}"].append(examples[index])
    return groups


def _sizes(count: int, ratios: tuple[float, ...]) -> list[int]:
    """Largest-remainder part sizes summing to `count`, each at least 1."""
    quotas = [count * r for r in ratios]
    sizes = [max(1, math.floor(q)) for q in quotas]
    # Ties go to the earlier part (training first).
    while sum(sizes) < count:
        index = max(range(len(sizes)), key=lambda i: (quotas[i] - sizes[i], -i))
        sizes[index] += 1
    while sum(sizes) > count:
        index = max(
            (i for i in range(len(sizes)) if sizes[i] > 1), key=lambda i: (sizes[i] - quotas[i], i)
        )
        sizes[index] -= 1
    return sizes
