"""Augmentation: seeded EDA with pluggable synonyms, back-translation, labels kept, counts reported."""

import sys
import types

import pytest

from kerastune_nlp.data import augment
from kerastune_nlp.data.augment import (
    OPERATIONS,
    SynonymTable,
    WordNetSynonyms,
    back_translate,
    eda_augment,
    resolve_synonyms,
)
from kerastune_nlp.data.text_examples import TextExample
from kerastune_nlp.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    MissingDependencyError,
)

TABLE = {
    "good": ["fine", "great"],
    "movie": ["film", "picture"],
    "cast": ["ensemble"],
    "東京": ["东京"],
}
EXAMPLES = [
    TextExample("a good movie with a good cast", "pos", source="train.csv", line=2),
    TextExample("bad movie, bad plot", "neg", "a pair text", source="train.csv", line=3),
    TextExample("東京 is good", "pos", source="train.csv", line=4),
]


def test_eda_is_seeded_label_preserving_and_reports_additions():
    out, report = eda_augment(EXAMPLES, TABLE, n_aug=4, seed=7)
    again, _ = eda_augment(EXAMPLES, TABLE, n_aug=4, seed=7)
    assert out == again
    assert out[:3] == EXAMPLES  # originals first, untouched
    assert report.original == 3 and report.added == len(out) - 3 > 0
    assert sum(report.per_operation.values()) == report.added
    assert report.added + report.skipped == 3 * 4
    for variant in out[3:]:
        (original,) = [e for e in EXAMPLES if e.line == variant.line]
        assert (variant.label, variant.text_pair, variant.source) == (
            original.label,
            original.text_pair,
            original.source,
        )
        assert variant.text != original.text


def test_another_seed_gives_other_variants():
    first, _ = eda_augment(EXAMPLES, TABLE, n_aug=4, seed=1)
    second, _ = eda_augment(EXAMPLES, TABLE, n_aug=4, seed=2)
    assert [e.text for e in first] != [e.text for e in second]


def test_an_example_s_variants_do_not_depend_on_the_others():
    alone, _ = eda_augment(EXAMPLES[:1], TABLE, n_aug=4, seed=5)
    together, _ = eda_augment(EXAMPLES, TABLE, n_aug=4, seed=5)
    assert [e.text for e in alone[1:]] == [e.text for e in together[3:] if e.line == 2]


def test_synonym_replacement_uses_the_table_and_keeps_punctuation_and_case():
    examples = [TextExample("Good movie, good cast!", "pos")]
    out, report = eda_augment(
        examples, TABLE, alpha=0.5, n_aug=1, operations=["synonym_replacement"], seed=3
    )
    words = out[1].text.split()
    assert len(words) == 4 and words[0] in ("Fine", "Great", "Good")
    assert words[1].endswith(",") and words[3].endswith("!")
    assert words[1][:-1] in ("movie", "film", "picture") and words[3][:-1] in ("cast", "ensemble")
    assert report.per_operation == {"synonym_replacement": 1}
    non_ascii, _ = eda_augment(
        [TextExample("「東京」😀", "loc")], TABLE, n_aug=1, operations=["synonym_replacement"]
    )
    assert non_ascii[1].text == "「东京」😀"


def test_each_operation_alone():
    text = "one two three four five six seven eight nine ten"
    example = [TextExample(text, "x")]
    swap, _ = eda_augment(example, None, alpha=0.2, n_aug=1, operations=["random_swap"], seed=0)
    assert sorted(swap[1].text.split()) == sorted(text.split()) and swap[1].text != text
    deletion, _ = eda_augment(
        example, None, alpha=0.3, n_aug=1, operations=["random_deletion"], seed=0
    )
    assert 1 <= len(deletion[1].text.split()) < 10 and set(deletion[1].text.split()) <= set(
        text.split()
    )
    insertion, _ = eda_augment(
        [TextExample("a good movie", "x")],
        TABLE,
        alpha=0.5,
        n_aug=1,
        operations=["random_insertion"],
        seed=0,
    )
    added = collections_difference(insertion[1].text.split(), ["a", "good", "movie"])
    assert len(added) == 1 and added[0] in {"fine", "great", "film", "picture"}


def collections_difference(after, before):
    remaining = list(after)
    for word in before:
        remaining.remove(word)
    return remaining


def test_duplicates_and_single_words_are_skipped_not_added():
    out, report = eda_augment([TextExample("hello", "x")], TABLE, n_aug=4, seed=0)
    assert out == [TextExample("hello", "x")] and (report.added, report.skipped) == (0, 4)
    out, report = eda_augment(EXAMPLES, TABLE, n_aug=0)
    assert out == EXAMPLES and report.added == 0


def test_synonym_sources_dict_tsv_and_function(tmp_path):
    path = tmp_path / "syn.tsv"
    path.write_text(
        "# word<TAB>synonyms\ngood\tfine, great\n\nmovie\tfilm,picture\ncast\tensemble\n東京\t东京\n",
        encoding="utf-8",
    )
    assert SynonymTable.from_tsv(path)("Good") == ["fine", "great"]
    from_dict, _ = eda_augment(EXAMPLES, TABLE, seed=9)
    from_file, _ = eda_augment(EXAMPLES, path, seed=9)
    from_str, _ = eda_augment(EXAMPLES, str(path), seed=9)
    from_function, _ = eda_augment(EXAMPLES, SynonymTable(TABLE), seed=9)
    assert from_dict == from_file == from_str == from_function


def test_synonym_table_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("good\tfine\nmovie film\n", encoding="utf-8")
    with pytest.raises(
        DataFormatError,
        match=r"bad\.tsv, line 2: expected `word<TAB>syn1,syn2`\. Received: 'movie film'",
    ):
        SynonymTable.from_tsv(bad)
    with pytest.raises(DataFileNotFoundError, match=r"Synonym table not found: '.*nope\.tsv'"):
        SynonymTable.from_tsv(tmp_path / "nope.tsv")
    with pytest.raises(ConfigError, match=r"Write 'good': \['fine'\] for a single synonym"):
        SynonymTable({"good": "fine"})
    with pytest.raises(
        ConfigError, match=r"Expected a dict, a TSV path, a function .* Received: `synonyms`=42"
    ):
        resolve_synonyms(42)


def _fake_nltk(monkeypatch, synsets):
    nltk = types.ModuleType("nltk")
    corpus = types.ModuleType("nltk.corpus")
    corpus.wordnet = types.SimpleNamespace(synsets=synsets)
    nltk.corpus = corpus
    monkeypatch.setitem(sys.modules, "nltk", nltk)
    monkeypatch.setitem(sys.modules, "nltk.corpus", corpus)


def test_wordnet_is_used_when_nltk_and_its_data_are_present(monkeypatch):
    def lemma(name):
        return types.SimpleNamespace(name=lambda: name)

    def synsets(word):
        table = {"good": [["good", "full_of_life"], ["beneficial"]], "test": [["trial"]]}
        return [
            types.SimpleNamespace(lemmas=lambda names=names: [lemma(n) for n in names])
            for names in table.get(word, [])
        ]

    _fake_nltk(monkeypatch, synsets)
    assert augment.wordnet_available()
    assert WordNetSynonyms()("good") == ["beneficial", "full of life"]
    out, report = eda_augment(
        [TextExample("a good day", "x")],
        None,
        alpha=0.5,
        n_aug=1,
        operations=["synonym_replacement"],
    )
    assert out[1].text in ("a beneficial day", "a full of life day") and report.added == 1


def test_without_wordnet_a_table_is_asked_for(monkeypatch):
    monkeypatch.setitem(sys.modules, "nltk", None)  # import fails
    assert not augment.wordnet_available()
    with pytest.raises(
        MissingDependencyError,
        match=r"need nltk: pip install nltk.* Or pass a synonym table, which works offline",
    ):
        eda_augment(EXAMPLES, None)

    def missing(word):
        raise LookupError("Resource wordnet not found.")

    _fake_nltk(monkeypatch, missing)
    with pytest.raises(
        MissingDependencyError,
        match=r"WordNet data is not installed: python -m nltk\.downloader wordnet\. Or pass a synonym table",
    ):
        resolve_synonyms(None)
    # Swap and deletion need no synonyms at all.
    out, _ = eda_augment(EXAMPLES, None, operations=["random_swap", "random_deletion"], n_aug=2)
    assert len(out) > len(EXAMPLES)


def test_bad_eda_arguments():
    with pytest.raises(ConfigError, match=r"Unknown EDA operations \['shuffle'\]"):
        eda_augment(EXAMPLES, TABLE, operations=["shuffle"])
    with pytest.raises(
        ConfigError, match=r"Expected `alpha` in \(0, 1\), e\.g\. 0\.1\. Received: `alpha`=1\.5"
    ):
        eda_augment(EXAMPLES, TABLE, alpha=1.5)
    with pytest.raises(
        ConfigError, match=r"Expected `n_aug` to be an int >= 0\. Received: `n_aug`=-1"
    ):
        eda_augment(EXAMPLES, TABLE, n_aug=-1)
    assert set(OPERATIONS) == {
        "synonym_replacement",
        "random_insertion",
        "random_swap",
        "random_deletion",
    }


def _translator(calls):
    pivot = {
        "the film was good": "der Film war gut",
        "bad": "schlecht",
        "東京 is big": "東京 ist groß",
    }
    back = {
        "der Film war gut": "the movie was good",
        "schlecht": "bad",
        "東京 ist groß": "東京 is large",
    }

    def translate(texts, source, target):
        calls.append((len(texts), source, target))
        return [(pivot if target == "de" else back)[t] for t in texts]

    return translate


def test_back_translation_through_a_pluggable_function():
    calls = []
    examples = [
        TextExample("the film was good", "pos", line=1),
        TextExample("bad", "neg", line=2),
        TextExample("東京 is big", "loc", "pair", line=3),
    ]
    out, report = back_translate(examples, _translator(calls), batch_size=2)
    assert out[:3] == examples
    assert out[3:] == [
        TextExample("the movie was good", "pos", line=1),
        TextExample("東京 is large", "loc", "pair", line=3),
    ]
    assert (report.added, report.skipped, report.method) == (2, 1, "back-translation en->de")
    assert calls == [(2, "en", "de"), (1, "en", "de"), (2, "de", "en"), (1, "de", "en")]


def test_back_translation_refuses_a_translate_that_loses_texts():
    with pytest.raises(
        ConfigError, match=r"must return one text per input\. Received: 1 texts for 2 inputs"
    ):
        back_translate(EXAMPLES[:2], lambda texts, src, tgt: texts[:1])
    with pytest.raises(ConfigError, match=r"Received: a str for 2 inputs"):
        back_translate(EXAMPLES[:2], lambda texts, src, tgt: "one string")
    with pytest.raises(ConfigError, match=r"Expected a function translate\(texts, src, tgt\)"):
        back_translate(EXAMPLES, {"not": "callable"})
