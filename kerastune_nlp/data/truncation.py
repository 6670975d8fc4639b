"""Which sub-tokens of a long text the model sees: the head, the tail, or both.

Sun et al. 2019 ("How to Fine-Tune BERT for Text Classification") found that
for long reviews the first 128 plus the last 382 sub-tokens of 510 beat
either end alone: openings set the topic, endings carry the verdict. The
same rule runs in Python (`keep`, for training and the Python tokenizer) and
in the graph (`export.graph_tokenizer`), so both give the same ids.
"""

from __future__ import annotations

from typing import Sequence

TRUNCATION_STRATEGIES = ("head", "tail", "head_tail")
# Share of the budget given to the head in head_tail (128 of 510 in the paper).
HEAD_SHARE = 0.25


def split_budget(budget: int, strategy: str) -> tuple[int, int]:
    """(head, tail) sub-tokens kept of a text longer than `budget`."""
    if strategy == "head":
        return budget, 0
    if strategy == "tail":
        return 0, budget
    if strategy == "head_tail":
        head = int(budget * HEAD_SHARE)
        return head, budget - head
    raise ValueError(f"unknown truncation strategy {strategy!r}; expected one of {TRUNCATION_STRATEGIES}")


def keep(content: Sequence, budget: int, strategy: str) -> list:
    """`content` cut to `budget` items by `strategy` (unchanged when it fits)."""
    content = list(content)
    if len(content) <= budget:
        return content
    head, tail = split_budget(budget, strategy)
    return content[:head] + (content[len(content) - tail:] if tail else [])


def special_layout(tokenizer) -> tuple[int, int]:
    """(prefix, suffix): special tokens the tokenizer adds before and after a single text ([CLS] ... [SEP])."""
    empty = tokenizer("", add_special_tokens=True)["input_ids"]
    probe = tokenizer("hello", add_special_tokens=True)["input_ids"]
    prefix = next((i for i, (a, b) in enumerate(zip(empty, probe)) if a != b), len(empty))
    return prefix, len(empty) - prefix
