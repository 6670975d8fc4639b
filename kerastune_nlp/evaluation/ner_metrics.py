"""Entity-level (seqeval, CoNLL-style) scores for NER."""

from __future__ import annotations

from typing import Sequence

from seqeval.metrics import classification_report


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro-averaged entity precision/recall/F1 overall and per entity type.

    An entity counts as correct only when its type and both boundaries match
    (conlleval semantics, as seqeval's default mode).

    Returns:
        `{"overall": {"precision", "recall", "f1", "support"},
          "macro": {...}, "per_type": {type: {...}}}`, all floats in [0, 1].
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    report = classification_report(
        [list(s) for s in gold], [list(s) for s in predicted], output_dict=True, zero_division=0
    )

    def pick(row):
        return {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }

    averages = {"micro avg", "macro avg", "weighted avg"}
    return {
        "overall": pick(report["micro avg"]),
        "macro": pick(report["macro avg"]),
        "per_type": {name: pick(row) for name, row in sorted(report.items()) if name not in averages},
    }


def format_report(scores: dict, title: str = "") -> str:
    """A fixed-width table like seqeval's, for terminals and logs."""
    lines = [title] if title else []
    lines.append(f"{'entity type':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    rows = list(scores["per_type"].items()) + [("micro avg", scores["overall"]), ("macro avg", scores["macro"])]
    for index, (name, row) in enumerate(rows):
        if index == len(scores["per_type"]):
            lines.append("")
        lines.append(
            f"{name:<20}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}"
        )
    return "\n".join(lines)
