"""In-graph WordPiece tokenization that reproduces a Hugging Face BERT-family tokenizer.

An exported model that takes raw strings must split them exactly as training
did, with no Python at serving time. tensorflow-text's `FastBertTokenizer`
runs BERT's basic tokenizer and WordPiece inside the graph; with
`lower_case_nfd_strip_accents` it applies the same lowercase + NFD + accent
stripping as the HF tokenizer (the plain `BertTokenizer(lower_case=True)`
applies NFKC and case folding instead, and differs on ~0.7% of sentences).
`agreement` measures the match on real text before an export is published.

Offsets from tensorflow-text are UTF-8 byte offsets; the NER signature
turns them into character offsets so spans index the caller's string.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

from kerastune_nlp.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class WordPieceSpec:
    """What the in-graph tokenizer needs from the Hugging Face one."""

    vocab: tuple[str, ...]
    lower_case: bool
    unknown_token: str
    cls_id: int
    sep_id: int
    pad_id: int
    max_chars_per_word: int


def wordpiece_spec(tokenizer) -> WordPieceSpec:
    """The spec of a BERT-family fast tokenizer, or ConfigError naming why it has no in-graph twin."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(f"The tokenizer {type(tokenizer).__name__} is not a fast tokenizer; only the token-id "
                          "signature can be exported.")
    described = json.loads(backend.to_str())
    model, normalizer = described.get("model") or {}, described.get("normalizer") or {}
    pre_tokenizer = described.get("pre_tokenizer") or {}
    reasons = []
    if model.get("type") != "WordPiece":
        reasons.append(f"its model is {model.get('type')}, not WordPiece")
    if normalizer.get("type") != "BertNormalizer":
        reasons.append(f"its normalizer is {normalizer.get('type')}, not BertNormalizer")
    if pre_tokenizer.get("type") != "BertPreTokenizer":
        reasons.append(f"its pre-tokenizer is {pre_tokenizer.get('type')}, not BertPreTokenizer")
    if model.get("continuing_subword_prefix", "##") != "##":
        reasons.append("its sub-word prefix is not '##'")
    if not reasons:
        lowercase = bool(normalizer.get("lowercase"))
        strip = normalizer.get("strip_accents")
        if (strip if strip is not None else lowercase) != lowercase:
            reasons.append(f"it strips accents={strip} with lowercase={lowercase}, which tensorflow-text "
                           "cannot reproduce")
    if reasons:
        raise ConfigError(f"The tokenizer {type(tokenizer).__name__} has no in-graph twin: "
                          + "; ".join(reasons) + ". Export the token-id signature only (--signatures ids).")
    vocab = sorted(model["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        raise ConfigError("The tokenizer's vocabulary ids are not contiguous; it has no in-graph twin.")
    return WordPieceSpec(
        vocab=tuple(token for token, _ in vocab), lower_case=bool(normalizer.get("lowercase")),
        unknown_token=model.get("unk_token", "[UNK]"), cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id or 0,
        max_chars_per_word=int(model.get("max_input_chars_per_word", 100)),
    )


class GraphWordPiece:
    """Raw strings -> token ids inside a TensorFlow graph (tensorflow-text ops).

    Args:
        spec: a `WordPieceSpec` from `wordpiece_spec(tokenizer)`.
        max_length: int. Sub-tokens per model input, special tokens included.
        truncation: str. What a single text longer than `max_length` keeps:
            "head", "tail" or "head_tail", as `kerastune_nlp.data.truncation`.
    """

    def __init__(self, spec: WordPieceSpec, max_length: int, truncation: str = "head"):
        import tensorflow_text as text

        from kerastune_nlp.data.truncation import split_budget

        self.spec = spec
        self.max_length = max_length
        self.capacity = max_length - 2
        self.truncation = truncation
        self.head, self.tail = split_budget(self.capacity, truncation)
        # Normalisation is done here, not by tensorflow-text: its built-in
        # lower-casing also case-folds (ß -> ss) and maps … to ..., where the
        # HF BertNormalizer only lower-cases, applies NFD and drops marks.
        self._wordpiece = text.FastBertTokenizer(
            vocab=list(spec.vocab), suffix_indicator="##", max_bytes_per_word=spec.max_chars_per_word,
            token_out_type="int64", unknown_token=spec.unknown_token, lower_case_nfd_strip_accents=False,
        )
        self._normalize_utf8 = text.normalize_utf8
        self._regex_split = text.regex_split_with_offsets

    # -- sequence tasks ------------------------------------------------------------

    def normalize(self, texts):
        """HF BertNormalizer: drop control characters; with lowercase also lower-case, NFD, drop marks."""
        from kerastune_nlp._tf import tf

        # clean_text: control and format characters go (tab, newline, CR stay: they split words).
        texts = tf.strings.regex_replace(texts, r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\x{FFFD}]", "")
        if not self.spec.lower_case:
            return texts
        decomposed = self._normalize_utf8(tf.strings.lower(texts, encoding="utf-8"), "NFD")
        return tf.strings.regex_replace(decomposed, r"\p{Mn}", "")

    def pieces(self, texts):
        """Ragged `[batch, (sub-tokens)]` int64 ids of whole texts, no special tokens."""
        pieces = self._wordpiece.tokenize(self.normalize(texts))
        return pieces.merge_dims(-2, -1) if pieces.ragged_rank > 1 else pieces

    def encode_texts(self, texts, pairs=None):
        """Padded `input_ids`, `attention_mask`, `token_type_ids` as the HF tokenizer makes them.

        A pair is truncated longest-first (one sub-token at a time from the
        longer side), as `truncation=True` does in Hugging Face tokenizers.
        """
        from kerastune_nlp._tf import tf

        first = self.pieces(texts)
        if pairs is None:
            segments = [self._truncate(first)]
        else:
            second = self.pieces(pairs)
            first_length, second_length = self._longest_first(first.row_lengths(), second.row_lengths(),
                                                              self.max_length - 3)
            first = tf.RaggedTensor.from_row_lengths(
                _take_prefix(first, first_length), first_length)
            second = tf.RaggedTensor.from_row_lengths(
                _take_prefix(second, second_length), second_length)
            segments = [first, second]
        return self._frame(segments)

    def _truncate(self, pieces):
        """Each row cut to `capacity` sub-tokens: its first `head` and last `tail` when it is longer."""
        from kerastune_nlp._tf import tf

        if self.tail == 0:
            return pieces[:, : self.capacity]
        lengths = pieces.row_lengths()
        fits = lengths <= self.capacity
        head_end = tf.where(fits, lengths, tf.constant(self.head, lengths.dtype))
        tail_start = tf.where(fits, lengths, lengths - tf.constant(self.tail, lengths.dtype))
        # Per row: positions [0, head_end) and [tail_start, length).
        positions = tf.concat([tf.ragged.range(head_end), tf.ragged.range(tail_start, lengths)], axis=1)
        flat = tf.gather(pieces.flat_values, positions.flat_values + tf.gather(pieces.row_starts(),
                                                                                positions.value_rowids()))
        return tf.RaggedTensor.from_row_lengths(flat, positions.row_lengths())

    @staticmethod
    def _longest_first(a, b, budget):
        """Kept lengths after removing sub-tokens one at a time from the longer of two sequences."""
        from kerastune_nlp._tf import tf

        over = tf.maximum(a + b - budget, 0)
        # Remove from the longer side until both are equal, then alternate:
        # the first sequence gives up the odd token (HF's tie-breaking).
        gap = tf.abs(a - b)
        from_gap = tf.minimum(over, gap)
        rest = over - from_gap
        a_cut = tf.where(a > b, from_gap, 0) + (rest + 1) // 2
        b_cut = tf.where(b > a, from_gap, 0) + rest // 2
        return a - a_cut, b - b_cut

    def _frame(self, segments):
        """[CLS] a [SEP] (b [SEP]) padded to the longest row, with mask and segment ids."""
        from kerastune_nlp._tf import tf

        spec = self.spec
        batch = segments[0].nrows()
        parts, types = [tf.fill([batch, 1], tf.constant(spec.cls_id, tf.int64))], [tf.zeros([batch, 1], tf.int64)]
        for index, segment in enumerate(segments):
            sep = tf.fill([batch, 1], tf.constant(spec.sep_id, tf.int64))
            parts += [segment, sep]
            types += [tf.zeros_like(segment) + index, tf.fill([batch, 1], tf.constant(index, tf.int64))]
        ids = tf.concat(parts, axis=1)
        token_types = tf.concat(types, axis=1)
        input_ids = ids.to_tensor(default_value=spec.pad_id)
        return {
            "input_ids": tf.cast(input_ids, tf.int32),
            "attention_mask": tf.cast(tf.ones_like(ids).to_tensor(default_value=0), tf.int32),
            "token_type_ids": tf.cast(token_types.to_tensor(default_value=0), tf.int32),
        }

    # -- NER -------------------------------------------------------------------------

    def _words_and_pieces(self, texts):
        """Words of the Predictor's rule, and each word's sub-tokens ([UNK] for none, at most `capacity`)."""
        from kerastune_nlp._tf import tf
        from kerastune_nlp.data.words import WHITESPACE_PATTERN, WORD_PATTERN

        # The Predictor's word rule, run by RE2: every word and every whitespace
        # run is a delimiter; words are kept, whitespace dropped.
        words, byte_starts, _ = self._regex_split(texts, f"{WHITESPACE_PATTERN}|{WORD_PATTERN}", WORD_PATTERN)
        pieces = self.pieces(words.flat_values)  # [all words, (pieces)]
        unk = tf.constant(self.spec.vocab.index(self.spec.unknown_token), tf.int64)
        empty = tf.equal(pieces.row_lengths(), 0)
        pieces = tf.concat([pieces, tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int64))], unk), tf.cast(empty, tf.int64))], axis=1)
        return words, byte_starts, pieces[:, : self.capacity]

    def context_pieces(self, texts):
        """Ragged `[batch, (sub-tokens)]` of context strings, word by word as the training encoder makes them."""
        from kerastune_nlp._tf import tf

        words, _, pieces = self._words_and_pieces(texts)
        return tf.RaggedTensor.from_row_lengths(
            pieces.flat_values, tf.reduce_sum(words.with_flat_values(pieces.row_lengths()), axis=1))

    def fit_context(self, left, right, centre, context_size: int):
        """The context the sentence reads: `data.ner_windows` (`_contexts` + `_fit_context`) in the graph.

        Up to `context_size` sub-tokens on each side (the end of `left`, the
        start of `right`), shrunk so the window keeps `max_length` (each side
        keeps its half or more); none for a sentence longer than one window.
        """
        from kerastune_nlp._tf import tf

        left_all, right_all = left.row_lengths(), right.row_lengths()
        n = tf.constant(context_size, tf.int64)
        left_size, right_size = tf.minimum(left_all, n), tf.minimum(right_all, n)
        free = tf.constant(self.capacity, tf.int64) - centre
        over = left_size + right_size > free
        keep_left = tf.where(over, tf.minimum(left_size, tf.maximum(free // 2, free - right_size)), left_size)
        keep_right = tf.where(over, tf.minimum(right_size, free - keep_left), right_size)
        keep_left, keep_right = tf.maximum(keep_left, 0), tf.maximum(keep_right, 0)
        return _row_slice(left, left_all - keep_left, left_all), _row_slice(right, tf.zeros_like(keep_right),
                                                                              keep_right)

    def encode_words(self, texts, left=None, right=None, context_size: int = 0):
        """Words (the Predictor's rule, `inference.words`) with character offsets, and the model input.

        Each word keeps at least one sub-token ([UNK] when WordPiece yields
        none, as training did) and at most `capacity`; words past the input's
        length limit are reported through `covered` (False) rather than dropped.
        `left`/`right` (with `context_size` > 0): each sentence's document
        context as strings, laid out as training did ([CLS] left sentence
        right [SEP]; `fit_context`).

        Returns:
            dict with `features` (the padded model input), `words` [B, W]
            strings, `starts`/`ends` [B, W] character offsets, `first` [B, W]
            position of each word's first sub-token, `word_mask` [B, W] and
            `covered` [B, W] (all the word's sub-tokens fit in the input).
        """
        from kerastune_nlp._tf import tf

        words, byte_starts, pieces = self._words_and_pieces(texts)
        flat_words = words.flat_values
        counts = pieces.row_lengths()  # [all words]
        per_sentence_counts = words.with_flat_values(counts)  # [B, (W)]
        first = tf.cumsum(per_sentence_counts, axis=1, exclusive=True) + 1  # after [CLS]
        centre = tf.reduce_sum(per_sentence_counts, axis=1)
        sentence_pieces = tf.RaggedTensor.from_row_lengths(pieces.flat_values, centre)
        sentence_pieces = sentence_pieces[:, : self.capacity]
        # Covered: the whole word fits, as the Python windows require (context only joins sentences that fit).
        covered = first + per_sentence_counts <= self.max_length - 1
        if context_size and left is not None and right is not None:
            left, right = self.fit_context(self.context_pieces(left), self.context_pieces(right), centre,
                                           context_size)
            sentence_pieces = tf.concat([left, sentence_pieces, right], axis=1)
            first = first + tf.expand_dims(left.row_lengths(), 1)
        features = self._frame([sentence_pieces])
        # An uncovered word points at [CLS] (always inside the input); callers mask it.
        first = first.with_flat_values(tf.where(covered.flat_values, first.flat_values,
                                                tf.zeros_like(first.flat_values)))
        sentence_of_word = tf.gather(texts, words.value_rowids())
        char_starts = tf.strings.length(tf.strings.substr(
            sentence_of_word, tf.zeros_like(byte_starts.flat_values), byte_starts.flat_values),
                                        unit="UTF8_CHAR")
        char_lengths = tf.strings.length(flat_words, unit="UTF8_CHAR")
        starts = words.with_flat_values(tf.cast(char_starts, tf.int64))
        ends = words.with_flat_values(tf.cast(char_starts + char_lengths, tf.int64))
        return {
            "features": features,
            "words": words.to_tensor(default_value=""),
            "starts": starts.to_tensor(default_value=-1),
            "ends": ends.to_tensor(default_value=-1),
            "first": tf.cast(first.to_tensor(default_value=0), tf.int32),
            "word_mask": tf.ones_like(first, tf.bool).to_tensor(default_value=False),
            "covered": covered.to_tensor(default_value=False),
        }


def _row_slice(ragged, starts, ends):
    """Row i's values `[starts[i], ends[i])`, as a ragged tensor."""
    from kerastune_nlp._tf import tf

    positions = tf.ragged.range(starts, ends)
    flat = tf.gather(ragged.flat_values, positions.flat_values + tf.gather(ragged.row_starts(),
                                                                           positions.value_rowids()))
    return tf.RaggedTensor.from_row_lengths(flat, positions.row_lengths())


def _take_prefix(ragged, lengths):
    """The first `lengths[i]` values of each row, flattened."""
    from kerastune_nlp._tf import tf

    positions = tf.ragged.range(lengths)
    return tf.gather(ragged.flat_values, positions.flat_values + tf.gather(ragged.row_starts(),
                                                                              positions.value_rowids()))


@dataclasses.dataclass
class Agreement:
    """How often the in-graph ids equal the Hugging Face ids."""

    total: int
    identical: int
    differing: list

    @property
    def rate(self) -> float:
        return self.identical / self.total if self.total else 1.0

    def as_dict(self, shown: int = 20) -> dict:
        return {"sequences": self.total, "identical": self.identical, "rate": round(self.rate, 6),
                "differing": self.differing[:shown]}


def agreement(tokenizer, graph: GraphWordPiece, texts: Sequence[str], reference_ids: Sequence, *, words: bool,
              batch: int = 256) -> Agreement:
    """Compares in-graph ids with the ids the Python path feeds the model.

    Args:
        texts: raw strings as a client would send them.
        reference_ids: per text, the ids the task's own encoder gives (the
            model's real input), or None to skip a text (an NER sentence
            longer than one window).
        words: True for NER (words and punctuation, `encode_words`).
    """
    from kerastune_nlp._tf import tf

    total = identical = 0
    differing = []
    for begin in range(0, len(texts), batch):
        chunk = list(texts[begin: begin + batch])
        tensor = tf.constant(chunk)
        ours = graph.encode_words(tensor)["features"] if words else graph.encode_texts(tensor)
        ids, mask = ours["input_ids"].numpy(), ours["attention_mask"].numpy()
        for row, expected in enumerate(reference_ids[begin: begin + batch]):
            if expected is None:
                continue
            expected = [int(i) for i in expected]
            got = ids[row][mask[row].astype(bool)].tolist()
            total += 1
            if got == expected:
                identical += 1
            else:
                at = next((i for i, (x, y) in enumerate(zip(got, expected)) if x != y), min(len(got), len(expected)))
                differing.append({"index": begin + row, "text": chunk[row][:200], "first_difference_at": at,
                                  "expected": tokenizer.convert_ids_to_tokens(expected[at: at + 3]),
                                  "in_graph": tokenizer.convert_ids_to_tokens(got[at: at + 3])})
    return Agreement(total, identical, differing)
