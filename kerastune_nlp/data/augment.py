"""Seeded, label-preserving augmentation of the training split only.

EDA (Wei and Zou, 2019): synonym replacement, random insertion, random swap
and random deletion, with a pluggable synonym source (WordNet through nltk
when its data is installed, else a user table). Back-translation goes
through a translate function the user supplies (a model, an API).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import random
from pathlib import Path
from typing import Callable, Mapping, Sequence

from kerastune_nlp.data.text_readers import TextExample
from kerastune_nlp.errors import ConfigError, DataFormatError, MissingDependencyError

logger = logging.getLogger("kerastune_nlp.data")

OPERATIONS = ("synonym_replacement", "random_insertion", "random_swap", "random_deletion")
_STOPWORDS = frozenset(
    "a an the and or but if of at by for with about to from in on is are was were be been being "
    "i me my we our you your he him his she her it its they them their what which who whom this that "
    "these those am do does did have has had not no so than too very can will just".split()
)


class SynonymTable:
    """Synonyms from a dict or a TSV file of `word<TAB>syn1,syn2` lines."""

    def __init__(self, table: Mapping[str, Sequence[str]]):
        self.table = {k.lower(): [s for s in v if s.lower() != k.lower()] for k, v in table.items()}

    @classmethod
    def from_tsv(cls, path, encoding: str = "utf-8") -> "SynonymTable":
        table = {}
        with open(path, encoding=encoding, newline="") as handle:
            for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
                if not row:
                    continue
                if len(row) != 2:
                    raise DataFormatError(f"{path}, line {number}: expected `word<TAB>syn1,syn2`. Received: {row}.")
                table[row[0].strip()] = [s.strip() for s in row[1].split(",") if s.strip()]
        return cls(table)

    def __call__(self, word: str) -> list[str]:
        return self.table.get(word.lower(), [])


class WordNetSynonyms:
    """Synonyms from WordNet (needs nltk and its `wordnet` data, e.g. nltk.download("wordnet"))."""

    def __init__(self):
        try:
            from nltk.corpus import wordnet

            wordnet.synsets("test")
        except ImportError as error:
            raise MissingDependencyError("WordNet synonyms need nltk: pip install nltk.") from error
        except LookupError as error:
            raise MissingDependencyError(
                "WordNet data is not installed: run python -m nltk.downloader wordnet, or pass a "
                "SynonymTable of your own."
            ) from error
        self._wordnet = wordnet

    def __call__(self, word: str) -> list[str]:
        names = {l.name().replace("_", " ") for s in self._wordnet.synsets(word) for l in s.lemmas()}
        names.discard(word)
        return sorted(names)


def default_synonyms(table_path=None):
    """WordNet when available, else the table at `table_path`, else a clear error."""
    if table_path:
        return SynonymTable.from_tsv(table_path)
    try:
        return WordNetSynonyms()
    except MissingDependencyError as error:
        raise MissingDependencyError(
            f"{error} Offline, pass a synonym table (word<TAB>syn1,syn2 per line) instead."
        ) from None


@dataclasses.dataclass
class AugmentReport:
    original: int
    added: int
    method: str


def eda_augment(
    examples: Sequence[TextExample],
    synonyms: Callable[[str], Sequence[str]],
    *,
    alpha: float = 0.1,
    n_aug: int = 4,
    seed: int = 42,
    operations: Sequence[str] = OPERATIONS,
) -> tuple[list[TextExample], AugmentReport]:
    """Returns the originals followed by up to `n_aug` EDA variants of each.

    Args:
        examples: training examples (never augment dev or test).
        synonyms: word -> list of synonyms (`SynonymTable`, `WordNetSynonyms`).
        alpha: float. Share of words each operation touches. Defaults to 0.1.
        n_aug: int. Variants per example; duplicates of the original are
            skipped. Defaults to 4.
        seed: int. Same seed, same output. Defaults to 42.
        operations: names from `OPERATIONS`, used in turn.
    """
    unknown = [o for o in operations if o not in OPERATIONS]
    if unknown or not operations:
        raise ConfigError(f"Unknown EDA operations {unknown}. Expected names from {list(OPERATIONS)}.")
    if not 0 < alpha <= 0.5:
        raise ConfigError(f"Expected `alpha` in (0, 0.5]. Received: `alpha`={alpha}.")
    rng = random.Random(seed)
    out = list(examples)
    for example in examples:
        words = example.text.split()
        seen = {example.text}
        for k in range(n_aug):
            operation = operations[k % len(operations)]
            changed = _apply(operation, list(words), synonyms, alpha, rng)
            text = " ".join(changed)
            if text and text not in seen:
                seen.add(text)
                out.append(dataclasses.replace(example, text=text))
    report = AugmentReport(len(examples), len(out) - len(examples), "eda")
    logger.info("EDA added %d examples to %d.", report.added, report.original)
    return out, report


def _apply(operation, words, synonyms, alpha, rng):
    if not words:
        return words
    n = max(1, int(alpha * len(words)))
    if operation == "synonym_replacement":
        candidates = [i for i, w in enumerate(words) if w.lower() not in _STOPWORDS and synonyms(w)]
        rng.shuffle(candidates)
        for i in candidates[:n]:
            words[i] = rng.choice(list(synonyms(words[i])))
    elif operation == "random_insertion":
        for _ in range(n):
            options = [w for w in words if synonyms(w)]
            if not options:
                break
            words.insert(rng.randrange(len(words) + 1), rng.choice(list(synonyms(rng.choice(options)))))
    elif operation == "random_swap":
        for _ in range(n):
            if len(words) < 2:
                break
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
    else:  # random_deletion: keep at least one word
        kept = [w for w in words if rng.random() > alpha]
        words = kept or [rng.choice(words)]
    return words


def back_translate(
    examples: Sequence[TextExample],
    translate: Callable[[list[str], str, str], list[str]],
    *,
    source: str = "en",
    pivot: str = "de",
) -> tuple[list[TextExample], AugmentReport]:
    """Adds a paraphrase of each example via `translate(texts, src, tgt)` there and back.

    Paraphrases identical to their original are not added.
    """
    texts = [e.text for e in examples]
    there = translate(texts, source, pivot)
    back = translate(list(there), pivot, source)
    if len(back) != len(texts):
        raise ConfigError(f"translate returned {len(back)} texts for {len(texts)} inputs; it must keep the count.")
    out = list(examples)
    out += [dataclasses.replace(e, text=t) for e, t in zip(examples, back) if t and t.strip() and t != e.text]
    report = AugmentReport(len(examples), len(out) - len(examples), f"back-translation {source}->{pivot}")
    logger.info("Back-translation added %d examples to %d.", report.added, report.original)
    return out, report
