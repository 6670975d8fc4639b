"""BERT: `BertEncoder`, its config mapping and its PyTorch tensor names.

The reference is transformers' `BertModel` (PyTorch): embeddings (word +
token type + absolute position, LayerNorm, dropout), post-LN blocks, a
tanh pooler over [CLS]. `BLOCK_NAMES` and `weight_map` serve RoBERTa and
ELECTRA too, whose blocks are BERT's.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones.config import BertConfig
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import TransformerEncoder
from kerastune_nlp.backbones.weight_maps import block_weights, dense_weights, embedding_weights


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


# HF's `BertLayer` names of a block's parts (RoBERTa and ELECTRA blocks are BERT's).
BLOCK_NAMES = {
    "attention.query_dense": "attention.self.query",
    "attention.key_dense": "attention.self.key",
    "attention.value_dense": "attention.self.value",
    "attention.output_dense": "attention.output.dense",
    "attention_layer_norm": "attention.output.LayerNorm",
    "ffn.intermediate_dense": "intermediate.dense",
    "ffn.output_dense": "output.dense",
    "output_layer_norm": "output.LayerNorm",
}


def weight_map(encoder) -> list:
    """Every variable of a BERT-layout encoder with its PyTorch name (no base prefix) and layout."""
    entries = embedding_weights(encoder.embeddings)
    if encoder.embeddings_project is not None:
        entries += dense_weights(encoder.embeddings_project, "embeddings_project")
    for index, block in enumerate(encoder.blocks):
        entries += block_weights(block, f"encoder.layer.{index}", BLOCK_NAMES)
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
