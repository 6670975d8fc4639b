"""`TransformerEncoder`: embeddings, a stack of post-LN blocks, an optional pooler.

The base class of the BERT, RoBERTa / XLM-R, DistilBERT and ELECTRA
encoders; each family subclass only sets class attributes (`model_type`,
`position_ids`, `supports_pooler`) and its tensor-name map. The parts other
code needs are plain attributes:

- `embeddings` (`embeddings.Embeddings`) and `embeddings_project` (ELECTRA's
  Dense from `embedding_size` to `hidden_size`, else None): depth group 0;
- `blocks`: the `TransformerBlock`s bottom first, named "layer_._<i>" under
  the "encoder" scope; each has `attention.{query,key,value,output}_dense`,
  `ffn.{intermediate,output}_dense`, `attention_layer_norm`,
  `output_layer_norm`;
- `pooler`: Dense + tanh over the first token, or None (`use_pooler=False`).

A copy with fewer blocks is `type(encoder).from_config({**encoder.get_config(),
"num_layers": 3})`. `read_encoder_inputs` and `encoder_input_names` are the
input contract that `DebertaV2Encoder` shares.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.embeddings import Embeddings
from kerastune_nlp.backbones.initializers import make_dense
from kerastune_nlp.backbones.layers import (
    TransformerBlock,
    attention_bias,
    build_in_scope,
    init_arguments,
)
from kerastune_nlp.errors import ConfigError


def encoder_input_names(type_vocab_size: int) -> tuple:
    """The input keys an encoder reads: token types only with more than one type."""
    names = ("input_ids", "attention_mask")
    return names + ("token_type_ids",) if type_vocab_size > 1 else names


def read_encoder_inputs(inputs, type_vocab_size: int) -> tuple:
    """`(input_ids, attention_mask, token_type_ids)` of an encoder call (see `TransformerEncoder`).

    A bare tensor is the input ids; a missing mask means all tokens are real;
    token types are read only when the encoder has a token-type table.
    """
    if isinstance(inputs, dict):
        input_ids = inputs["input_ids"]
        attention_mask = inputs.get("attention_mask")
        token_type_ids = inputs.get("token_type_ids") if type_vocab_size else None
    else:
        input_ids, attention_mask, token_type_ids = inputs, None, None
    if attention_mask is None:
        attention_mask = tf.ones_like(input_ids)
    return input_ids, attention_mask, token_type_ids


@keras.utils.register_keras_serializable(package="kerastune_nlp")
class TransformerEncoder(keras.layers.Layer):
    """A BERT-style encoder: inputs dict -> last hidden state [batch, seq, hidden_size].

    Args:
        vocab_size: int. Word embedding rows.
        hidden_size: int. Model width.
        num_layers: int. Number of Transformer blocks.
        num_heads: int. Attention heads per block.
        intermediate_size: int. Feed-forward inner width.
        hidden_act: str. Hugging Face activation name. Defaults to "gelu" (exact).
        dropout: float. Embedding and residual dropout. Defaults to 0.1.
        attention_dropout: float. Dropout on attention probabilities. Defaults to 0.1.
        max_position_embeddings: int. Position table rows. Defaults to 512.
        type_vocab_size: int. Token-type rows; 0 for none. Defaults to 2.
        layer_norm_eps: float. Defaults to 1e-12.
        initializer_range: float. Stddev of the truncated normal initializer. Defaults to 0.02.
        pad_token_id: int. Defaults to 0.
        embedding_size: int or None. Embedding width when it differs from
            `hidden_size` (ELECTRA); adds `embeddings_project`. Defaults to None.
        sinusoidal_positions: bool. Fixed sin/cos initial position table. Defaults to False.
        use_pooler: bool. Build the [CLS] pooler (Dense + tanh); its tensors
            are then required when loading. Defaults to False.
        seed: int or None. Seeds every initializer (same seed, same weights).
            Defaults to None.
        **kwargs: passed to `keras.layers.Layer` (`name`, `dtype`).

    Call args:
        inputs: dict with "input_ids" [batch, seq] int, "attention_mask"
            (1 = token, 0 = padding; all ones if absent) and, when the family
            has token types, "token_type_ids" (zeros if absent). A bare
            tensor is taken as the input ids.
        training: bool. Enables dropout.
        output_hidden_states: bool. Return a dict with "last_hidden_state",
            "hidden_states" (embedding output, then every block's output) and,
            with a pooler, "pooled_output". Defaults to False.

    Example:
    >>> encoder = BertEncoder(vocab_size=100, hidden_size=32, num_layers=2, num_heads=4,
    ...                       intermediate_size=64, seed=0)
    >>> ids = tf.constant([[2, 5, 7]])
    >>> encoder({"input_ids": ids, "attention_mask": tf.ones_like(ids)}).shape
    TensorShape([1, 3, 32])
    """

    model_type = "transformer"
    position_ids = "absolute"
    supports_pooler = True
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
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        pad_token_id=0,
        embedding_size=None,
        sinusoidal_positions=False,
        use_pooler=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if use_pooler and not self.supports_pooler:
            raise ConfigError(
                f"The {self.model_type!r} encoder has no pooler. Received: `use_pooler`=True. "
                "Pass use_pooler=False."
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
        self.pad_token_id = int(pad_token_id)
        self.embedding_size = None if embedding_size is None else int(embedding_size)
        self.sinusoidal_positions = bool(sinusoidal_positions)
        self.use_pooler = bool(use_pooler)
        self.seed = seed
        policy = self.dtype_policy
        width = self.embedding_size or self.hidden_size
        self.embeddings = Embeddings(
            vocab_size,
            width,
            max_position_embeddings,
            type_vocab_size,
            self.position_ids,
            pad_token_id,
            layer_norm_eps,
            dropout,
            initializer_range,
            sinusoidal_positions,
            seed,
            name="embeddings",
            dtype=policy,
        )
        self.embeddings_project = (
            make_dense(
                hidden_size,
                name="embeddings_project",
                initializer_range=initializer_range,
                seed=seed,
                path="embeddings_project",
                dtype=policy,
            )
            if width != self.hidden_size
            else None
        )
        self.blocks = [
            TransformerBlock(
                hidden_size,
                num_heads,
                intermediate_size,
                hidden_act,
                dropout,
                attention_dropout,
                layer_norm_eps,
                initializer_range,
                seed,
                name=f"layer_._{index}",
                dtype=policy,
            )
            for index in range(self.num_layers)
        ]
        self.pooler = (
            make_dense(
                hidden_size,
                name="pooler",
                activation="tanh",
                initializer_range=initializer_range,
                seed=seed,
                path="pooler",
                dtype=policy,
            )
            if use_pooler
            else None
        )

    @property
    def input_names(self) -> tuple:
        """The input keys this encoder reads (token types only with more than one type)."""
        return encoder_input_names(self.type_vocab_size)

    def get_prunable_weights(self) -> list:
        """The blocks' Dense kernels (attention and feed-forward): what magnitude pruning zeroes.

        tfmot's `prune_low_magnitude` accepts a custom layer that has this
        method, so a model holding this encoder prunes without a wrapper.
        Embeddings, LayerNorms, biases and the pooler are kept dense.
        """
        kernels = []
        for block in self.blocks:
            attention, ffn = block.attention, block.ffn
            for dense in (
                attention.query_dense,
                attention.key_dense,
                attention.value_dense,
                attention.output_dense,
                ffn.intermediate_dense,
                ffn.output_dense,
            ):
                kernels.append(dense.kernel)
        return kernels

    def build(self, input_shape=None):
        build_in_scope(self.embeddings, None)
        if self.embeddings_project is not None:
            build_in_scope(
                self.embeddings_project, tf.TensorShape([None, None, self.embedding_size])
            )
        hidden = tf.TensorShape([None, None, self.hidden_size])
        with tf.name_scope("encoder"):
            for block in self.blocks:
                build_in_scope(block, hidden)
        if self.pooler is not None:
            build_in_scope(self.pooler, tf.TensorShape([None, self.hidden_size]))
        super().build(input_shape)

    def call(self, inputs, training=None, output_hidden_states=False):
        input_ids, attention_mask, token_type_ids = read_encoder_inputs(
            inputs, self.type_vocab_size
        )
        hidden_states = self.embeddings(input_ids, token_type_ids, training=training)
        if self.embeddings_project is not None:
            hidden_states = self.embeddings_project(hidden_states)
        bias = attention_bias(attention_mask)
        all_states = [hidden_states]
        for block in self.blocks:
            hidden_states = block(hidden_states, bias, training=training)
            all_states.append(hidden_states)
        if not output_hidden_states:
            return hidden_states
        outputs = {"last_hidden_state": hidden_states, "hidden_states": tuple(all_states)}
        if self.pooler is not None:
            outputs["pooled_output"] = self.pooler(hidden_states[:, 0])
        return outputs

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, TransformerEncoder)}
