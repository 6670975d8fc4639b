"""The one gateway to `datasets` and the Hugging Face hub: every `datasets.load_dataset` call goes through here.

Offline mode (HF_DATASETS_OFFLINE or HF_HUB_OFFLINE, set before or after
`datasets` was imported) is honoured on every path: only the cache is read.
Otherwise the hub is probed first, so a machine without network fails in
about a second instead of retrying for half a minute. Every caller gets the
same messages, ending with its own `fix`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from pathlib import Path

from kerastune_nlp.data.conll import Sentence
from kerastune_nlp.data.token_rows import sentences_from_rows
from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError, HubUnavailableError

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
_CONLL_FIX = "Pass local CoNLL files with --train/--dev/--test instead."
# Local files `datasets` reads as one split, by suffix.
LOADERS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".ndjson": ("json", {}),
    ".parquet": ("parquet", {}),
    ".arrow": ("arrow", {}),
}


def import_datasets(fix: str):
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - datasets is a core dependency
        from kerastune_nlp.errors import MissingDependencyError

        raise MissingDependencyError(
            f"Loading data sets needs the `datasets` package. Received: it is not installed. Run `pip install "
            f"datasets`. {fix}"
        ) from error
    return datasets


def load_from_hub(hub_id: str, *, received: str, fix: str, script_fix: str | None = None, cache_dir=None,
                  **options):
    """`datasets.load_dataset(hub_id, ...)` from the hub or, offline, from the cache only.

    Args:
        hub_id: str. "owner/name" on the hub.
        received: str. How the user named it, for messages, e.g. "`name`='conll2003'".
        fix: str. What to do instead, ending every message.
        script_fix: str or None. The fix when the repository holds only a
            loading script. Defaults to `fix`.
        cache_dir: str or None. The `datasets` cache. Defaults to its own.
        **options: passed on (`split`, `name`, `data_files`).
    """
    datasets = import_datasets(fix)
    offline = _offline_requested()
    if not offline:
        _check_reachable(hub_id, received, fix)
    try:
        with _offline_mode(offline):
            return datasets.load_dataset(hub_id, cache_dir=cache_dir, **options)
    except RuntimeError as error:
        if "scripts are no longer supported" not in str(error):
            raise
        raise ConfigError(
            f"Expected a hub data set stored as data files. Received: {received}, whose repository {hub_id!r} "
            f"holds a loading script, which datasets 4 and later no longer run. {script_fix or fix}"
        ) from error
    except ValueError as error:
        split = options.get("split")
        if split and ("Unknown split" in str(error) or "Bad split" in str(error)):
            raise ConfigError(
                f"The data set {hub_id!r} has no split {split!r} ({error}). Received: `split`={split!r}."
            ) from None
        raise ConfigError(
            f"Could not load the data set {hub_id!r}: {str(error)[:300]}. Received: {received}. {fix}"
        ) from error
    except (ConnectionError, OSError) as error:
        # Offline and not cached: ConnectionError (OfflineModeIsEnabled) in datasets 5,
        # DatasetNotFoundError (a FileNotFoundError) or LocalEntryNotFoundError; a failed
        # download mid-way: an OSError.
        reason = "offline mode is on and it is not in the datasets cache" if offline else "download failed"
        raise HubUnavailableError(
            f"Could not download the data set {hub_id!r} from the Hugging Face hub ({reason}: "
            f"{type(error).__name__}: {str(error)[:200]}). Received: {received}. {fix} Or run once with network "
            "access to fill the cache."
        ) from error


def load_split(name: str, split: str, *, config_name=None, data_files=None, cache_dir=None, fix: str):
    """One split of a local data file (the file is the split), a local folder, or a hub data set."""
    datasets = import_datasets(fix)
    path = Path(name).expanduser()
    # A hub id is "name" or "owner/name"; anything else path-like is meant to be local.
    looks_local = (path.exists() or name.startswith((".", "~", "/")) or "\\" in name or name.count("/") > 1
                   or path.suffix.lower() in LOADERS)
    if not looks_local:
        options = {"name": config_name} if config_name else {}
        return load_from_hub(name, received=f"`name_or_path`={name!r}", fix=fix, cache_dir=cache_dir, split=split,
                             data_files=data_files, **options)
    if not path.exists():
        raise DataFileNotFoundError(f"Data file or folder not found: {name!r}. Check the path.")
    kwargs = {}
    if path.is_file():
        if path.suffix.lower() not in LOADERS:
            raise ConfigError(
                f"Cannot tell how to load {name!r} from its suffix. Expected one of {sorted(LOADERS)}. "
                'For `LABEL text` lines use read_text_file(path, file_format="label_text").'
            )
        if data_files is not None or config_name:
            raise ConfigError(
                f"{name!r} is a single file, which is itself the split asked for: `data_files` and "
                "`config_name` apply to hub ids and folders only. Received: "
                f"`data_files`={data_files!r}, `config_name`={config_name!r}."
            )
        builder, kwargs = LOADERS[path.suffix.lower()]
        base = split.split("[")[0]  # "train[:10%]" slices the file loaded as "train"
        args, data_files = (builder,), {base: str(path)}
    else:
        args = (str(path),) + ((config_name,) if config_name else ())
    try:
        return datasets.load_dataset(*args, split=split, data_files=data_files, cache_dir=cache_dir, **kwargs)
    except ValueError as error:
        if "Unknown split" in str(error) or "Bad split" in str(error):
            raise ConfigError(
                f"The data set {name!r} has no split {split!r} ({error}). Received: `split`={split!r}."
            ) from None
        raise DataFormatError(f"{name}: `datasets` could not read it ({error}).") from error
    except (ConnectionError, OSError) as error:
        raise DataFormatError(f"{name}: `datasets` could not read it ({type(error).__name__}: {error}).") from error


def load_hub_conll(name: str = "conll2003", *, cache_dir=None,
                   document_column: str | None = None) -> dict[str, list[Sentence]]:
    """Downloads a token-classification data set and returns its sentences by split.

    Rows need `tokens` (strings) and `ner_tags` (integers with ClassLabel
    names, or tag strings); tags come back in IOB2. Split "validation" is
    returned as "dev". Offline (HF_DATASETS_OFFLINE=1 or HF_HUB_OFFLINE=1) only
    the `datasets` cache is used.

    Args:
        name: str. "conll2003" (loads `CONLL2003_HUB_ID`) or a hub id such as
            "user/dataset". Defaults to "conll2003".
        cache_dir: str or None. The `datasets` cache folder. Defaults to its own.
        document_column: str or None. The column holding each row's document
            id (rows with the same id form one document, in row order).
            Defaults to None (no documents).

    Returns:
        `{"train": [...], "dev": [...], "test": [...]}` (the splits it has).

    Example:
    >>> splits = load_hub_conll("conll2003")  # needs the hub or a warm cache
    >>> sorted(splits), splits["train"][0].tags[:2]
    (['dev', 'test', 'train'], ('B-ORG', 'O'))
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Expected a hub data set name such as \"conll2003\". Received: `name`={name!r}.")
    hub_id = HUB_ALIASES.get(name, name)
    loaded = load_from_hub(
        hub_id, received=f"`name`={name!r}", fix=_CONLL_FIX, cache_dir=cache_dir,
        script_fix=f'Use a copy stored as parquet (name="conll2003" loads {CONLL2003_HUB_ID!r}), or local CoNLL '
                   "files with --train/--dev/--test.",
    )
    return _to_sentences(loaded, hub_id, document_column)


def _to_sentences(loaded, hub_id: str, document_column: str | None = None) -> dict[str, list[Sentence]]:
    """Our train/dev/test sentences from a DatasetDict, checking columns and tags (rows as in `token_rows`)."""
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
        if document_column is not None and document_column not in table.column_names:
            raise ConfigError(
                f"The data set {hub_id!r} ({split}) has no document column {document_column!r} "
                f"(--document-column). Received: columns {table.column_names}. Pass the column that holds "
                "the document id, or leave --document-column out."
            )
        wanted = ["tokens", "ner_tags"] + ([document_column] if document_column else [])
        columns = table.select_columns(wanted).to_dict()
        rows = ((number, {key: columns[key][number - 1] for key in wanted})
                for number in range(1, table.num_rows + 1))
        result.setdefault(ours, []).extend(sentences_from_rows(
            rows, f"{hub_id}[{split}]", unit="row", document_column=document_column, tag_names=names))
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


def _check_reachable(hub_id: str, received: str, fix: str) -> None:
    """Fails in about a second when the hub cannot be reached (datasets would retry ~25 s)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().dataset_info(hub_id, timeout=10)
    except GatedRepoError as error:
        raise HubUnavailableError(
            f"The data set {hub_id!r} is gated on the Hugging Face hub. Received: {received}. Accept its terms "
            f"on the hub and log in (`hf auth login`). {fix}"
        ) from error
    except RepositoryNotFoundError as error:
        raise ConfigError(
            f"Expected a data set that exists on the Hugging Face hub. Received: {received} ({hub_id!r} was not "
            f"found). Check the id (owner/name). {fix}"
        ) from error
    except _network_errors() as error:
        raise HubUnavailableError(
            f"Could not download the data set {hub_id!r}: the Hugging Face hub cannot be reached "
            f"({type(error).__name__}). Received: {received}. {fix} To use a copy already in the datasets cache, "
            "set HF_DATASETS_OFFLINE=1."
        ) from error
