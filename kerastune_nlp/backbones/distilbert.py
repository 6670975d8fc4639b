"""DistilBERT: word + position embeddings (no token types), BERT-style post-LN blocks.

Every LayerNorm uses eps 1e-12 (hard-coded in HF). HF names: embeddings.*,
transformer.layer.N.attention.{q_lin,k_lin,v_lin,out_lin}, sa_layer_norm,
ffn.{lin1,lin2}, output_layer_norm. No pooler.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones.bert import dense_weights, embedding_weights, norm_weights
from kerastune_nlp.backbones.config import DistilBertConfig
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import TransformerEncoder


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


def weight_map(encoder) -> list:
    entries = embedding_weights(encoder.embeddings)
    for index, block in enumerate(encoder.blocks):
        prefix, attention = f"transformer.layer.{index}", block.attention
        entries += [
            *dense_weights(attention.query_dense, f"{prefix}.attention.q_lin"),
            *dense_weights(attention.key_dense, f"{prefix}.attention.k_lin"),
            *dense_weights(attention.value_dense, f"{prefix}.attention.v_lin"),
            *dense_weights(attention.output_dense, f"{prefix}.attention.out_lin"),
            *norm_weights(block.attention_layer_norm, f"{prefix}.sa_layer_norm"),
            *dense_weights(block.ffn.intermediate_dense, f"{prefix}.ffn.lin1"),
            *dense_weights(block.ffn.output_dense, f"{prefix}.ffn.lin2"),
            *norm_weights(block.output_layer_norm, f"{prefix}.output_layer_norm"),
        ]
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
