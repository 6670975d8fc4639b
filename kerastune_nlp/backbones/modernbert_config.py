"""ModernBERT config.json as a frozen, validated dataclass, and its encoder kwargs.

Plain data, no TensorFlow (as config.py). Field names and defaults are
transformers v5's `ModernBertConfig`, and both spellings of the two places
where v5 and the configs on the Hub (written by 4.x) differ are read:

- the attention pattern: v5 writes `layer_types` (one "full_attention" /
  "sliding_attention" per layer); older configs only have
  `global_attn_every_n_layers` (default 3: layers 0, 3, 6, ... are global);
- the rotary bases: v5 writes `rope_parameters` {"full_attention":
  {"rope_theta": ...}, "sliding_attention": {...}}; older configs
  `global_rope_theta` (default 160000) and `local_rope_theta` (default 10000).
  Only the "default" rope type is implemented; scaled variants are refused.

`to_dict` writes both spellings, so transformers 4.x and 5 read the saved
config the same way.
"""

from __future__ import annotations

import dataclasses

from kerastune_nlp.backbones.activations import ACTIVATION_NAMES
from kerastune_nlp.backbones.config import ConfigFields, EncoderConfig
from kerastune_nlp.errors import ConfigError

FULL, SLIDING = "full_attention", "sliding_attention"
_DEFAULT_THETA = {FULL: 160_000.0, SLIDING: 10_000.0}
_OLD_THETA_FIELDS = {FULL: "global_rope_theta", SLIDING: "local_rope_theta"}


@dataclasses.dataclass(frozen=True)
class ModernBertConfig(EncoderConfig):
    """ModernBERT config.json fields (transformers `ModernBertConfig`, same names and defaults).

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
        intermediate_size: int. Required.
        hidden_activation: str. Activation of the GeGLU input half. Defaults to "gelu" (exact).
        max_position_embeddings: int. Longest input. Defaults to 8192.
        initializer_range: float. Defaults to 0.02.
        norm_eps: float. LayerNorm epsilon. Defaults to 1e-5.
        norm_bias: bool. LayerNorms have a bias. Defaults to False.
        attention_bias: bool. Wqkv and the attention Wo have biases. Defaults to False.
        mlp_bias: bool. Wi and the MLP Wo have biases. Defaults to False.
        attention_dropout, embedding_dropout, mlp_dropout: float. Defaults to 0.0.
        pad_token_id: int. Defaults to 50283.
        layer_types: tuple of str. "full_attention" or "sliding_attention" per
            layer. Defaults to global every `global_attn_every_n_layers` (3) layers.
        local_attention: int. Sliding window width: a token sees
            `local_attention // 2` tokens on each side. Defaults to 128.
        global_rope_theta, local_rope_theta: float. Rotary bases of the full
            and sliding layers. Default to 160000 and 10000.
        classifier_activation: str. Activation of the prediction head (MLM). Defaults to "gelu".
        classifier_bias: bool. The prediction head's dense has a bias. Defaults to False.
        decoder_bias: bool. The MLM decoder has a bias. Defaults to True.
        bos_token_id, eos_token_id, cls_token_id, sep_token_id: int. Carried
            into saved configs only. Default to 50281, 50282, 50281, 50282.
    """

    model_type = "modernbert"
    KEEPS_FIRST_LAYER = True

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_activation: str = "gelu"
    max_position_embeddings: int = 8192
    initializer_range: float = 0.02
    norm_eps: float = 1e-5
    norm_bias: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    attention_dropout: float = 0.0
    embedding_dropout: float = 0.0
    mlp_dropout: float = 0.0
    pad_token_id: int = 50283
    layer_types: tuple = ()
    local_attention: int = 128
    global_rope_theta: float = _DEFAULT_THETA[FULL]
    local_rope_theta: float = _DEFAULT_THETA[SLIDING]
    classifier_activation: str = "gelu"
    classifier_bias: bool = False
    decoder_bias: bool = True
    # Not used by the encoder; kept so that a saved config.json keeps them
    # (transformers' defaults lie past a small vocabulary).
    bos_token_id: int = 50281
    eos_token_id: int = 50282
    cls_token_id: int = 50281
    sep_token_id: int = 50282

    # What the rest of the package reads under BERT's names.
    @property
    def hidden_act(self) -> str:
        return self.hidden_activation

    @property
    def layer_norm_eps(self) -> float:
        return self.norm_eps

    @property
    def hidden_dropout_prob(self) -> float:
        return self.mlp_dropout

    @property
    def type_vocab_size(self) -> int:
        return 0

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json"):
        """Parses and validates a config.json dict; `BackboneError` names `source` and the field."""
        fields = ConfigFields(data, source)
        dropout = dict(low=0.0, high=1.0, inclusive_high=False)
        values = dict(
            vocab_size=fields.int("vocab_size"),
            hidden_size=fields.int("hidden_size"),
            num_hidden_layers=fields.int("num_hidden_layers"),
            num_attention_heads=fields.int("num_attention_heads"),
            intermediate_size=fields.int("intermediate_size"),
            hidden_activation=fields.str("hidden_activation", "gelu", ACTIVATION_NAMES),
            max_position_embeddings=fields.int("max_position_embeddings", 8192),
            initializer_range=fields.float("initializer_range", 0.02),
            norm_eps=fields.float("norm_eps", 1e-5),
            norm_bias=fields.bool("norm_bias", False),
            attention_bias=fields.bool("attention_bias", False),
            mlp_bias=fields.bool("mlp_bias", False),
            attention_dropout=fields.float("attention_dropout", 0.0, **dropout),
            embedding_dropout=fields.float("embedding_dropout", 0.0, **dropout),
            mlp_dropout=fields.float("mlp_dropout", 0.0, **dropout),
            pad_token_id=fields.int("pad_token_id", 50283, minimum=0),
            local_attention=fields.int("local_attention", 128, minimum=2),
            classifier_activation=fields.str("classifier_activation", "gelu", ACTIVATION_NAMES),
            classifier_bias=fields.bool("classifier_bias", False),
            decoder_bias=fields.bool("decoder_bias", True),
            bos_token_id=fields.int("bos_token_id", 50281, minimum=0),
            eos_token_id=fields.int("eos_token_id", 50282, minimum=0),
            cls_token_id=fields.int("cls_token_id", 50281, minimum=0),
            sep_token_id=fields.int("sep_token_id", 50282, minimum=0),
        )
        values["layer_types"] = _layer_types(fields, values["num_hidden_layers"])
        values["global_rope_theta"] = _rope_theta(fields, FULL)
        values["local_rope_theta"] = _rope_theta(fields, SLIDING)
        if values["hidden_size"] % values["num_attention_heads"]:
            fields.fail("num_attention_heads", f"a divisor of hidden_size={values['hidden_size']}")
        if (values["hidden_size"] // values["num_attention_heads"]) % 2:
            fields.fail(
                "num_attention_heads",
                "such that hidden_size / num_attention_heads is even (rotary embeddings rotate pairs)",
            )
        if values["norm_eps"] <= 0:
            fields.fail("norm_eps", "a positive number")
        if values["pad_token_id"] >= values["vocab_size"]:
            fields.fail("pad_token_id", f"below vocab_size={values['vocab_size']}")
        return cls(**values)

    def to_dict(self) -> dict:
        """config.json content: v5's `layer_types` / `rope_parameters` and 4.x's fields alike."""
        data = super().to_dict()
        data["layer_types"] = list(self.layer_types)
        every = _global_every(self.layer_types)
        if every is not None:
            data["global_attn_every_n_layers"] = every
        data["rope_parameters"] = {
            FULL: {"rope_type": "default", "rope_theta": self.global_rope_theta},
            SLIDING: {"rope_type": "default", "rope_theta": self.local_rope_theta},
        }
        return data

    def with_num_layers(self, num_layers: int):
        """A copy with the first `num_layers` blocks (their attention kinds kept)."""
        types = tuple(self.layer_types[:num_layers])
        if num_layers > len(self.layer_types):
            every = _global_every(self.layer_types) or 3
            types = tuple(
                SLIDING if i % every else FULL for i in range(num_layers)
            )
        return dataclasses.replace(self, num_hidden_layers=num_layers, layer_types=types)

    def with_layers(self, layers):
        """A copy made of the blocks `layers`, each keeping its attention kind (global or sliding).

        The student's block j is the teacher's block `layers[j]`: its rotary
        base and attention mask follow its kind, so `layer_types` lists the
        kept blocks' kinds (transformers v5 reads any such list). Block 0 must
        be kept: ModernBERT's first block has no `attn_norm` (the embeddings'
        norm precedes it) and every other block has one, so no other block
        can become the first without changing what it computes.
        """
        layers = [int(i) for i in layers]
        if not layers or layers[0] != 0:
            first = layers[0] if layers else None
            suggestion = [0, *(layers[1:] or [first])]
            raise ConfigError(
                "A ModernBERT student must keep block 0: ModernBERT's first block has no attention "
                f"LayerNorm (attn_norm) while block {first} has one, so block {first} cannot become the "
                "student's first block without changing what it computes. Received: "
                f"`keep_layers`={layers}. Keep block 0, e.g. `keep_layers`={suggestion} "
                "(--keep-layers), or pass --student-layers, which keeps block 0 for ModernBERT."
            )
        types = tuple(self.layer_types[i] for i in layers)
        return dataclasses.replace(self, num_hidden_layers=len(layers), layer_types=types)


def _layer_types(fields: ConfigFields, num_layers: int) -> tuple:
    value = fields.data.get("layer_types")
    if value is None:
        every = fields.int("global_attn_every_n_layers", 3)
        return tuple(SLIDING if i % every else FULL for i in range(num_layers))
    if (
        not isinstance(value, (list, tuple))
        or len(value) != num_layers
        or not set(value) <= {FULL, SLIDING}
    ):
        fields.fail(
            "layer_types",
            f'a list of {num_layers} (num_hidden_layers) entries "{FULL}" or "{SLIDING}"',
        )
    return tuple(value)


def _rope_theta(fields: ConfigFields, layer_type: str) -> float:
    parameters = fields.data.get("rope_parameters")
    old = _OLD_THETA_FIELDS[layer_type]
    if parameters is None:
        return fields.float(old, _DEFAULT_THETA[layer_type], low=1.0)
    entry = parameters.get(layer_type) if isinstance(parameters, dict) else None
    if entry is None:
        entry = {}
    if not isinstance(entry, dict) or entry.get("rope_type", "default") != "default":
        fields.fail(
            "rope_parameters",
            f'a dict whose "{layer_type}" entry has rope_type "default" (the only one '
            "kerastune_nlp implements)",
            "Use a checkpoint with the default rotary embeddings.",
        )
    theta = entry.get("rope_theta", fields.data.get(old, _DEFAULT_THETA[layer_type]))
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or theta < 1:
        fields.fail("rope_parameters", f'a dict whose "{layer_type}" rope_theta is a number >= 1')
    return float(theta)


def _global_every(layer_types) -> int | None:
    """n when layer_types is "global every n layers" (4.x's `global_attn_every_n_layers`), else None."""
    for every in range(1, len(layer_types) + 2):
        if all((t == FULL) == (i % every == 0) for i, t in enumerate(layer_types)):
            return every
    return None


def encoder_kwargs(config: ModernBertConfig) -> dict:
    """Flat `ModernBertEncoder` kwargs from a `ModernBertConfig`."""
    return dict(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_activation,
        max_position_embeddings=config.max_position_embeddings,
        layer_types=list(config.layer_types),
        local_attention=config.local_attention,
        global_rope_theta=config.global_rope_theta,
        local_rope_theta=config.local_rope_theta,
        norm_eps=config.norm_eps,
        norm_bias=config.norm_bias,
        attention_bias=config.attention_bias,
        mlp_bias=config.mlp_bias,
        attention_dropout=config.attention_dropout,
        embedding_dropout=config.embedding_dropout,
        mlp_dropout=config.mlp_dropout,
        initializer_range=config.initializer_range,
        pad_token_id=config.pad_token_id,
    )
