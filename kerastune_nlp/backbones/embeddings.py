"""`Embeddings`: the BERT-style input embeddings (word + position + token type, LayerNorm).

Shared by BERT, RoBERTa / XLM-R (positions counted after the padding id),
DistilBERT (no token types, optional sin/cos table) and ELECTRA (narrower
than the blocks); DeBERTa-v2 has its own (deberta_v2_layers.py). Variables
sit under "<encoder>/embeddings/", the scope the depth-group patterns of
`families.py` match.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.initializers import (
    make_embedding,
    make_layer_norm,
    sinusoidal_initializer,
)
from kerastune_nlp.backbones.layers import build_in_scope, init_arguments
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


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
            embeddings = embeddings + tf.expand_dims(positions, 0)
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
        return {**super().get_config(), **init_arguments(self, Embeddings)}
