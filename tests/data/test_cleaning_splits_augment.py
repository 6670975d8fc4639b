"""Cleaning, stratified splits and augmentation: counts reported, text kept, seeded."""

import collections

import pytest

from kerastune_nlp.data.augment import SynonymTable, back_translate, eda_augment
from kerastune_nlp.data.cleaning import clean_examples
from kerastune_nlp.data.splits import stratified_split
from kerastune_nlp.data.text_readers import TextExample
from kerastune_nlp.errors import ConfigError, LabelError

NON_ASCII = "Café naïve 東京タワー 😀 — Ünïcödé"


def test_every_cleaning_step_keeps_non_ascii_text():
    examples = [TextExample(f"<b>{NON_ASCII}</b> &amp; http://x.io/a  ok", "a")]
    cleaned, report = clean_examples(examples, ["nfc", "nfkc", "html", "urls", "whitespace", "lowercase"])
    text = cleaned[0].text
    for fragment in ("東京タワー", "😀", "café", "naïve", "ünïcödé"):
        assert fragment in text
    assert "<b>" not in text and "http" not in text and "&" in text
    changed = {step["step"]: step["changed"] for step in report.steps}
    assert changed == {"nfc": 0, "nfkc": 0, "html": 1, "urls": 1, "whitespace": 1, "lowercase": 1}


def test_dedupe_and_drop_empty_report_counts():
    examples = [TextExample("same", "a"), TextExample("same", "b"), TextExample("  ", "a"), TextExample("x", "a")]
    cleaned, report = clean_examples(examples, ["dedupe", "drop_empty"])
    assert [e.text for e in cleaned] == ["same", "x"]
    assert [(s["step"], s["dropped"]) for s in report.steps] == [("dedupe", 1), ("drop_empty", 1)]
    with pytest.raises(ConfigError, match="Unknown cleaning steps \\['strip_accents'\\]"):
        clean_examples(examples, ["strip_accents"])


def test_stratified_split_keeps_class_shares_and_is_seeded():
    examples = [TextExample(f"t{i}", "big" if i % 5 else "small") for i in range(200)]
    train, dev, test = stratified_split(examples, (0.7, 0.15, 0.15), seed=3)
    assert len(train) + len(dev) + len(test) == 200
    for part, size in ((train, 140), (dev, 30), (test, 30)):
        assert len(part) == size
        assert collections.Counter(e.label for e in part)["small"] == size // 5
    again = stratified_split(examples, (0.7, 0.15, 0.15), seed=3)
    assert [e.text for e in again[1]] == [e.text for e in dev]
    assert {e.text for e in train}.isdisjoint({e.text for e in test})


def test_split_refuses_a_class_too_small_for_every_split():
    examples = [TextExample(f"t{i}", "a") for i in range(10)] + [TextExample("r", "rare")]
    with pytest.raises(LabelError, match=r"Class 'rare' has 1 example\(s\)"):
        stratified_split(examples)


def test_eda_is_seeded_label_preserving_and_reports_additions():
    table = SynonymTable({"good": ["fine", "great"], "movie": ["film"]})
    examples = [TextExample("a good movie with a good cast", "pos"), TextExample("bad movie", "neg")]
    out, report = eda_augment(examples, table, n_aug=4, seed=7)
    again, _ = eda_augment(examples, table, n_aug=4, seed=7)
    assert [e.text for e in out] == [e.text for e in again]
    assert out[:2] == examples and report.added == len(out) - 2 > 0
    for example in out[2:]:
        source = examples[0] if example.label == "pos" else examples[1]
        assert example.label == source.label and example.text != source.text


def test_synonym_table_from_tsv(tmp_path):
    path = tmp_path / "syn.tsv"
    path.write_text("good\tfine,great\nmovie\tfilm\n")
    assert SynonymTable.from_tsv(path)("Good") == ["fine", "great"]


def test_back_translation_through_a_pluggable_function():
    pivot = {"the film was good": "der Film war gut", "bad": "schlecht"}
    back = {"der Film war gut": "the movie was good", "schlecht": "bad"}

    def translate(texts, source, target):
        return [(pivot if target == "de" else back)[t] for t in texts]

    examples = [TextExample("the film was good", "pos"), TextExample("bad", "neg")]
    out, report = back_translate(examples, translate)
    assert report.added == 1  # the unchanged paraphrase is not added
    assert out[-1] == TextExample("the movie was good", "pos")
