"""BERT: `BertEncoder`, its config mapping and its PyTorch tensor names.

The reference is transformers' `BertModel` (PyTorch): embeddings (word +
token type + absolute position, LayerNorm, dropout), post-LN blocks, a
tanh pooler over [CLS]. `block_weight_map` is shared with RoBERTa and
ELECTRA, whose blocks are BERT's.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones.config import BertConfig
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import TransformerEncoder


@keras.utils.register_keras_serializable(package="kerastune_nlp")
class BertEncoder(TransformerEncoder):
    """BERT encoder (see `TransformerEncoder` for the arguments)."""

    model_type = "bert"


def encoder_kwargs(config: BertConfig) -> dict:
    """Flat `TransformerEncoder` kwargs from a BERT-style config."""
    return dict(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        initializer_range=config.initializer_range,
        pad_token_id=config.pad_token_id,
    )


def dense_weights(dense, name: str) -> list:
    """`(variable, name, layout)` of a Dense layer as an nn.Linear called `name`."""
    return [(dense.kernel, f"{name}.weight", "linear"), (dense.bias, f"{name}.bias", "copy")]


def norm_weights(norm, name: str) -> list:
    """`(variable, name, layout)` of a LayerNormalization as an nn.LayerNorm called `name`."""
    return [(norm.gamma, f"{name}.weight", "copy"), (norm.beta, f"{name}.bias", "copy")]


def embedding_weights(embeddings, prefix: str = "embeddings") -> list:
    """Word / position / token-type tables and LayerNorm of a `layers.Embeddings`."""
    entries = [
        (embeddings.word_embeddings.embeddings, f"{prefix}.word_embeddings.weight", "copy"),
        (embeddings.position_embeddings.embeddings, f"{prefix}.position_embeddings.weight", "copy"),
    ]
    if embeddings.token_type_embeddings is not None:
        entries.append(
            (
                embeddings.token_type_embeddings.embeddings,
                f"{prefix}.token_type_embeddings.weight",
                "copy",
            )
        )
    return entries + norm_weights(embeddings.layer_norm, f"{prefix}.LayerNorm")


def block_weight_map(block, prefix: str) -> list:
    """A `TransformerBlock` as HF's `BertLayer` at `prefix` ("encoder.layer.0")."""
    attention = block.attention
    return [
        *dense_weights(attention.query_dense, f"{prefix}.attention.self.query"),
        *dense_weights(attention.key_dense, f"{prefix}.attention.self.key"),
        *dense_weights(attention.value_dense, f"{prefix}.attention.self.value"),
        *dense_weights(attention.output_dense, f"{prefix}.attention.output.dense"),
        *norm_weights(block.attention_layer_norm, f"{prefix}.attention.output.LayerNorm"),
        *dense_weights(block.ffn.intermediate_dense, f"{prefix}.intermediate.dense"),
        *dense_weights(block.ffn.output_dense, f"{prefix}.output.dense"),
        *norm_weights(block.output_layer_norm, f"{prefix}.output.LayerNorm"),
    ]


def weight_map(encoder) -> list:
    """Every variable of a BERT-layout encoder with its PyTorch name (no base prefix) and layout."""
    entries = embedding_weights(encoder.embeddings)
    if encoder.embeddings_project is not None:
        entries += dense_weights(encoder.embeddings_project, "embeddings_project")
    for index, block in enumerate(encoder.blocks):
        entries += block_weight_map(block, f"encoder.layer.{index}")
    if encoder.pooler is not None:
        entries += dense_weights(encoder.pooler, "pooler.dense")
    return entries


FAMILY = register_family(
    EncoderFamily(
        model_types=("bert",),
        config_class=BertConfig,
        encoder_class=BertEncoder,
        encoder_kwargs=encoder_kwargs,
        weight_map=weight_map,
        base_model_prefix="bert",
    )
)
