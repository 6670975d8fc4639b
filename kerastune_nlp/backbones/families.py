"""What each Transformer family calls its parts, in one table.

Freezing, layer-wise learning rates, gradual unfreezing, BitFit, LoRA, pruning
and the unused-pooler freeze all need to find the same parts of a backbone:
its main layer, embeddings, encoder blocks, pooler and attention projections.
Two kinds of backbone are served:

- Our own encoders (`TransformerEncoder` and its family subclasses,
  `DebertaV2Encoder`), recognised by their class attribute `is_own_encoder`:
  every family has the same attributes (`blocks`, `embeddings`,
  `embeddings_project`, `rel_embeddings`, `rel_layer_norm`, `conv`, `pooler`,
  `attention.{query,key,value,output}_dense`), so one entry, `OWN_ENCODER`,
  describes them all.
- The Hugging Face TF classes of transformers 4.x, by `config.model_type`:
  each family below says where its parts are (checked against
  transformers 4.57); unknown model types get `DEFAULT`, the names most
  BERT-like families share, with a warning.

The functions raise `ConfigError` naming the options that need a missing part.

Depth groups of variables (used by layer-wise decay and gradual unfreezing):
0 the embeddings, 1..L the encoder blocks bottom first, L+1 everything else
(task head, pooler). Parts outside the blocks are placed by what they feed:

- ELECTRA's `embeddings_project` (embedding size -> hidden size) belongs to
  the embeddings: group 0.
- DeBERTa-v2's relative position table `encoder/rel_embeddings.weight` and
  the encoder-level `LayerNorm` that normalises it (`norm_rel_ebd`) are
  position embeddings read by every block, like BERT's absolute position
  embeddings: group 0, so they get the smallest rate and unfreeze last.
- DeBERTa-v2's optional `encoder/conv` (v2-xlarge) mixes block 0's output
  with its input, right after block 0: group 1.

Paths are attribute paths from the main layer ("encoder.LayerNorm"). In the
HF classes the variable names of those parts start with the same scopes
(".../deberta/encoder/LayerNorm/gamma:0"), so one path serves both for
finding objects (freezing) and for naming variables (groups). Our encoders
keep the parts in flat attributes (`rel_layer_norm`) but name their
variables with the HF scopes ("deberta/encoder/LayerNorm/gamma:0",
"bert/encoder/layer_._3/attention/query/kernel:0"), so `OWN_ENCODER` lists
those scopes separately (`embedding_scopes`, `first_layer_scopes`).

This module does not import TensorFlow: it only follows attributes and names
(our encoders are recognised by a class attribute, not by `isinstance`).
"""

from __future__ import annotations

import dataclasses
import logging
import re

from kerastune_nlp.errors import ConfigError

logger = logging.getLogger("kerastune_nlp.backbones")

# BERT and its descendants (RoBERTa, ELECTRA, XLM-R): TF*SelfAttention holds
# query/key/value; the attention output projection is `dense` in
# TF*SelfOutput. The FFN's TF*Intermediate and TF*Output also call theirs
# `dense`, hence the owner-class check.
_BERT_PROJECTIONS = {
    "query": (("query", "SelfAttention"),),
    "key": (("key", "SelfAttention"),),
    "value": (("value", "SelfAttention"),),
    "output": (("dense", "SelfOutput"),),
}


@dataclasses.dataclass(frozen=True)
class Family:
    """Where one architecture family keeps its parts.

    Args:
        name: str. The family's `model_type` ("default" for unknown types,
            "kerastune_nlp" for our encoders).
        encoder: tuple of str. Paths (from the main layer) of the list of
            blocks, tried in order ("encoder.layer").
        embeddings: tuple of str. Paths of the parts in depth group 0; the
            first is required, the others exist only in some configs.
        projections: dict. LoRA target ("query", "key", "value", "output")
            -> tuple of `(attribute holding the Dense layer, suffix of its
            owner's class name or None)`.
        first_layer_extras: tuple of str. Parts outside the blocks that act at
            block 0's depth (group 1). Defaults to ().
        pooler: str or None. Path of the pooler over [CLS], None if the TF
            base model has none. Defaults to "pooler".
        num_layers_attributes: tuple of str. Config attributes holding the
            number of blocks, tried in order. Defaults to ("num_hidden_layers",).
        embedding_scopes: tuple of str or None. Variable scopes of the
            `embeddings` parts, when they differ from the attribute paths.
            Defaults to None (the paths).
        first_layer_scopes: tuple of str or None. The same for
            `first_layer_extras`. Defaults to None (the paths).
    """

    name: str
    encoder: tuple[str, ...]
    embeddings: tuple[str, ...]
    projections: dict
    first_layer_extras: tuple[str, ...] = ()
    pooler: str | None = "pooler"
    num_layers_attributes: tuple[str, ...] = ("num_hidden_layers",)
    embedding_scopes: tuple[str, ...] | None = None
    first_layer_scopes: tuple[str, ...] | None = None


FAMILIES = {
    family.name: family
    for family in (
        Family("bert", ("encoder.layer",), ("embeddings",), _BERT_PROJECTIONS),
        Family("roberta", ("encoder.layer",), ("embeddings",), _BERT_PROJECTIONS),
        # TFXLMRobertaModel's base_model_prefix is "roberta", as in RoBERTa.
        Family("xlm-roberta", ("encoder.layer",), ("embeddings",), _BERT_PROJECTIONS),
        # No pooler in TFElectraModel; embeddings_project exists only when
        # embedding_size != hidden_size (as in the released checkpoints).
        Family("electra", ("encoder.layer",), ("embeddings", "embeddings_project"),
               _BERT_PROJECTIONS, pooler=None),
        # TFTransformer ("transformer") holds the blocks; the config says n_layers.
        Family(
            "distilbert", ("transformer.layer",), ("embeddings",),
            {
                "query": (("q_lin", "SelfAttention"),),
                "key": (("k_lin", "SelfAttention"),),
                "value": (("v_lin", "SelfAttention"),),
                "output": (("out_lin", "SelfAttention"),),
            },
            pooler=None, num_layers_attributes=("n_layers", "num_hidden_layers"),
        ),
        # Also DeBERTa-v3 checkpoints (same model_type). TFDebertaV2Model has
        # no pooler (ContextPooler lives in the task classes). With share_att_key=False the attention also has
        # pos_key_proj / pos_query_proj for the relative positions: not targets.
        Family(
            "deberta-v2", ("encoder.layer",),
            ("embeddings", "encoder.rel_embeddings", "encoder.LayerNorm"),
            {
                "query": (("query_proj", "SelfAttention"),),
                "key": (("key_proj", "SelfAttention"),),
                "value": (("value_proj", "SelfAttention"),),
                "output": (("dense", "SelfOutput"),),
            },
            first_layer_extras=("encoder.conv",), pooler=None,
        ),
    )
}

# Unknown model types: the names BERT-like families share, and every known
# projection name without the owner check, so LoRA still finds what it can.
DEFAULT = Family(
    "default", ("encoder.layer", "transformer.layer"), ("embeddings",),
    {
        "query": (("query", None), ("q_lin", None), ("query_proj", None)),
        "key": (("key", None), ("k_lin", None), ("key_proj", None)),
        "value": (("value", None), ("v_lin", None), ("value_proj", None)),
        "output": (("dense", "SelfOutput"), ("out_lin", None)),
    },
    num_layers_attributes=("num_hidden_layers", "n_layers", "num_layers"),
)

# Our own encoders, every family alike (see transformer_encoder.py, deberta_v2.py).
# The FFN's `output_dense` is not the attention output: hence the owner check
# (MultiHeadSelfAttention, DisentangledSelfAttention). DeBERTa's relative
# projections `pos_key_dense` / `pos_query_dense` are not targets, as above.
OWN_ENCODER = Family(
    "kerastune_nlp", ("blocks",),
    ("embeddings", "embeddings_project", "rel_embeddings", "rel_layer_norm"),
    {target: ((f"{target}_dense", "Attention"),) for target in ("query", "key", "value", "output")},
    first_layer_extras=("conv",),
    num_layers_attributes=("num_layers",),
    embedding_scopes=(
        "embeddings", "embeddings_project", "encoder.rel_embeddings", "encoder.LayerNorm"
    ),
    first_layer_scopes=("encoder.conv",),
)
# The class attribute our encoders set to True.
OWN_ENCODER_MARKER = "is_own_encoder"

# Names of bias-like variables (Dense / conv `bias`, LayerNorm `beta`) for BitFit.
BIAS_NAMES = ("bias", "beta")

_LAYER_INDEX = re.compile(r"(?:^|/)layer_\._(\d+)/")
_warned: set = set()


def _scope_pattern(paths) -> re.Pattern:
    # "encoder.rel_embeddings" matches ".../encoder/rel_embeddings.weight:0"
    # but not ".../encoder/rel_embeddings_x/..." nor ".../word_embeddings/...".
    scopes = sorted({re.escape(path.replace(".", "/")) for path in paths})
    return re.compile(rf"(?:^|/)(?:{'|'.join(scopes)})(?=[/.:])")


# variable_group gets only a variable, not its model, so names are matched
# against every family's parts at once; the scopes do not collide.
_ALL = (*FAMILIES.values(), DEFAULT, OWN_ENCODER)
_EMBEDDING_SCOPES = _scope_pattern(p for f in _ALL for p in f.embedding_scopes or f.embeddings)
_FIRST_LAYER_SCOPES = _scope_pattern(
    p for f in _ALL for p in f.first_layer_scopes or f.first_layer_extras
)


def is_own_encoder(backbone) -> bool:
    """Whether `backbone` is one of our encoders (`TransformerEncoder`, `DebertaV2Encoder`)."""
    return getattr(type(backbone), OWN_ENCODER_MARKER, False) is True


def family_of(backbone_or_config) -> Family:
    """The `Family` of a backbone, a config or a `model_type` string.

    Our own encoders get `OWN_ENCODER`; HF backbones and configs the entry of
    their `model_type`; unknown or missing model types `DEFAULT` (logged once
    per type).

    Example:
    >>> family_of("distilbert").encoder
    ('transformer.layer',)
    """
    if is_own_encoder(backbone_or_config):
        return OWN_ENCODER
    if isinstance(backbone_or_config, str):
        model_type = backbone_or_config
    else:
        config = getattr(backbone_or_config, "config", backbone_or_config)
        model_type = getattr(config, "model_type", None)
    family = FAMILIES.get(model_type)
    if family is None:
        if model_type not in _warned:
            _warned.add(model_type)
            logger.warning(
                "No family knowledge for model_type %r (known: %s); assuming BERT-like attribute "
                "names. Freezing, layer-wise options and LoRA fail with a clear error if they do "
                "not fit.",
                model_type, sorted(FAMILIES),
            )
        return DEFAULT
    return family


def main_layer(backbone):
    """An HF backbone's main layer (`backbone.<base_model_prefix>`); ours is its own."""
    if is_own_encoder(backbone):
        return backbone
    return getattr(backbone, getattr(backbone, "base_model_prefix", "") or "", backbone)


def num_layers(backbone_config) -> int:
    """Number of encoder blocks, from a config (HF or ours) or one of our encoders."""
    attributes = family_of(backbone_config).num_layers_attributes + DEFAULT.num_layers_attributes
    for attribute in attributes:
        value = getattr(backbone_config, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    model_type = getattr(backbone_config, "model_type", None)
    raise ConfigError(
        f"Cannot tell how many layers the {model_type!r} backbone has "
        "(no num_hidden_layers / n_layers in its config), which layer-wise options need. "
        "Train without layerwise_lr_decay, unfreeze_layers_per_epoch and freeze_layers."
    )


def embeddings(backbone):
    """The main embedding layer (word, position and type embeddings)."""
    return embedding_parts(backbone)[0][2]


def embedding_parts(backbone) -> list[tuple]:
    """Every part in depth group 0, as `(owner, attribute, layer or variable)`.

    The first is the embedding layer itself; optional parts missing from
    this config (ELECTRA without a projection) are left out.
    """
    family = family_of(backbone)
    parts = [_find(main_layer(backbone), path) for path in family.embeddings]
    if parts[0] is None:
        raise ConfigError(
            f"Cannot find the embedding layer of {type(backbone).__name__} "
            f"(looked for `{family.embeddings[0]}` under its main layer), which "
            "freeze_embeddings needs. Train without freeze_embeddings."
        )
    return [part for part in parts if part is not None]


def encoder_layers(backbone) -> list:
    """The backbone's Transformer blocks, bottom first."""
    family = family_of(backbone)
    main = main_layer(backbone)
    for path in family.encoder:
        found = _find(main, path)
        if found and found[2]:
            return list(found[2])
    raise ConfigError(
        f"Cannot find the encoder layers of {type(backbone).__name__} (looked for "
        f"{list(family.encoder)} under its main layer), which freeze_layers needs. "
        "Train without freeze_layers."
    )


def first_layer_extras(backbone) -> list[tuple]:
    """Parts outside the blocks at block 0's depth, as `(owner, attribute, layer)`."""
    main = main_layer(backbone)
    found = [_find(main, path) for path in family_of(backbone).first_layer_extras]
    return [part for part in found if part is not None]


def pooler(backbone):
    """The pooler over [CLS], or None (DistilBERT, ELECTRA, DeBERTa-v2; ours without a pooler)."""
    path = family_of(backbone).pooler
    found = _find(main_layer(backbone), path) if path else None
    return found[2] if found else None


def variable_group(name: str, num_layers: int) -> int:
    """Depth group of a variable name: 0 embeddings, 1..L blocks, L+1 the rest."""
    match = _LAYER_INDEX.search(name)
    if match:
        return 1 + min(int(match.group(1)), num_layers - 1)
    if _FIRST_LAYER_SCOPES.search(name):
        return 1
    if _EMBEDDING_SCOPES.search(name):
        return 0
    return num_layers + 1


def is_bias(variable_name: str) -> bool:
    """Whether BitFit trains this variable (Dense/conv bias, LayerNorm beta)."""
    return variable_name.rsplit("/", 1)[-1].split(":")[0] in BIAS_NAMES


def projections(backbone, targets) -> list[tuple]:
    """LoRA rules `(attribute, owner class suffix or None)` for `targets` in this backbone."""
    family = family_of(backbone)
    return [rule for target in targets for rule in family.projections[target]]


def projection_names(backbone, targets) -> dict:
    """target -> attribute names this backbone's family uses (for error messages)."""
    family = family_of(backbone)
    return {target: [name for name, _ in family.projections[target]] for target in targets}


def _find(main, path: str):
    """`(owner, attribute, value)` at a dotted attribute path, or None."""
    owner, attributes = main, path.split(".")
    for attribute in attributes[:-1]:
        owner = getattr(owner, attribute, None)
        if owner is None:
            return None
    value = getattr(owner, attributes[-1], None)
    return None if value is None else (owner, attributes[-1], value)
