"""DeBERTa-v2 and DeBERTa-v3 (model_type "deberta-v2") as tf-keras layers.

Follows transformers v5's PyTorch `modeling_deberta_v2.py` op for op:
disentangled self-attention (content->content plus content->position "c2p"
and position->content "p2c" scores over log-bucketed relative distances),
post-LN blocks, the optional convolution after block 0 (v2-xlarge and up),
no pooler. DeBERTa-v3 is the same code with `share_att_key`, position
buckets, a LayerNorm on the relative table and no absolute positions.

Variables (under the encoder's name): `embeddings/...` and
`encoder/rel_embeddings`, `encoder/LayerNorm` (depth group 0, as the
relative table is read by every block), `encoder/layer_._<i>/...` (the
blocks), `encoder/conv/...` (group 1: it mixes block 0's output with its
input). Padded positions come out as the reference computes them too (its
fully masked rows softmax uniformly), so outputs match at every position.

This module holds the encoder, its weight map and the family registration
(what `registry.get_family("deberta-v2")` imports); its parts are in
deberta_v2_config.py (config.json fields, encoder kwargs),
deberta_v2_attention.py (relative positions, disentangled attention) and
deberta_v2_layers.py (embeddings, block, convolution).
"""

from __future__ import annotations

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.deberta_v2_attention import build_relative_position
from kerastune_nlp.backbones.deberta_v2_config import DebertaV2Config, encoder_kwargs
from kerastune_nlp.backbones.deberta_v2_layers import (
    DebertaV2Block,
    DebertaV2Conv,
    DebertaV2Embeddings,
)
from kerastune_nlp.backbones.initializers import make_embedding, make_layer_norm
from kerastune_nlp.backbones.layers import build_in_scope, init_arguments
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import encoder_input_names, read_encoder_inputs
from kerastune_nlp.backbones.weight_maps import block_weights, embedding_weights, norm_weights
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


@_serializable
class DebertaV2Encoder(keras.layers.Layer):
    """The DeBERTa-v2/v3 base model: inputs dict -> last hidden state [batch, seq, hidden_size].

    Same public surface as `TransformerEncoder` (kwargs, `embeddings`,
    `blocks` named "layer_._<i>" under the "encoder" scope, `input_names`,
    the call arguments), plus `rel_embeddings` (the relative table, an
    Embedding layer), `rel_layer_norm` and `conv` (None when the config has
    none). No pooler: the base model has none.

    Args:
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size: int.
        hidden_act: str. Defaults to "gelu" (exact).
        dropout: float. Embedding, residual and relative-table dropout. Defaults to 0.1.
        attention_dropout: float. Defaults to 0.1.
        max_position_embeddings: int. Defaults to 512.
        type_vocab_size: int. 0 for no token types. Defaults to 0.
        layer_norm_eps: float. Defaults to 1e-7.
        initializer_range: float. Defaults to 0.02.
        embedding_size: int or None. Table width when it differs from `hidden_size`.
            Defaults to None.
        position_biased_input: bool. Add absolute positions. Defaults to True.
        relative_attention: bool. Defaults to False.
        max_relative_positions: int. < 1 means `max_position_embeddings`. Defaults to -1.
        position_buckets: int. Log buckets when > 0. Defaults to -1.
        pos_att_type: list of str. Subset of ["c2p", "p2c"]. Defaults to ().
        share_att_key: bool. Defaults to False.
        norm_rel_ebd: str. "none" or "layer_norm" (the reference's "|"-joined string).
            Defaults to "none".
        conv_kernel_size: int. 0 for no convolution. Defaults to 0.
        conv_groups: int. Defaults to 1.
        conv_act: str. Defaults to "tanh".
        use_pooler: bool. Must be False. Defaults to False.
        seed: int or None. Seeds every initializer. Defaults to None.
        **kwargs: passed to `keras.layers.Layer`.

    Example:
    >>> encoder = DebertaV2Encoder(
    ...     vocab_size=100, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
    ...     relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"],
    ...     share_att_key=True, seed=0)
    >>> ids = tf.constant([[2, 5, 7]])
    >>> encoder({"input_ids": ids, "attention_mask": tf.ones_like(ids)}).shape
    TensorShape([1, 3, 32])
    """

    model_type = "deberta-v2"
    supports_pooler = False
    # How `backbones.families` (which must not import TensorFlow) recognises our encoders.
    is_own_encoder = True

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_layers,
        num_heads,
        intermediate_size,
        hidden_act="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        max_position_embeddings=512,
        type_vocab_size=0,
        layer_norm_eps=1e-7,
        initializer_range=0.02,
        embedding_size=None,
        position_biased_input=True,
        relative_attention=False,
        max_relative_positions=-1,
        position_buckets=-1,
        pos_att_type=(),
        share_att_key=False,
        norm_rel_ebd="none",
        conv_kernel_size=0,
        conv_groups=1,
        conv_act="tanh",
        use_pooler=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if use_pooler:
            raise ConfigError(
                "The 'deberta-v2' encoder has no pooler (DebertaV2Model has none). Received: "
                "`use_pooler`=True. Pass use_pooler=False."
            )
        if num_layers < 1:
            raise ConfigError(
                f"`num_layers` must be at least 1. Received: `num_layers`={num_layers}."
            )
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_size = int(intermediate_size)
        self.hidden_act = hidden_act
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.max_position_embeddings = int(max_position_embeddings)
        self.type_vocab_size = int(type_vocab_size)
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.embedding_size = None if embedding_size is None else int(embedding_size)
        self.position_biased_input = bool(position_biased_input)
        self.relative_attention = bool(relative_attention)
        self.max_relative_positions = int(max_relative_positions)
        self.position_buckets = int(position_buckets)
        self.pos_att_type = list(pos_att_type or ())
        self.share_att_key = bool(share_att_key)
        self.norm_rel_ebd = norm_rel_ebd
        self.conv_kernel_size = int(conv_kernel_size)
        self.conv_groups = int(conv_groups)
        self.conv_act = conv_act
        self.use_pooler = False
        self.seed = seed
        # As the reference: max_relative_positions < 1 falls back to the absolute table size,
        # and with buckets the relative table has 2 * position_buckets rows.
        self.relative_range = (
            self.max_relative_positions
            if self.max_relative_positions >= 1
            else self.max_position_embeddings
        )
        self.att_span = self.position_buckets if self.position_buckets > 0 else self.relative_range
        policy = self.dtype_policy
        common = dict(initializer_range=initializer_range, seed=seed, dtype=policy)
        self.embeddings = DebertaV2Embeddings(
            vocab_size,
            hidden_size,
            self.embedding_size or hidden_size,
            max_position_embeddings,
            type_vocab_size,
            position_biased_input,
            layer_norm_eps,
            dropout,
            initializer_range,
            seed,
            name="embeddings",
            dtype=policy,
        )
        options = dict(
            relative_attention=self.relative_attention,
            pos_att_type=self.pos_att_type,
            share_att_key=self.share_att_key,
            att_span=self.att_span,
        )
        self.blocks = [
            DebertaV2Block(
                hidden_size,
                num_heads,
                intermediate_size,
                hidden_act,
                dropout,
                attention_dropout,
                layer_norm_eps,
                initializer_range,
                seed,
                options,
                name=f"layer_._{index}",
                dtype=policy,
            )
            for index in range(self.num_layers)
        ]
        self.rel_embeddings = (
            make_embedding(
                2 * self.att_span,
                hidden_size,
                name="rel_embeddings",
                path="encoder/rel_embeddings",
                **common,
            )
            if self.relative_attention
            else None
        )
        norms = [part.strip() for part in norm_rel_ebd.lower().split("|")]
        self.rel_layer_norm = (
            make_layer_norm(layer_norm_eps, name="LayerNorm", dtype=policy)
            if self.relative_attention and "layer_norm" in norms
            else None
        )
        self.conv = (
            DebertaV2Conv(
                hidden_size,
                conv_kernel_size,
                conv_groups,
                conv_act,
                layer_norm_eps,
                dropout,
                initializer_range,
                seed,
                name="conv",
                dtype=policy,
            )
            if self.conv_kernel_size > 0
            else None
        )

    @property
    def input_names(self) -> tuple:
        """The input keys this encoder reads (token types only with more than one type)."""
        return encoder_input_names(self.type_vocab_size)

    def get_prunable_weights(self) -> list:
        """The blocks' Dense kernels: what magnitude pruning zeroes (see `TransformerEncoder`).

        The attention and feed-forward projections, and the relative
        projections `pos_key_dense` / `pos_query_dense` where the config has
        them (`share_att_key=False`). Embeddings, the relative table, the
        convolution, LayerNorms and biases are kept dense.
        """
        kernels = []
        for block in self.blocks:
            attention, ffn = block.attention, block.ffn
            for dense in (
                attention.query_dense,
                attention.key_dense,
                attention.value_dense,
                attention.output_dense,
                attention.pos_key_dense,
                attention.pos_query_dense,
                ffn.intermediate_dense,
                ffn.output_dense,
            ):
                if dense is not None:
                    kernels.append(dense.kernel)
        return kernels

    def build(self, input_shape=None):
        build_in_scope(self.embeddings, None)
        hidden = tf.TensorShape([None, None, self.hidden_size])
        with tf.name_scope("encoder"):
            if self.rel_embeddings is not None:
                build_in_scope(self.rel_embeddings, tf.TensorShape([None]))
            if self.rel_layer_norm is not None:
                build_in_scope(self.rel_layer_norm, tf.TensorShape([None, self.hidden_size]))
            for block in self.blocks:
                build_in_scope(block, hidden)
            if self.conv is not None:
                build_in_scope(self.conv, hidden)
        super().build(input_shape)

    def call(self, inputs, training=None, output_hidden_states=False):
        input_ids, attention_mask, token_type_ids = read_encoder_inputs(
            inputs, self.type_vocab_size
        )
        embedding_output = self.embeddings(
            input_ids, token_type_ids, attention_mask, training=training
        )
        valid = tf.cast(attention_mask, tf.bool)
        # A pair attends only when query and key are both real tokens (the reference's
        # outer-product mask).
        pair_mask = tf.expand_dims(tf.expand_dims(valid, 1), 3) & tf.expand_dims(tf.expand_dims(valid, 1), 1)
        relative_pos = rel_embeddings = None
        if self.relative_attention:
            length = tf.shape(input_ids)[1]
            relative_pos = build_relative_position(
                length, length, self.position_buckets, self.relative_range
            )
            rel_embeddings = self.rel_embeddings.embeddings
            if self.rel_layer_norm is not None:
                rel_embeddings = self.rel_layer_norm(rel_embeddings)
        hidden_states = embedding_output
        all_states = [hidden_states]
        for index, block in enumerate(self.blocks):
            hidden_states = block(
                hidden_states, pair_mask, relative_pos, rel_embeddings, training=training
            )
            if index == 0 and self.conv is not None:
                hidden_states = self.conv(
                    embedding_output, hidden_states, attention_mask, training=training
                )
            all_states.append(hidden_states)
        if not output_hidden_states:
            return hidden_states
        return {"last_hidden_state": hidden_states, "hidden_states": tuple(all_states)}

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, DebertaV2Encoder)}


# HF's `DebertaV2Layer` names of a block's parts; the relative projections exist only
# without `share_att_key` (and are skipped when None).
BLOCK_NAMES = {
    "attention.query_dense": "attention.self.query_proj",
    "attention.key_dense": "attention.self.key_proj",
    "attention.value_dense": "attention.self.value_proj",
    "attention.pos_key_dense": "attention.self.pos_key_proj",
    "attention.pos_query_dense": "attention.self.pos_query_proj",
    "attention.output_dense": "attention.output.dense",
    "attention_layer_norm": "attention.output.LayerNorm",
    "ffn.intermediate_dense": "intermediate.dense",
    "ffn.output_dense": "output.dense",
    "output_layer_norm": "output.LayerNorm",
}


def weight_map(encoder) -> list:
    """Every variable of a `DebertaV2Encoder` with its `DebertaV2Model` tensor name and layout."""
    embeddings = encoder.embeddings
    entries = embedding_weights(embeddings, projection=embeddings.embed_proj)
    for index, block in enumerate(encoder.blocks):
        entries += block_weights(block, f"encoder.layer.{index}", BLOCK_NAMES)
    if encoder.rel_embeddings is not None:
        entries.append((encoder.rel_embeddings.embeddings, "encoder.rel_embeddings.weight", "copy"))
    if encoder.rel_layer_norm is not None:
        entries += norm_weights(encoder.rel_layer_norm, "encoder.LayerNorm")
    if encoder.conv is not None:
        entries += [
            (encoder.conv.conv.kernel, "encoder.conv.conv.weight", "conv1d"),
            (encoder.conv.conv.bias, "encoder.conv.conv.bias", "copy"),
            *norm_weights(encoder.conv.layer_norm, "encoder.conv.LayerNorm"),
        ]
    return entries


FAMILY = register_family(
    EncoderFamily(
        model_types=("deberta-v2",),
        config_class=DebertaV2Config,
        encoder_class=DebertaV2Encoder,
        encoder_kwargs=encoder_kwargs,
        weight_map=weight_map,
        base_model_prefix="deberta",
        # DeBERTa-v3 checkpoints may carry an absolute position table that
        # position_biased_input=False leaves unused (HF ignores it on load too).
        head_prefixes=("embeddings.position_embeddings.",),
        # The 4.x TF class names the separate relative projections differently.
        tf_renames=(
            (r"\.attention\.self\.pos_proj\.", ".attention.self.pos_key_proj."),
            (r"\.attention\.self\.pos_q_proj\.", ".attention.self.pos_query_proj."),
        ),
    )
)
