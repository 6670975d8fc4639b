"""Where our encoders keep the parts the fine-tuning stages reach into.

Freezing, layer-wise learning rates, gradual unfreezing, BitFit, LoRA, pruning
and the unused-pooler freeze all need to find the same parts of a backbone:
its embeddings, encoder blocks, pooler and attention projections. Every
backbone is one of our own encoders (`TransformerEncoder` and its family
subclasses, `DebertaV2Encoder`), recognised by their class attribute
`is_own_encoder`, and every family has the same attributes, so the constants
below describe them all. Anything else is refused with a `ConfigError`.

Depth groups of variables (used by layer-wise decay and gradual unfreezing):
0 the embeddings, 1..L the encoder blocks bottom first, L+1 everything else
(task head, pooler). Parts outside the blocks are placed by what they feed:

- ELECTRA's `embeddings_project` (embedding size -> hidden size) belongs to
  the embeddings: group 0.
- DeBERTa-v2's relative position table `rel_embeddings` and the
  encoder-level LayerNorm that normalises it (`rel_layer_norm`, for
  `norm_rel_ebd`) are position embeddings read by every block, like BERT's
  absolute position embeddings: group 0, so they get the smallest rate and
  unfreeze last.
- DeBERTa-v2's optional `conv` (v2-xlarge) mixes block 0's output with its
  input, right after block 0: group 1.

Our encoders keep those parts in flat attributes but name their variables
with the Hugging Face scopes ("deberta/encoder/LayerNorm/gamma:0",
"bert/encoder/layer_._3/attention/query/kernel:0"), so the variable scopes
are listed beside the attribute names.

This module does not import TensorFlow: it only follows attributes and names
(our encoders are recognised by a class attribute, not by `isinstance`).
"""

from __future__ import annotations

import re

from kerastune_nlp.errors import ConfigError

# The class attribute our encoders set to True.
OWN_ENCODER_MARKER = "is_own_encoder"

# The Transformer blocks, bottom first; each has `attention` and `ffn`.
BLOCKS = "blocks"
# Depth group 0. The first is always there; the others only in some configs
# (ELECTRA's projection; DeBERTa-v2's relative table and its LayerNorm).
EMBEDDING_PARTS = ("embeddings", "embeddings_project", "rel_embeddings", "rel_layer_norm")
# Outside the blocks, at block 0's depth (group 1): DeBERTa-v2's convolution.
FIRST_LAYER_PARTS = ("conv",)
# The dense layer over [CLS]; None (or absent) without `use_pooler` and in DeBERTa-v2.
POOLER = "pooler"
# LoRA target -> attribute of a block's `attention` layer. The FFN's
# `output_dense` (under `ffn`) and DeBERTa's relative projections
# (`pos_key_dense`, `pos_query_dense`) are not targets.
PROJECTIONS = {target: f"{target}_dense" for target in ("query", "key", "value", "output")}

# The variable scopes of EMBEDDING_PARTS and FIRST_LAYER_PARTS (HF's names,
# e.g. `rel_layer_norm` -> "encoder/LayerNorm"), for `variable_group`.
EMBEDDING_SCOPES = ("embeddings", "embeddings_project", "encoder/rel_embeddings", "encoder/LayerNorm")
FIRST_LAYER_SCOPES = ("encoder/conv",)

# Names of bias-like variables (Dense / conv `bias`, LayerNorm `beta`) for BitFit.
BIAS_NAMES = ("bias", "beta")

# Config attributes holding the number of blocks: HF's name, DistilBERT's,
# and our configs' and encoders' `num_layers`.
_LAYER_COUNT_ATTRIBUTES = ("num_hidden_layers", "n_layers", "num_layers")

_LAYER_INDEX = re.compile(r"(?:^|/)layer_\._(\d+)/")


def _scope_pattern(scopes) -> re.Pattern:
    # "encoder/rel_embeddings" matches ".../encoder/rel_embeddings/embeddings:0"
    # but not ".../encoder/rel_embeddings_x/..." nor ".../word_embeddings/...".
    alternatives = "|".join(sorted(re.escape(scope) for scope in scopes))
    return re.compile(rf"(?:^|/)(?:{alternatives})(?=[/:])")


_EMBEDDING_SCOPES = _scope_pattern(EMBEDDING_SCOPES)
_FIRST_LAYER_SCOPES = _scope_pattern(FIRST_LAYER_SCOPES)


def is_own_encoder(backbone) -> bool:
    """Whether `backbone` is one of our encoders (`TransformerEncoder`, `DebertaV2Encoder`)."""
    return getattr(type(backbone), OWN_ENCODER_MARKER, False) is True


def check_own_encoder(backbone):
    """Returns `backbone` if it is one of our encoders; raises `ConfigError` otherwise."""
    if not is_own_encoder(backbone):
        kind = type(backbone)
        raise ConfigError(
            "Expected a kerastune_nlp encoder (TransformerEncoder or DebertaV2Encoder). Received: "
            f"`backbone` of type {kind.__module__}.{kind.__qualname__}, which is not a kerastune_nlp "
            "encoder. Build backbones with `kerastune_nlp.backbones.encoder.build_encoder` / "
            "`load_encoder`, or load them with `kerastune_nlp.models.backbones`."
        )
    return backbone


def num_layers(config) -> int:
    """Number of encoder blocks, from a config (ours or a plain one) or one of our encoders."""
    for attribute in _LAYER_COUNT_ATTRIBUTES:
        value = getattr(config, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise ConfigError(
        f"Cannot tell how many layers the backbone has: its config ({type(config).__name__}) has no integer "
        f"{' / '.join(_LAYER_COUNT_ATTRIBUTES)}, which layer-wise options need. Pass a config from "
        "`kerastune_nlp.backbones.config.parse_config`, or train without layerwise_lr_decay, "
        "unfreeze_layers_per_epoch and freeze_layers."
    )


def embeddings(backbone):
    """The main embedding layer (word, position and type embeddings)."""
    return check_own_encoder(backbone).embeddings


def embedding_parts(backbone) -> list[tuple]:
    """Every part in depth group 0, as `(owner, attribute, layer)`.

    The first is the embedding layer itself; parts this config lacks
    (ELECTRA without a projection) are left out.
    """
    return _parts(check_own_encoder(backbone), EMBEDDING_PARTS)


def encoder_layers(backbone) -> list:
    """The backbone's Transformer blocks, bottom first."""
    return list(getattr(check_own_encoder(backbone), BLOCKS))


def first_layer_extras(backbone) -> list[tuple]:
    """Parts outside the blocks at block 0's depth, as `(owner, attribute, layer)`."""
    return _parts(check_own_encoder(backbone), FIRST_LAYER_PARTS)


def pooler(backbone):
    """The pooler over [CLS], or None (built without `use_pooler`; DeBERTa-v2 has none)."""
    return getattr(check_own_encoder(backbone), POOLER, None)


def attention_projections(backbone, targets) -> list[tuple]:
    """`(attention layer, attribute, Dense)` of each LoRA target in each block, bottom block first."""
    return [
        (block.attention, PROJECTIONS[target], getattr(block.attention, PROJECTIONS[target]))
        for block in encoder_layers(backbone)
        for target in targets
    ]


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


def _parts(encoder, attributes) -> list[tuple]:
    """`(encoder, attribute, value)` of each attribute this encoder has and sets."""
    return [
        (encoder, attribute, getattr(encoder, attribute))
        for attribute in attributes
        if getattr(encoder, attribute, None) is not None
    ]
