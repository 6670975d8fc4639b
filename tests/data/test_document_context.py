"""Document context (FLERT): neighbours of the same document feed the encoder, never the loss."""

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig
from kerastune_nlp.data import read_conll
from kerastune_nlp.data.conll import Sentence
from kerastune_nlp.data.document_split import split_by_document
from kerastune_nlp.data.ner_windows import IGNORE_INDEX, WindowEncoder
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.models.backbones import load_tokenizer
from kerastune_nlp.tasks.ner import NERTask

LABELS = {"O": 0, "B-x": 1, "I-x": 2}
# The shared data sets sit beside the repository (../shared/data).
WIKIGOLD = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikigold" / "wikigold.conll.txt"


def _sentence(text, document, line, source="f.conll"):
    words = text.split()
    return Sentence(words, ["B-x" if w[0].isupper() else "O" for w in words], source, line, document)


DOCUMENTS = [
    _sentence("alpha beta gamma", 0, 1), _sentence("the New York quick", 0, 5), _sentence("delta epsilon", 0, 10),
    _sentence("zeta Eta theta", 1, 14), _sentence("iota kappa", 1, 18), _sentence("lambda mu", None, 0, "g"),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return load_tokenizer(tiny_bert)


def _encode(tokenizer, sentences, context, max_length=40, documents=True):
    encoder = WindowEncoder(tokenizer, max_length=max_length, stride=4, label_to_id=LABELS, context_size=context)
    keys = NERTask.document_keys(sentences) if documents else None
    return encoder.encode([s.tokens for s in sentences], [s.tags for s in sentences], documents=keys)


def _ids(tokenizer, sentence):
    return tokenizer(list(sentence.tokens), is_split_into_words=True, add_special_tokens=False)["input_ids"]


def test_context_is_cut_at_the_document_edges_and_never_labelled(tokenizer):
    plain, _ = _encode(tokenizer, DOCUMENTS, 0)
    windows, stats = _encode(tokenizer, DOCUMENTS, 3)
    assert len(windows) == len(plain) == len(DOCUMENTS) and stats.context_size == 3
    flat = [_ids(tokenizer, s) for s in DOCUMENTS]
    expected_left = [[], flat[0][-3:], (flat[0] + flat[1])[-3:], [], flat[3][-3:], []]
    expected_right = [flat[1][:3], (flat[2])[:3], [], flat[4][:3], [], []]
    for window, base, left, right in zip(windows, plain, expected_left, expected_right):
        ids = window.input_ids.tolist()
        # [CLS] + left + sentence + right + [SEP]: the sentence's own part is the plain window's.
        assert ids == [base.input_ids[0], *left, *base.input_ids[1:-1].tolist(), *right, base.input_ids[-1]]
        assert (window.labels[1:1 + len(left)] == IGNORE_INDEX).all()
        assert (window.labels[len(ids) - 1 - len(right):] == IGNORE_INDEX).all()
        # Only the centre is labelled and scored: same labels, same words, shifted by the left context.
        assert window.labels[window.labels != IGNORE_INDEX].tolist() == base.labels[base.labels != IGNORE_INDEX].tolist()
        assert window.scored_words.tolist() == base.scored_words.tolist()
        assert (window.scored_positions == base.scored_positions + len(left)).all()
    assert stats.context_windows == 5 and stats.context_tokens == sum(map(len, expected_left + expected_right))


def test_neighbours_follow_the_file_order_within_a_document_not_the_list_order(tokenizer):
    shuffled = list(DOCUMENTS)
    random.Random(3).shuffle(shuffled)
    by_line = {(s.document, s.line): w.input_ids.tolist() for s, w in zip(DOCUMENTS, _encode(tokenizer, DOCUMENTS, 3)[0])}
    for sentence, window in zip(shuffled, _encode(tokenizer, shuffled, 3)[0]):
        assert window.input_ids.tolist() == by_line[(sentence.document, sentence.line)]


def test_same_document_number_in_another_file_is_another_document(tokenizer):
    other = [_sentence("alpha beta", 0, 1, "a.conll"), _sentence("gamma delta", 0, 1, "b.conll")]
    windows, stats = _encode(tokenizer, other, 3)
    assert stats.context_windows == 0
    assert [w.input_ids.tolist() for w in windows] == [w.input_ids.tolist() for w in _encode(tokenizer, other, 0)[0]]


def test_context_shrinks_to_fit_max_length_and_the_centre_keeps_priority(tokenizer):
    long_document = [_sentence(" ".join(["word"] * 6 + [f"w{i}"]), 0, i) for i in range(6)]
    for max_length in (12, 16, 24):
        windows, stats = _encode(tokenizer, long_document, (max_length - 3) // 2, max_length=max_length)
        plain, _ = _encode(tokenizer, long_document, 0, max_length=max_length)
        assert all(len(w) <= max_length for w in windows)
        # Same words scored once each, whatever the context.
        assert [(w.sentence_index, w.scored_words.tolist()) for w in windows] == \
               [(w.sentence_index, w.scored_words.tolist()) for w in plain]


def test_a_sentence_split_into_windows_gets_no_context(tokenizer):
    sentences = [_sentence("alpha beta", 0, 1), _sentence(" ".join(["gamma"] * 30), 0, 3), _sentence("delta", 0, 40)]
    windows, stats = _encode(tokenizer, sentences, 2, max_length=16)
    plain, _ = _encode(tokenizer, sentences, 0, max_length=16)
    assert stats.split_sentences == 1 and stats.context_skipped_split == 1
    long_rows = [w.input_ids.tolist() for w in windows if w.sentence_index == 1]
    assert long_rows == [w.input_ids.tolist() for w in plain if w.sentence_index == 1]


def test_without_documents_or_context_the_encoding_is_todays(tokenizer):
    plain = WindowEncoder(tokenizer, max_length=40, stride=4, label_to_id=LABELS).encode(
        [s.tokens for s in DOCUMENTS], [s.tags for s in DOCUMENTS])
    for windows, stats in (_encode(tokenizer, DOCUMENTS, 0), _encode(tokenizer, DOCUMENTS, 5, documents=False)):
        assert stats.windows == plain[1].windows and stats.context_tokens == 0
        for a, b in zip(windows, plain[0]):
            assert a.input_ids.tolist() == b.input_ids.tolist() and a.labels.tolist() == b.labels.tolist()
    no_documents = [Sentence(s.tokens, s.tags, s.source, s.line, None) for s in DOCUMENTS]
    task = NERTask(NERDataConfig(context_size="auto"))
    task.fit_state(no_documents)
    task.fit_encoding(no_documents, 40)
    assert task.state["context_size"] == 0
    encoded = task.encode(tokenizer, no_documents, 40)
    assert "context_size" not in encoded.stats
    assert [w.input_ids.tolist() for w in encoded.rows] == [w.input_ids.tolist() for w in plain[0]]


def test_auto_is_a_quarter_of_max_length_with_documents():
    task = NERTask(NERDataConfig(context_size="auto"))
    task.fit_state(DOCUMENTS)
    task.fit_encoding(DOCUMENTS, 256)
    assert task.state["context_size"] == 64
    assert NERDataConfig(context_size="16").context_size == 16


def test_a_context_larger_than_max_length_allows_names_the_largest_that_fits(tokenizer):
    with pytest.raises(ConfigError, match=r"`context_size`=20; the largest that fits is 6 .*--context-size 6"):
        WindowEncoder(tokenizer, max_length=16, label_to_id=LABELS, context_size=20)
    with pytest.raises(ConfigError, match=r"Expected `context_size` to be an int >= 0 or \"auto\""):
        NERDataConfig(context_size="some")


def test_context_on_data_without_documents_is_a_notice_not_an_error(caplog):
    no_documents = [Sentence(s.tokens, s.tags) for s in DOCUMENTS]
    task = NERTask(NERDataConfig(context_size=8))
    task.fit_state(no_documents)
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.tasks"):
        task.fit_encoding(no_documents, 64)
    assert "marks no documents (no -DOCSTART- lines): sentences are encoded without context" in caplog.text


def test_a_tiny_wikigold_run_with_context_records_it_and_reloads_the_same_way(tiny_bert, tmp_path):
    from kerastune_nlp.inference import load_run
    from kerastune_nlp.training.ner_trainer import train_ner

    articles = [s for s in read_conll(WIKIGOLD) if s.document < 12]
    (train, dev, test), _ = split_by_document(articles, (0.6, 0.2, 0.2), 0, "wikigold")
    result = train_ner(train, dev, test, output_dir=tmp_path / "run", model_config=ModelConfig(backbone=str(tiny_bert)),
                       data_config=DataConfig(max_length=48), ner_config=NERDataConfig(context_size="auto"),
                       train_config=TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3), verbose=0)
    manifest = json.loads((result.run_dir / "run_config.json").read_text())
    assert manifest["task_config"]["context_size"] == "auto" and manifest["task_state"]["context_size"] == 12
    stats = result.metrics["data"]["train"]
    assert stats["context_size"] == 12 and stats["context_windows"] > 0
    reloaded = load_run(result.run_dir)
    assert reloaded.evaluate(test)["overall"] == pytest.approx(result.metrics["test"]["overall"])
