"""DistilBERT: word + position embeddings (no token types), BERT-style post-LN blocks.

Every LayerNorm uses eps 1e-12 (hard-coded in HF). HF names: embeddings.*,
transformer.layer.N.attention.{q_lin,k_lin,v_lin,out_lin}, sa_layer_norm,
ffn.{lin1,lin2}, output_layer_norm. No pooler.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones.config import DistilBertConfig
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import TransformerEncoder
from kerastune_nlp.backbones.weight_maps import block_weights, embedding_weights


@keras.utils.register_keras_serializable(package="kerastune_nlp")
class DistilBertEncoder(TransformerEncoder):
    """DistilBERT encoder (see `TransformerEncoder`); `type_vocab_size` defaults to 0 (none)."""

    model_type = "distilbert"
    supports_pooler = False

    def __init__(self, *args, type_vocab_size=0, **kwargs):
        super().__init__(*args, type_vocab_size=type_vocab_size, **kwargs)


def encoder_kwargs(config: DistilBertConfig) -> dict:
    return dict(
        vocab_size=config.vocab_size,
        hidden_size=config.dim,
        num_layers=config.n_layers,
        num_heads=config.n_heads,
        intermediate_size=config.hidden_dim,
        hidden_act=config.activation,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=0,
        layer_norm_eps=1e-12,
        initializer_range=config.initializer_range,
        pad_token_id=config.pad_token_id,
        sinusoidal_positions=config.sinusoidal_pos_embds,
    )


# HF's `TransformerBlock` (DistilBERT) names of a block's parts.
BLOCK_NAMES = {
    "attention.query_dense": "attention.q_lin",
    "attention.key_dense": "attention.k_lin",
    "attention.value_dense": "attention.v_lin",
    "attention.output_dense": "attention.out_lin",
    "attention_layer_norm": "sa_layer_norm",
    "ffn.intermediate_dense": "ffn.lin1",
    "ffn.output_dense": "ffn.lin2",
    "output_layer_norm": "output_layer_norm",
}


def weight_map(encoder) -> list:
    entries = embedding_weights(encoder.embeddings)
    for index, block in enumerate(encoder.blocks):
        entries += block_weights(block, f"transformer.layer.{index}", BLOCK_NAMES)
    return entries


FAMILY = register_family(
    EncoderFamily(
        model_types=("distilbert",),
        config_class=DistilBertConfig,
        encoder_class=DistilBertEncoder,
        encoder_kwargs=encoder_kwargs,
        weight_map=weight_map,
        base_model_prefix="distilbert",
    )
)
