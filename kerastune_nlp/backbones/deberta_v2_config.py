"""DeBERTa-v2 / v3 config.json as a frozen, validated dataclass, and its encoder kwargs.

Plain data, no TensorFlow (as config.py): `parse_config` reaches
`DebertaV2Config.from_dict` through the registry, and `encoder_kwargs` maps
the config onto `DebertaV2Encoder`'s flat arguments. The fields DeBERTa
shares with BERT are read and checked by config.py's `read_bert_fields` /
`check_bert_fields` (with DeBERTa's defaults); the relative-attention and
convolution fields are checked here.
"""

from __future__ import annotations

import dataclasses

from kerastune_nlp.backbones.activations import ACTIVATION_NAMES
from kerastune_nlp.backbones.config import (
    ConfigFields,
    EncoderConfig,
    check_bert_fields,
    read_bert_fields,
)


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
        values = read_bert_fields(fields, type_vocab_size=0, layer_norm_eps=1e-7, pad_token_id=0)
        hidden_size = values["hidden_size"]
        values.update(
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
            conv_act=fields.str("conv_act", "tanh", ACTIVATION_NAMES),
        )
        check_bert_fields(fields, values)
        head_size = hidden_size // values["num_attention_heads"]
        if data.get("attention_head_size") not in (None, head_size):
            fields.fail(
                "attention_head_size",
                f"hidden_size / num_attention_heads = {head_size} (DebertaV2Model's only size)",
            )
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
