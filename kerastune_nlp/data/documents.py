"""Documents for prediction with document context: sentences, and the rule that splits a text into them.

A run trained with `context_size` N > 0 read each sentence with up to N
sub-tokens of its neighbours in the same document (`data.ner_windows`).
Prediction reads a `Document` the same way. A document is either a list of
sentences (strings, or word lists for `Predictor.predict`) or one text that
`split_sentences` cuts into sentences; offsets always point into the string
the caller gave (each sentence string, or the whole text).

The sentence rule works on the words of the word rule (`inference.words`),
so a sentence boundary is always a word boundary: a sentence ends at a line
break, or after `.`, `!`, `?` or `…` (and any closing quotes or brackets
after it) when whitespace follows and the next word starts with an
upper-case letter, a digit or an opening quote or bracket. A period after a
single capital ("J. Smith") or a title ("Dr. Smith", see `_TITLES`) ends no
sentence. Abbreviations written as letter-dot pairs ("U.S.") are single words
and end no sentence either; "U.S. He" stays one sentence (use a list of
sentences when the split matters).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from kerastune_nlp.errors import ConfigError

_TERMINALS = frozenset(".!?…")
_CLOSERS = frozenset("\"'”’»)]}")
_OPENERS = frozenset("\"'“‘«([{")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # what str.splitlines splits on
# Words before a period that do not end a sentence: titles and name parts that precede a name.
_TITLES = frozenset("mr mrs ms dr prof st mt jr sr sen rep gov gen col capt lt sgt rev fr hon vs no".split())


def split_sentences(text: str) -> list[tuple[int, int]]:
    """`(start, end)` character offsets of each sentence of `text` (see the module docstring for the rule).

    Example:
    >>> split_sentences("Obama met Merkel. They spoke in Berlin.\\nNext line")
    [(0, 17), (18, 39), (40, 49)]
    """
    from kerastune_nlp.data.words import split_words

    words = split_words(text)
    spans, first = [], 0
    for i in range(len(words) - 1):
        if _ends_sentence(text, words, i):
            spans.append((words[first][1], words[i][2]))
            first = i + 1
    if words:
        spans.append((words[first][1], words[-1][2]))
    return spans


def _ends_sentence(text: str, words, i: int) -> bool:
    gap = text[words[i][2]: words[i + 1][1]]
    if any(c in _LINE_BREAKS for c in gap):
        return True
    if not gap:  # "end.Next" or "3.5": no whitespace, no boundary
        return False
    last = i
    while last > 0 and words[last][0] in _CLOSERS:
        last -= 1
    if words[last][0] not in _TERMINALS:
        return False
    if words[last][0] == "." and last > 0 and words[last - 1][2] == words[last][1]:
        before = words[last - 1][0]
        if (len(before) == 1 and before.isupper()) or before.lower() in _TITLES:
            return False
    following = words[i + 1][0]
    return following[0].isupper() or following[0].isdigit() or following[0] in _OPENERS


@dataclasses.dataclass(frozen=True)
class Document:
    """Sentences read together, each with the context of its neighbours.

    Args:
        sentences: tuple. Each sentence as a string (or a tuple of words).
        text: str or None. The text the sentences were cut from
            (`Document.from_text`), None for a list of sentences.
        starts: tuple of int. Where each sentence starts in `text` (0 for
            every sentence of a list: offsets are into the sentence itself).

    Example:
    >>> Document.from_text("Obama met Merkel. They spoke.").sentences
    ('Obama met Merkel.', 'They spoke.')
    """

    sentences: tuple
    text: str | None = None
    starts: tuple = ()

    @classmethod
    def from_text(cls, text: str) -> "Document":
        spans = split_sentences(text)
        return cls(tuple(text[s:e] for s, e in spans), text, tuple(s for s, _ in spans))

    @classmethod
    def from_sentences(cls, sentences: Sequence) -> "Document":
        return cls(tuple(s if isinstance(s, str) else tuple(s) for s in sentences), None, (0,) * len(sentences))

    @classmethod
    def of(cls, value, index: int, words_allowed: bool = False) -> "Document":
        """A `Document` from what a caller passes: one text, a list of sentences, or a `Document`."""
        if isinstance(value, Document):
            return value
        if isinstance(value, str):
            return cls.from_text(value)
        if isinstance(value, (list, tuple)):
            for k, sentence in enumerate(value):
                words = words_allowed and isinstance(sentence, (list, tuple)) and all(
                    isinstance(w, str) for w in sentence)
                if not isinstance(sentence, str) and not words:
                    kind = "a string or a list of words" if words_allowed else "a string"
                    raise ConfigError(f"Expected each sentence of a document to be {kind}. Received: "
                                      f"{type(sentence).__name__} at documents[{index}][{k}].")
            return cls.from_sentences(value)
        raise ConfigError(f"Expected a document as one text (str) or a list of sentences. Received: "
                          f"{type(value).__name__} at documents[{index}].")

    def sentence_words(self) -> list[list[tuple[str, int, int]]]:
        """`(word, start, end)` per word of each sentence, offsets into `text` (or into the sentence)."""
        from kerastune_nlp.data.words import split_words

        result = []
        for sentence, start in zip(self.sentences, self.starts):
            if isinstance(sentence, str):
                result.append([(w, s + start, e + start) for w, s, e in split_words(sentence)])
            else:
                result.append([(w, -1, -1) for w in sentence])
        return result
