"""The shared post-LayerNorm Transformer block and the helpers every encoder layer uses.

`MultiHeadSelfAttention`, `FeedForward` and `TransformerBlock` (post-LN, as
BERT) are what `TransformerEncoder` stacks for BERT, RoBERTa / XLM-R,
DistilBERT and ELECTRA (DeBERTa-v2 reuses `FeedForward`). All projections are
plain `tf_keras.layers.Dense`, held in attributes (`query_dense`, `key_dense`,
`value_dense`, `output_dense`, `intermediate_dense`) and looked up on every
call, so LoRA can swap an attribute for a wrapper and tfmot can prune the
kernels. `build_in_scope` and `init_arguments` are the build and get_config
plumbing of every layer here and in the family modules. The pieces around
them live in their own modules: `activations` (Hugging Face activation
names), `initializers` (seeded HF initialisation, `make_dense` & co.) and
`embeddings` (the BERT-style input embeddings).

Variable names follow the HF TF classes' scopes where that costs nothing
("bert/embeddings/word_embeddings/embeddings:0",
"bert/encoder/layer_._3/attention/query/kernel:0"), so the depth-group
patterns of `families.py` (`layer_._N`, `embeddings`, `embeddings_project`)
apply unchanged.

Numerics (checked against transformers v5 PyTorch, tests/backbones/test_parity.py):
- the attention mask is additive, `(1 - mask) * float32.min`, broadcast over
  heads and query rows; padded query rows are computed like real ones;
- scores are scaled through the query (`q / sqrt(head_size)`: one multiply of
  [batch, seq, hidden] instead of [batch, heads, seq, seq]);
- under a mixed policy (`mixed_bfloat16`) the softmax runs in float32 (two
  casts per block) and tf-keras' LayerNormalization normalises in float32.
"""

from __future__ import annotations

import inspect
import math

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.activations import get_activation
from kerastune_nlp.backbones.initializers import make_dense, make_layer_norm
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


def build_in_scope(layer, input_shape) -> None:
    """Builds a sub-layer now, under its own name scope, so its variables get stable names."""
    if not layer.built:
        with tf.name_scope(layer.name):
            layer.build(input_shape)


def init_arguments(layer, cls) -> dict:
    """`cls.__init__`'s arguments, read back from the layer's same-named attributes.

    The `get_config` of every layer here: each stores its arguments under
    their own names, so the config is exactly what `__init__` takes. `cls` is
    the class that defines the signature (family subclasses such as
    `DistilBertEncoder(*args, type_vocab_size=0, **kwargs)` only change defaults).
    """
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name: getattr(layer, p.name)
        for p in parameters
        if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
    }


def attention_bias(attention_mask):
    """Additive attention mask [batch, 1, 1, seq] in float32 from a 1 = token / 0 = padding mask.

    As HF: `(1 - mask) * float32.min`, so a padded key gets probability 0
    and every row (padded query rows too) still has real keys to attend to.
    """
    mask = tf.cast(attention_mask, tf.float32)
    # expand_dims, not [:, None, None, :]: TFLite has no builtin for a slice that adds axes.
    return tf.expand_dims(tf.expand_dims((1.0 - mask) * tf.float32.min, 1), 1)


@_serializable
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention with separate query/key/value/output Dense layers.

    Returns the output projection of the attended values (before the block's
    residual dropout and LayerNorm).

    Args:
        hidden_size: int. Model width (input and output).
        num_heads: int. Must divide `hidden_size`.
        attention_dropout: float. Dropout on the attention probabilities. Defaults to 0.1.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        seed_path: str. Unique path of this layer (per-variable seeds). Defaults to "attention".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        attention_dropout=0.1,
        initializer_range=0.02,
        seed=None,
        seed_path="attention",
        **kwargs,
    ):
        kwargs.setdefault("name", "attention")
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ConfigError(
                f"`hidden_size` must be a multiple of `num_heads`. Received: `hidden_size`="
                f"{hidden_size}, `num_heads`={num_heads}."
            )
        self.hidden_size = int(hidden_size)
        self.num_heads = int(num_heads)
        self.head_size = self.hidden_size // self.num_heads
        self.attention_dropout = float(attention_dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.seed_path = seed_path

        def dense(name):
            return make_dense(
                hidden_size,
                name=name,
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

    def split_heads(self, projected, batch, length):
        """[batch, seq, hidden] -> [batch, heads, seq, head_size]."""
        heads = tf.reshape(projected, [batch, length, self.num_heads, self.head_size])
        return tf.transpose(heads, [0, 2, 1, 3])

    def call(self, hidden_states, attention_bias=None, training=None):
        batch, length = tf.shape(hidden_states)[0], tf.shape(hidden_states)[1]
        query = self.split_heads(self.query_dense(hidden_states), batch, length)
        query = query * tf.cast(1.0 / math.sqrt(self.head_size), query.dtype)
        key = self.split_heads(self.key_dense(hidden_states), batch, length)
        value = self.split_heads(self.value_dense(hidden_states), batch, length)
        # Explicit transposes + batched matmuls: bit-identical to tf.einsum here and
        # 2-5% faster per MiniLM training step (the Einsum kernel copies more).
        scores = tf.matmul(query, key, transpose_b=True)
        # float32 softmax under mixed precision (a no-op cast in float32).
        scores = tf.cast(scores, tf.float32)
        if attention_bias is not None:
            scores = scores + attention_bias
        probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
        probabilities = self.dropout_layer(probabilities, training=training)
        context = tf.transpose(tf.matmul(probabilities, value), [0, 2, 1, 3])
        return self.output_dense(tf.reshape(context, [batch, length, self.hidden_size]))

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, MultiHeadSelfAttention)}


@_serializable
class FeedForward(keras.layers.Layer):
    """Position-wise feed-forward: `output_dense(activation(intermediate_dense(x)))`.

    Args:
        hidden_size: int. Input and output width.
        intermediate_size: int. Inner width.
        hidden_act: str. Hugging Face activation name (see `get_activation`). Defaults to "gelu".
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        seed_path: str. Unique path of this layer. Defaults to "ffn".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        hidden_size,
        intermediate_size,
        hidden_act="gelu",
        initializer_range=0.02,
        seed=None,
        seed_path="ffn",
        **kwargs,
    ):
        kwargs.setdefault("name", "ffn")
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.intermediate_size = int(intermediate_size)
        self.hidden_act = hidden_act
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.seed_path = seed_path
        self.activation = get_activation(hidden_act)
        common = dict(initializer_range=initializer_range, seed=seed, dtype=self.dtype_policy)
        self.intermediate_dense = make_dense(
            intermediate_size, name="intermediate", path=f"{seed_path}/intermediate", **common
        )
        self.output_dense = make_dense(
            hidden_size, name="output", path=f"{seed_path}/output", **common
        )

    def build(self, input_shape=None):
        build_in_scope(self.intermediate_dense, tf.TensorShape([None, None, self.hidden_size]))
        build_in_scope(self.output_dense, tf.TensorShape([None, None, self.intermediate_size]))
        super().build(input_shape)

    def call(self, hidden_states):
        return self.output_dense(self.activation(self.intermediate_dense(hidden_states)))

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, FeedForward)}


@_serializable
class TransformerBlock(keras.layers.Layer):
    """Post-LayerNorm Transformer block (BERT, RoBERTa, DistilBERT, ELECTRA).

    `x = LN(x + dropout(attention(x)))`, then `x = LN(x + dropout(ffn(x)))`.

    Args:
        hidden_size: int. Model width.
        num_heads: int. Attention heads.
        intermediate_size: int. Feed-forward inner width.
        hidden_act: str. Feed-forward activation. Defaults to "gelu".
        dropout: float. Residual dropout. Defaults to 0.1.
        attention_dropout: float. Dropout on attention probabilities. Defaults to 0.1.
        layer_norm_eps: float. Defaults to 1e-12.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        **kwargs: passed to `keras.layers.Layer`; `name` ("layer_._3") also
            keys the per-variable seeds, so keep it unique in the encoder.
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        intermediate_size,
        hidden_act="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        seed=None,
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
        policy = self.dtype_policy
        self.attention = MultiHeadSelfAttention(
            hidden_size,
            num_heads,
            attention_dropout,
            initializer_range,
            seed,
            seed_path=f"{self.name}/attention",
            dtype=policy,
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

    def call(self, hidden_states, attention_bias=None, training=None):
        attended = self.attention(hidden_states, attention_bias, training=training)
        hidden_states = self.attention_layer_norm(
            hidden_states + self.dropout_layer(attended, training=training)
        )
        transformed = self.ffn(hidden_states)
        return self.output_layer_norm(
            hidden_states + self.dropout_layer(transformed, training=training)
        )

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, TransformerBlock)}
