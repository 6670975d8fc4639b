"""ModernBERT's layers: embeddings, rotary attention with a sliding window, GeGLU MLP, pre-LN block.

Follows transformers v5's PyTorch `modeling_modernbert.py` (eager attention,
the padded path; not flash attention's unpadding, which gives the same
values at real tokens):

- embeddings: `tok_embeddings` -> LayerNorm -> dropout; no position or type
  embeddings (positions enter through the rotary embeddings only);
- attention: one `Wqkv` projection (kept here as three Dense layers,
  `query_dense` / `key_dense` / `value_dense`, the row blocks of `Wqkv`, so
  LoRA and pruning find the projections every other family has), rotary
  embeddings on queries and keys (`rotate_half` convention, inverse
  frequencies `theta ** -(2i / head_size)`), scores scaled by
  1/sqrt(head_size), an additive float32.min mask, softmax in float32,
  dropout on the probabilities, `Wo`, then dropout again;
- MLP (GeGLU): `Wi` to 2 x intermediate, split into input and gate halves,
  `Wo(dropout(act(input) * gate))`;
- block (pre-LN): `x + attn(attn_norm(x))`, then `x + mlp(mlp_norm(x))`;
  layer 0 has no `attn_norm` (Identity in the reference: the embeddings end
  in a LayerNorm already).

LayerNorms and Dense layers carry a bias only when the config says so
(`norm_bias`, `attention_bias`, `mlp_bias`; all False in the released
checkpoints).
"""

from __future__ import annotations

import math

import numpy as np

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.activations import get_activation
from kerastune_nlp.backbones.initializers import make_dense, make_embedding
from kerastune_nlp.backbones.layers import build_in_scope, init_arguments
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


def make_norm(epsilon, use_bias, *, name, dtype=None):
    """nn.LayerNorm(bias=use_bias): without a bias, tf-keras' `center=False` (no beta variable)."""
    return keras.layers.LayerNormalization(epsilon=epsilon, center=use_bias, name=name, dtype=dtype)


def rotary_inverse_frequencies(head_size: int, theta: float) -> np.ndarray:
    """`1 / theta ** (arange(0, head_size, 2) / head_size)` in float32, as the reference computes it."""
    exponents = np.arange(0, head_size, 2, dtype=np.float32) / np.float32(head_size)
    return (np.float32(1.0) / np.power(np.float32(theta), exponents)).astype(np.float32)


def rotary_cos_sin(length, head_size: int, theta: float):
    """cos and sin [length, head_size] for positions 0..length-1 (float32)."""
    inverse = tf.constant(rotary_inverse_frequencies(head_size, theta))
    positions = tf.cast(tf.range(length), tf.float32)
    frequencies = tf.expand_dims(positions, 1) * tf.expand_dims(inverse, 0)
    angles = tf.concat([frequencies, frequencies], axis=-1)
    return tf.cos(angles), tf.sin(angles)


def apply_rotary(states, cos, sin):
    """`states * cos + rotate_half(states) * sin` in float32; states [batch, heads, seq, head_size]."""
    dtype = states.dtype
    states = tf.cast(states, tf.float32)
    half = states.shape[-1] // 2
    rotated = tf.concat([-states[..., half:], states[..., :half]], axis=-1)
    return tf.cast(states * cos + rotated * sin, dtype)


def attention_biases(attention_mask, half_window: int) -> dict:
    """Additive masks [batch, 1, seq, seq] (float32) per layer type, from a 1 = token mask.

    "full_attention": padded keys get float32.min. "sliding_attention": also
    keys further than `half_window` positions from the query (|q - k| <=
    half_window is kept, as the reference's bidirectional sliding window).
    """
    valid = tf.cast(attention_mask, tf.bool)
    keys = tf.expand_dims(tf.expand_dims(valid, 1), 1)  # [batch, 1, 1, seq]
    length = tf.shape(attention_mask)[1]
    positions = tf.range(length)
    distance = tf.abs(tf.expand_dims(positions, 1) - tf.expand_dims(positions, 0))
    near = tf.expand_dims(tf.expand_dims(distance <= half_window, 0), 0)  # [1, 1, seq, seq]
    minimum = tf.constant(tf.float32.min, tf.float32)
    zero = tf.constant(0.0, tf.float32)
    return {
        "full_attention": tf.where(keys, zero, minimum),
        "sliding_attention": tf.where(keys & near, zero, minimum),
    }


@_serializable
class ModernBertEmbeddings(keras.layers.Layer):
    """`tok_embeddings` -> LayerNorm (`norm`) -> dropout.

    Args:
        vocab_size: int. Rows of the table.
        hidden_size: int. Width.
        norm_eps: float. Defaults to 1e-5.
        norm_bias: bool. Defaults to False.
        dropout: float. `embedding_dropout`. Defaults to 0.0.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        **kwargs: passed to `keras.layers.Layer`.
    """

    # Attributes BERT's `Embeddings` has; `weight_maps.embedding_weights` skips the None ones.
    position_embeddings = None
    token_type_embeddings = None

    def __init__(
        self,
        vocab_size,
        hidden_size,
        norm_eps=1e-5,
        norm_bias=False,
        dropout=0.0,
        initializer_range=0.02,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "embeddings")
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.norm_eps = float(norm_eps)
        self.norm_bias = bool(norm_bias)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.word_embeddings = make_embedding(
            vocab_size,
            hidden_size,
            name="tok_embeddings",
            path="embeddings/tok_embeddings",
            initializer_range=initializer_range,
            seed=seed,
            dtype=self.dtype_policy,
        )
        self.layer_norm = make_norm(norm_eps, norm_bias, name="norm", dtype=self.dtype_policy)
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        build_in_scope(self.word_embeddings, tf.TensorShape([None, None]))
        build_in_scope(self.layer_norm, tf.TensorShape([None, None, self.hidden_size]))
        super().build(input_shape)

    def call(self, input_ids, training=None):
        return self.dropout_layer(
            self.layer_norm(self.word_embeddings(input_ids)), training=training
        )

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, ModernBertEmbeddings)}


@_serializable
class ModernBertAttention(keras.layers.Layer):
    """Rotary multi-head self-attention (the reference's `ModernBertAttention`).

    Args:
        hidden_size: int. Model width.
        num_heads: int. Must divide `hidden_size` into an even head size.
        use_bias: bool. `attention_bias`. Defaults to False.
        attention_dropout: float. On the probabilities and after `Wo`. Defaults to 0.0.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        seed_path: str. Unique path of this layer (per-variable seeds). Defaults to "attention".
        **kwargs: passed to `keras.layers.Layer`.

    Call args:
        hidden_states: [batch, seq, hidden] (already normalised by the block).
        cos, sin: [seq, head_size] float32 rotary tables of this layer's kind.
        attention_bias: [batch, 1, seq, seq] float32 additive mask of this layer's kind.
        training: bool.
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        use_bias=False,
        attention_dropout=0.0,
        initializer_range=0.02,
        seed=None,
        seed_path="attention",
        **kwargs,
    ):
        kwargs.setdefault("name", "attention")
        super().__init__(**kwargs)
        if hidden_size % num_heads or (hidden_size // num_heads) % 2:
            raise ConfigError(
                "`hidden_size` / `num_heads` must be an even integer (rotary embeddings rotate "
                f"pairs). Received: `hidden_size`={hidden_size}, `num_heads`={num_heads}."
            )
        self.hidden_size = int(hidden_size)
        self.num_heads = int(num_heads)
        self.head_size = self.hidden_size // self.num_heads
        self.use_bias = bool(use_bias)
        self.attention_dropout = float(attention_dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.seed_path = seed_path

        def dense(name):
            return make_dense(
                hidden_size,
                name=name,
                use_bias=use_bias,
                initializer_range=initializer_range,
                seed=seed,
                path=f"{seed_path}/{name}",
                dtype=self.dtype_policy,
            )

        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = dense("output")
        self.dropout_layer = keras.layers.Dropout(attention_dropout)

    def build(self, input_shape=None):
        shape = tf.TensorShape([None, None, self.hidden_size])
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            build_in_scope(layer, shape)
        super().build(input_shape)

    def _heads(self, projected, batch, length):
        heads = tf.reshape(projected, [batch, length, self.num_heads, self.head_size])
        return tf.transpose(heads, [0, 2, 1, 3])

    def call(self, hidden_states, cos, sin, attention_bias, training=None):
        batch, length = tf.shape(hidden_states)[0], tf.shape(hidden_states)[1]
        query = apply_rotary(self._heads(self.query_dense(hidden_states), batch, length), cos, sin)
        key = apply_rotary(self._heads(self.key_dense(hidden_states), batch, length), cos, sin)
        value = self._heads(self.value_dense(hidden_states), batch, length)
        query = query * tf.cast(1.0 / math.sqrt(self.head_size), query.dtype)
        scores = tf.cast(tf.matmul(query, key, transpose_b=True), tf.float32) + attention_bias
        probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
        probabilities = self.dropout_layer(probabilities, training=training)
        context = tf.transpose(tf.matmul(probabilities, value), [0, 2, 1, 3])
        output = self.output_dense(tf.reshape(context, [batch, length, self.hidden_size]))
        return self.dropout_layer(output, training=training)

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, ModernBertAttention)}


@_serializable
class GeGLU(keras.layers.Layer):
    """ModernBERT's MLP: `Wo(dropout(act(input) * gate))`, `input, gate = split(Wi(x), 2)`.

    `intermediate_dense` (Wi) is 2 x `intermediate_size` wide; `output_dense` is Wo.

    Args:
        hidden_size: int. Input and output width.
        intermediate_size: int. Width of each half.
        hidden_act: str. Activation of the input half. Defaults to "gelu".
        use_bias: bool. `mlp_bias`. Defaults to False.
        dropout: float. `mlp_dropout`. Defaults to 0.0.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        seed_path: str. Unique path of this layer. Defaults to "mlp".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        hidden_size,
        intermediate_size,
        hidden_act="gelu",
        use_bias=False,
        dropout=0.0,
        initializer_range=0.02,
        seed=None,
        seed_path="mlp",
        **kwargs,
    ):
        kwargs.setdefault("name", "mlp")
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.intermediate_size = int(intermediate_size)
        self.hidden_act = hidden_act
        self.use_bias = bool(use_bias)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.seed_path = seed_path
        self.activation = get_activation(hidden_act)
        common = dict(
            use_bias=use_bias, initializer_range=initializer_range, seed=seed, dtype=self.dtype_policy
        )
        self.intermediate_dense = make_dense(
            2 * self.intermediate_size, name="Wi", path=f"{seed_path}/Wi", **common
        )
        self.output_dense = make_dense(hidden_size, name="Wo", path=f"{seed_path}/Wo", **common)
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        build_in_scope(self.intermediate_dense, tf.TensorShape([None, None, self.hidden_size]))
        build_in_scope(self.output_dense, tf.TensorShape([None, None, self.intermediate_size]))
        super().build(input_shape)

    def call(self, hidden_states, training=None):
        projected = self.intermediate_dense(hidden_states)
        inputs, gate = projected[..., : self.intermediate_size], projected[..., self.intermediate_size :]
        gated = self.dropout_layer(self.activation(inputs) * gate, training=training)
        return self.output_dense(gated)

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, GeGLU)}


@_serializable
class ModernBertBlock(keras.layers.Layer):
    """Pre-LN block: `x + attention(attn_norm(x))`, then `x + ffn(mlp_norm(x))`.

    Attributes other code reads: `attention` (with `query_dense`, ...,
    `output_dense`), `ffn` (GeGLU, with `intermediate_dense` / `output_dense`),
    `attention_layer_norm` (None in layer 0), `output_layer_norm` (mlp_norm).

    Args:
        hidden_size, num_heads, intermediate_size: int.
        hidden_act: str. Defaults to "gelu".
        layer_type: str. "full_attention" or "sliding_attention". Defaults to "full_attention".
        first: bool. Layer 0 (no attn_norm). Defaults to False.
        norm_eps: float. Defaults to 1e-5.
        norm_bias, attention_bias, mlp_bias: bool. Default to False.
        attention_dropout, mlp_dropout: float. Default to 0.0.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        **kwargs: passed to `keras.layers.Layer`; `name` ("layer_._3") keys the seeds.
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        intermediate_size,
        hidden_act="gelu",
        layer_type="full_attention",
        first=False,
        norm_eps=1e-5,
        norm_bias=False,
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        mlp_dropout=0.0,
        initializer_range=0.02,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if layer_type not in ("full_attention", "sliding_attention"):
            raise ConfigError(
                "Expected `layer_type` 'full_attention' or 'sliding_attention'. Received: "
                f"`layer_type`={layer_type!r}."
            )
        self.hidden_size = int(hidden_size)
        self.num_heads = int(num_heads)
        self.intermediate_size = int(intermediate_size)
        self.hidden_act = hidden_act
        self.layer_type = layer_type
        self.first = bool(first)
        self.norm_eps = float(norm_eps)
        self.norm_bias = bool(norm_bias)
        self.attention_bias = bool(attention_bias)
        self.mlp_bias = bool(mlp_bias)
        self.attention_dropout = float(attention_dropout)
        self.mlp_dropout = float(mlp_dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        policy = self.dtype_policy
        self.attention_layer_norm = (
            None if self.first else make_norm(norm_eps, norm_bias, name="attn_norm", dtype=policy)
        )
        self.attention = ModernBertAttention(
            hidden_size,
            num_heads,
            attention_bias,
            attention_dropout,
            initializer_range,
            seed,
            seed_path=f"{self.name}/attention",
            dtype=policy,
        )
        self.output_layer_norm = make_norm(norm_eps, norm_bias, name="mlp_norm", dtype=policy)
        self.ffn = GeGLU(
            hidden_size,
            intermediate_size,
            hidden_act,
            mlp_bias,
            mlp_dropout,
            initializer_range,
            seed,
            seed_path=f"{self.name}/mlp",
            name="mlp",
            dtype=policy,
        )

    def build(self, input_shape=None):
        shape = tf.TensorShape([None, None, self.hidden_size])
        for layer in (self.attention_layer_norm, self.attention, self.output_layer_norm, self.ffn):
            if layer is not None:
                build_in_scope(layer, shape)
        super().build(input_shape)

    def call(self, hidden_states, cos, sin, attention_bias, training=None):
        normed = (
            hidden_states
            if self.attention_layer_norm is None
            else self.attention_layer_norm(hidden_states)
        )
        hidden_states = hidden_states + self.attention(
            normed, cos, sin, attention_bias, training=training
        )
        return hidden_states + self.ffn(self.output_layer_norm(hidden_states), training=training)

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, ModernBertBlock)}
