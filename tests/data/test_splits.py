"""Stratified splits: shares kept per class, seeded, a partition, and clear refusals."""

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerastune_nlp.data.bundled_trec import load_bundled_trec
from kerastune_nlp.data.splits import by_first_label, by_quantile, stratified_split
from kerastune_nlp.data.text_examples import TextExample
from kerastune_nlp.errors import ConfigError, LabelError


def _texts(part):
    return [e.text for e in part]


def test_class_shares_are_kept_and_parts_partition_the_input():
    examples = [TextExample(f"t{i}", "big" if i % 5 else "small") for i in range(200)]
    train, dev, test = stratified_split(examples, (0.7, 0.15, 0.15), seed=3)
    for part, size in ((train, 140), (dev, 30), (test, 30)):
        assert len(part) == size
        assert collections.Counter(e.label for e in part)["small"] == size // 5
    assert sorted(_texts(train) + _texts(dev) + _texts(test)) == sorted(_texts(examples))


def test_same_seed_same_split_other_seed_other_split():
    examples = [TextExample(f"t{i}", "ab"[i % 2]) for i in range(60)]
    first = stratified_split(examples, seed=3)
    assert [_texts(p) for p in first] == [_texts(p) for p in stratified_split(examples, seed=3)]
    assert [_texts(p) for p in first] != [_texts(p) for p in stratified_split(examples, seed=4)]


def test_too_small_classes_are_named_with_their_counts():
    examples = [TextExample(f"t{i}", "a") for i in range(10)] + [
        TextExample("r", "rare"),
        TextExample("s", "scarce"),
        TextExample("s2", "scarce"),
    ]
    with pytest.raises(
        LabelError,
        match=r"Class 'rare' has 1 example\(s\); Class 'scarce' has 2 example\(s\)\. "
        r"Each class needs at least 3 to appear in every one of the 3 splits",
    ):
        stratified_split(examples)
    with pytest.raises(
        LabelError, match=r"Class 'rare' has 1 example\(s\)\. Each class needs at least 2"
    ):
        stratified_split(examples, (0.5, 0.5))


def test_small_classes_still_reach_every_part():
    examples = [TextExample(f"t{i}", "x") for i in range(4)]
    train, dev, test = stratified_split(examples, (0.2, 0.4, 0.4))
    # Quotas 0.8 / 1.6 / 1.6: every part gets one, the largest remainder the fourth.
    assert [len(p) for p in (train, dev, test)] == [1, 2, 1]


def test_multilabel_stratifies_by_the_first_label():
    examples = [TextExample(f"t{i}", ("sport", "news") if i % 3 else ("news",)) for i in range(30)]
    examples += [TextExample(f"e{i}", ()) for i in range(3)]
    parts = stratified_split(examples, seed=1, strata=by_first_label)
    for part in parts:
        firsts = collections.Counter(e.label[0] if e.label else None for e in part)
        assert set(firsts) == {"sport", "news", None}


def test_regression_bins_by_quantile_even_with_ties():
    examples = [TextExample(f"t{i}", float(i)) for i in range(40)] + [
        TextExample(f"z{i}", 0.0) for i in range(20)
    ]
    train, dev, test = stratified_split(examples, seed=0, strata=by_quantile)
    assert len(train) + len(dev) + len(test) == 60
    values = sorted(e.label for e in examples)
    quartiles = [values[len(values) * q // 4] for q in (1, 2, 3)]
    for part in (train, dev, test):
        bins = {sum(e.label >= edge for edge in quartiles) for e in part}
        assert len(bins) >= 3  # every part spans the range of targets
    with pytest.raises(LabelError, match=r"2 example\(s\) cannot fill 3 splits"):
        stratified_split([TextExample("a", 1.0), TextExample("b", 2.0)], strata=by_quantile)


def test_real_trec_split_keeps_class_proportions():
    train = load_bundled_trec()["train"]
    parts = stratified_split(train, (0.8, 0.1, 0.1), seed=42)
    assert sum(map(len, parts)) == 5452
    overall = collections.Counter(e.label for e in train)
    for part in parts:
        counts = collections.Counter(e.label for e in part)
        for label, count in overall.items():
            assert abs(counts[label] / len(part) - count / len(train)) < 0.01


def test_bad_arguments():
    examples = [TextExample(f"t{i}", "ab"[i % 2]) for i in range(10)]
    with pytest.raises(
        ConfigError,
        match=r"two or more positive ratios summing to 1\. Received: `ratios`=\(0\.7, 0\.2\)",
    ):
        stratified_split(examples, (0.7, 0.2))
    with pytest.raises(ConfigError, match=r"Received: `ratios`=\(1\.0,\)"):
        stratified_split(examples, (1.0,))
    with pytest.raises(ConfigError, match=r"Received: `ratios`=\(1\.2, -0\.2\)"):
        stratified_split(examples, (1.2, -0.2))
    with pytest.raises(
        ConfigError, match="Expected examples to split. Received: an empty sequence"
    ):
        stratified_split([])
    with pytest.raises(ConfigError, match=r"Received: `bins`=0"):
        stratified_split(examples, strata=lambda examples, parts: by_quantile(examples, parts, bins=0))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=3, max_value=40), min_size=1, max_size=6), st.integers(0, 1000)
)
def test_property_every_class_in_every_part_and_nothing_lost(counts, seed):
    examples = [
        TextExample(f"{c}-{i}", f"class{c}") for c, n in enumerate(counts) for i in range(n)
    ]
    parts = stratified_split(examples, (0.6, 0.2, 0.2), seed=seed)
    assert sorted(t for p in parts for t in _texts(p)) == sorted(_texts(examples))
    for part in parts:
        assert {e.label for e in part} == {e.label for e in examples}
