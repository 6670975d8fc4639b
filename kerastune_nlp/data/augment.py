"""Seeded, label-preserving augmentation of the TRAINING split only.

Augmenting dev or test would score the model on its own paraphrases, so
apply these to the training examples after splitting. Variants keep the
label, `text_pair`, `source` and `line` of their original (only `text`
changes), so a bad variant can be traced back.

EDA (Wei and Zou, 2019): synonym replacement, random insertion, random swap
and random deletion, with a pluggable synonym source (WordNet through nltk
when nltk and its `wordnet` data are installed; else a table from a dict or
a `word<TAB>syn1,syn2` file). Nothing is downloaded. Back-translation goes
through a `translate(texts, src, tgt) -> texts` function the user supplies
(a model, an API).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

from kerastune_nlp.data.text_examples import TextExample
from kerastune_nlp.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    MissingDependencyError,
)

logger = logging.getLogger("kerastune_nlp.data")

OPERATIONS = ("synonym_replacement", "random_insertion", "random_swap", "random_deletion")
# English stop words (close to the NLTK list EDA uses): never replaced by synonyms.
_STOPWORDS = frozenset(
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself "
    "she her hers herself it its itself they them their theirs themselves what which who whom "
    "this that these those am is are was were be been being have has had having do does did doing "
    "a an the and but if or because as until while of at by for with about against between into "
    "through during before after above below to from up down in out on off over under again "
    "further then once here there when where why how all any both each few more most other some "
    "such no nor not only own same so than too very s t can will just don should now".split()
)
# Leading and trailing punctuation stays put; the core word is looked up.
_AFFIXES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)

SynonymSource = Union[None, Mapping[str, Sequence[str]], str, Path, Callable[[str], Sequence[str]]]


class SynonymTable:
    """Synonyms from a dict `{word: [synonym, ...]}`; lookup ignores case.

    Example:
    >>> table = SynonymTable({"good": ["fine", "great"]})
    >>> table("Good")
    ['fine', 'great']
    """

    def __init__(self, table: Mapping[str, Sequence[str]]):
        self.table: dict[str, list[str]] = {}
        for word, synonyms in table.items():
            if (
                not isinstance(word, str)
                or isinstance(synonyms, str)
                or not all(isinstance(s, str) for s in synonyms)
            ):
                raise ConfigError(
                    f"Expected a dict of word -> list of synonyms. Received: {word!r}: "
                    f"{synonyms!r}. Write {word!r}: [{synonyms!r}] for a single synonym."
                )
            merged = self.table.setdefault(word.strip().lower(), [])
            for synonym in synonyms:
                synonym = synonym.strip()
                if synonym and synonym.lower() != word.strip().lower() and synonym not in merged:
                    merged.append(synonym)

    @classmethod
    def from_tsv(cls, path, encoding: str = "utf-8") -> "SynonymTable":
        """Reads `word<TAB>syn1,syn2` lines (blank lines and `#` comments skipped)."""
        path = Path(path)
        if not path.is_file():
            raise DataFileNotFoundError(f"Synonym table not found: {str(path)!r}. Check the path.")
        data = path.read_bytes()
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            raise DataFormatError(
                f"{path}, line {line}: bytes that are not valid {encoding}. Pass the file's "
                "`encoding`."
            ) from None
        table: dict[str, list[str]] = {}
        for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
            line = line.rstrip("\r")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = line.split("\t")
            synonyms = (
                [s.strip() for s in cells[1].split(",") if s.strip()] if len(cells) == 2 else []
            )
            if len(cells) != 2 or not cells[0].strip() or not synonyms:
                raise DataFormatError(
                    f"{path}, line {number}: expected `word<TAB>syn1,syn2`. Received: "
                    f"{line[:60]!r}."
                )
            table.setdefault(cells[0].strip(), []).extend(synonyms)
        return cls(table)

    def __call__(self, word: str) -> list[str]:
        return self.table.get(word.lower(), [])


class WordNetSynonyms:
    """Synonyms from WordNet through nltk; never downloads.

    Raises:
        MissingDependencyError: nltk or its `wordnet` data is not installed
            (install them with `pip install nltk` and
            `python -m nltk.downloader wordnet`, or use a `SynonymTable`).
    """

    def __init__(self):
        try:
            from nltk.corpus import wordnet

            wordnet.synsets("test")  # loads the corpus; LookupError when its data is absent
        except ImportError as error:
            raise MissingDependencyError(
                "WordNet synonyms need nltk: pip install nltk, then python -m nltk.downloader "
                "wordnet."
            ) from error
        except LookupError as error:
            raise MissingDependencyError(
                "nltk's WordNet data is not installed: python -m nltk.downloader wordnet."
            ) from error
        self._wordnet = wordnet

    def __call__(self, word: str) -> list[str]:
        names = {
            lemma.name().replace("_", " ")
            for s in self._wordnet.synsets(word)
            for lemma in s.lemmas()
        }
        return sorted(n for n in names if n.lower() != word.lower())


def wordnet_available() -> bool:
    """Whether nltk and its WordNet data are installed (nothing is downloaded)."""
    try:
        WordNetSynonyms()
    except MissingDependencyError:
        return False
    return True


def resolve_synonyms(source: SynonymSource = None) -> Callable[[str], Sequence[str]]:
    """A synonym function from a dict, a TSV path, a function, or None (WordNet).

    Raises:
        MissingDependencyError: `source` is None and WordNet is unavailable.
    """
    if source is None:
        try:
            return WordNetSynonyms()
        except MissingDependencyError as error:
            raise MissingDependencyError(
                f"{error} Or pass a synonym table, which works offline: a dict "
                f"{{word: [synonyms]}} or a file of `word<TAB>syn1,syn2` lines (--synonyms FILE)."
            ) from None
    if isinstance(source, Mapping):
        return SynonymTable(source)
    if isinstance(source, (str, Path)):
        return SynonymTable.from_tsv(source)
    if callable(source):
        return source
    raise ConfigError(
        "Expected a dict, a TSV path, a function word -> synonyms, or None. Received: "
        f"`synonyms`={source!r}."
    )


def default_synonyms(table_path=None) -> Callable[[str], Sequence[str]]:
    """The table at `table_path` when given, else WordNet, else a clear error."""
    return resolve_synonyms(table_path)


@dataclasses.dataclass
class AugmentReport:
    """How augmentation grew the training set.

    Args:
        original: int. Examples in.
        added: int. Variants added.
        method: str. "eda" or "back-translation src->pivot".
        skipped: int. Variants not added (same as the original or an
            earlier variant, or empty).
        per_operation: dict. Variants added per EDA operation.
    """

    original: int
    added: int
    method: str
    skipped: int = 0
    per_operation: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def eda_augment(
    examples: Sequence[TextExample],
    synonyms: SynonymSource = None,
    *,
    alpha: float = 0.1,
    n_aug: int = 4,
    seed: int = 42,
    operations: Sequence[str] = OPERATIONS,
) -> tuple[list[TextExample], AugmentReport]:
    """Returns the originals followed by up to `n_aug` EDA variants of each.

    Variant k of an example uses `operations[k % len(operations)]`, which
    touches `max(1, int(alpha * words))` words (deletion drops each word
    with probability `alpha`, keeping at least one). Words are split on
    whitespace; punctuation around a word stays in place and capitalisation
    carries over to its synonym. Variants equal to the original or to an
    earlier variant are skipped (counted in the report).

    Args:
        examples: training examples (never dev or test).
        synonyms: a dict, a `word<TAB>syn1,syn2` file, a function word ->
            synonyms, or None for WordNet. Defaults to None.
        alpha: float. Share of words an operation touches, in (0, 1).
            Defaults to 0.1.
        n_aug: int. Variants per example. Defaults to 4.
        seed: int. Same seed, same output; each example draws from its own
            generator, so one example's variants do not depend on the others.
            Defaults to 42.
        operations: names from `OPERATIONS`. Defaults to all four.

    Example:
    >>> out, report = eda_augment(train, {"good": ["fine", "great"]}, n_aug=4, seed=7)
    >>> report.added
    """
    operations = tuple(operations)
    unknown = [o for o in operations if o not in OPERATIONS]
    if unknown or not operations:
        raise ConfigError(
            f"Unknown EDA operations {unknown}. Expected a non-empty list of names from "
            f"{list(OPERATIONS)}. Received: `operations`={list(operations)}."
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigError(f"Expected `alpha` in (0, 1), e.g. 0.1. Received: `alpha`={alpha!r}.")
    if isinstance(n_aug, bool) or not isinstance(n_aug, int) or n_aug < 0:
        raise ConfigError(f"Expected `n_aug` to be an int >= 0. Received: `n_aug`={n_aug!r}.")
    needs_synonyms = {"synonym_replacement", "random_insertion"} & set(operations)
    lookup = resolve_synonyms(synonyms) if needs_synonyms else (lambda word: [])

    out = list(examples)
    report = AugmentReport(len(examples), 0, "eda", per_operation={o: 0 for o in operations})
    for index, example in enumerate(examples):
        rng = random.Random(f"{seed}/{index}")  # str seeds hash with SHA-512: stable across runs
        words = example.text.split()
        seen = {" ".join(words)}
        for k in range(n_aug):
            operation = operations[k % len(operations)]
            text = " ".join(_apply(operation, list(words), lookup, alpha, rng))
            if not text or text in seen:
                report.skipped += 1
                continue
            seen.add(text)
            out.append(dataclasses.replace(example, text=text))
            report.per_operation[operation] += 1
    report.added = len(out) - len(examples)
    logger.info(
        "EDA added %d examples to %d (%d variants skipped as duplicates).",
        report.added,
        report.original,
        report.skipped,
    )
    return out, report


def _split_affixes(word: str) -> tuple[str, str, str]:
    return _AFFIXES.match(word).groups()


def _synonyms_of(core: str, lookup) -> list[str]:
    if not core or core.lower() in _STOPWORDS:
        return []
    return [s for s in lookup(core) if s and s.lower() != core.lower()]


def _match_case(synonym: str, original: str) -> str:
    if len(original) > 1 and original.isupper():
        return synonym.upper()
    if original[:1].isupper():
        return synonym[:1].upper() + synonym[1:]
    return synonym


def _apply(operation, words, lookup, alpha, rng) -> list[str]:
    if not words:
        return words
    n = max(1, int(alpha * len(words)))
    if operation == "synonym_replacement":
        candidates = [i for i, w in enumerate(words) if _synonyms_of(_split_affixes(w)[1], lookup)]
        rng.shuffle(candidates)
        for i in candidates[:n]:
            before, core, after = _split_affixes(words[i])
            words[i] = before + _match_case(rng.choice(_synonyms_of(core, lookup)), core) + after
    elif operation == "random_insertion":
        for _ in range(n):
            options = [
                core for core in (_split_affixes(w)[1] for w in words) if _synonyms_of(core, lookup)
            ]
            if not options:
                break
            synonym = rng.choice(_synonyms_of(rng.choice(options), lookup))
            words.insert(rng.randrange(len(words) + 1), synonym)
    elif operation == "random_swap":
        for _ in range(n):
            if len(words) < 2:
                break
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
    elif len(words) > 1:  # random_deletion keeps at least one word
        kept = [w for w in words if rng.random() > alpha]
        words = kept or [rng.choice(words)]
    return words


def back_translate(
    examples: Sequence[TextExample],
    translate: Callable[[list, str, str], Sequence[str]],
    *,
    source: str = "en",
    pivot: str = "de",
    batch_size: int | None = None,
) -> tuple[list[TextExample], AugmentReport]:
    """Adds one paraphrase per example: `translate` to `pivot` and back.

    Paraphrases that are empty or equal to their original (or to another
    text already in the set) are skipped.

    Args:
        examples: training examples (never dev or test).
        translate: function `(texts, src, tgt) -> texts`, one output per
            input, in order.
        source: str. Language of the texts. Defaults to "en".
        pivot: str. Language to go through. Defaults to "de".
        batch_size: int or None. Texts per `translate` call; None sends all
            at once. Defaults to None.

    Example:
    >>> out, report = back_translate(train, my_translate, source="en", pivot="fr")
    """
    if not callable(translate):
        raise ConfigError(
            f"Expected a function translate(texts, src, tgt). Received: `translate`={translate!r}."
        )
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigError(
            "Expected `batch_size` to be a positive int or None. Received: "
            f"`batch_size`={batch_size!r}."
        )
    texts = [e.text for e in examples]
    there = _translate_all(translate, texts, source, pivot, batch_size)
    back = _translate_all(translate, there, pivot, source, batch_size)
    out = list(examples)
    seen = {(e.text, e.text_pair) for e in examples}
    skipped = 0
    for example, text in zip(examples, back):
        key = (text, example.text_pair)
        if not text.strip() or key in seen:
            skipped += 1
            continue
        seen.add(key)
        out.append(dataclasses.replace(example, text=text))
    report = AugmentReport(
        len(examples), len(out) - len(examples), f"back-translation {source}->{pivot}", skipped
    )
    logger.info("Back-translation added %d examples to %d.", report.added, report.original)
    return out, report


def _translate_all(translate, texts: list, src: str, tgt: str, batch_size: int | None) -> list[str]:
    size = batch_size or max(1, len(texts))
    result: list[str] = []
    for start in range(0, len(texts), size):
        batch = texts[start : start + size]
        output = translate(list(batch), src, tgt)
        if isinstance(output, str) or output is None or len(output) != len(batch):
            count = (
                "a str"
                if isinstance(output, str)
                else (None if output is None else f"{len(output)} texts")
            )
            raise ConfigError(
                f"translate(texts, {src!r}, {tgt!r}) must return one text per input. Received: "
                f"{count} for {len(batch)} inputs."
            )
        if not all(isinstance(t, str) for t in output):
            raise ConfigError(
                f"translate(texts, {src!r}, {tgt!r}) must return str texts. Received: "
                f"{list(output)[:3]!r}."
            )
        result.extend(output)
    return result
