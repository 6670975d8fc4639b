"""NER data sets from the Hugging Face hub, through the `datasets` library."""

from __future__ import annotations

import logging

from kerastune_nlp.data.conll import Sentence
from kerastune_nlp.errors import DataFormatError, HubUnavailableError

logger = logging.getLogger("kerastune_nlp.data")

# Short names for hub data sets. The original `conll2003` repository used a
# loading script, which datasets 4+ no longer runs; this copy is plain parquet.
HUB_ALIASES = {"conll2003": "lhoestq/conll2003"}
_SPLITS = {"train": "train", "validation": "dev", "test": "test"}


def load_hub_conll(name: str = "conll2003", *, cache_dir=None) -> dict[str, list[Sentence]]:
    """Downloads a token-classification data set and returns train/dev/test sentences.

    Args:
        name: str. A short name from `HUB_ALIASES` or a hub id whose rows have
            `tokens` and integer `ner_tags` with ClassLabel names. Defaults
            to "conll2003".
        cache_dir: str or None. The `datasets` cache. Defaults to its own.

    Example:
    >>> splits = load_hub_conll("conll2003")  # needs the hub
    """
    import datasets

    hub_id = HUB_ALIASES.get(name, name)
    _check_reachable(hub_id, name)
    try:
        loaded = datasets.load_dataset(hub_id, cache_dir=cache_dir)
    except (ConnectionError, OSError, ValueError, RuntimeError) as error:
        # datasets raises several types offline (ConnectionError,
        # DatasetNotFoundError, LocalEntryNotFoundError); all mean the same here.
        raise HubUnavailableError(
            f"Could not download the data set {hub_id!r} from the Hugging Face hub "
            f"({type(error).__name__}: {str(error)[:200]}). Received: `dataset`={name!r}. "
            "If you are offline, pass local CoNLL files with --train/--dev/--test instead."
        ) from error
    result = {}
    for split, ours in _SPLITS.items():
        if split not in loaded:
            continue
        table = loaded[split]
        feature = table.features.get("ner_tags")
        names = getattr(getattr(feature, "feature", None), "names", None)
        if "tokens" not in table.column_names or names is None:
            raise DataFormatError(
                f"The data set {hub_id!r} ({split}) lacks `tokens` and ClassLabel `ner_tags` columns. "
                f"Found columns {table.column_names}. Pick a token-classification data set."
            )
        result[ours] = [
            Sentence(tuple(row["tokens"]), tuple(names[i] for i in row["ner_tags"]), f"{hub_id}:{split}", index + 1)
            for index, row in enumerate(table)
            if row["tokens"]
        ]
    logger.info("Loaded %s: %s", hub_id, {k: len(v) for k, v in result.items()})
    return result


def _check_reachable(hub_id: str, name: str) -> None:
    """Fails in seconds when offline, where `datasets` would retry for ~30 s.

    Skipped when the user asked for offline mode, so a cached copy still loads.
    """
    import os

    from huggingface_hub import HfApi

    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return
    try:
        HfApi().dataset_info(hub_id, timeout=10)
    except Exception as error:  # any failure here means we cannot download it
        raise HubUnavailableError(
            f"Could not reach the data set {hub_id!r} on the Hugging Face hub "
            f"({type(error).__name__}). Received: `dataset`={name!r}. If you are offline, pass "
            "local CoNLL files with --train/--dev/--test instead (or set HF_DATASETS_OFFLINE=1 "
            "to use a copy already in the datasets cache)."
        ) from error
