"""Splits that are not held out from each other are reported (and training goes on)."""

import logging

from kerastune_nlp.data.conll import Sentence
from kerastune_nlp.data.overlap import split_overlaps
from kerastune_nlp.data.text_examples import TextExample


def _sentences(source, count, start=0, line_step=3):
    return [Sentence((f"word{start + i}", "here"), ("O", "O"), source, 1 + i * line_step) for i in range(count)]


def _key(example):
    return tuple(example.tokens)


def test_the_same_file_as_train_and_test_is_named(caplog):
    train = _sentences("data/train.conll", 50)
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.data"):
        messages = split_overlaps({"train": train, "dev": _sentences("data/dev.conll", 10, 100),
                                   "test": list(train)}, _key)
    assert messages == [
        "The train and test splits hold the same 50 example(s) of the same file (data/train.conll): the test "
        "scores are not of held-out data. Pass a different --test file."
    ]
    assert messages[0] in caplog.text


def test_repeated_sentences_above_one_percent_are_counted_with_the_first_place():
    train = _sentences("train.conll", 100)
    test = _sentences("test.conll", 98, start=1000) + _sentences("test.conll", 2, start=0)  # 2 of 100 repeat
    test = [Sentence(s.tokens, s.tags, "test.conll", 1 + i * 3) for i, s in enumerate(test)]
    messages = split_overlaps({"train": train, "dev": _sentences("dev.conll", 5, 500), "test": test}, _key)
    assert messages == [
        "2 of 100 test examples (2.0%) also occur in train (first: test.conll, line 295): the test scores partly "
        "measure memory. Remove the repeats from test, or split the data by document."
    ]


def test_one_repeat_in_a_hundred_is_normal():
    train = _sentences("train.conll", 100)
    test = _sentences("test.conll", 99, start=1000) + _sentences("test.conll", 1, start=0)
    test = [Sentence(s.tokens, s.tags, "test.conll", 1 + i * 3) for i, s in enumerate(test)]
    assert split_overlaps({"train": train, "test": test}, _key) == []


def test_splits_cut_from_one_file_share_the_file_but_no_line():
    rows = [TextExample(f"question {i}", "a", source="all.csv", line=i + 2) for i in range(30)]
    assert split_overlaps({"train": rows[:20], "dev": rows[20:25], "test": rows[25:]},
                          lambda e: (e.text, e.text_pair)) == []


def test_the_ner_task_warns_when_it_checks_the_splits(caplog):
    from kerastune_nlp.tasks import get_task

    task = get_task("ner")(None, None)
    train = _sentences("train.conll", 20)
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.data"):
        task.check_splits({"train": train, "dev": list(train), "test": []})
    assert "The train and dev splits hold the same 20 example(s)" in caplog.text


def test_the_same_splits_checked_again_warn_once(caplog):
    # The CLI, train() and Trainer.prepare each check a run's splits: one warning, not three.
    train = _sentences("train.conll", 20)
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.data"):
        for _ in range(3):
            split_overlaps({"train": list(train), "dev": list(train)}, _key)
    assert caplog.text.count("The train and dev splits hold the same 20 example(s)") == 1
    # Other examples (the data read again) warn again.
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.data"):
        again = _sentences("train.conll", 20)
        split_overlaps({"train": again, "dev": list(again)}, _key)
    assert caplog.text.count("The train and dev splits hold the same 20 example(s)") == 2


def test_repeats_inside_one_file_cut_into_both_splits_name_the_file():
    # WikiGold split by document: short lines such as "1 ." occur in several articles.
    rows = [Sentence((f"word{i}", "here"), ("O", "O"), "all.conll", 1 + 3 * i) for i in range(100)]
    rows += [Sentence(("word0", "here"), ("O", "O"), "all.conll", 400 + 3 * i) for i in range(3)]
    messages = split_overlaps({"train": rows[:80], "test": rows[80:]}, _key)
    assert messages == [
        "3 of 23 test examples (13.0%) also occur in train (first: all.conll, line 400): the test scores partly "
        "measure memory. all.conll itself holds these inputs more than once and the split put copies on both "
        "sides: deduplicate the file if the repeats are not meant, or pass a --test file."
    ]


def test_examples_of_ones_own_without_a_source_get_the_general_advice():
    train = [("a b", "x")] * 2 + [(f"t{i}", "x") for i in range(20)]
    test = [("a b", "y")] + [(f"u{i}", "y") for i in range(9)]
    messages = split_overlaps({"train": train, "test": test}, lambda e: e[0])
    assert messages and messages[0].endswith("Remove the repeats from test, or split the data by document.")
