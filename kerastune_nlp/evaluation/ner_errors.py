"""Entity-level error analysis for NER: error categories, type confusion, worst sentences.

Each sentence's gold and predicted entities are paired one to one, and every
pair (or lone entity) falls in exactly one category, as in nervaluate and
Batista's "entity-level" scheme:

- `correct`: same boundaries, same type;
- `wrong_type`: same boundaries, another type;
- `boundary`: overlapping (not identical) boundaries, same type;
- `boundary_type`: overlapping boundaries, another type;
- `missed`: a gold entity left without a predicted partner;
- `spurious`: a predicted entity left without a gold partner.

Pairing rule, for a span that overlaps several: identical spans pair first
(they cannot conflict: entities of one side never overlap each other); then
the remaining overlapping pairs, largest overlap in words first, same type
before another type, then leftmost gold, then leftmost prediction; a span
already paired is skipped. So each gold and each predicted entity is
counted once, the `correct` count equals seqeval's true positives, and the
rows of the confusion table sum to the gold counts per type and its columns
to the predicted counts. A gold entity whose only overlapping predictions
were paired with other gold entities (two gold entities predicted as one)
is `missed`, and the mirror case (one gold entity predicted as two) leaves
a `spurious` prediction; `merged` and `split` in the counts say how many of
those overlapped a paired entity.

Entities are read from tags with conlleval's rule (seqeval's default mode):
a chunk starts at `B-X`, or at `I-X` after `O` or after another type, so
IOB1 and IOB2 tags give the same entities.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from kerastune_nlp.errors import ConfigError

__all__ = [
    "CATEGORIES",
    "NONE",
    "Entity",
    "Pair",
    "ErrorAnalysis",
    "entities_of",
    "pair_entities",
    "analyse",
    "format_markdown",
    "worst_sentences",
    "write_ner_error_reports",
]

CATEGORIES = ("correct", "wrong_type", "boundary", "boundary_type", "missed", "spurious")
ERRORS = CATEGORIES[1:]
# The confusion table's row for spurious entities and column for missed ones.
NONE = "(none)"
_TITLES = {"correct": "correct", "wrong_type": "wrong type", "boundary": "boundary",
           "boundary_type": "boundary+type", "missed": "missed", "spurious": "spurious"}


@dataclasses.dataclass(frozen=True, order=True)
class Entity:
    """One entity: words `start` to `end` (exclusive) of a sentence, of `type`."""

    start: int
    end: int
    type: str

    def overlap(self, other: "Entity") -> int:
        """Words shared with `other`."""
        return max(0, min(self.end, other.end) - max(self.start, other.start))

    def record(self, words: Sequence[str] | None = None) -> dict:
        row = {"type": self.type, "start": self.start, "end": self.end}
        if words is not None:
            row["text"] = " ".join(words[self.start:self.end])
        return row


@dataclasses.dataclass(frozen=True)
class Pair:
    """A gold entity and its predicted partner (either None when alone), and the category."""

    category: str
    gold: Entity | None
    predicted: Entity | None

    @property
    def position(self) -> tuple:
        spans = [e for e in (self.gold, self.predicted) if e is not None]
        return (min(e.start for e in spans), self.gold is None, self.gold or spans[0], self.predicted or spans[0])

    def record(self, words: Sequence[str] | None = None) -> dict:
        return {"category": self.category,
                "gold": self.gold.record(words) if self.gold else None,
                "predicted": self.predicted.record(words) if self.predicted else None}


def entities_of(tags: Sequence[str]) -> list[Entity]:
    """The entities of one sentence's `O` / `B-X` / `I-X` tags (IOB1 or IOB2), left to right.

    Example:
    >>> entities_of(["B-PER", "I-PER", "O", "I-LOC"])
    [Entity(start=0, end=2, type='PER'), Entity(start=3, end=4, type='LOC')]
    """
    entities, start, current = [], 0, None
    for index, tag in enumerate(list(tags) + ["O"]):
        if tag != "O" and tag[:2] not in ("B-", "I-"):
            raise ConfigError(f"Expected tags `O`, `B-<type>` or `I-<type>`. Received: {tag!r} at word {index}. "
                              "Convert other schemes (IOBES, BILOU) to IOB2 first.")
        kind = tag[2:] if tag != "O" else None
        continues = tag.startswith("I-") and kind == current
        if current is not None and not continues:
            entities.append(Entity(start, index, current))
            current = None
        if kind is not None and not continues:
            start, current = index, kind
    return entities


def pair_entities(gold: Sequence[Entity], predicted: Sequence[Entity]) -> list[Pair]:
    """Pairs one sentence's gold and predicted entities (rule in the module docstring), left to right."""
    free_gold, free_predicted = set(range(len(gold))), set(range(len(predicted)))
    pairs = []

    def take(category, g, p):
        free_gold.discard(g)
        free_predicted.discard(p)
        pairs.append(Pair(category, gold[g], predicted[p]))

    by_span = {(e.start, e.end): i for i, e in enumerate(predicted)}
    for g, entity in enumerate(gold):
        p = by_span.get((entity.start, entity.end))
        if p is not None:
            take("correct" if predicted[p].type == entity.type else "wrong_type", g, p)
    candidates = sorted(
        ((gold[g].overlap(predicted[p]), g, p) for g in free_gold for p in free_predicted
         if gold[g].overlap(predicted[p])),
        key=lambda c: (-c[0], gold[c[1]].type != predicted[c[2]].type, gold[c[1]].start, predicted[c[2]].start),
    )
    for _, g, p in candidates:
        if g in free_gold and p in free_predicted:
            take("boundary" if gold[g].type == predicted[p].type else "boundary_type", g, p)
    pairs += [Pair("missed", gold[g], None) for g in free_gold]
    pairs += [Pair("spurious", None, predicted[p]) for p in free_predicted]
    return sorted(pairs, key=lambda pair: pair.position)


@dataclasses.dataclass
class ErrorAnalysis:
    """Error categories, per type and in total, the type confusion table, and each sentence's pairs.

    Attributes:
        types: list of str. Entity types, sorted (the table's rows and
            columns before `(none)`).
        sentences: list of list of `Pair`, one list per sentence.
        counts: dict. Category -> count over all sentences, plus `merged`
            and `split` (see the module docstring).
        per_type: dict. Type -> `{"gold", "predicted", <category>: count}`;
            a spurious entity counts under its predicted type, every other
            category under the gold type.
        confusion: int array `[types + 1, types + 1]`. Rows gold type then
            `(none)` (spurious), columns predicted type then `(none)` (missed).
    """

    types: list
    sentences: list
    counts: dict
    per_type: dict
    confusion: np.ndarray

    @property
    def labels(self) -> list[str]:
        """Row and column names of `confusion`."""
        return [*self.types, NONE]

    def errors(self, index: int) -> int:
        """Pairs of sentence `index` that are not correct."""
        return sum(pair.category != "correct" for pair in self.sentences[index])

    def to_dict(self) -> dict:
        return {
            "categories": list(CATEGORIES),
            "counts": dict(self.counts),
            "gold_entities": sum(row["gold"] for row in self.per_type.values()),
            "predicted_entities": sum(row["predicted"] for row in self.per_type.values()),
            "sentences": len(self.sentences),
            "sentences_with_errors": sum(self.errors(i) > 0 for i in range(len(self.sentences))),
            "per_type": self.per_type,
            "confusion": {"rows": "gold", "columns": "predicted", "labels": self.labels,
                          "matrix": self.confusion.tolist()},
        }


def analyse(gold_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]],
            types: Sequence[str] = ()) -> ErrorAnalysis:
    """Pairs and counts the entities of every sentence.

    Args:
        gold_tags: sequence of tag sequences, one per sentence.
        predicted_tags: sequence of tag sequences, as long as `gold_tags`,
            each as long as its gold sentence.
        types: sequence of str. Entity types to list even when absent (e.g.
            every type of the model's tag set). Defaults to ().

    Example:
    >>> analysis = analyse([["B-PER", "I-PER", "O"]], [["B-PER", "O", "B-LOC"]])
    >>> analysis.counts["boundary"], analysis.counts["spurious"]
    (1, 1)
    """
    if len(gold_tags) != len(predicted_tags):
        raise ConfigError(f"Expected one predicted tag sequence per sentence. Received: {len(gold_tags)} gold "
                          f"and {len(predicted_tags)} predicted sentences.")
    sentences = []
    for index, (gold, predicted) in enumerate(zip(gold_tags, predicted_tags)):
        if len(gold) != len(predicted):
            raise ConfigError(f"Expected one predicted tag per word. Received: {len(gold)} gold and "
                              f"{len(predicted)} predicted tags in sentence {index}.")
        sentences.append(pair_entities(entities_of(gold), entities_of(predicted)))
    found = {e.type for pairs in sentences for pair in pairs for e in (pair.gold, pair.predicted) if e}
    all_types = sorted(set(types) | found)
    index = {name: i for i, name in enumerate(all_types)}
    none = len(all_types)
    confusion = np.zeros((none + 1, none + 1), dtype=np.int64)
    counts = dict.fromkeys((*CATEGORIES, "merged", "split"), 0)
    per_type = {name: dict.fromkeys(("gold", "predicted", *CATEGORIES), 0) for name in all_types}
    for pairs in sentences:
        for pair in pairs:
            counts[pair.category] += 1
            row = index[pair.gold.type] if pair.gold else none
            column = index[pair.predicted.type] if pair.predicted else none
            confusion[row, column] += 1
            per_type[(pair.gold or pair.predicted).type][pair.category] += 1
            if pair.gold:
                per_type[pair.gold.type]["gold"] += 1
            if pair.predicted:
                per_type[pair.predicted.type]["predicted"] += 1
        # Lone entities that overlap a paired one: a merge (missed) or a split (spurious).
        paired = [pair for pair in pairs if pair.gold and pair.predicted]
        for pair in pairs:
            if pair.category == "missed" and any(pair.gold.overlap(p.predicted) for p in paired):
                counts["merged"] += 1
            if pair.category == "spurious" and any(pair.predicted.overlap(p.gold) for p in paired):
                counts["split"] += 1
    return ErrorAnalysis(all_types, sentences, counts, per_type, confusion)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if i else ":" + "-" * (w + 1) for i, w in enumerate(widths)) + "|"
    return [line(cells[0]), rule, *[line(row) for row in cells[1:]]]


def format_markdown(analysis: ErrorAnalysis, title: str = "NER error analysis") -> str:
    """The category counts per type and the type confusion table, as Markdown (readable as plain text)."""
    summary = analysis.to_dict()
    columns = ["gold", "predicted", *CATEGORIES]
    rows = [[name, *(analysis.per_type[name][c] for c in columns)] for name in analysis.types]
    rows.append(["all", summary["gold_entities"], summary["predicted_entities"],
                 *(analysis.counts[c] for c in CATEGORIES)])
    lines = [f"# {title}", "",
             f"{summary['sentences']} sentences ({summary['sentences_with_errors']} with errors), "
             f"{summary['gold_entities']} gold entities, {summary['predicted_entities']} predicted.", "",
             "## Error categories per entity type", "",
             *_markdown_table(["type", *(_TITLES.get(c, c) for c in columns)], rows), "",
             "Spurious entities count under their predicted type, all others under their gold type. "
             f"Of the missed entities, {analysis.counts['merged']} overlap a prediction paired with another "
             f"gold entity (merged); of the spurious ones, {analysis.counts['split']} overlap a paired gold "
             "entity (split).", "",
             "## Entity-type confusion (rows gold, columns predicted)", "",
             *_markdown_table(["gold \\ predicted", *analysis.labels],
                              [[name, *row] for name, row in zip(analysis.labels, analysis.confusion.tolist())]),
             "",
             "Counted over paired entities (same or overlapping words, each entity paired at most once: "
             "identical spans first, then largest overlap). The diagonal holds correct and boundary errors; "
             f"the `{NONE}` column holds missed entities, the `{NONE}` row spurious ones.", ""]
    return "\n".join(lines)


def worst_sentences(analysis: ErrorAnalysis, sentences: Sequence, predicted_tags: Sequence[Sequence[str]],
                    k: int = 50) -> list[dict]:
    """Rows for the `k` sentences with the most errors (at least one), most first, then in split order.

    Args:
        analysis: ErrorAnalysis. Of these sentences and predictions.
        sentences: sequence of `Sentence` (`tokens`, `tags`, and `source`,
            `line`, `document` when read from a file).
        predicted_tags: sequence of tag sequences, one per sentence.
        k: int. Rows kept. Defaults to 50.
    """
    errors = [analysis.errors(i) for i in range(len(sentences))]
    order = sorted((i for i, n in enumerate(errors) if n), key=lambda i: (-errors[i], i))[:k]
    rows = []
    for i in order:
        sentence, pairs = sentences[i], analysis.sentences[i]
        row = {"index": i}
        for name in ("source", "line", "document"):
            if getattr(sentence, name, None) not in (None, "", 0, "<memory>"):
                row[name] = getattr(sentence, name)
        words = list(sentence.tokens)
        row.update(errors=errors[i],
                   counts={c: n for c in CATEGORIES if (n := sum(p.category == c for p in pairs))},
                   words=words, gold_tags=list(sentence.tags), predicted_tags=list(predicted_tags[i]),
                   entities=[pair.record(words) for pair in pairs])
        rows.append(row)
    return rows


def write_ner_error_reports(directory, sentences: Sequence, predicted_tags: Sequence[Sequence[str]],
                            types: Sequence[str] = (), k: int = 50) -> dict[str, Path]:
    """Writes `ner_errors.json`, `ner_errors.md`, `confusion_matrix.png` and `worst_predictions.jsonl`.

    Args:
        directory: str or Path. The run directory.
        sentences: sequence of `Sentence`. The gold sentences (a split).
        predicted_tags: sequence of tag sequences, one per sentence.
        types: sequence of str. Entity types always listed. Defaults to ().
        k: int. Sentences in `worst_predictions.jsonl`. Defaults to 50.

    Example:
    >>> predicted = predictor.predict([s.tokens for s in test_sentences])
    >>> write_ner_error_reports("saved_models/run", test_sentences, predicted)
    """
    from kerastune_nlp.evaluation import reports

    directory = Path(directory)
    analysis = analyse([s.tags for s in sentences], predicted_tags, types)
    written = {
        "ner_errors.json": reports.write_metrics(directory / "ner_errors.json", analysis.to_dict()),
        "ner_errors.md": reports._write_atomic(directory / "ner_errors.md", format_markdown(analysis)),
        "confusion_matrix.png": reports.write_confusion_matrix(
            directory / "confusion_matrix.png", analysis.confusion, analysis.labels,
            title=f"Entity types, rows gold, columns predicted (n={int(analysis.confusion.sum())})"),
    }
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in worst_sentences(analysis, sentences,
                                                                                      predicted_tags, k)]
    written["worst_predictions.jsonl"] = reports._write_atomic(directory / "worst_predictions.jsonl",
                                                               "".join(lines))
    return written
