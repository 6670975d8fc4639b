"""The parts `DebertaV2Encoder` stacks around its attention: embeddings, blocks, convolution.

`DebertaV2Embeddings` (optional absolute positions and token types, the
`embed_proj` projection, output masked), `DebertaV2Block` (post-LN, as
`layers.TransformerBlock`, around `DisentangledSelfAttention` and the shared
`FeedForward`) and `DebertaV2Conv` (the convolution after block 0 of
v2-xlarge and up). Each follows transformers v5's PyTorch
`modeling_deberta_v2.py`; the encoder that assembles them is in deberta_v2.py.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.activations import get_activation
from kerastune_nlp.backbones.deberta_v2_attention import DisentangledSelfAttention
from kerastune_nlp.backbones.initializers import (
    make_dense,
    make_embedding,
    make_layer_norm,
    truncated_normal,
)
from kerastune_nlp.backbones.layers import FeedForward, build_in_scope, init_arguments

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


@_serializable
class DebertaV2Embeddings(keras.layers.Layer):
    """Word (+ absolute position) (+ token type) embeddings, `embed_proj`, LayerNorm, mask.

    As the reference: positions only with `position_biased_input`, token
    types only with `type_vocab_size > 0`, a bias-free `embed_proj` when
    `embedding_size != hidden_size` (before the LayerNorm), and the output
    multiplied by the attention mask (padded positions become zeros).

    Args:
        vocab_size: int. Word table rows.
        hidden_size: int. Output width.
        embedding_size: int. Table width.
        max_position_embeddings: int. Position table rows. Defaults to 512.
        type_vocab_size: int. Token-type rows; 0 for none. Defaults to 0.
        position_biased_input: bool. Add absolute positions. Defaults to True.
        layer_norm_eps: float. Defaults to 1e-7.
        dropout: float. Defaults to 0.1.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        embedding_size,
        max_position_embeddings=512,
        type_vocab_size=0,
        position_biased_input=True,
        layer_norm_eps=1e-7,
        dropout=0.1,
        initializer_range=0.02,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "embeddings")
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.embedding_size = int(embedding_size)
        self.max_position_embeddings = int(max_position_embeddings)
        self.type_vocab_size = int(type_vocab_size)
        self.position_biased_input = bool(position_biased_input)
        self.layer_norm_eps = float(layer_norm_eps)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        common = dict(initializer_range=initializer_range, seed=seed, dtype=self.dtype_policy)
        self.word_embeddings = make_embedding(
            vocab_size, embedding_size, name="word_embeddings", path="embeddings/word", **common
        )
        self.position_embeddings = (
            make_embedding(
                max_position_embeddings,
                embedding_size,
                name="position_embeddings",
                path="embeddings/position",
                **common,
            )
            if position_biased_input
            else None
        )
        self.token_type_embeddings = (
            make_embedding(
                type_vocab_size,
                embedding_size,
                name="token_type_embeddings",
                path="embeddings/token_type",
                **common,
            )
            if type_vocab_size
            else None
        )
        self.embed_proj = (
            make_dense(
                hidden_size,
                name="embed_proj",
                path="embeddings/embed_proj",
                use_bias=False,
                **common,
            )
            if embedding_size != hidden_size
            else None
        )
        self.layer_norm = make_layer_norm(layer_norm_eps, name="LayerNorm", dtype=self.dtype_policy)
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        for layer in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            if layer is not None:
                build_in_scope(layer, tf.TensorShape([None, None]))
        if self.embed_proj is not None:
            build_in_scope(self.embed_proj, tf.TensorShape([None, None, self.embedding_size]))
        build_in_scope(self.layer_norm, tf.TensorShape([None, None, self.hidden_size]))
        super().build(input_shape)

    def call(self, input_ids, token_type_ids=None, attention_mask=None, training=None):
        embeddings = self.word_embeddings(input_ids)
        if self.position_embeddings is not None:
            # Positions 0..L-1: a slice of the table broadcast over the batch.
            positions = self.position_embeddings.embeddings[: tf.shape(input_ids)[1]]
            embeddings = embeddings + tf.expand_dims(tf.cast(positions, embeddings.dtype), 0)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                embeddings = embeddings + tf.cast(
                    self.token_type_embeddings.embeddings[0], embeddings.dtype
                )
            else:
                embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            embeddings = self.embed_proj(embeddings)
        embeddings = self.layer_norm(embeddings)
        if attention_mask is not None:
            embeddings = embeddings * tf.expand_dims(tf.cast(attention_mask, embeddings.dtype), 2)
        return self.dropout_layer(embeddings, training=training)

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, DebertaV2Embeddings)}


@_serializable
class DebertaV2Block(keras.layers.Layer):
    """Post-LN block: `x = LN(x + dropout(attention(x)))`, then `x = LN(x + dropout(ffn(x)))`.

    Parts as in `layers.TransformerBlock`: `attention` (with `query_dense`,
    `key_dense`, `value_dense`, `output_dense`), `attention_layer_norm`,
    `ffn` (`intermediate_dense`, `output_dense`), `output_layer_norm`.

    Args:
        hidden_size, num_heads, intermediate_size: int.
        hidden_act: str. Feed-forward activation. Defaults to "gelu".
        dropout: float. Residual dropout (and on the relative table). Defaults to 0.1.
        attention_dropout: float. Defaults to 0.1.
        layer_norm_eps: float. Defaults to 1e-7.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        attention_options: dict. `relative_attention`, `pos_att_type`,
            `share_att_key`, `att_span` of `DisentangledSelfAttention`. Defaults to {}.
        **kwargs: passed to `keras.layers.Layer`; `name` keys the seeds.
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        intermediate_size,
        hidden_act="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        layer_norm_eps=1e-7,
        initializer_range=0.02,
        seed=None,
        attention_options=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.num_heads = int(num_heads)
        self.intermediate_size = int(intermediate_size)
        self.hidden_act = hidden_act
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.attention_options = dict(attention_options or {})
        policy = self.dtype_policy
        self.attention = DisentangledSelfAttention(
            hidden_size,
            num_heads,
            attention_dropout=attention_dropout,
            dropout=dropout,
            initializer_range=initializer_range,
            seed=seed,
            seed_path=f"{self.name}/attention",
            dtype=policy,
            **self.attention_options,
        )
        self.attention_layer_norm = make_layer_norm(
            layer_norm_eps, name="attention_layer_norm", dtype=policy
        )
        self.ffn = FeedForward(
            hidden_size,
            intermediate_size,
            hidden_act,
            initializer_range,
            seed,
            seed_path=f"{self.name}/ffn",
            dtype=policy,
        )
        self.output_layer_norm = make_layer_norm(
            layer_norm_eps, name="output_layer_norm", dtype=policy
        )
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        shape = tf.TensorShape([None, None, self.hidden_size])
        for layer in (self.attention, self.attention_layer_norm, self.ffn, self.output_layer_norm):
            build_in_scope(layer, shape)
        super().build(input_shape)

    def call(
        self, hidden_states, attention_mask, relative_pos=None, rel_embeddings=None, training=None
    ):
        attended = self.attention(
            hidden_states, attention_mask, relative_pos, rel_embeddings, training=training
        )
        hidden_states = self.attention_layer_norm(
            hidden_states + self.dropout_layer(attended, training=training)
        )
        transformed = self.ffn(hidden_states)
        return self.output_layer_norm(
            hidden_states + self.dropout_layer(transformed, training=training)
        )

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, DebertaV2Block)}


@_serializable
class DebertaV2Conv(keras.layers.Layer):
    """The convolution after block 0 (DeBERTa-v2 xlarge and up).

    `LN(block0_output + act(mask * conv(embedding_output))) * mask`, the
    (grouped) 1-D convolution padded by (k - 1) // 2 on each side like the
    reference's `nn.Conv1d`.

    Args:
        hidden_size: int. Channels in and out.
        kernel_size: int. Defaults to 3.
        groups: int. Channel groups. Defaults to 1.
        activation: str. Hugging Face name (`conv_act`). Defaults to "tanh".
        layer_norm_eps: float. Defaults to 1e-7.
        dropout: float. Defaults to 0.1.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        hidden_size,
        kernel_size=3,
        groups=1,
        activation="tanh",
        layer_norm_eps=1e-7,
        dropout=0.1,
        initializer_range=0.02,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "conv")
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.kernel_size = int(kernel_size)
        self.groups = int(groups)
        self.activation = activation
        self.layer_norm_eps = float(layer_norm_eps)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.activation_fn = get_activation(activation)
        self.conv = keras.layers.Conv1D(
            hidden_size,
            kernel_size,
            groups=groups,
            name="conv",
            dtype=self.dtype_policy,
            kernel_initializer=truncated_normal(initializer_range, seed, "encoder/conv"),
        )
        self.layer_norm = make_layer_norm(layer_norm_eps, name="LayerNorm", dtype=self.dtype_policy)
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        build_in_scope(self.conv, tf.TensorShape([None, None, self.hidden_size]))
        build_in_scope(self.layer_norm, tf.TensorShape([None, None, self.hidden_size]))
        super().build(input_shape)

    def call(self, hidden_states, residual_states, attention_mask, training=None):
        pad = (self.kernel_size - 1) // 2
        out = self.conv(tf.pad(hidden_states, [[0, 0], [pad, pad], [0, 0]]))
        mask = tf.expand_dims(tf.cast(attention_mask, out.dtype), 2)
        out = self.activation_fn(self.dropout_layer(out * mask, training=training))
        return self.layer_norm(residual_states + out) * mask

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, DebertaV2Conv)}
