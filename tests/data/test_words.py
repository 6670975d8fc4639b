"""Raw text -> words with offsets, entity spans, sub-token aggregation and the answer cache (no model)."""

import threading

import numpy as np
import pytest

from kerastune_nlp.data.ner_windows import Window, gather_word_logits
from kerastune_nlp.inference.cache import PredictionCache
from kerastune_nlp.data.words import entity_spans, split_words


def test_split_words_separates_punctuation_and_keeps_offsets_into_the_original():
    text = "Barack Obama, visited São Paulo (Brazil) — see https://x.org/a?b=1 @nasa #AI don't U.S. 3.5"
    words = split_words(text)
    assert all(text[start:end] == word for word, start, end in words)
    assert [w for w, _, _ in words] == ["Barack", "Obama", ",", "visited", "São", "Paulo", "(", "Brazil", ")",
                                        "—", "see", "https://x.org/a?b=1", "@nasa", "#AI", "don't", "U.S.",
                                        "3.5"]
    assert [w for w, _, _ in split_words("e.g. in Washington D.C. and the U.S.-based U.K.")] == [
        "e.g.", "in", "Washington", "D.C.", "and", "the", "U.S.", "-", "based", "U.K."]
    # Whitespace is what str.split() splits on (no-break and ideographic spaces too); letters with
    # combining marks stay one word (Python's own \w would cut "हिन्दी" at its vowel signs).
    assert split_words("  a\u00a0b,c\u3000हिन्दी ") == [("a", 2, 3), ("b", 4, 5), (",", 5, 6), ("c", 6, 7),
                                                    ("हिन्दी", 8, 14)]


def test_entity_spans_group_iob2_tags_and_average_scores():
    text = "New York and Paris"
    words = split_words(text)
    spans = entity_spans(text, words, ["B-loc", "I-loc", "O", "B-loc"], [0.9, 0.7, 0.99, 0.5])
    assert spans == [{"text": "New York", "label": "loc", "start": 0, "end": 8, "score": pytest.approx(0.8)},
                     {"text": "Paris", "label": "loc", "start": 13, "end": 18, "score": 0.5}]
    # A new B- closes the previous entity even with the same type; I- of another type opens a new one.
    assert [s["text"] for s in entity_spans(text, words, ["B-loc", "B-loc", "O", "I-per"], [1] * 4)] == \
        ["New", "York", "Paris"]


def test_aggregation_strategies_combine_a_words_sub_tokens():
    # One window: [CLS] w0a w0b w1 [SEP]; word 0 has two sub-tokens.
    window = Window(0, np.arange(5, dtype=np.int32), None, np.array([1, 3]), np.array([0, 1]), np.array([3, 4]))
    logits = np.zeros((5, 2), np.float32)
    logits[1] = [2.0, 0.0]   # first sub-token: label 0, p=0.88
    logits[2] = [0.0, 5.0]   # second: label 1, p=0.99 (the most confident)
    logits[3] = [1.0, 0.0]
    first, = gather_word_logits([window], [logits], [2], "first")
    average, = gather_word_logits([window], [logits], [2], "average")
    best, = gather_word_logits([window], [logits], [2], "max")
    assert first[0].argmax() == 0 and best[0].argmax() == 1
    p = np.exp(logits[1:3]) / np.exp(logits[1:3]).sum(-1, keepdims=True)
    assert np.allclose(np.exp(average[0]), p.mean(0), atol=1e-6) and average[0].argmax() == 1
    assert np.array_equal(first[1], logits[3]) and np.array_equal(best[1], logits[3])
    with pytest.raises(ValueError, match="aggregation must be one of"):
        gather_word_logits([window], [logits], [2], "mean")


def test_cache_is_bounded_counts_hits_and_hands_out_copies():
    cache = PredictionCache(capacity=2)
    calls = []

    def compute(indices):
        calls.append(list(indices))
        return [{"value": [i]} for i in indices]

    first = cache.get_many(["a", "b"], compute)
    first[0]["value"].append("edited")  # the caller's copy only
    assert cache.get_many(["a"], compute) == [{"value": [0]}]
    cache.get_many(["c"], compute)       # evicts "b", the least recently used
    cache.get_many(["b"], compute)
    assert calls == [[0, 1], [0], [0]]
    assert cache.info() == {"hits": 1, "misses": 4, "size": 2, "capacity": 2, "hit_rate": 0.2}
    off = PredictionCache(capacity=0)
    off.get_many(["a"], compute)
    off.get_many(["a"], compute)
    assert off.info()["hits"] == 0 and off.info()["size"] == 0


def test_cache_under_many_threads_gives_every_caller_its_own_answer():
    cache = PredictionCache(capacity=64)
    errors = []

    def worker(n):
        for i in range(200):
            key = f"{n}-{i % 50}"
            if cache.get_many([key], lambda idx: [key.upper()]) != [key.upper()]:
                errors.append(key)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and cache.info()["size"] <= 64


def test_length_batches_cover_every_row_once_and_trade_padding_for_calls():
    from kerastune_nlp.inference.predictor import length_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=300)
    for overhead in (0, 4, 48, 10_000):
        batches = length_batches(lengths, 32, overhead)
        assert sorted(np.concatenate(batches).tolist()) == list(range(300))
        assert all(len(b) <= 32 for b in batches)
        assert all(lengths[b].tolist() == sorted(lengths[b].tolist()) for b in batches)
    # No overhead: only equal lengths share a call; a huge one: only the batch size splits.
    assert all(len(set(lengths[b].tolist())) == 1 for b in length_batches(lengths, 32, 0))
    assert [len(b) for b in length_batches(lengths, 32, 10_000)] == [32] * 9 + [12]
    assert len(length_batches(lengths, 32, 4)) > len(length_batches(lengths, 32, 48)) > 10
