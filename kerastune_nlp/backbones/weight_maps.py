"""Building blocks of the families' weight maps: `(variable, pytorch_name, layout)` triples.

A family's `weight_map(encoder)` (the contract is in registry.py) is these
pieces joined: `dense_weights` (nn.Linear), `norm_weights` (nn.LayerNorm),
`embedding_weights` (the input tables, optional projection and LayerNorm)
and `block_weights`, which walks a block's parts in the order of a
family's name table. BERT, DistilBERT and DeBERTa-v2 blocks have the same
parts (attention projections, two LayerNorms, the feed-forward pair) under
different Hugging Face names, so each family only writes its table.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras


def dense_weights(dense, name: str) -> list:
    """`(variable, name, layout)` of a Dense layer as an nn.Linear called `name`."""
    return [(dense.kernel, f"{name}.weight", "linear"), (dense.bias, f"{name}.bias", "copy")]


def norm_weights(norm, name: str) -> list:
    """`(variable, name, layout)` of a LayerNormalization as an nn.LayerNorm called `name`."""
    return [(norm.gamma, f"{name}.weight", "copy"), (norm.beta, f"{name}.bias", "copy")]


def embedding_weights(embeddings, prefix: str = "embeddings", projection=None) -> list:
    """Word, position and token-type tables (those present), `projection`, then the LayerNorm.

    Args:
        embeddings: `embeddings.Embeddings` or `DebertaV2Embeddings`. Tables
            that are None (no token types, DeBERTa-v3's absent positions) are skipped.
        prefix: str. Defaults to "embeddings".
        projection: Dense or None. A bias-free projection applied before the
            LayerNorm (DeBERTa's `embed_proj`). Defaults to None.
    """
    tables = (
        embeddings.word_embeddings,
        embeddings.position_embeddings,
        embeddings.token_type_embeddings,
    )
    # Table layer names are Hugging Face's ("word_embeddings", ...).
    entries = [
        (table.embeddings, f"{prefix}.{table.name}.weight", "copy")
        for table in tables
        if table is not None
    ]
    if projection is not None:
        entries.append((projection.kernel, f"{prefix}.{projection.name}.weight", "linear"))
    return entries + norm_weights(embeddings.layer_norm, f"{prefix}.LayerNorm")


def block_weights(block, prefix: str, names: dict) -> list:
    """A block's parts as Hugging Face names them, in the order of `names`.

    Args:
        block: a `TransformerBlock` or `DebertaV2Block`.
        prefix: str. The block's PyTorch prefix ("encoder.layer.0").
        names: dict. Attribute path of a part ("attention.query_dense") ->
            its PyTorch module name under `prefix` ("attention.self.query").
            Parts that are None (DeBERTa's optional relative projections) are skipped.
    """
    entries = []
    for path, name in names.items():
        part = block
        for attribute in path.split("."):
            part = getattr(part, attribute)
        if part is None:
            continue
        weights = (
            norm_weights if isinstance(part, keras.layers.LayerNormalization) else dense_weights
        )
        entries += weights(part, f"{prefix}.{name}")
    return entries
