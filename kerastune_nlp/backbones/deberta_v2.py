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
"""

from __future__ import annotations

import dataclasses
import inspect
import math

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.bert import dense_weights, norm_weights
from kerastune_nlp.backbones.config import ConfigFields, EncoderConfig, _activations
from kerastune_nlp.backbones.layers import (
    FeedForward,
    build_in_scope,
    get_activation,
    make_dense,
    make_embedding,
    make_layer_norm,
    truncated_normal,
)
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


def _init_kwargs(layer) -> dict:
    """The layer's `__init__` arguments, read back from the same-named attributes (get_config)."""
    parameters = inspect.signature(type(layer).__init__).parameters.values()
    return {
        p.name: getattr(layer, p.name)
        for p in parameters
        if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
    }


def make_log_bucket_position(relative_pos, bucket_size: int, max_position: int):
    """Log-bucketed relative positions [..] int32, as the reference computes them.

    Distances below `bucket_size // 2` keep their value; longer ones share
    logarithmically wider buckets (distance `max_position - 1` lands on
    `bucket_size - 1`). float32 arithmetic in the reference's order, so the
    `ceil` lands on the same integers.
    """
    mid = bucket_size // 2
    relative_pos = tf.cast(relative_pos, tf.int32)
    abs_pos = tf.where((relative_pos < mid) & (relative_pos > -mid), mid - 1, tf.abs(relative_pos))
    log_ratio = tf.math.log(tf.cast(abs_pos, tf.float32) / float(mid))
    log_range = tf.math.log(tf.constant((max_position - 1) / mid, tf.float32))
    log_pos = tf.math.ceil(log_ratio / log_range * float(mid - 1)) + float(mid)
    sign = tf.cast(tf.sign(relative_pos), tf.float32)
    return tf.cast(
        tf.where(abs_pos <= mid, tf.cast(relative_pos, tf.float32), log_pos * sign), tf.int32
    )


def build_relative_position(query_size, key_size, bucket_size: int = -1, max_position: int = -1):
    """`q - k` for every query/key pair, [query_size, key_size] int32 (sizes may be tensors).

    Bucketed by `make_log_bucket_position` when both `bucket_size` and
    `max_position` are positive, as the reference.
    """
    relative_pos = tf.range(query_size)[:, None] - tf.range(key_size)[None, :]
    if bucket_size > 0 and max_position > 0:
        relative_pos = make_log_bucket_position(relative_pos, bucket_size, max_position)
    return relative_pos


def _gather_relative(scores, index, transpose=False):
    """Each pair's score out of `scores` [B, H, R, S] at `index` [R, C] (values in [0, S)).

    out[b, h, r, c] = scores[b, h, r, index[r, c]] (the reference's c2p
    `torch.gather`); with `transpose`, out[b, h, c, r] = the same (its p2c
    gather and transpose in one). The index is shared by every batch row and
    head, so one flat gather over R * S replaces a [B, H, R, C] index tensor.
    """
    shape = tf.shape(scores)
    rows, span = shape[2], shape[3]
    flat_index = tf.range(rows)[:, None] * span + index
    if transpose:
        flat_index = tf.transpose(flat_index)
    flat = tf.reshape(scores, tf.concat([shape[:2], [rows * span]], 0))
    gathered = tf.gather(flat, tf.reshape(flat_index, [-1]), axis=2)
    return tf.reshape(gathered, tf.concat([shape[:2], tf.shape(flat_index)], 0))


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
            embeddings = embeddings + tf.cast(positions, embeddings.dtype)[tf.newaxis]
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
            embeddings = embeddings * tf.cast(attention_mask, embeddings.dtype)[:, :, tf.newaxis]
        return self.dropout_layer(embeddings, training=training)

    def get_config(self):
        return {**super().get_config(), **_init_kwargs(self)}


@_serializable
class DisentangledSelfAttention(keras.layers.Layer):
    """DeBERTa's self-attention with relative-position scores; returns the output projection.

    scores = Q K^T / s + c2p + p2c with s = sqrt(head_size * scale_factor),
    scale_factor = 1 + len(pos_att_type). c2p scores each query against the
    projected relative embedding of its distance to the key, p2c each key
    against that of the opposite distance. With `share_att_key` the relative
    embeddings go through `query_dense` / `key_dense`, otherwise through their
    own `pos_query_dense` (p2c) / `pos_key_dense` (c2p).

    Args:
        hidden_size: int. Model width.
        num_heads: int. Must divide `hidden_size`.
        relative_attention: bool. Add c2p / p2c scores. Defaults to True.
        pos_att_type: list of str. Subset of ["c2p", "p2c"]. Defaults to ("c2p", "p2c").
        share_att_key: bool. Defaults to True.
        att_span: int. Distances are clipped to [-att_span, att_span); the
            relative table has 2 * att_span rows. Defaults to 256.
        attention_dropout: float. Dropout on the probabilities. Defaults to 0.1.
        dropout: float. Dropout on the relative table. Defaults to 0.1.
        initializer_range: float. Defaults to 0.02.
        seed: int or None. Defaults to None.
        seed_path: str. Unique path of this layer (per-variable seeds). Defaults to "attention".
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        relative_attention=True,
        pos_att_type=("c2p", "p2c"),
        share_att_key=True,
        att_span=256,
        attention_dropout=0.1,
        dropout=0.1,
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
        self.head_size = hidden_size // num_heads
        self.relative_attention = bool(relative_attention)
        self.pos_att_type = list(pos_att_type or ())
        self.share_att_key = bool(share_att_key)
        self.att_span = int(att_span)
        self.attention_dropout = float(attention_dropout)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.seed = seed
        self.seed_path = seed_path
        # As the reference: counted even without relative_attention.
        self.scale_factor = 1 + ("c2p" in self.pos_att_type) + ("p2c" in self.pos_att_type)

        def dense(name):
            return make_dense(
                hidden_size,
                name=name,
                initializer_range=initializer_range,
                seed=seed,
                path=f"{seed_path}/{name}",
                dtype=self.dtype_policy,
            )

        self.query_dense = dense("query_proj")
        self.key_dense = dense("key_proj")
        self.value_dense = dense("value_proj")
        self.output_dense = dense("output")
        separate = self.relative_attention and not self.share_att_key
        self.pos_key_dense = (
            dense("pos_key_proj") if separate and "c2p" in self.pos_att_type else None
        )
        self.pos_query_dense = (
            dense("pos_query_proj") if separate and "p2c" in self.pos_att_type else None
        )
        self.pos_dropout = keras.layers.Dropout(dropout)
        self.probs_dropout = keras.layers.Dropout(attention_dropout)

    def build(self, input_shape=None):
        shape = tf.TensorShape([None, None, self.hidden_size])
        for layer in (
            self.query_dense,
            self.key_dense,
            self.value_dense,
            self.pos_key_dense,
            self.pos_query_dense,
            self.output_dense,
        ):
            if layer is not None:
                build_in_scope(layer, shape)
        super().build(input_shape)

    def _heads(self, x):
        """[batch, length, hidden] -> [batch, heads, length, head_size]."""
        shape = tf.shape(x)
        return tf.transpose(
            tf.reshape(x, [shape[0], shape[1], self.num_heads, self.head_size]), [0, 2, 1, 3]
        )

    def call(
        self, hidden_states, attention_mask, relative_pos=None, rel_embeddings=None, training=None
    ):
        """`attention_mask`: bool [batch, 1, L, L] (query and key both real); `relative_pos`:
        int32 [L, L] bucketed `q - k`; `rel_embeddings`: [2 * att_span, hidden] (normalised)."""
        query = self._heads(self.query_dense(hidden_states))
        key = self._heads(self.key_dense(hidden_states))
        value = self._heads(self.value_dense(hidden_states))
        scale = tf.cast(math.sqrt(self.head_size * self.scale_factor), query.dtype)
        # The reference divides the key before the product.
        scores = tf.matmul(query, key / scale, transpose_b=True)
        if self.relative_attention:
            rel_embeddings = self.pos_dropout(rel_embeddings, training=training)
            scores = scores + self._relative_scores(query, key, relative_pos, rel_embeddings, scale)
        # float32 softmax under mixed precision. Rows of padded queries are
        # fully masked and come out uniform, as in the reference.
        scores = tf.where(attention_mask, tf.cast(scores, tf.float32), tf.float32.min)
        probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
        probabilities = self.probs_dropout(probabilities, training=training)
        context = tf.transpose(tf.matmul(probabilities, value), [0, 2, 1, 3])
        shape = tf.shape(context)
        return self.output_dense(tf.reshape(context, [shape[0], shape[1], self.hidden_size]))

    def _relative_scores(self, query, key, relative_pos, rel_embeddings, scale):
        span = self.att_span
        # Only rows span - reach .. span + reach of the table are ever picked (reach: the longest
        # bucketed distance of this length): projecting just those is exact and, for 64 tokens
        # of DeBERTa-v3 (2 * 256 rows), 4x less work than the whole table.
        reach = tf.minimum(tf.reduce_max(tf.abs(relative_pos)), span)
        first, end = span - reach, tf.minimum(span + reach, 2 * span - 1) + 1
        # [1, rows, hidden]: the projections see the rank-3 input they were built for.
        rel_embeddings = rel_embeddings[tf.newaxis, first:end]
        score = 0.0
        if "c2p" in self.pos_att_type:
            projection = self.key_dense if self.share_att_key else self.pos_key_dense
            # [B, H, L, rows]: each query against each relative embedding.
            c2p = tf.matmul(query, self._heads(projection(rel_embeddings)), transpose_b=True)
            c2p_pos = tf.clip_by_value(relative_pos + span, 0, 2 * span - 1) - first
            score = score + _gather_relative(c2p, c2p_pos) / scale
        if "p2c" in self.pos_att_type:
            projection = self.query_dense if self.share_att_key else self.pos_query_dense
            # [B, H, L, rows]: each key against each relative embedding.
            p2c = tf.matmul(key, self._heads(projection(rel_embeddings)), transpose_b=True)
            p2c_pos = tf.clip_by_value(-relative_pos + span, 0, 2 * span - 1) - first
            score = score + _gather_relative(p2c, p2c_pos, transpose=True) / scale
        return score

    def get_config(self):
        return {**super().get_config(), **_init_kwargs(self)}


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
        return {**super().get_config(), **_init_kwargs(self)}


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
        mask = tf.cast(attention_mask, out.dtype)[:, :, tf.newaxis]
        out = self.activation_fn(self.dropout_layer(out * mask, training=training))
        return self.layer_norm(residual_states + out) * mask

    def get_config(self):
        return {**super().get_config(), **_init_kwargs(self)}


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
        names = ("input_ids", "attention_mask")
        return names + ("token_type_ids",) if self.type_vocab_size > 1 else names

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
        if isinstance(inputs, dict):
            input_ids = inputs["input_ids"]
            attention_mask = inputs.get("attention_mask")
            token_type_ids = inputs.get("token_type_ids") if self.type_vocab_size else None
        else:
            input_ids, attention_mask, token_type_ids = inputs, None, None
        if attention_mask is None:
            attention_mask = tf.ones_like(input_ids)
        embedding_output = self.embeddings(
            input_ids, token_type_ids, attention_mask, training=training
        )
        valid = tf.cast(attention_mask, tf.bool)
        # A pair attends only when query and key are both real tokens (the reference's
        # outer-product mask).
        pair_mask = valid[:, tf.newaxis, :, tf.newaxis] & valid[:, tf.newaxis, tf.newaxis, :]
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
        return {**super().get_config(), **_init_kwargs(self)}


@dataclasses.dataclass(frozen=True)
class DebertaV2Config(EncoderConfig):
    """DeBERTa-v2 / v3 config.json fields (transformers `DebertaV2Config`, same names and defaults).

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
        intermediate_size: int. Required.
        hidden_act: str. Defaults to "gelu".
        hidden_dropout_prob, attention_probs_dropout_prob: float. Defaults to 0.1.
        max_position_embeddings: int. Defaults to 512.
        type_vocab_size: int. Defaults to 0.
        initializer_range: float. Defaults to 0.02.
        layer_norm_eps: float. Defaults to 1e-7.
        pad_token_id: int. Defaults to 0.
        embedding_size: int. Defaults to `hidden_size`.
        position_biased_input: bool. Defaults to True.
        relative_attention: bool. Defaults to False.
        max_relative_positions: int. < 1 means `max_position_embeddings`. Defaults to -1.
        position_buckets: int. <= 0 means no buckets. Defaults to -1.
        pos_att_type: tuple of str. From a list or a "p2c|c2p" string. Defaults to ().
        share_att_key: bool. Defaults to False.
        norm_rel_ebd: str. "none" or "layer_norm". Defaults to "none".
        conv_kernel_size: int. 0 for no convolution. Defaults to 0.
        conv_groups: int. Defaults to 1.
        conv_act: str. Defaults to "tanh".
    """

    model_type = "deberta-v2"

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-7
    pad_token_id: int = 0
    embedding_size: int | None = None
    position_biased_input: bool = True
    relative_attention: bool = False
    max_relative_positions: int = -1
    position_buckets: int = -1
    pos_att_type: tuple = ()
    share_att_key: bool = False
    norm_rel_ebd: str = "none"
    conv_kernel_size: int = 0
    conv_groups: int = 1
    conv_act: str = "tanh"

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json"):
        """Parses and validates a config.json dict; `BackboneError` names `source` and the field."""
        fields = ConfigFields(data, source)
        hidden_size = fields.int("hidden_size")
        values = dict(
            vocab_size=fields.int("vocab_size"),
            hidden_size=hidden_size,
            num_hidden_layers=fields.int("num_hidden_layers"),
            num_attention_heads=fields.int("num_attention_heads"),
            intermediate_size=fields.int("intermediate_size"),
            hidden_act=fields.str("hidden_act", "gelu", _activations()),
            hidden_dropout_prob=fields.float("hidden_dropout_prob", 0.1, 0.0, 1.0, False),
            attention_probs_dropout_prob=fields.float(
                "attention_probs_dropout_prob", 0.1, 0.0, 1.0, False
            ),
            max_position_embeddings=fields.int("max_position_embeddings", 512),
            type_vocab_size=fields.int("type_vocab_size", 0, minimum=0),
            initializer_range=fields.float("initializer_range", 0.02),
            layer_norm_eps=fields.float("layer_norm_eps", 1e-7),
            pad_token_id=fields.int("pad_token_id", 0, minimum=0),
            embedding_size=fields.int("embedding_size", hidden_size),
            position_biased_input=fields.bool("position_biased_input", True),
            relative_attention=fields.bool("relative_attention", False),
            max_relative_positions=fields.int("max_relative_positions", -1, minimum=-1),
            position_buckets=fields.int("position_buckets", -1, minimum=-1),
            pos_att_type=_pos_att_type(fields),
            share_att_key=fields.bool("share_att_key", False),
            norm_rel_ebd=fields.str("norm_rel_ebd", "none"),
            conv_kernel_size=fields.int("conv_kernel_size", 0, minimum=0),
            conv_groups=fields.int("conv_groups", 1),
            conv_act=fields.str("conv_act", "tanh", _activations()),
        )
        if hidden_size % values["num_attention_heads"]:
            fields.fail("num_attention_heads", f"a divisor of hidden_size={hidden_size}")
        if data.get("attention_head_size") not in (
            None,
            hidden_size // values["num_attention_heads"],
        ):
            fields.fail(
                "attention_head_size",
                f"hidden_size / num_attention_heads = "
                f"{hidden_size // values['num_attention_heads']} (DebertaV2Model's only size)",
            )
        if values["layer_norm_eps"] <= 0:
            fields.fail("layer_norm_eps", "a positive number")
        if values["pad_token_id"] >= values["vocab_size"]:
            fields.fail("pad_token_id", f"below vocab_size={values['vocab_size']}")
        if not set(values["norm_rel_ebd"].lower().split("|")) <= {"none", "layer_norm"}:
            fields.fail("norm_rel_ebd", '"none", "layer_norm" or both joined by "|"')
        if values["conv_kernel_size"] % 2 == 0 and values["conv_kernel_size"]:
            # nn.Conv1d pads (k - 1) // 2 per side: an even kernel shortens the sequence.
            fields.fail("conv_kernel_size", "0 (no convolution) or an odd integer")
        if values["conv_kernel_size"] and hidden_size % values["conv_groups"]:
            fields.fail("conv_groups", f"a divisor of hidden_size={hidden_size}")
        buckets = values["position_buckets"]
        relative_range = values["max_relative_positions"]
        if relative_range < 1:
            relative_range = values["max_position_embeddings"]
        if values["relative_attention"] and buckets > 0 and relative_range <= buckets // 2 + 1:
            # log((range - 1) / (buckets / 2)) would be <= 0: the outer buckets are undefined.
            fields.fail(
                "max_relative_positions",
                f"above position_buckets / 2 + 1 = {buckets // 2 + 1} "
                "(or -1 for max_position_embeddings)",
            )
        return cls(**values)


def _pos_att_type(fields: ConfigFields) -> tuple:
    value = fields.data.get("pos_att_type")
    if value is None:
        return ()
    if isinstance(value, str):  # older configs: "p2c|c2p"
        value = [part.strip() for part in value.lower().split("|")]
    if not isinstance(value, (list, tuple)) or not set(value) <= {"c2p", "p2c"}:
        fields.fail("pos_att_type", 'a list (or "|"-joined string) of "c2p" and "p2c"')
    return tuple(value)


def encoder_kwargs(config: DebertaV2Config) -> dict:
    """Flat `DebertaV2Encoder` kwargs from a `DebertaV2Config`."""
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
        embedding_size=config.embedding_size or config.hidden_size,
        position_biased_input=config.position_biased_input,
        relative_attention=config.relative_attention,
        max_relative_positions=config.max_relative_positions,
        position_buckets=config.position_buckets,
        pos_att_type=list(config.pos_att_type),
        share_att_key=config.share_att_key,
        norm_rel_ebd=config.norm_rel_ebd,
        conv_kernel_size=config.conv_kernel_size,
        conv_groups=config.conv_groups,
        conv_act=config.conv_act,
    )


def weight_map(encoder) -> list:
    """Every variable of a `DebertaV2Encoder` with its `DebertaV2Model` tensor name and layout."""
    embeddings = encoder.embeddings
    entries = [(embeddings.word_embeddings.embeddings, "embeddings.word_embeddings.weight", "copy")]
    for table in (embeddings.position_embeddings, embeddings.token_type_embeddings):
        if table is not None:
            entries.append((table.embeddings, f"embeddings.{table.name}.weight", "copy"))
    if embeddings.embed_proj is not None:
        entries.append((embeddings.embed_proj.kernel, "embeddings.embed_proj.weight", "linear"))
    entries += norm_weights(embeddings.layer_norm, "embeddings.LayerNorm")
    for index, block in enumerate(encoder.blocks):
        prefix, attention = f"encoder.layer.{index}", block.attention
        for dense, name in (
            (attention.query_dense, "query_proj"),
            (attention.key_dense, "key_proj"),
            (attention.value_dense, "value_proj"),
            (attention.pos_key_dense, "pos_key_proj"),
            (attention.pos_query_dense, "pos_query_proj"),
        ):
            if dense is not None:
                entries += dense_weights(dense, f"{prefix}.attention.self.{name}")
        entries += [
            *dense_weights(attention.output_dense, f"{prefix}.attention.output.dense"),
            *norm_weights(block.attention_layer_norm, f"{prefix}.attention.output.LayerNorm"),
            *dense_weights(block.ffn.intermediate_dense, f"{prefix}.intermediate.dense"),
            *dense_weights(block.ffn.output_dense, f"{prefix}.output.dense"),
            *norm_weights(block.output_layer_norm, f"{prefix}.output.LayerNorm"),
        ]
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
