"""Checkpoint `config.json` -> a frozen, validated dataclass per family.

Plain JSON, no transformers import. Field names and defaults are those of
the transformers config classes (a field missing from config.json takes
HF's class default, as `from_pretrained` would), except the fields that fix
the tensor shapes: those are required, since a guess would only fail later
with a shape error. Every error is a `BackboneError` naming the file, the
field and the fix.

Other families (deberta_v2_config.py) build their config classes from
`ConfigFields`, `EncoderConfig` and the BERT field readers
(`read_bert_fields`, `check_bert_fields`) the same way.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kerastune_nlp.backbones.activations import ACTIVATION_NAMES
from kerastune_nlp.errors import BackboneError

_REQUIRED = object()


class ConfigFields:
    """Typed reads of one config.json dict, with errors naming the file and field.

    Args:
        data: dict. The parsed config.json.
        source: str. Its path (or a description) for messages.
    """

    def __init__(self, data: dict, source: str):
        self.data, self.source = data, source

    def fail(
        self, key, expected, fix="Fix the field or re-save the config with `save_pretrained`."
    ):
        value = self.data.get(key, "<missing>")
        raise BackboneError(
            f"{self.source}: field `{key}` must be {expected}. Received: `{key}`={value!r}. {fix}"
        )

    def _get(self, key, default, expected):
        if key not in self.data or self.data[key] is None:
            if default is _REQUIRED:
                self.fail(
                    key, expected, "Add it to config.json (it fixes the shape of the weights)."
                )
            return default
        return self.data[key]

    def int(self, key, default=_REQUIRED, minimum=1):
        expected = f"an integer >= {minimum}"
        value = self._get(key, default, expected)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, expected)
        return value

    def float(self, key, default=_REQUIRED, low=0.0, high=None, inclusive_high=True):
        bound = "" if high is None else f" and {'<=' if inclusive_high else '<'} {high}"
        expected = f"a number >= {low}{bound}"
        value = self._get(key, default, expected)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value < low
            or (high is not None and (value > high or (value == high and not inclusive_high)))
        ):
            self.fail(key, expected)
        return float(value)

    def str(self, key, default=_REQUIRED, choices=None):
        expected = "a string" if choices is None else f"one of {sorted(choices)}"
        value = self._get(key, default, expected)
        if not isinstance(value, str) or (choices is not None and value not in choices):
            self.fail(key, expected)
        return value

    def bool(self, key, default=_REQUIRED):
        value = self._get(key, default, "true or false")
        if not isinstance(value, bool):
            self.fail(key, "true or false")
        return value


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Base of the family configs: `model_type`, `to_dict`, `num_layers`, `with_num_layers`, `with_layers`."""

    LAYERS_FIELD = "num_hidden_layers"
    # A layer-subset student of this family must keep block 0 (ModernBERT: only
    # block 0 lacks the attention LayerNorm, so no other block can stand in for it).
    KEEPS_FIRST_LAYER = False

    def to_dict(self) -> dict:
        """The config.json content (HF field names)."""
        return {
            "model_type": self.model_type,
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
        }

    @property
    def num_layers(self) -> int:
        return getattr(self, self.LAYERS_FIELD)

    def with_num_layers(self, num_layers: int):
        """A copy with fewer (or more) blocks, e.g. for a layer-subset student."""
        return dataclasses.replace(self, **{self.LAYERS_FIELD: num_layers})

    def with_layers(self, layers):
        """A copy whose blocks are this config's blocks `layers` (0-based, increasing), for a student.

        The blocks of these families are all alike, so only the count changes;
        families whose blocks differ (ModernBERT) override it.
        """
        return self.with_num_layers(len(layers))


def read_bert_fields(
    fields: ConfigFields, *, type_vocab_size, layer_norm_eps, pad_token_id
) -> dict:
    """The fields BERT-style configs share (DeBERTa-v2's too), with the family's defaults.

    Args:
        fields: ConfigFields. The config.json being read.
        type_vocab_size, layer_norm_eps, pad_token_id: the family's defaults
            (BERT: 2, 1e-12, 0; RoBERTa: pad 1; DeBERTa-v2: 0, 1e-7, 0).
    """
    return dict(
        vocab_size=fields.int("vocab_size"),
        hidden_size=fields.int("hidden_size"),
        num_hidden_layers=fields.int("num_hidden_layers"),
        num_attention_heads=fields.int("num_attention_heads"),
        intermediate_size=fields.int("intermediate_size"),
        hidden_act=fields.str("hidden_act", "gelu", ACTIVATION_NAMES),
        hidden_dropout_prob=fields.float("hidden_dropout_prob", 0.1, 0.0, 1.0, False),
        attention_probs_dropout_prob=fields.float(
            "attention_probs_dropout_prob", 0.1, 0.0, 1.0, False
        ),
        max_position_embeddings=fields.int("max_position_embeddings", 512),
        type_vocab_size=fields.int("type_vocab_size", type_vocab_size, minimum=0),
        initializer_range=fields.float("initializer_range", 0.02),
        layer_norm_eps=fields.float("layer_norm_eps", layer_norm_eps),
        pad_token_id=fields.int("pad_token_id", pad_token_id, minimum=0),
    )


def check_bert_fields(fields: ConfigFields, values: dict) -> None:
    """Checks across `read_bert_fields` values: heads divide the width, eps > 0, pad id fits."""
    if values["hidden_size"] % values["num_attention_heads"]:
        fields.fail("num_attention_heads", f"a divisor of hidden_size={values['hidden_size']}")
    if values["layer_norm_eps"] <= 0:
        fields.fail("layer_norm_eps", "a positive number")
    if values["pad_token_id"] >= values["vocab_size"]:
        fields.fail("pad_token_id", f"below vocab_size={values['vocab_size']}")


@dataclasses.dataclass(frozen=True)
class BertConfig(EncoderConfig):
    """BERT's config.json fields (transformers `BertConfig`).

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
        intermediate_size: int. Required.
        hidden_act: str. Defaults to "gelu".
        hidden_dropout_prob, attention_probs_dropout_prob: float. Defaults to 0.1.
        max_position_embeddings: int. Defaults to 512.
        type_vocab_size: int. Defaults to 2.
        initializer_range: float. Defaults to 0.02.
        layer_norm_eps: float. Defaults to 1e-12.
        pad_token_id: int. Defaults to 0.
    """

    model_type = "bert"
    PAD_DEFAULT = 0

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def _read(cls, fields: ConfigFields) -> dict:
        values = read_bert_fields(
            fields, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=cls.PAD_DEFAULT
        )
        fields.str("position_embedding_type", "absolute", ("absolute",))
        check_bert_fields(fields, values)
        return values

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json"):
        """Parses and validates a config.json dict (`BackboneError` naming `source`, field)."""
        return cls(**cls._read(ConfigFields(data, source)))


@dataclasses.dataclass(frozen=True)
class RobertaConfig(BertConfig):
    """RoBERTa / XLM-RoBERTa config (BERT's fields; `pad_token_id` defaults to 1)."""

    model_type = "roberta"
    PAD_DEFAULT = 1
    pad_token_id: int = 1

    @classmethod
    def _read(cls, fields: ConfigFields) -> dict:
        values = super()._read(fields)
        # Positions start at pad_token_id + 1, so the table needs that many extra rows.
        if values["max_position_embeddings"] <= values["pad_token_id"] + 1:
            fields.fail(
                "max_position_embeddings", f"above pad_token_id + 1 = {values['pad_token_id'] + 1}"
            )
        return values


@dataclasses.dataclass(frozen=True)
class XLMRobertaConfig(RobertaConfig):
    """XLM-RoBERTa config (same fields as RoBERTa)."""

    model_type = "xlm-roberta"


@dataclasses.dataclass(frozen=True)
class ElectraConfig(BertConfig):
    """ELECTRA config: BERT's fields plus `embedding_size` (defaults to 128, as HF)."""

    model_type = "electra"
    embedding_size: int = 128

    @classmethod
    def _read(cls, fields: ConfigFields) -> dict:
        return {**super()._read(fields), "embedding_size": fields.int("embedding_size", 128)}


@dataclasses.dataclass(frozen=True)
class DistilBertConfig(EncoderConfig):
    """DistilBERT config (transformers `DistilBertConfig` field names).

    Args:
        vocab_size, dim, n_layers, n_heads, hidden_dim: int. Required.
        activation: str. Defaults to "gelu".
        dropout, attention_dropout: float. Defaults to 0.1.
        max_position_embeddings: int. Defaults to 512.
        sinusoidal_pos_embds: bool. Defaults to False.
        initializer_range: float. Defaults to 0.02.
        pad_token_id: int. Defaults to 0.
    """

    model_type = "distilbert"
    LAYERS_FIELD = "n_layers"

    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    hidden_dim: int
    activation: str = "gelu"
    dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    initializer_range: float = 0.02
    pad_token_id: int = 0

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json"):
        """Parses and validates a config.json dict (`BackboneError` naming `source`, field)."""
        fields = ConfigFields(data, source)
        values = dict(
            vocab_size=fields.int("vocab_size"),
            dim=fields.int("dim"),
            n_layers=fields.int("n_layers"),
            n_heads=fields.int("n_heads"),
            hidden_dim=fields.int("hidden_dim"),
            activation=fields.str("activation", "gelu", ACTIVATION_NAMES),
            dropout=fields.float("dropout", 0.1, 0.0, 1.0, False),
            attention_dropout=fields.float("attention_dropout", 0.1, 0.0, 1.0, False),
            max_position_embeddings=fields.int("max_position_embeddings", 512),
            sinusoidal_pos_embds=fields.bool("sinusoidal_pos_embds", False),
            initializer_range=fields.float("initializer_range", 0.02),
            pad_token_id=fields.int("pad_token_id", 0, minimum=0),
        )
        if values["dim"] % values["n_heads"]:
            fields.fail("n_heads", f"a divisor of dim={values['dim']}")
        return cls(**values)


def read_config_json(path) -> dict:
    """The dict in a config.json file; `BackboneError` naming it if missing or not JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BackboneError(
            f"No config.json at {str(path)!r}. Save the model with `save_pretrained`, "
            "or pass `config=`."
        ) from error
    except (ValueError, UnicodeDecodeError) as error:
        raise BackboneError(
            f"{str(path)!r} is not valid JSON ({error}). Re-download it or re-save it "
            "with `save_pretrained`."
        ) from error
    if not isinstance(data, dict):
        raise BackboneError(
            f"{str(path)!r} must hold a JSON object. Received: {type(data).__name__}."
        )
    return data


def parse_config(data, *, source: str = "config.json"):
    """A family config from a config.json path, a dict, or an existing family config.

    Args:
        data: path, dict or `EncoderConfig`.
        source: str. Name used in messages when `data` is a dict. Defaults to "config.json".

    Example:
    >>> parse_config({"model_type": "bert", "vocab_size": 99, "hidden_size": 32,
    ...               "num_hidden_layers": 2,
    ...               "num_attention_heads": 4, "intermediate_size": 37}).num_layers
    2
    """
    from kerastune_nlp.backbones.registry import get_family

    if isinstance(data, EncoderConfig):
        return data
    if isinstance(data, (str, Path)):
        source = str(data)
        data = read_config_json(data)
    if not isinstance(data, dict):
        raise BackboneError(
            f"Expected a config.json path, dict or encoder config. Received: {type(data).__name__}."
        )
    model_type = data.get("model_type")
    if not isinstance(model_type, str):
        raise BackboneError(
            f"{source}: field `model_type` is missing. Received: `model_type`={model_type!r}. "
            'Add the family name (e.g. "bert") to config.json.'
        )
    return get_family(model_type, source=source).config_class.from_dict(data, source)
