"""Shared tf-keras pieces of our Transformer encoders.

Every family module (bert.py, roberta.py, ...) assembles its encoder from
these parts: `Embeddings`, `MultiHeadSelfAttention`, `FeedForward`,
`TransformerBlock` (post-LayerNorm, as BERT), and the `TransformerEncoder`
base class that stacks them. All projections are plain
`tf_keras.layers.Dense`, held in attributes (`query_dense`, `key_dense`,
`value_dense`, `output_dense`, `intermediate_dense`) and looked up on every
call, so LoRA can swap an attribute for a wrapper and tfmot can prune the
kernels.

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

import contextlib
import contextvars
import math
import zlib

import numpy as np

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")

_SQRT_HALF = 1.0 / math.sqrt(2.0)


def _gelu_tanh(x):
    return tf.nn.gelu(x, approximate=True)


def _quick_gelu(x):
    return x * tf.sigmoid(tf.cast(1.702, x.dtype) * x)


# Hugging Face activation names (transformers.activations.ACT2CLS) -> TF ops.
# "gelu" is the exact erf form: tf.nn.gelu(approximate=False) is what the
# TFLite converter maps to its builtin GELU op.
ACTIVATIONS = {
    "gelu": tf.nn.gelu,
    "gelu_python": tf.nn.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_python_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_accurate": _gelu_tanh,
    "quick_gelu": _quick_gelu,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "sigmoid": tf.sigmoid,
    "tanh": tf.tanh,
    "linear": tf.identity,
}


def get_activation(name: str):
    """The TF function for a Hugging Face activation name (`hidden_act`).

    Args:
        name: str. For example "gelu" (exact, erf), "gelu_new" or
            "gelu_pytorch_tanh" (tanh approximation), "relu", "silu".

    Example:
    >>> get_activation("gelu_new") is get_activation("gelu_pytorch_tanh")
    True
    """
    function = ACTIVATIONS.get(name) if isinstance(name, str) else None
    if function is None:
        raise ConfigError(
            f"Unknown activation. Expected one of {sorted(ACTIVATIONS)}. Received: "
            f"`hidden_act`={name!r}. Use a checkpoint whose config names one of these."
        )
    return function


def derive_seed(seed, path: str):
    """A per-variable seed from the model seed and a stable path, or None when `seed` is None.

    tf-keras initializers with a seed are stateless (the same seed gives the
    same values), so every variable needs its own seed to differ from the others.
    """
    if seed is None:
        return None
    return zlib.crc32(f"{int(seed)}/{path}".encode()) & 0x7FFFFFFF


_SKIP_INIT = contextvars.ContextVar("kerastune_nlp_skip_init", default=False)


@contextlib.contextmanager
def skip_initialization():
    """Layers constructed inside start with zero weights instead of random ones.

    For encoders whose every weight is loaded right after building: drawing
    110M truncated-normal values for BERT-base only to overwrite them costs
    seconds on two cores.
    """
    token = _SKIP_INIT.set(True)
    try:
        yield
    finally:
        _SKIP_INIT.reset(token)


def truncated_normal(initializer_range: float, seed, path: str):
    """HF's initializer: truncated normal with stddev `initializer_range`, seeded per path."""
    if _SKIP_INIT.get():
        return keras.initializers.Zeros()
    return keras.initializers.TruncatedNormal(
        stddev=initializer_range, seed=derive_seed(seed, path)
    )


def make_dense(
    units, *, name, initializer_range, seed, path, use_bias=True, activation=None, dtype=None
):
    """A plain `keras.layers.Dense` with HF initialisation (truncated normal kernel, zero bias).

    Args:
        units: int. Output size.
        name: str. Layer (and variable scope) name.
        initializer_range: float. Stddev of the kernel initializer.
        seed: int or None. Model seed; the kernel's own seed is derived from it and `path`.
        path: str. Stable, unique path of the layer inside the encoder (for the seed).
        use_bias: bool. Defaults to True.
        activation: str or None. Keras activation. Defaults to None.
        dtype: policy or None. Defaults to the global policy.
    """
    return keras.layers.Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        name=name,
        dtype=dtype,
        kernel_initializer=truncated_normal(initializer_range, seed, path),
        bias_initializer="zeros",
    )


def make_layer_norm(epsilon, *, name, dtype=None):
    """LayerNormalization over the last axis (gamma ones, beta zeros; float32 inside)."""
    return keras.layers.LayerNormalization(epsilon=epsilon, name=name, dtype=dtype)


def make_embedding(
    input_dim, output_dim, *, name, initializer_range, seed, path, initializer=None, dtype=None
):
    """A `keras.layers.Embedding` (variable `<name>/embeddings`) with HF initialisation."""
    return keras.layers.Embedding(
        input_dim,
        output_dim,
        name=name,
        dtype=dtype,
        embeddings_initializer=(
            initializer
            if initializer is not None and not _SKIP_INIT.get()
            else truncated_normal(initializer_range, seed, path)
        ),
    )


def sinusoidal_initializer(shape, dtype=None):
    """Fixed sin/cos position table (DistilBERT's `sinusoidal_pos_embds`), as HF computes it."""
    n_pos, dim = shape
    angles = np.array(
        [[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)]
    )
    table = np.zeros((n_pos, dim), dtype=np.float32)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return tf.constant(table, dtype=dtype or tf.float32)


def build_in_scope(layer, input_shape) -> None:
    """Builds a sub-layer now, under its own name scope, so its variables get stable names."""
    if not layer.built:
        with tf.name_scope(layer.name):
            layer.build(input_shape)


def attention_bias(attention_mask):
    """Additive attention mask [batch, 1, 1, seq] in float32 from a 1 = token / 0 = padding mask.

    As HF: `(1 - mask) * float32.min`, so a padded key gets probability 0
    and every row (padded query rows too) still has real keys to attend to.
    """
    mask = tf.cast(attention_mask, tf.float32)
    return ((1.0 - mask) * tf.float32.min)[:, tf.newaxis, tf.newaxis, :]


@_serializable
class Embeddings(keras.layers.Layer):
    """Word + position (+ token type) embeddings, then LayerNorm and dropout.

    Args:
        vocab_size: int. Rows of the word embedding table.
        embedding_size: int. Width of the embeddings.
        max_position_embeddings: int. Rows of the position table.
        type_vocab_size: int. Rows of the token-type table; 0 for none
            (DistilBERT). Defaults to 2.
        position_ids: str. "absolute" (0, 1, 2, ... as BERT) or "padding_offset"
            (RoBERTa: `pad_token_id` + running count of non-pad tokens, pads
            at `pad_token_id`). Defaults to "absolute".
        pad_token_id: int. Padding id (RoBERTa's position offset). Defaults to 0.
        layer_norm_eps: float. Defaults to 1e-12.
        dropout: float. Defaults to 0.1.
        initializer_range: float. Defaults to 0.02.
        sinusoidal_positions: bool. Start the position table as fixed sin/cos
            (DistilBERT option; loaded checkpoints overwrite it). Defaults to False.
        seed: int or None. Defaults to None.
        **kwargs: passed to `keras.layers.Layer` (`name`, `dtype`).
    """

    def __init__(
        self,
        vocab_size,
        embedding_size,
        max_position_embeddings,
        type_vocab_size=2,
        position_ids="absolute",
        pad_token_id=0,
        layer_norm_eps=1e-12,
        dropout=0.1,
        initializer_range=0.02,
        sinusoidal_positions=False,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "embeddings")
        super().__init__(**kwargs)
        if position_ids not in ("absolute", "padding_offset"):
            raise ConfigError(
                f"Expected `position_ids` 'absolute' or 'padding_offset'. Received: "
                f"`position_ids`={position_ids!r}."
            )
        self.vocab_size = int(vocab_size)
        self.embedding_size = int(embedding_size)
        self.max_position_embeddings = int(max_position_embeddings)
        self.type_vocab_size = int(type_vocab_size)
        self.position_ids = position_ids
        self.pad_token_id = int(pad_token_id)
        self.layer_norm_eps = float(layer_norm_eps)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.sinusoidal_positions = bool(sinusoidal_positions)
        self.seed = seed
        common = dict(initializer_range=initializer_range, seed=seed, dtype=self.dtype_policy)
        self.word_embeddings = make_embedding(
            vocab_size, embedding_size, name="word_embeddings", path="embeddings/word", **common
        )
        self.position_embeddings = make_embedding(
            max_position_embeddings,
            embedding_size,
            name="position_embeddings",
            path="embeddings/position",
            initializer=sinusoidal_initializer if sinusoidal_positions else None,
            **common,
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
        self.layer_norm = make_layer_norm(layer_norm_eps, name="LayerNorm", dtype=self.dtype_policy)
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        for layer in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            if layer is not None:
                build_in_scope(layer, tf.TensorShape([None, None]))
        build_in_scope(self.layer_norm, tf.TensorShape([None, None, self.embedding_size]))
        super().build(input_shape)

    def call(self, input_ids, token_type_ids=None, training=None):
        embeddings = self.word_embeddings(input_ids)
        if self.position_ids == "absolute":
            length = tf.shape(input_ids)[1]
            # A slice of the table broadcast over the batch: no gather, no [batch, seq] ids.
            positions = tf.cast(self.position_embeddings.embeddings[:length], embeddings.dtype)
            embeddings = embeddings + positions[tf.newaxis]
        else:
            not_pad = tf.cast(tf.not_equal(input_ids, self.pad_token_id), input_ids.dtype)
            position_ids = tf.cumsum(not_pad, axis=1) * not_pad + self.pad_token_id
            embeddings = embeddings + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                # All type 0: the first row, broadcast (HF's default zeros).
                embeddings = embeddings + tf.cast(
                    self.token_type_embeddings.embeddings[0], embeddings.dtype
                )
            else:
                embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout_layer(self.layer_norm(embeddings), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_size=self.embedding_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            position_ids=self.position_ids,
            pad_token_id=self.pad_token_id,
            layer_norm_eps=self.layer_norm_eps,
            dropout=self.dropout,
            initializer_range=self.initializer_range,
            sinusoidal_positions=self.sinusoidal_positions,
            seed=self.seed,
        )
        return config


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
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range,
            seed=self.seed,
            seed_path=self.seed_path,
        )
        return config


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
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            initializer_range=self.initializer_range,
            seed=self.seed,
            seed_path=self.seed_path,
        )
        return config


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
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
            seed=self.seed,
        )
        return config
