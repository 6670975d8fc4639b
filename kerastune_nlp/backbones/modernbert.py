"""ModernBERT (model_type "modernbert") as a tf-keras encoder, its weight map and registration.

Follows transformers v5's PyTorch `ModernBertModel` (layers in
modernbert_layers.py, config in modernbert_config.py): embeddings without
positions, pre-LN blocks with rotary attention, global attention in the
"full_attention" layers (by default every third, from layer 0) and a
sliding window of `local_attention // 2` tokens each side in the others,
each kind with its own rotary base, GeGLU MLPs, and `final_norm` over the
last block. No pooler and no token types.

Variables (under the encoder's name, "modernbert"): `embeddings/...` (depth
group 0), `encoder/layer_._<i>/...` (the blocks), `final_norm/...` (after
the blocks: the group of the head, as a pooler would be).

`hidden_states` (with `output_hidden_states=True`) are the reference's:
the embedding output, each block's output, except that the last entry is
after `final_norm` (equal to `last_hidden_state`).

Checkpoint names: the reference fuses query, key and value into one
`layers.<i>.attn.Wqkv` of [3 x hidden, hidden]; our three Dense layers are
its row blocks 0, 1 and 2 (layouts "linear@0/3", ...; see tensor_layouts.py),
joined again by `save_checkpoint`.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.layers import build_in_scope, init_arguments
from kerastune_nlp.backbones.modernbert_config import ModernBertConfig, encoder_kwargs
from kerastune_nlp.backbones.modernbert_layers import (
    ModernBertBlock,
    ModernBertEmbeddings,
    attention_biases,
    make_norm,
    rotary_cos_sin,
)
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import encoder_input_names, read_encoder_inputs
from kerastune_nlp.backbones.weight_maps import dense_weights, embedding_weights, norm_weights
from kerastune_nlp.errors import ConfigError

_serializable = keras.utils.register_keras_serializable(package="kerastune_nlp")


@_serializable
class ModernBertEncoder(keras.layers.Layer):
    """The ModernBERT base model: inputs dict -> last hidden state [batch, seq, hidden_size].

    Same public surface as `TransformerEncoder` (`embeddings`, `blocks` named
    "layer_._<i>" under the "encoder" scope, `input_names`, the call
    arguments, `get_prunable_weights`), plus `final_norm`. No pooler.

    Args:
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size: int.
        hidden_act: str. GeGLU activation (`hidden_activation`). Defaults to "gelu" (exact).
        max_position_embeddings: int. Defaults to 8192.
        layer_types: list of str. "full_attention" / "sliding_attention" per
            layer. Defaults to None (global every third layer from layer 0).
        local_attention: int. Sliding window width (`local_attention // 2` each side).
            Defaults to 128.
        global_rope_theta, local_rope_theta: float. Rotary bases. Default to 160000.0, 10000.0.
        norm_eps: float. Defaults to 1e-5.
        norm_bias, attention_bias, mlp_bias: bool. Default to False.
        attention_dropout, embedding_dropout, mlp_dropout: float. Default to 0.0.
        initializer_range: float. Defaults to 0.02.
        pad_token_id: int. Defaults to 50283.
        use_pooler: bool. Must be False. Defaults to False.
        seed: int or None. Seeds every initializer. Defaults to None.
        **kwargs: passed to `keras.layers.Layer`.

    Example:
    >>> encoder = ModernBertEncoder(vocab_size=100, hidden_size=32, num_layers=4, num_heads=2,
    ...                             intermediate_size=48, local_attention=8, pad_token_id=0, seed=0)
    >>> ids = tf.constant([[2, 5, 7]])
    >>> encoder({"input_ids": ids, "attention_mask": tf.ones_like(ids)}).shape
    TensorShape([1, 3, 32])
    """

    model_type = "modernbert"
    supports_pooler = False
    type_vocab_size = 0
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
        max_position_embeddings=8192,
        layer_types=None,
        local_attention=128,
        global_rope_theta=160_000.0,
        local_rope_theta=10_000.0,
        norm_eps=1e-5,
        norm_bias=False,
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        embedding_dropout=0.0,
        mlp_dropout=0.0,
        initializer_range=0.02,
        pad_token_id=50283,
        use_pooler=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if use_pooler:
            raise ConfigError(
                "The 'modernbert' encoder has no pooler (ModernBertModel has none). Received: "
                "`use_pooler`=True. Pass use_pooler=False."
            )
        if num_layers < 1:
            raise ConfigError(
                f"`num_layers` must be at least 1. Received: `num_layers`={num_layers}."
            )
        if layer_types is None:
            layer_types = [
                "sliding_attention" if i % 3 else "full_attention" for i in range(num_layers)
            ]
        layer_types = list(layer_types)
        if len(layer_types) < num_layers:
            raise ConfigError(
                f"`layer_types` must name the attention of each of the {num_layers} layers. "
                f"Received: `layer_types`={layer_types!r}."
            )
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_size = int(intermediate_size)
        self.hidden_act = hidden_act
        self.max_position_embeddings = int(max_position_embeddings)
        # A copy with fewer layers (`from_config({..., "num_layers": n})`) keeps the first n kinds.
        self.layer_types = layer_types[: self.num_layers]
        self.local_attention = int(local_attention)
        self.global_rope_theta = float(global_rope_theta)
        self.local_rope_theta = float(local_rope_theta)
        self.norm_eps = float(norm_eps)
        self.norm_bias = bool(norm_bias)
        self.attention_bias = bool(attention_bias)
        self.mlp_bias = bool(mlp_bias)
        self.attention_dropout = float(attention_dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.mlp_dropout = float(mlp_dropout)
        self.initializer_range = float(initializer_range)
        self.pad_token_id = int(pad_token_id)
        self.use_pooler = False
        self.seed = seed
        self.pooler = None
        policy = self.dtype_policy
        self.embeddings = ModernBertEmbeddings(
            vocab_size,
            hidden_size,
            norm_eps,
            norm_bias,
            embedding_dropout,
            initializer_range,
            seed,
            name="embeddings",
            dtype=policy,
        )
        self.blocks = [
            ModernBertBlock(
                hidden_size,
                num_heads,
                intermediate_size,
                hidden_act,
                layer_type,
                index == 0,
                norm_eps,
                norm_bias,
                attention_bias,
                mlp_bias,
                attention_dropout,
                mlp_dropout,
                initializer_range,
                seed,
                name=f"layer_._{index}",
                dtype=policy,
            )
            for index, layer_type in enumerate(self.layer_types)
        ]
        self.final_norm = make_norm(norm_eps, norm_bias, name="final_norm", dtype=policy)

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def input_names(self) -> tuple:
        """The input keys this encoder reads (no token types)."""
        return encoder_input_names(0)

    def get_prunable_weights(self) -> list:
        """The blocks' Dense kernels (q, k, v = the rows of Wqkv; Wo; Wi; the MLP's Wo)."""
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
        hidden = tf.TensorShape([None, None, self.hidden_size])
        with tf.name_scope("encoder"):
            for block in self.blocks:
                build_in_scope(block, hidden)
        build_in_scope(self.final_norm, hidden)
        super().build(input_shape)

    def call(self, inputs, training=None, output_hidden_states=False):
        input_ids, attention_mask, _ = read_encoder_inputs(inputs, 0)
        hidden_states = self.embeddings(input_ids, training=training)
        length = tf.shape(input_ids)[1]
        biases = attention_biases(attention_mask, self.local_attention // 2)
        thetas = {
            "full_attention": self.global_rope_theta,
            "sliding_attention": self.local_rope_theta,
        }
        rotary = {
            kind: rotary_cos_sin(length, self.head_size, thetas[kind])
            for kind in sorted(set(self.layer_types))
        }
        all_states = [hidden_states]
        for block in self.blocks:
            cos, sin = rotary[block.layer_type]
            hidden_states = block(
                hidden_states, cos, sin, biases[block.layer_type], training=training
            )
            all_states.append(hidden_states)
        hidden_states = self.final_norm(hidden_states)
        if not output_hidden_states:
            return hidden_states
        # As the reference: the last entry is after final_norm.
        all_states[-1] = hidden_states
        return {"last_hidden_state": hidden_states, "hidden_states": tuple(all_states)}

    def get_config(self):
        return {**super().get_config(), **init_arguments(self, ModernBertEncoder)}


def weight_map(encoder) -> list:
    """Every variable of a `ModernBertEncoder` with its `ModernBertModel` tensor name and layout."""
    entries = embedding_weights(encoder.embeddings, layer_norm_name="norm")
    for index, block in enumerate(encoder.blocks):
        prefix = f"layers.{index}"
        attention, ffn = block.attention, block.ffn
        if block.attention_layer_norm is not None:
            entries += norm_weights(block.attention_layer_norm, f"{prefix}.attn_norm")
        for chunk, dense in enumerate(
            (attention.query_dense, attention.key_dense, attention.value_dense)
        ):
            entries += dense_weights(dense, f"{prefix}.attn.Wqkv", chunk=(chunk, 3))
        entries += dense_weights(attention.output_dense, f"{prefix}.attn.Wo")
        entries += norm_weights(block.output_layer_norm, f"{prefix}.mlp_norm")
        entries += dense_weights(ffn.intermediate_dense, f"{prefix}.mlp.Wi")
        entries += dense_weights(ffn.output_dense, f"{prefix}.mlp.Wo")
    return entries + norm_weights(encoder.final_norm, "final_norm")


FAMILY = register_family(
    EncoderFamily(
        model_types=("modernbert",),
        config_class=ModernBertConfig,
        encoder_class=ModernBertEncoder,
        encoder_kwargs=encoder_kwargs,
        weight_map=weight_map,
        base_model_prefix="model",
        layer_name="modernbert",
        head_prefixes=("head.", "decoder.", "drop."),
    )
)
