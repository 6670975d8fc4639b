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


def dense_weights(dense, name: str, chunk=None) -> list:
    """`(variable, name, layout)` of a Dense layer as an nn.Linear called `name`.

    Args:
        dense: Dense. A layer without a bias (`use_bias=False`) maps only its kernel.
        name: str. The nn.Linear's name.
        chunk: (index, count) or None. The Dense is row block `index` of
            `count` equal blocks of the nn.Linear (ModernBERT's fused Wqkv).
            Defaults to None (the whole layer).
    """
    suffix = "" if chunk is None else f"@{chunk[0]}/{chunk[1]}"
    entries = [(dense.kernel, f"{name}.weight", "linear" + suffix)]
    if dense.bias is not None:
        entries.append((dense.bias, f"{name}.bias", "copy" + suffix))
    return entries


def norm_weights(norm, name: str) -> list:
    """`(variable, name, layout)` of a LayerNormalization as an nn.LayerNorm called `name`.

    A LayerNormalization without beta (`center=False`) is nn.LayerNorm(bias=False).
    """
    entries = [(norm.gamma, f"{name}.weight", "copy")]
    if norm.beta is not None:
        entries.append((norm.beta, f"{name}.bias", "copy"))
    return entries


def embedding_weights(
    embeddings, prefix: str = "embeddings", projection=None, layer_norm_name: str = "LayerNorm"
) -> list:
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
    return entries + norm_weights(embeddings.layer_norm, f"{prefix}.{layer_norm_name}")


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
