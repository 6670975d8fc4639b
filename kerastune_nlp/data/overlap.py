"""Warnings for splits that are not held out from each other.

A test file given as the training file, or train and test cut from one file
twice, still trains and reports a "test" score: a score of data the model
saw. Nothing here stops a run (a small overlap is normal in some corpora:
retweets, stock phrases); it says how much overlaps and where, so the score
is read for what it is.
"""

from __future__ import annotations

import logging
from typing import Callable, Hashable, Sequence

logger = logging.getLogger("kerastune_nlp.data")

# Warn above this share of a split's examples found in an earlier split.
OVERLAP_SHARE = 0.01
_ORDER = ("train", "dev", "test")


def split_overlaps(splits: dict[str, Sequence], key: Callable[[object], Hashable]) -> list[str]:
    """Messages for every pair of splits that share a file or more than 1% of their inputs.

    Args:
        splits: dict. "train", "dev", "test" -> examples (with `source`
            and `line` where they came from a file).
        key: callable. An example's input (words or text, not its label),
            hashable: what makes two examples the same.

    Returns:
        One message per overlapping pair, in train/dev/test order; also logged as warnings.
    """
    names = [name for name in _ORDER if splits.get(name)]
    messages = []
    for index, later in enumerate(names):
        for earlier in names[:index]:
            # The same (file, line) in both: one file given twice, or cuts that overlap. Splits cut
            # from one file by --split share the file but never a line.
            shared = _positions(splits[earlier]) & _positions(splits[later])
            if shared:
                files = sorted({source for source, _ in shared})
                messages.append(
                    f"The {earlier} and {later} splits hold the same {len(shared)} example(s) of the same "
                    f"file ({', '.join(files)}): the {later} scores are not of held-out data. Pass a "
                    f"different --{later} file."
                )
                continue
            seen = {key(example) for example in splits[earlier]}
            repeated = [example for example in splits[later] if key(example) in seen]
            share = len(repeated) / len(splits[later])
            if share > OVERLAP_SHARE:
                messages.append(
                    f"{len(repeated)} of {len(splits[later])} {later} examples ({share:.1%}) also occur in "
                    f"{earlier} (first: {_where(repeated[0])}): the {later} scores partly measure memory. "
                    + _repeat_fix(splits[earlier], repeated, later)
                )
    # The same splits are checked at each entry point a run passes (the CLI, train(),
    # Trainer.prepare): say it once per set of examples, not once per check.
    identity = tuple((name, len(splits[name]), id(splits[name][0]), id(splits[name][-1])) for name in names)
    global _last_warned
    if messages and _last_warned != (identity, messages):
        for message in messages:
            logger.warning(message)
    _last_warned = (identity, messages)
    return messages


_last_warned: tuple | None = None


def _repeat_fix(earlier: Sequence, repeated: Sequence, later: str) -> str:
    """How to remove the repeats: when one file was cut into both splits, the file itself repeats them."""
    sources = {getattr(example, "source", None) for example in repeated}
    if len(sources) == 1 and None not in sources:
        source = sources.pop()
        if any(getattr(example, "source", None) == source for example in earlier):
            # Cut from one file by --split (by document or sentence): no split rule removes a repeat.
            return (f"{source} itself holds these inputs more than once and the split put copies on both "
                    f"sides: deduplicate the file if the repeats are not meant, or pass a --{later} file.")
    return f"Remove the repeats from {later}, or split the data by document."


def _positions(examples: Sequence) -> set[tuple[str, int]]:
    # Examples built in memory have no file line of their own.
    return {(str(example.source), example.line) for example in examples if getattr(example, "line", 0) > 0}


def _where(example) -> str:
    line = getattr(example, "line", 0)
    return f"{example.source}, line {line}" if line > 0 else str(getattr(example, "source", "<memory>"))
