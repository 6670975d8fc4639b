"""DeBERTa's disentangled self-attention and the relative positions it scores.

`build_relative_position` gives `q - k` for every query/key pair,
log-bucketed by `make_log_bucket_position` as DeBERTa-v3 does;
`DisentangledSelfAttention` adds to the content scores (Q K^T) the
content->position ("c2p") and position->content ("p2c") scores read out of
projected relative embeddings at those distances. This is the part of
DeBERTa with no BERT counterpart, and the one whose op order matters for
parity with transformers v5's PyTorch `modeling_deberta_v2.py` (float32
bucket arithmetic, key divided before the product).
"""

from __future__ import annotations

import math

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.initializers import make_dense
from kerastune_nlp.backbones.layers import build_in_scope, init_arguments
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


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
    relative_pos = tf.expand_dims(tf.range(query_size), 1) - tf.expand_dims(tf.range(key_size), 0)
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
    flat_index = tf.expand_dims(tf.range(rows), 1) * span + index
    if transpose:
        flat_index = tf.transpose(flat_index)
    flat = tf.reshape(scores, tf.concat([shape[:2], [rows * span]], 0))
    gathered = tf.gather(flat, tf.reshape(flat_index, [-1]), axis=2)
    return tf.reshape(gathered, tf.concat([shape[:2], tf.shape(flat_index)], 0))


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
        rel_embeddings = tf.expand_dims(rel_embeddings[first:end], 0)
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
        return {**super().get_config(), **init_arguments(self, DisentangledSelfAttention)}
