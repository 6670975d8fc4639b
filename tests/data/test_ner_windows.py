"""Alignment and windowing: every word trained and scored exactly once."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerastune_nlp.data.ner_windows import IGNORE_INDEX, WindowEncoder, decode_windows, plan_windows
from kerastune_nlp.models.backbones import load_tokenizer

LABELS = {"O": 0, "B-x": 1, "I-x": 2}
WORDS = st.sampled_from(
    ["the", "New", "York", "quick", "internationalization", "😀", "東京", "\u200b", "café", "@user",
     "http://example.com", "#tag", ",", "'s", "a" * 30]
)


@given(
    counts=st.lists(st.integers(1, 10), min_size=0, max_size=80),
    capacity=st.integers(10, 40),
    stride=st.integers(0, 5),
)
def test_plan_windows_owns_every_word_once_and_fits(counts, capacity, stride):
    spans = plan_windows(counts, capacity, stride)
    owned = [w for _, _, own_start, own_end in spans for w in range(own_start, own_end)]
    assert owned == list(range(len(counts)))
    for start, end, own_start, own_end in spans:
        assert sum(counts[start:end]) <= capacity
        assert start <= own_start <= own_end <= end


def test_plan_windows_overlap_gives_context():
    spans = plan_windows([1] * 30, capacity=10, stride=4)
    assert len(spans) > 1
    for (s1, e1, _, _), (s2, _, _, _) in zip(spans, spans[1:]):
        assert e1 - s2 == 4  # four shared words


@pytest.fixture(scope="module")
def tokenizers(tiny_backbones):
    return {family: load_tokenizer(path) for family, path in tiny_backbones.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sentences=st.lists(st.lists(WORDS, min_size=1, max_size=40), min_size=1, max_size=4),
    max_length=st.integers(8, 24),
    data=st.data(),
)
def test_every_word_is_labelled_scored_and_decoded_once(tokenizers, sentences, max_length, data):
    tags = [[data.draw(st.sampled_from(list(LABELS))) for _ in s] for s in sentences]
    for family, tokenizer in tokenizers.items():
        encoder = WindowEncoder(tokenizer, max_length=max_length, stride=3, label_to_id=LABELS)
        windows, stats = encoder.encode(sentences, tags)
        assert stats.words == sum(len(s) for s in sentences)
        scored = {}
        for window in windows:
            assert len(window) <= max_length, family
            for position, word in zip(window.scored_positions, window.scored_words):
                key = (window.sentence_index, int(word))
                assert key not in scored, f"{family}: word scored twice"
                scored[key] = True
                # The scored position carries the word's own gold label.
                assert window.labels[position] == LABELS[tags[window.sentence_index][word]]
        assert len(scored) == stats.words, f"{family}: a word was not scored"
        # Decoding one-hot "logits" of the gold labels gives back the gold tags.
        logits = []
        for window in windows:
            one_hot = np.zeros((len(window) + 5, len(LABELS)))  # + padding
            valid = window.labels != IGNORE_INDEX
            one_hot[np.where(valid)[0], window.labels[valid]] = 1.0
            logits.append(one_hot)
        decoded = decode_windows(windows, logits, [len(s) for s in sentences])
        assert [list(d) for d in decoded] == [[LABELS[t] for t in s] for s in tags]


def test_first_subtoken_labelled_rest_ignored_unless_label_all(tokenizers):
    tokenizer = tokenizers["bert"]
    words, tags = [["internationalization", "York"]], [["B-x", "O"]]
    first_only, _ = WindowEncoder(tokenizer, 32, label_to_id=LABELS).encode(words, tags)
    pieces = len(tokenizer.tokenize("internationalization"))
    assert pieces > 1
    labels = first_only[0].labels.tolist()
    assert labels[1:1 + pieces] == [1] + [IGNORE_INDEX] * (pieces - 1)
    every, _ = WindowEncoder(tokenizer, 32, label_to_id=LABELS, label_all_subtokens=True).encode(words, tags)
    # Continuations of a B- word are inside the entity: I-.
    assert every[0].labels.tolist()[1:1 + pieces] == [1] + [2] * (pieces - 1)


def test_words_without_subtokens_become_unknown_not_dropped(tokenizers):
    tokenizer = tokenizers["bert"]
    windows, stats = WindowEncoder(tokenizer, 16, label_to_id=LABELS).encode(
        [["a", "\u200b", "b"]], [["O", "B-x", "O"]]
    )
    assert stats.unknown_words == 1
    assert windows[0].input_ids[2] == tokenizer.unk_token_id
    assert windows[0].labels[2] == 1


def test_roberta_words_get_a_prefix_space(tokenizers):
    tokenizer = tokenizers["roberta"]
    windows, _ = WindowEncoder(tokenizer, 16).encode([["the", "the"]])
    ids = windows[0].input_ids.tolist()
    # Mid-sentence and first words tokenize alike ("Ġthe") with a prefix space.
    assert ids[1] == ids[2]


def test_constrained_decoding_never_starts_an_entity_with_i():
    from kerastune_nlp.evaluation.iob_decoding import viterbi_decode

    labels = ("O", "B-loc", "I-loc", "B-per", "I-per")
    # Argmax alone would give O, I-loc, I-per: two invalid transitions.
    logits = np.log(np.array([
        [0.90, 0.02, 0.04, 0.02, 0.02],
        [0.30, 0.25, 0.40, 0.03, 0.02],
        [0.20, 0.10, 0.30, 0.05, 0.35],
    ]))
    path = [labels[i] for i in viterbi_decode(logits, labels)]
    assert path == ["O", "B-loc", "I-loc"]
    for previous, current in zip(["O"] + path, path):
        assert not current.startswith("I-") or previous[2:] == current[2:]


@given(st.lists(st.lists(st.floats(-5, 5), min_size=5, max_size=5), min_size=1, max_size=12))
def test_constrained_decoding_is_always_valid_iob2(rows):
    from kerastune_nlp.evaluation.iob_decoding import viterbi_decode

    labels = ("O", "B-a", "I-a", "B-b", "I-b")
    path = [labels[i] for i in viterbi_decode(np.array(rows, dtype=np.float64), labels)]
    assert len(path) == len(rows)
    for previous, current in zip(["O"] + path, path):
        assert not current.startswith("I-") or (previous != "O" and previous[2:] == current[2:])
