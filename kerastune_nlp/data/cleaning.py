"""Explicit, optional text-cleaning steps that report what they did.

No step strips non-ASCII text: Chinese, accents and emoji pass through every
step (NFKC folds compatibility forms such as full-width letters and
ligatures, and keeps the characters themselves). Steps run in the order
given, on `text` and `text_pair`; each reports how many examples it changed
and how many it dropped.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
import unicodedata
from typing import Callable, Sequence, Union

from kerastune_nlp.data.text_examples import TextExample
from kerastune_nlp.errors import ConfigError

logger = logging.getLogger("kerastune_nlp.data")

# Only what is unambiguously markup: a tag starts with a letter (or "/" or
# "!"), so "a < b and c > d" keeps its comparison signs.
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>|<![A-Za-z][^<>]*>")
# URL characters are ASCII (RFC 3986); stopping at anything else keeps
# "見てhttp://x.io/a東京" -> "見て 東京". A URL does not end in punctuation.
_URL_CHARS = r"A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%"
_URL = re.compile(rf"(?:https?://|ftp://|www\.)[{_URL_CHARS}]*[A-Za-z0-9/_\-=#&%~+]", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def _strip_html(text: str) -> str:
    text = _SCRIPT.sub(" ", text)
    text = _COMMENT.sub(" ", text)
    # Tags become a space so "one<br>two" stays two words; follow with "whitespace".
    return html.unescape(_TAG.sub(" ", text))


TEXT_STEPS: dict[str, Callable[[str], str]] = {
    "nfc": lambda t: unicodedata.normalize("NFC", t),
    "nfkc": lambda t: unicodedata.normalize("NFKC", t),
    "whitespace": lambda t: _SPACES.sub(" ", t).strip(),
    "html": _strip_html,
    "urls": lambda t: _URL.sub(" ", t),
    "lowercase": str.lower,
}
FILTER_STEPS = ("dedupe", "drop_empty")
STEPS = tuple(TEXT_STEPS) + FILTER_STEPS
DEFAULT_STEPS = ("nfc", "whitespace", "drop_empty")

Step = Union[str, Callable[[str], str]]


@dataclasses.dataclass
class CleaningReport:
    """Per step, in order: `{"step", "changed", "dropped"}` (dedupe adds `label_conflicts`).

    Args:
        before: int. Examples in.
        after: int. Examples out.
        steps: list of dict. One entry per step.
    """

    before: int = 0
    after: int = 0
    steps: list = dataclasses.field(default_factory=list)

    @property
    def dropped(self) -> int:
        return sum(step["dropped"] for step in self.steps)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        parts = ", ".join(
            f"{s['step']}: {s['changed']} changed, {s['dropped']} dropped" for s in self.steps
        )
        return f"{self.before} -> {self.after} examples ({parts or 'no steps'})"


def clean_examples(
    examples: Sequence[TextExample], steps: Sequence[Step] = DEFAULT_STEPS
) -> tuple[list[TextExample], CleaningReport]:
    """Applies cleaning steps in order and reports each one.

    Args:
        examples: sequence of `TextExample`.
        steps: names from `STEPS` or functions `str -> str`:
            "nfc" / "nfkc": Unicode normalisation;
            "whitespace": runs of whitespace become one space, ends trimmed;
            "html": tags, comments, script/style blocks removed, entities
            decoded (`&amp;` -> `&`);
            "urls": http(s)://, ftp:// and www. addresses removed;
            "lowercase": `str.lower`;
            "dedupe": examples with the same text and text_pair after the
            steps so far are dropped, the first kept (put it after the
            normalising steps);
            "drop_empty": examples whose text (or text_pair) is empty or
            whitespace.
            Defaults to ("nfc", "whitespace", "drop_empty").

    Returns:
        `(examples, CleaningReport)`.

    Example:
    >>> cleaned, report = clean_examples(examples, ["html", "urls", "whitespace", "dedupe", "drop_empty"])
    >>> print(report)
    """
    if isinstance(steps, str):
        raise ConfigError(
            f"Expected a list of step names. Received: `steps`={steps!r}. Write [{steps!r}]."
        )
    unknown = [s for s in steps if not callable(s) and s not in STEPS]
    if unknown:
        raise ConfigError(
            f"Unknown cleaning steps {unknown}. Expected names from {list(STEPS)} or functions str "
            "-> str."
        )
    report = CleaningReport(before=len(examples))
    current = list(examples)
    for step in steps:
        if step == "dedupe":
            current, entry = _dedupe(current)
        elif step == "drop_empty":
            kept = [
                e
                for e in current
                if e.text.strip() and (e.text_pair is None or e.text_pair.strip())
            ]
            entry = {"changed": 0, "dropped": len(current) - len(kept)}
            current = kept
        else:
            function = step if callable(step) else TEXT_STEPS[step]
            current, changed = _map_text(current, function)
            entry = {"changed": changed, "dropped": 0}
        name = step if isinstance(step, str) else getattr(step, "__name__", repr(step))
        report.steps.append({"step": name, **entry})
    report.after = len(current)
    logger.info("Cleaning: %s", report)
    return current, report


def _map_text(
    examples: list[TextExample], function: Callable[[str], str]
) -> tuple[list[TextExample], int]:
    out, changed = [], 0
    for e in examples:
        text = function(e.text)
        pair = function(e.text_pair) if e.text_pair is not None else None
        if not isinstance(text, str) or (pair is not None and not isinstance(pair, str)):
            raise ConfigError(
                f"A cleaning function must return str. Received: {type(text).__name__} for "
                f"{e.text[:40]!r}."
            )
        if text != e.text or pair != e.text_pair:
            changed += 1
            e = dataclasses.replace(e, text=text, text_pair=pair)
        out.append(e)
    return out, changed


def _dedupe(examples: list[TextExample]) -> tuple[list[TextExample], dict]:
    first: dict[tuple, TextExample] = {}
    conflicts = 0
    for e in examples:
        key = (e.text, e.text_pair)
        if key not in first:
            first[key] = e
        elif first[key].label != e.label:
            conflicts += 1
    if conflicts:
        logger.warning(
            "dedupe: %d duplicate(s) had a different label than the example kept.", conflicts
        )
    kept = list(first.values())
    return kept, {"changed": 0, "dropped": len(examples) - len(kept), "label_conflicts": conflicts}
