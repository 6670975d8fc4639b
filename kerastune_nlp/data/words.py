"""Raw text -> words with character offsets, and IOB2 word tags -> entity spans.

NER models here are trained on pre-split words (CoNLL files), where
punctuation is its own word ("Obama" ","). Raw text must be split the same
way before tagging, and every span must point back into the original string,
so the splitters return `(word, start, end)` with `text[start:end] == word`.
"""

from __future__ import annotations

import functools
from typing import Sequence

# One rule for every route that reads raw text: the Predictor, the server and
# the raw-string SavedModel signature, whose graph runs the same pattern
# through RE2 (tensorflow-text). So the pattern keeps to the syntax both
# engines read alike: explicit classes (RE2's \w, \s and \S are ASCII-only),
# two-digit \xHH escapes, no lookaround. Python runs it with `regex` (a
# transformers dependency), as the standard `re` has no \p{...} classes.
#
# Whitespace is what str.split() splits on. A word is a URL, an @mention /
# #hashtag, letters/digits/marks with inner apostrophes, hyphens or dots
# ("don't", "e-mail", "3.5", "हिन्दी"), or any other single non-space
# character: punctuation is a word of its own, as in CoNLL data.
WHITESPACE_CLASS = r"\t\n\x0B\x0C\r\x1C-\x1F\x85\p{Z}"
_NON_SPACE = f"[^{WHITESPACE_CLASS}]"
_WORD_CHAR = r"[\p{L}\p{N}\p{M}_]"
# A URL runs to the next whitespace but does not end in punctuation ("see
# https://x.org/a, then": the comma is a word).
_URL_END = f"[^{WHITESPACE_CLASS}.,;:!?'\"()\\[\\]“”‘’«»<>]"
# Abbreviations written as letter-dot pairs keep their dots ("U.S.", "e.g.",
# "D.C."), as CoNLL data writes them.
WORD_PATTERN = (f"(?:https?://|www\\.){_NON_SPACE}*{_URL_END}"
                r"|(?:\p{L}\.){2,}"
                f"|[@#]?{_WORD_CHAR}+(?:['’\\-.]{_WORD_CHAR}+)*"
                f"|{_NON_SPACE}")
WHITESPACE_PATTERN = f"[{WHITESPACE_CLASS}]+"


@functools.cache
def _word_regex():
    import regex

    return regex.compile(WORD_PATTERN)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation of a raw text, CoNLL style, with character offsets."""
    return [(m.group(), m.start(), m.end()) for m in _word_regex().finditer(text)]


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
