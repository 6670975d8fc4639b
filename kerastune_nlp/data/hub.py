"""NER data sets from the Hugging Face hub, through the `datasets` library."""

from __future__ import annotations

import importlib

import contextlib
import logging
import os

from kerastune_nlp.data.conll import Sentence, is_valid_tag, to_iob2
from kerastune_nlp.errors import ConfigError, DataFormatError, HubUnavailableError

logger = logging.getLogger("kerastune_nlp.data")

# The canonical CoNLL-2003 repository, eriktks/conll2003 (formerly plain
# "conll2003"), still holds only its loading script `conll2003.py`, and
# datasets 4 and later refuse every repository with a script ("Dataset
# scripts are no longer supported"). lhoestq/conll2003, by a datasets
# maintainer, holds the same splits as parquet with ClassLabel `ner_tags`
# (IOB2 names O, B-PER, I-PER, ...). Switch back here once eriktks/conll2003
# ships data files.
CONLL2003_HUB_ID = "lhoestq/conll2003"
HUB_ALIASES = {"conll2003": CONLL2003_HUB_ID}
_SPLITS = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}
_TRUE = {"1", "ON", "YES", "TRUE"}  # how datasets and huggingface_hub read these variables


def load_hub_conll(name: str = "conll2003", *, cache_dir=None) -> dict[str, list[Sentence]]:
    """Downloads a token-classification data set and returns its sentences by split.

    Rows need `tokens` (strings) and `ner_tags` (integers with ClassLabel
    names, or tag strings); tags come back in IOB2. Split "validation" is
    returned as "dev". Offline (HF_DATASETS_OFFLINE=1 or HF_HUB_OFFLINE=1) only
    the `datasets` cache is used; otherwise the hub is probed first so a
    machine without network fails in about a second instead of retrying for
    half a minute.

    Args:
        name: str. "conll2003" (loads `CONLL2003_HUB_ID`) or a hub id such as
            "user/dataset". Defaults to "conll2003".
        cache_dir: str or None. The `datasets` cache folder. Defaults to its own.

    Returns:
        `{"train": [...], "dev": [...], "test": [...]}` (the splits it has).

    Example:
    >>> splits = load_hub_conll("conll2003")  # needs the hub or a warm cache
    >>> sorted(splits), splits["train"][0].tags[:2]
    (['dev', 'test', 'train'], ('B-ORG', 'O'))
    """
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - datasets is a core dependency
        from kerastune_nlp.errors import MissingDependencyError

        raise MissingDependencyError(
            "Loading hub data sets needs the `datasets` package. Received: it is not installed. "
            "Run `pip install datasets`, or pass local CoNLL files with --train/--dev/--test."
        ) from error

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Expected a hub data set name such as \"conll2003\". Received: `name`={name!r}.")
    hub_id = HUB_ALIASES.get(name, name)
    offline = _offline_requested()
    if not offline:
        _check_reachable(hub_id, name)
    try:
        with _offline_mode(offline):
            loaded = datasets.load_dataset(hub_id, cache_dir=cache_dir)
    except RuntimeError as error:
        if "scripts are no longer supported" not in str(error):
            raise
        raise ConfigError(
            f"Expected a hub data set stored as data files. Received: `name`={name!r}, whose "
            f"repository {hub_id!r} holds a loading script, which datasets 4 and later no longer "
            "run. Use a copy stored as parquet (name=\"conll2003\" loads "
            f"{CONLL2003_HUB_ID!r}), or local CoNLL files with --train/--dev/--test."
        ) from error
    except (ConnectionError, OSError) as error:
        # Offline and not cached: ConnectionError (OfflineModeIsEnabled) in
        # datasets 5; a failed download mid-way: an OSError.
        reason = "offline mode is on and it is not in the datasets cache" if offline else "download failed"
        raise HubUnavailableError(
            f"Could not download the data set {hub_id!r} from the Hugging Face hub ({reason}: "
            f"{type(error).__name__}: {str(error)[:200]}). Received: `name`={name!r}. Pass local "
            "CoNLL files with --train/--dev/--test instead, or run once with network access "
            "to fill the cache."
        ) from error
    except ValueError as error:
        raise ConfigError(
            f"Could not load the data set {hub_id!r}: {str(error)[:300]}. Received: `name`={name!r}. "
            "Pick a token-classification data set with one configuration, or use local files."
        ) from error
    return _to_sentences(loaded, hub_id)


def _to_sentences(loaded, hub_id: str) -> dict[str, list[Sentence]]:
    """Our train/dev/test sentences from a DatasetDict, checking columns and tags."""
    result: dict[str, list[Sentence]] = {}
    for split in loaded:
        ours = _SPLITS.get(split)
        if ours is None:
            logger.info("%s: skipping split %r (not train/validation/test).", hub_id, split)
            continue
        table = loaded[split]
        feature = table.features.get("ner_tags")
        inner = getattr(feature, "feature", None)
        names = getattr(inner, "names", None)
        as_strings = getattr(inner, "dtype", None) == "string"
        if "tokens" not in table.column_names or (names is None and not as_strings):
            raise DataFormatError(
                f"Expected the data set {hub_id!r} ({split}) to have `tokens` and `ner_tags` "
                f"columns, `ner_tags` as ClassLabel ids or tag strings. Received: columns "
                f"{table.column_names}, `ner_tags` {feature}. Pick a token-classification data set."
            )
        columns = table.select_columns(["tokens", "ner_tags"]).to_dict()
        sentences, skipped, converted = [], 0, 0
        for row, (tokens, ids) in enumerate(zip(columns["tokens"], columns["ner_tags"]), start=1):
            if not tokens:
                skipped += 1
                continue
            source = f"{hub_id}[{split}] row {row}"
            tags = list(ids) if as_strings else [names[i] for i in ids]
            bad = [t for t in tags if not is_valid_tag(t)]
            if bad:
                raise DataFormatError(
                    f"{source}: expected tags `O`, `B-<type>` or `I-<type>`. Received: {bad[:3]}. "
                    "This data set does not use IOB tags; convert it and pass local files."
                )
            fixed, changed = to_iob2(tags)
            converted += len(changed)
            sentences.append(Sentence(tuple(tokens), tuple(fixed), source, 0))
        if skipped:
            logger.info("%s[%s]: skipped %d empty row(s).", hub_id, split, skipped)
        if converted:
            logger.info("%s[%s]: converted %d IOB1 tag(s) to IOB2.", hub_id, split, converted)
        result.setdefault(ours, []).extend(sentences)
    if not result.get("train"):
        raise DataFormatError(
            f"Expected a train split in the data set {hub_id!r}. Received: splits {list(loaded)}. "
            "Pick a data set with a train split, or pass local files with --train/--dev/--test."
        )
    logger.info("Loaded %s: %s", hub_id, {k: len(v) for k, v in result.items()})
    return result


def _offline_requested() -> bool:
    """True when the user asked for offline mode, now or when datasets was imported."""
    import datasets

    from_env = any(
        os.environ.get(variable, "").strip().upper() in _TRUE
        for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    )
    return from_env or bool(datasets.config.HF_HUB_OFFLINE)


@contextlib.contextmanager
def _offline_mode(offline: bool):
    """Makes an offline request take effect even if set after datasets was imported.

    datasets and huggingface_hub read HF_*_OFFLINE once, at import; without
    this, a variable set later would leave datasets retrying for ~25 s.
    """
    if not offline:
        yield
        return
    import datasets
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _network_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError,)  # requests' errors are OSErrors
    # huggingface_hub 1.x uses httpx and 2.x httpx2; neither's errors are OSErrors.
    for module in ("httpx", "httpx2"):
        try:
            errors += (importlib.import_module(module).HTTPError,)
        except (ImportError, AttributeError):
            pass
    return errors


def _check_reachable(hub_id: str, name: str) -> None:
    """Fails in about a second when the hub cannot be reached (datasets would retry ~25 s)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().dataset_info(hub_id, timeout=10)
    except GatedRepoError as error:
        raise HubUnavailableError(
            f"The data set {hub_id!r} is gated on the Hugging Face hub. Received: `name`={name!r}. "
            "Accept its terms on the hub and log in (`hf auth login`), or pass local CoNLL files "
            "with --train/--dev/--test."
        ) from error
    except RepositoryNotFoundError as error:
        raise ConfigError(
            f"Expected a data set that exists on the Hugging Face hub. Received: `name`={name!r} "
            f"({hub_id!r} was not found). Check the id (owner/name), or pass local CoNLL files "
            "with --train/--dev/--test."
        ) from error
    except _network_errors() as error:
        raise HubUnavailableError(
            f"Could not download the data set {hub_id!r}: the Hugging Face hub cannot be reached "
            f"({type(error).__name__}). Received: `name`={name!r}. Pass local CoNLL files with "
            "--train/--dev/--test instead (or set HF_DATASETS_OFFLINE=1 to use a copy already "
            "in the datasets cache)."
        ) from error
