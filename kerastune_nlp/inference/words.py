"""Raw text -> words with character offsets, and IOB2 word tags -> entity spans.

NER models here are trained on pre-split words (CoNLL files), where
punctuation is its own word ("Obama" ","). Raw text must be split the same
way before tagging, and every span must point back into the original string,
so the splitters return `(word, start, end)` with `text[start:end] == word`.
"""

from __future__ import annotations

import re
from typing import Sequence

# URLs, @mentions / #hashtags, words with inner apostrophes, hyphens or dots
# ("don't", "e-mail", "U.S"), numbers with separators, then any other single
# non-space character (punctuation is a word of its own, as in CoNLL data).
_WORD = re.compile(
    r"https?://\S+|www\.\S+"
    r"|[@#]?\w+(?:['’\-.]\w+)*"
    r"|\S",
    re.UNICODE,
)
_WHITESPACE_WORD = re.compile(r"\S+")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation of a raw text, CoNLL style, with character offsets."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def whitespace_words(text: str) -> list[tuple[str, int, int]]:
    """Whitespace-separated words with character offsets (what the raw-string SavedModel signature tags)."""
    return [(m.group(), m.start(), m.end()) for m in _WHITESPACE_WORD.finditer(text)]


def entity_spans(text: str, words: Sequence[tuple[str, int, int]], tags: Sequence[str],
                 scores: Sequence[float]) -> list[dict]:
    """Groups IOB2 word tags into entities.

    Args:
        text: the original string.
        words: `(word, start, end)` per word.
        tags: one IOB2 tag per word (valid sequences: `I-X` continues `B-X`/`I-X`).
        scores: the probability of each word's tag.

    Returns:
        `[{"text", "label", "start", "end", "score"}]`: `start`/`end` are
        character offsets into `text`; `score` is the mean of the entity's
        word probabilities.
    """
    spans: list[dict] = []
    current = None
    for (_, start, end), tag, score in zip(words, tags, scores):
        kind, _, label = tag.partition("-")
        if kind == "I" and current is not None and current["label"] == label:
            current["end"] = end
            current["scores"].append(float(score))
            continue
        if current is not None:
            spans.append(current)
            current = None
        if kind in ("B", "I") and label:  # a stray I- (never after Viterbi) opens an entity
            current = {"label": label, "start": start, "end": end, "scores": [float(score)]}
    if current is not None:
        spans.append(current)
    return [{"text": text[s["start"]:s["end"]], "label": s["label"], "start": s["start"], "end": s["end"],
             "score": sum(s["scores"]) / len(s["scores"])} for s in spans]
