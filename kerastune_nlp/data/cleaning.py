"""Explicit, optional text-cleaning steps that report what they did.

No step strips non-ASCII text: Chinese, accents and emoji pass through every
step. Steps run in the order given; each reports how many examples it
changed and how many it dropped.
"""

from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
from typing import Callable, Sequence

from kerastune_nlp.data.text_readers import TextExample
from kerastune_nlp.errors import ConfigError

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_TAG = re.compile(r"<[^>\n]{1,200}>")
_SPACES = re.compile(r"\s+")


def _map_text(function: Callable[[str], str]):
    def step(examples):
        out, changed = [], 0
        for e in examples:
            text = function(e.text)
            pair = function(e.text_pair) if e.text_pair is not None else None
            if text != e.text or pair != e.text_pair:
                changed += 1
                e = dataclasses.replace(e, text=text, text_pair=pair)
            out.append(e)
        return out, changed, 0

    return step


def _drop_duplicates(examples):
    seen, out = set(), []
    for e in examples:
        key = (e.text, e.text_pair)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out, 0, len(examples) - len(out)


def _drop_empty(examples):
    out = [e for e in examples if e.text.strip() and (e.text_pair is None or e.text_pair.strip())]
    return out, 0, len(examples) - len(out)


STEPS = {
    "nfc": _map_text(lambda t: unicodedata.normalize("NFC", t)),
    "nfkc": _map_text(lambda t: unicodedata.normalize("NFKC", t)),
    "whitespace": _map_text(lambda t: _SPACES.sub(" ", t).strip()),
    "html": _map_text(lambda t: html.unescape(_TAG.sub(" ", t))),
    "urls": _map_text(lambda t: _URL.sub(" ", t)),
    "lowercase": _map_text(str.lower),
    "dedupe": _drop_duplicates,
    "drop_empty": _drop_empty,
}
DEFAULT_STEPS = ("nfc", "whitespace", "drop_empty")


@dataclasses.dataclass
class CleaningReport:
    """Per step, in order: how many examples it changed and dropped."""

    steps: list[dict] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        return ", ".join(f"{s['step']}: {s['changed']} changed, {s['dropped']} dropped" for s in self.steps)


def clean_examples(
    examples: Sequence[TextExample], steps: Sequence[str] = DEFAULT_STEPS
) -> tuple[list[TextExample], CleaningReport]:
    """Applies cleaning steps in order.

    Args:
        examples: the examples.
        steps: names from `STEPS`: nfc, nfkc, whitespace, html, urls,
            lowercase, dedupe, drop_empty. Defaults to nfc, whitespace,
            drop_empty.

    Example:
    >>> cleaned, report = clean_examples(examples, ["html", "urls", "whitespace", "dedupe"])
    >>> print(report)
    """
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ConfigError(f"Unknown cleaning steps {unknown}. Expected names from {sorted(STEPS)}.")
    report = CleaningReport()
    current = list(examples)
    for name in steps:
        current, changed, dropped = STEPS[name](current)
        report.steps.append({"step": name, "changed": changed, "dropped": dropped})
    return current, report
