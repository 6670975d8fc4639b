"""Sub-word tokenization with word-label alignment and overlapping windows.

A sentence becomes one or more windows of at most `max_length` sub-tokens
(special tokens included). The first sub-token of each word carries the
word's label; the others are ignored by the loss (-100) unless
`label_all_subtokens` is set. A sentence too long for one window is split at
word boundaries into windows that overlap by about `stride` sub-tokens; each
word is *owned* by exactly one window (the one where it sits farther from a
cut), and only owned words are scored, so every gold word is scored once.

Document context (FLERT, Schweter & Akbik 2020): with `context_size` N > 0
and a document key per sentence, a sentence that fits one window also reads
up to N sub-tokens of its document on each side (the end of the sentences
before it, the start of those after it), cut at the document's edge and
shrunk so the window stays within `max_length` (the sentence's own
sub-tokens come first). Context positions carry IGNORE_INDEX and are never
scored. A sentence that already needs several windows gets no context.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Mapping, Sequence

import numpy as np

from kerastune_nlp.errors import ConfigError

IGNORE_INDEX = -100
logger = logging.getLogger("kerastune_nlp.data")


@dataclasses.dataclass(frozen=True)
class Window:
    """One model input cut from a sentence.

    Args:
        sentence_index: int. Which input sentence it came from.
        input_ids: np.ndarray. Sub-token ids, special tokens included.
        labels: np.ndarray or None. Per-position training label ids
            (IGNORE_INDEX where not trained); None when encoded without tags.
        scored_positions: np.ndarray. Position of the first sub-token of each
            word this window owns.
        scored_words: np.ndarray. The sentence word index of each of them.
        scored_ends: np.ndarray or None. One past the last sub-token of each
            of them (for aggregating a word's sub-tokens at prediction time).
    """

    sentence_index: int
    input_ids: np.ndarray
    labels: np.ndarray | None
    scored_positions: np.ndarray
    scored_words: np.ndarray
    scored_ends: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclasses.dataclass(frozen=True)
class EncodingStats:
    sentences: int
    words: int
    windows: int
    split_sentences: int
    truncated_words: int
    unknown_words: int
    # Document context (all 0 without it).
    context_size: int = 0
    context_windows: int = 0
    context_tokens: int = 0
    context_skipped_split: int = 0


class WindowEncoder:
    """Turns word lists (and optional tags) into `Window`s for one tokenizer.

    Args:
        tokenizer: a Hugging Face fast tokenizer.
        max_length: int. Sub-tokens per window including special tokens.
        stride: int. Sub-tokens shared by consecutive windows of a long
            sentence. Defaults to 32.
        label_to_id: mapping or None. Tag string to id; needed for labels.
        label_all_subtokens: bool. Label every sub-token (continuations of a
            `B-X` word get `I-X`). Defaults to False.
        context_size: int. Sub-tokens of document context on each side of a
            sentence (used when `encode` gets `documents`). At most
            `max_context_size(max_length)`. Defaults to 0 (none).

    Example:
    >>> encoder = WindowEncoder(tokenizer, max_length=128, label_to_id=ids)
    >>> windows, stats = encoder.encode([["New", "York"]], [["B-loc", "I-loc"]])
    """

    def __init__(
        self,
        tokenizer,
        max_length: int,
        stride: int = 32,
        label_to_id: Mapping[str, int] | None = None,
        label_all_subtokens: bool = False,
        context_size: int = 0,
    ):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stride = stride
        self.label_to_id = label_to_id
        self.label_all_subtokens = label_all_subtokens
        self.prefix_ids, self.suffix_ids = _special_token_frame(tokenizer)
        self.capacity = max_length - len(self.prefix_ids) - len(self.suffix_ids)
        if self.capacity < 1:
            raise ValueError(f"max_length={max_length} leaves no room besides special tokens")
        self.unk_id = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
        largest = max_context_size(self.capacity)
        if isinstance(context_size, bool) or not isinstance(context_size, int) or context_size < 0:
            raise ConfigError(f"Expected `context_size` to be an int >= 0. Received: `context_size`={context_size!r}.")
        if context_size > largest:
            raise ConfigError(
                f"Expected `context_size` (sub-tokens of context on each side) to leave room for the "
                f"sentence within `max_length`={max_length}. Received: `context_size`={context_size}; "
                f"the largest that fits is {largest} ((max_length - {max_length - self.capacity} special "
                f"tokens - 1) // 2). Pass --context-size {largest} or less, or raise --max-length."
            )
        self.context_size = context_size

    def encode(
        self,
        sentences: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]] | None = None,
        documents: Sequence | None = None,
    ) -> tuple[list[Window], EncodingStats]:
        """Encodes sentences; `tags`, if given, has one tag per word.

        `documents`, if given (and `context_size` > 0), has one entry per
        sentence: None (no context), or `(document key, position)` where
        sentences with equal hashable keys form one document, in the order
        of `position` (e.g. the file line).
        """
        if tags is not None and self.label_to_id is None:
            raise ValueError("WindowEncoder needs label_to_id to encode tags")
        word_pieces = self._word_pieces(sentences)
        windows: list[Window] = []
        split = truncated = unknown = 0
        all_pieces = []
        for pieces in word_pieces:
            unknown += sum(1 for p in pieces if p is None)
            pieces = [p if p is not None else [self.unk_id] for p in pieces]
            truncated += sum(1 for p in pieces if len(p) > self.capacity)
            all_pieces.append([p[: self.capacity] for p in pieces])
        use_context = self.context_size > 0 and documents is not None
        contexts = self._contexts(all_pieces, documents) if use_context else None
        context_windows = context_tokens = skipped = 0
        for index, pieces in enumerate(all_pieces):
            spans = plan_windows([len(p) for p in pieces], self.capacity, self.stride)
            split += len(spans) > 1
            sentence_tags = tags[index] if tags is not None else None
            left = right = ()
            if contexts is not None and contexts[index] is not None:
                if len(spans) > 1:
                    skipped += 1
                else:
                    left, right = self._fit_context(*contexts[index], sum(len(p) for p in pieces))
                    context_windows += bool(left or right)
                    context_tokens += len(left) + len(right)
            for start, end, own_start, own_end in spans:
                windows.append(
                    self._window(index, pieces, sentence_tags, start, end, own_start, own_end, left, right)
                )
        if truncated:
            logger.warning(
                "%d words had more sub-tokens than fit a window (max_length=%d); their first "
                "sub-tokens were kept, so they are still trained and scored.",
                truncated,
                self.max_length,
            )
        stats = EncodingStats(
            sentences=len(sentences),
            words=sum(len(s) for s in sentences),
            windows=len(windows),
            split_sentences=split,
            truncated_words=truncated,
            unknown_words=unknown,
            context_size=self.context_size if use_context else 0,
            context_windows=context_windows,
            context_tokens=context_tokens,
            context_skipped_split=skipped,
        )
        return windows, stats

    def _contexts(self, all_pieces, documents):
        """Per sentence: None, or (sub-tokens before it, sub-tokens after it) in its document (up to N each)."""
        if len(documents) != len(all_pieces):
            raise ValueError(f"documents has {len(documents)} entries for {len(all_pieces)} sentences")
        members: dict = {}
        for index, document in enumerate(documents):
            if document is not None:
                members.setdefault(document[0], []).append((document[1], index))
        n = self.context_size
        contexts: list = [None] * len(all_pieces)
        for ordered in members.values():
            ordered.sort()
            flat = [[token for word in all_pieces[index] for token in word] for _, index in ordered]
            for k, (_, index) in enumerate(ordered):
                left: list[int] = []
                for previous in reversed(flat[:k]):
                    if len(left) >= n:
                        break
                    left[:0] = previous
                right: list[int] = []
                for following in flat[k + 1:]:
                    if len(right) >= n:
                        break
                    right.extend(following)
                contexts[index] = (left[max(0, len(left) - n):], right[:n])
        return contexts

    def _fit_context(self, left, right, centre: int):
        """Shrinks the context so centre + context fit the window; each side keeps its half or more."""
        free = self.capacity - centre
        if len(left) + len(right) > free:
            keep_left = min(len(left), max(free // 2, free - len(right)))
            keep_right = min(len(right), free - keep_left)
            left, right = left[len(left) - keep_left:], right[:keep_right]
        return tuple(left), tuple(right)

    def _word_pieces(self, sentences) -> list[list[list[int] | None]]:
        """Sub-token ids of every word; None for words that yield no sub-token."""
        result = []
        batch = 1024  # bounds the memory of one tokenizer call
        for first in range(0, len(sentences), batch):
            chunk = [list(words) for words in sentences[first : first + batch]]
            encoded = self.tokenizer(
                chunk, is_split_into_words=True, add_special_tokens=False, verbose=False
            )
            for row, words in enumerate(chunk):
                pieces: list[list[int] | None] = [None] * len(words)
                for token_id, word in zip(encoded["input_ids"][row], encoded.word_ids(row)):
                    if word is None:
                        continue
                    if pieces[word] is None:
                        pieces[word] = []
                    pieces[word].append(token_id)
                result.append(pieces)
        return result

    def _continuation_label(self, tag: str) -> int:
        """Label of a word's later sub-tokens: ignored, or inside the entity (B-X -> I-X)."""
        if not self.label_all_subtokens:
            return IGNORE_INDEX
        if tag.startswith("B-"):
            return self.label_to_id.get("I-" + tag[2:], self.label_to_id[tag])
        return self.label_to_id[tag]

    def _window(self, index, pieces, sentence_tags, start, end, own_start, own_end, left=(), right=()) -> Window:
        ids = list(self.prefix_ids) + list(left)
        labels = [IGNORE_INDEX] * len(ids)
        positions, words, ends = [], [], []
        for word in range(start, end):
            first_position = len(ids)
            ids.extend(pieces[word])
            if own_start <= word < own_end:
                positions.append(first_position)
                words.append(word)
                ends.append(len(ids))
            if sentence_tags is not None:
                tag = sentence_tags[word]
                labels.append(self.label_to_id[tag])
                labels.extend([self._continuation_label(tag)] * (len(pieces[word]) - 1))
        ids.extend(right)
        ids.extend(self.suffix_ids)
        labels.extend([IGNORE_INDEX] * (len(right) + len(self.suffix_ids)))
        return Window(
            sentence_index=index,
            input_ids=np.asarray(ids, dtype=np.int32),
            labels=np.asarray(labels, dtype=np.int32) if sentence_tags is not None else None,
            scored_positions=np.asarray(positions, dtype=np.int32),
            scored_words=np.asarray(words, dtype=np.int32),
            scored_ends=np.asarray(ends, dtype=np.int32),
        )


def max_context_size(capacity: int) -> int:
    """The largest context per side that leaves a one-sub-token sentence room: (capacity - 1) // 2."""
    return (capacity - 1) // 2


def plan_windows(piece_counts: Sequence[int], capacity: int, stride: int):
    """Splits words into overlapping windows of at most `capacity` sub-tokens.

    Args:
        piece_counts: sub-tokens of each word, each between 1 and `capacity`.
        capacity: sub-tokens a window holds besides special tokens.
        stride: sub-tokens (whole words) repeated from the previous window.

    Returns:
        A list of `(start, end, own_start, own_end)` word ranges: the window
        holds words `[start, end)` and scores `[own_start, own_end)`. The owned
        ranges tile `[0, len(piece_counts))` exactly.
    """
    n = len(piece_counts)
    if n == 0:
        return [(0, 0, 0, 0)]
    spans = []
    start = 0
    while True:
        end, total = start, 0
        while end < n and total + piece_counts[end] <= capacity:
            total += piece_counts[end]
            end += 1
        spans.append((start, end))
        if end == n:
            break
        next_start, overlap = end, 0
        while next_start - 1 > start and overlap + piece_counts[next_start - 1] <= stride:
            next_start -= 1
            overlap += piece_counts[next_start]
        start = next_start
    # Each overlap is shared at its middle: a word is scored by the window in
    # which it has more context on the side of the cut.
    owned = []
    own_start = 0
    for k, (start, end) in enumerate(spans):
        if k + 1 < len(spans):
            next_start = spans[k + 1][0]
            own_end = (next_start + end + 1) // 2
        else:
            own_end = n
        owned.append((start, end, own_start, own_end))
        own_start = own_end
    return owned


AGGREGATIONS = ("first", "average", "max")


def gather_word_logits(windows: Sequence[Window], logits: Sequence[np.ndarray], sentence_lengths,
                       aggregation: str = "first"):
    """Collects the scores of each word from the window that owns it.

    Args:
        windows: the windows the logits belong to, in the same order.
        logits: one `[length, num_labels]` array per window (padding allowed).
        sentence_lengths: words per sentence.
        aggregation: how a word's sub-tokens become one score row. "first"
            (the default, what training labels): the first sub-token's
            logits. "average": the log of the mean of the sub-tokens'
            probabilities. "max": the logits of the sub-token whose best
            label is the most probable (as Hugging Face's pipeline).

    Returns:
        A list with one `[words, num_labels]` float array per sentence
        (logits, or log-probabilities for "average").
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}; received {aggregation!r}")
    num_labels = np.asarray(logits[0]).shape[-1] if len(logits) else 0
    per_sentence = [np.full((length, num_labels), np.nan, dtype=np.float32) for length in sentence_lengths]
    for window, window_logits in zip(windows, logits):
        if not len(window.scored_positions):
            continue
        window_logits = np.asarray(window_logits)
        if aggregation == "first":
            rows = window_logits[window.scored_positions]
        else:
            rows = np.stack([_aggregate(window_logits[first:end], aggregation)
                             for first, end in zip(window.scored_positions, window.scored_ends)])
        per_sentence[window.sentence_index][window.scored_words] = rows
    for index, sentence in enumerate(per_sentence):
        if np.isnan(sentence).any():
            raise RuntimeError(f"sentence {index} has words no window scored")
    return per_sentence


def _aggregate(subtoken_logits: np.ndarray, aggregation: str) -> np.ndarray:
    """One word's `[sub-tokens, labels]` logits -> one row."""
    shifted = np.exp(subtoken_logits - subtoken_logits.max(-1, keepdims=True))
    probabilities = shifted / shifted.sum(-1, keepdims=True)
    if aggregation == "average":
        return np.log(probabilities.mean(0) + 1e-12)
    return subtoken_logits[int(probabilities.max(-1).argmax())]


def decode_windows(windows: Sequence[Window], logits: Sequence[np.ndarray], sentence_lengths):
    """One label id per word: the argmax of the owning window's logits."""
    return [scores.argmax(axis=-1) for scores in gather_word_logits(windows, logits, sentence_lengths)]


def _special_token_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special ids a single-sequence input starts and ends with ([CLS], [SEP], <s>, </s>)."""
    encoded = tokenizer(["a"], is_split_into_words=True, add_special_tokens=True)
    word_ids = encoded.word_ids(0)
    ids = encoded["input_ids"]
    first = word_ids.index(0)
    last = len(word_ids) - 1 - word_ids[::-1].index(0)
    return list(ids[:first]), list(ids[last + 1 :])
