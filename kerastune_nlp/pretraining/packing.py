"""Tokenizing texts and packing them into fixed-length sequences (Hugging Face run_mlm's "group_texts").

All lines are tokenized without special tokens, joined into one stream with
the backbone's separator token between lines, and cut into pieces of
`max_length` minus the special tokens; each piece gets the backbone's own
special tokens ([CLS] ... [SEP], <s> ... </s>). The last, shorter piece is
kept and padded, so no text is dropped, and every other sequence is full:
one shape for every step, no padding spent.

Alongside the ids, each position records its word (from the fast
tokenizer's `word_ids`, numbered from 0 within the sequence) or -1 for
special tokens and padding, which are never masked.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerastune_nlp.errors import BackboneError, ConfigError

_BATCH_LINES = 1000
# `kind` codes of the token stream.
_CONTINUATION, _WORD_START, _SPECIAL = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class PackedSequences:
    """Token ids packed into rows of `max_length`.

    Args:
        input_ids: int32 array [sequences, max_length].
        word_ids: int32 array, the same shape: the word each sub-token
            belongs to (0, 1, ... within its row), -1 on special tokens and padding.
        lengths: int32 array [sequences]: real (non-padding) positions of each row.
        texts: int. Texts (lines) packed.
        tokens: int. Sub-tokens of the texts (special tokens and separators not counted).
    """

    input_ids: np.ndarray
    word_ids: np.ndarray
    lengths: np.ndarray
    texts: int
    tokens: int

    @property
    def sequences(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.input_ids.shape[1])

    def summary(self) -> dict:
        positions = self.sequences * self.max_length
        return {"texts": self.texts, "tokens": self.tokens, "sequences": self.sequences,
                "padding_share": round(1 - float(self.lengths.sum()) / positions, 4) if positions else 0.0}


@dataclasses.dataclass(frozen=True)
class SpecialLayout:
    """Where a backbone puts its special tokens around one text."""

    prefix: tuple
    suffix: tuple
    separator: int | None
    pad_id: int
    special_ids: frozenset

    def capacity(self, max_length: int) -> int:
        return max_length - len(self.prefix) - len(self.suffix)


def special_layout(tokenizer, sample: str = "text") -> SpecialLayout:
    """Reads the special tokens the tokenizer's own post-processor adds around `sample`."""
    encoded = tokenizer(sample, add_special_tokens=True, return_special_tokens_mask=True)
    ids, special = encoded["input_ids"], encoded["special_tokens_mask"]
    content = [i for i, flag in enumerate(special) if not flag]
    if not content:
        raise BackboneError(f"The tokenizer turned {sample!r} into special tokens only; cannot tell where text goes.")
    prefix, suffix = tuple(ids[: content[0]]), tuple(ids[content[-1] + 1:])
    separator = suffix[-1] if suffix else tokenizer.sep_token_id or tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return SpecialLayout(prefix, suffix, separator, pad_id, frozenset(tokenizer.all_special_ids))


def pack(texts, tokenizer, max_length: int, layout: SpecialLayout | None = None) -> PackedSequences:
    """Tokenizes `texts` and packs them into rows of `max_length` sub-tokens.

    Args:
        texts: sequence of str. Documents or sentences, in order.
        tokenizer: a fast Hugging Face tokenizer (for `word_ids`).
        max_length: int. Sub-tokens per row, special tokens included.
        layout: SpecialLayout or None. Defaults to `special_layout(tokenizer)`.

    Example:
    >>> packed = pack(["a first line", "a second one"], tokenizer, 128)
    >>> packed.sequences, packed.tokens
    (1, 6)
    """
    layout = layout or special_layout(tokenizer, texts[0] if texts else "text")
    capacity = layout.capacity(max_length)
    if capacity < 1:
        raise ConfigError(f"Expected `max_length` above the {max_length - capacity} special tokens each sequence "
                          f"carries. Received: `max_length`={max_length}.")
    ids, kinds, tokens = _stream(texts, tokenizer, layout)
    return _cut(ids, kinds, tokens, len(texts), layout, max_length)


def _stream(texts, tokenizer, layout: SpecialLayout) -> tuple[np.ndarray, np.ndarray, int]:
    """One stream of ids and `kind` codes for all texts, a separator between texts."""
    id_parts, kind_parts, tokens = [], [], 0
    separator = [] if layout.separator is None else [layout.separator]
    for start in range(0, len(texts), _BATCH_LINES):
        # verbose=False: lines longer than the model are expected here (they are cut into pieces).
        encoded = tokenizer(list(texts[start:start + _BATCH_LINES]), add_special_tokens=False,
                            return_attention_mask=False, return_token_type_ids=False, verbose=False)
        for row, line_ids in enumerate(encoded["input_ids"]):
            if not line_ids:
                continue
            words = encoded.word_ids(row)
            kinds = [_WORD_START] + [_WORD_START if words[k] != words[k - 1] else _CONTINUATION
                                     for k in range(1, len(words))]
            # Text such as a literal "[SEP]" becomes a special token: never masked.
            kinds = [_SPECIAL if token in layout.special_ids else kind for token, kind in zip(line_ids, kinds)]
            tokens += len(line_ids)
            id_parts.append(np.asarray(line_ids + separator, dtype=np.int32))
            kind_parts.append(np.asarray(kinds + [_SPECIAL] * len(separator), dtype=np.int8))
    if not id_parts:
        return np.zeros(0, np.int32), np.zeros(0, np.int8), 0
    ids, kinds = np.concatenate(id_parts), np.concatenate(kind_parts)
    if separator:  # nothing follows the last text
        ids, kinds = ids[:-1], kinds[:-1]
    return ids, kinds, tokens


def _cut(ids, kinds, tokens: int, texts: int, layout: SpecialLayout, max_length: int) -> PackedSequences:
    capacity = layout.capacity(max_length)
    rows = -(-len(ids) // capacity)
    input_ids = np.full((rows, max_length), layout.pad_id, dtype=np.int32)
    row_kinds = np.full((rows, max_length), _SPECIAL, dtype=np.int8)
    lengths = np.zeros(rows, dtype=np.int32)
    start = len(layout.prefix)
    for row in range(rows):
        piece, piece_kinds = ids[row * capacity:(row + 1) * capacity], kinds[row * capacity:(row + 1) * capacity]
        end = start + len(piece)
        input_ids[row, :start] = layout.prefix
        input_ids[row, start:end] = piece
        input_ids[row, end:end + len(layout.suffix)] = layout.suffix
        row_kinds[row, start:end] = piece_kinds
        lengths[row] = end + len(layout.suffix)
    content = row_kinds != _SPECIAL
    # A word cut by a row boundary starts a new word in the next row.
    before = np.concatenate([np.zeros((rows, 1), dtype=bool), content[:, :-1]], axis=1)
    starts = (row_kinds == _WORD_START) | (content & ~before)
    word_ids = np.where(content, np.cumsum(starts, axis=1) - 1, -1).astype(np.int32)
    return PackedSequences(input_ids, word_ids, lengths, texts, tokens)
