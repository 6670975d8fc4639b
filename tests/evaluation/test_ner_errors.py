"""NER error analysis: entity categories, pairing of overlapping spans, the type confusion, worst sentences."""

import json
import random

import numpy as np
import pytest
from seqeval.metrics import classification_report
from seqeval.metrics.sequence_labeling import get_entities

from kerastune_nlp.data.conll import Sentence, to_iob2
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.evaluation import ner_errors
from kerastune_nlp.evaluation.ner_errors import Entity, analyse, entities_of, pair_entities


def _pairs(gold, predicted):
    """`(category, gold (start, end, type), predicted (start, end, type))` for one sentence."""
    def span(e):
        return None if e is None else (e.start, e.end, e.type)

    return [(p.category, span(p.gold), span(p.predicted))
            for p in pair_entities(entities_of(gold), entities_of(predicted))]


@pytest.mark.parametrize("gold, predicted, expected", [
    (["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"], [("correct", (0, 2, "PER"), (0, 2, "PER"))]),
    (["B-PER", "I-PER", "O"], ["B-ORG", "I-ORG", "O"], [("wrong_type", (0, 2, "PER"), (0, 2, "ORG"))]),
    (["B-PER", "I-PER", "O"], ["O", "B-PER", "I-PER"], [("boundary", (0, 2, "PER"), (1, 3, "PER"))]),
    (["B-PER", "I-PER", "O"], ["B-LOC", "O", "O"], [("boundary_type", (0, 2, "PER"), (0, 1, "LOC"))]),
    (["O", "B-PER", "O"], ["O", "O", "O"], [("missed", (1, 2, "PER"), None)]),
    (["O", "O", "O"], ["O", "O", "B-LOC"], [("spurious", None, (2, 3, "LOC"))]),
    # Adjacent but not overlapping: a miss and a spurious entity, not a boundary error.
    (["B-PER", "O"], ["O", "B-PER"], [("missed", (0, 1, "PER"), None), ("spurious", None, (1, 2, "PER"))]),
])
def test_each_category(gold, predicted, expected):
    assert _pairs(gold, predicted) == expected


def test_one_gold_entity_predicted_as_two_pairs_the_larger_overlap():
    # Gold "New York City Hall" LOC; predicted "New" ORG and "York City Hall" LOC.
    pairs = _pairs(["B-LOC", "I-LOC", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC", "I-LOC"])
    # Listed by first word, a pair before a lone prediction starting there.
    assert pairs == [("boundary", (0, 4, "LOC"), (1, 4, "LOC")), ("spurious", None, (0, 1, "ORG"))]
    # The larger overlap wins even against a partner of the same type.
    pairs = _pairs(["B-LOC", "I-LOC", "I-LOC", "I-LOC"], ["B-LOC", "B-ORG", "I-ORG", "I-ORG"])
    assert pairs == [("boundary_type", (0, 4, "LOC"), (1, 4, "ORG")), ("spurious", None, (0, 1, "LOC"))]
    analysis = analyse([["B-LOC", "I-LOC", "I-LOC"]], [["B-ORG", "B-LOC", "I-LOC"]])
    assert analysis.counts["split"] == 1 and analysis.counts["merged"] == 0


def test_two_gold_entities_predicted_as_one_pair_once():
    # Equal overlaps: the same type first, then the leftmost gold entity; the other is missed (merged).
    assert _pairs(["B-PER", "I-PER", "B-LOC", "I-LOC"], ["B-LOC", "I-LOC", "I-LOC", "I-LOC"]) == [
        ("missed", (0, 2, "PER"), None), ("boundary", (2, 4, "LOC"), (0, 4, "LOC"))]
    assert _pairs(["B-LOC", "I-LOC", "B-LOC", "I-LOC"], ["B-LOC", "I-LOC", "I-LOC", "I-LOC"]) == [
        ("boundary", (0, 2, "LOC"), (0, 4, "LOC")), ("missed", (2, 4, "LOC"), None)]
    analysis = analyse([["B-LOC", "I-LOC", "B-LOC", "I-LOC"]], [["B-LOC", "I-LOC", "I-LOC", "I-LOC"]])
    assert analysis.counts["merged"] == 1 and analysis.counts["missed"] == 1
    assert _pairs(["B-PER", "B-PER", "I-PER"], ["B-PER", "I-PER", "I-PER"]) == [
        ("missed", (0, 1, "PER"), None), ("boundary", (1, 3, "PER"), (0, 3, "PER"))]
    assert _pairs(["B-PER", "I-PER", "B-PER"], ["B-ORG", "I-ORG", "B-PER"]) == [
        ("wrong_type", (0, 2, "PER"), (0, 2, "ORG")), ("correct", (2, 3, "PER"), (2, 3, "PER"))]


def test_iob1_and_iob2_give_the_same_entities():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-LOC"]
    iob2, changed = to_iob2(iob1)
    assert changed and iob2 != iob1
    assert entities_of(iob1) == entities_of(iob2) == [
        Entity(0, 2, "PER"), Entity(3, 4, "LOC"), Entity(4, 5, "LOC"), Entity(5, 6, "ORG"), Entity(6, 7, "LOC")]
    analysis = analyse([iob1], [iob2])
    assert analysis.counts["correct"] == 5 and sum(analysis.counts[c] for c in ner_errors.ERRORS) == 0


def test_entities_follow_seqeval_and_correct_equals_its_true_positives():
    rng = random.Random(7)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-creative-work", "I-creative-work"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(400)]
    predicted = [[rng.choice(tags) if rng.random() < 0.4 else tag for tag in sentence] for sentence in gold]
    for sentence in gold + predicted:
        assert [(e.type, e.start, e.end - 1) for e in entities_of(sentence)] == get_entities(sentence)
    analysis = analyse(gold, predicted)
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    overall = report["micro avg"]
    assert analysis.counts["correct"] == round(overall["recall"] * overall["support"]) > 0
    for name in ("PER", "LOC", "creative-work"):
        assert analysis.per_type[name]["correct"] == round(report[name]["recall"] * report[name]["support"])
    # Every entity is counted once: rows sum to the gold counts, columns to the predicted counts.
    gold_count = {t: sum(e.type == t for s in gold for e in entities_of(s)) for t in analysis.types}
    predicted_count = {t: sum(e.type == t for s in predicted for e in entities_of(s)) for t in analysis.types}
    matrix = analysis.confusion
    assert matrix[:-1].sum(axis=1).tolist() == [gold_count[t] for t in analysis.types]
    assert matrix[:, :-1].sum(axis=0).tolist() == [predicted_count[t] for t in analysis.types]
    assert matrix[-1, -1] == 0 and matrix[-1].sum() == analysis.counts["spurious"]
    assert matrix[:, -1].sum() == analysis.counts["missed"]
    assert np.trace(matrix[:-1, :-1]) == analysis.counts["correct"] + analysis.counts["boundary"]
    assert all(analysis.counts[c] > 0 for c in ner_errors.CATEGORIES)  # every category occurs here
    for name in analysis.types:
        row = analysis.per_type[name]
        assert row["gold"] == gold_count[name] and row["predicted"] == predicted_count[name]
        assert row["gold"] == sum(row[c] for c in ner_errors.CATEGORIES if c != "spurious")


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match=r"Received: 'S-PER' at word 1\. Convert other schemes"):
        entities_of(["O", "S-PER"])
    with pytest.raises(ConfigError, match=r"Received: 2 gold and 1 predicted tags in sentence 1\."):
        analyse([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ConfigError, match=r"Received: 1 gold and 0 predicted sentences"):
        analyse([["O"]], [])


SENTENCES = [
    Sentence(("Bob", "lives", "here"), ("B-PER", "O", "O"), "test.conll", 1),
    Sentence(("Ann", "Lee", "met", "Bo", "in", "Rome"), ("B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"),
             "test.conll", 5),
    Sentence(("New", "York"), ("B-LOC", "I-LOC"), "test.conll", 12),
    Sentence(("Paris",), ("B-LOC",), "test.conll", 15),
]
PREDICTED = [
    ["B-PER", "O", "O"],                                   # no error
    ["B-PER", "O", "O", "B-ORG", "O", "O"],               # boundary, wrong type, missed
    ["B-ORG", "B-LOC"],                                    # split: boundary + spurious
    ["B-PER"],                                             # wrong type
]


def test_worst_sentences_most_errors_first_with_their_place():
    analysis = analyse([s.tags for s in SENTENCES], PREDICTED, ["MISC"])
    rows = ner_errors.worst_sentences(analysis, SENTENCES, PREDICTED, k=10)
    assert [(r["index"], r["line"], r["errors"]) for r in rows] == [(1, 5, 3), (2, 12, 2), (3, 15, 1)]
    assert rows[0]["source"] == "test.conll" and rows[0]["words"] == list(SENTENCES[1].tokens)
    assert rows[0]["gold_tags"] == list(SENTENCES[1].tags) and rows[0]["predicted_tags"] == PREDICTED[1]
    assert rows[0]["counts"] == {"boundary": 1, "wrong_type": 1, "missed": 1}
    assert rows[0]["entities"] == [
        {"category": "boundary", "gold": {"type": "PER", "start": 0, "end": 2, "text": "Ann Lee"},
         "predicted": {"type": "PER", "start": 0, "end": 1, "text": "Ann"}},
        {"category": "wrong_type", "gold": {"type": "PER", "start": 3, "end": 4, "text": "Bo"},
         "predicted": {"type": "ORG", "start": 3, "end": 4, "text": "Bo"}},
        {"category": "missed", "gold": {"type": "LOC", "start": 5, "end": 6, "text": "Rome"}, "predicted": None},
    ]
    assert [r["index"] for r in ner_errors.worst_sentences(analysis, SENTENCES, PREDICTED, k=2)] == [1, 2]
    # Ties keep split order; a sentence from memory has no place to name.
    tied = analyse([["B-PER"], ["B-PER"]], [["O"], ["O"]])
    rows = ner_errors.worst_sentences(tied, [Sentence(("a",), ("B-PER",)), Sentence(("b",), ("B-PER",))],
                                      [["O"], ["O"]])
    assert [r["index"] for r in rows] == [0, 1] and "line" not in rows[0] and "source" not in rows[0]


def test_reports_are_written_with_the_same_counts(tmp_path):
    written = ner_errors.write_ner_error_reports(tmp_path, SENTENCES, PREDICTED, types=["MISC"], k=50)
    assert sorted(written) == ["confusion_matrix.png", "ner_errors.json", "ner_errors.md",
                               "worst_predictions.jsonl"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "ner_errors.json").read_text())
    assert summary["counts"] == {"correct": 1, "wrong_type": 2, "boundary": 2, "boundary_type": 0,
                                 "missed": 1, "spurious": 1, "merged": 0, "split": 1}
    assert summary["gold_entities"] == 6 and summary["predicted_entities"] == 6
    assert summary["sentences"] == 4 and summary["sentences_with_errors"] == 3
    assert summary["confusion"]["labels"] == ["LOC", "MISC", "ORG", "PER", "(none)"]
    assert summary["confusion"]["matrix"] == [[1, 0, 0, 1, 1],   # LOC: New York, Paris as PER, Rome missed
                                              [0, 0, 0, 0, 0],
                                              [0, 0, 0, 0, 0],
                                              [0, 0, 1, 2, 0],   # PER: Bo as ORG; Bob, Ann Lee
                                              [0, 0, 1, 0, 0]]   # spurious ORG "New"
    assert summary["per_type"]["LOC"] == {"gold": 3, "predicted": 1, "correct": 0, "wrong_type": 1,
                                          "boundary": 1, "boundary_type": 0, "missed": 1, "spurious": 0}
    assert summary["per_type"]["ORG"]["spurious"] == 1 and summary["per_type"]["ORG"]["gold"] == 0
    markdown = (tmp_path / "ner_errors.md").read_text()
    assert "| all  |    6 |         6 |       1 |          2 |        2 |             0 |      1 |        1 |" \
        in markdown
    assert "| (none)           |   0 |    0 |   1 |   0 |      0 |" in markdown
    rows = [json.loads(line) for line in (tmp_path / "worst_predictions.jsonl").read_text().splitlines()]
    assert [r["errors"] for r in rows] == [3, 2, 1]
    assert sum(r["errors"] for r in rows) == sum(summary["counts"][c] for c in ner_errors.ERRORS)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
