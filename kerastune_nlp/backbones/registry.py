"""model_type -> encoder family: its config class, encoder class and tensor names.

A family module registers itself when imported:

    FAMILY = register_family(EncoderFamily(
        model_types=("bert",), config_class=BertConfig, encoder_class=BertEncoder,
        encoder_kwargs=encoder_kwargs, weight_map=weight_map, base_model_prefix="bert"))

and `get_family(model_type)` imports the module listed in `_FAMILY_MODULES`
on first use, so importing this registry stays cheap (no TensorFlow) and a
new family is one module plus one line here.

The weight map is the whole contract between a family and the checkpoint
code: `weight_map(encoder)` lists `(variable, pytorch_name, layout)` for
EVERY variable of the encoder, with `pytorch_name` as in a Hugging Face
PyTorch base model without the base prefix ("encoder.layer.0.attention.self.query.weight")
and `layout` one of `LAYOUTS`. Loading and `save_checkpoint` both read it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable

from kerastune_nlp.errors import BackboneError

# model_type -> module that registers it when imported.
_FAMILY_MODULES = {
    "bert": "kerastune_nlp.backbones.bert",
    "distilbert": "kerastune_nlp.backbones.distilbert",
    "roberta": "kerastune_nlp.backbones.roberta",
    "xlm-roberta": "kerastune_nlp.backbones.roberta",
    "electra": "kerastune_nlp.backbones.electra",
    "deberta-v2": "kerastune_nlp.backbones.deberta_v2",
    "modernbert": "kerastune_nlp.backbones.modernbert",
}

# How a PyTorch tensor maps onto a Keras variable:
#   "copy":   same layout (biases, LayerNorm, embedding tables);
#   "linear": nn.Linear weight [out, in] <-> Dense kernel [in, out] (transpose);
#   "conv1d": nn.Conv1d weight [out, in, k] <-> Conv1D kernel [k, in, out].
# Any of them may end in "@<i>/<n>": the variable is row block i of n equal
# blocks of the tensor (ModernBERT's fused Wqkv as three Dense layers).
LAYOUTS = ("copy", "linear", "conv1d")

# Tensors of task / pre-training heads that checkpoints saved from task models
# carry: reported as "not part of the encoder", never an error.
COMMON_HEAD_PREFIXES = (
    "pooler.",
    "cls.",
    "lm_head.",
    "classifier.",
    "qa_outputs.",
    "pre_classifier.",
    "generator_predictions.",
    "generator_lm_head.",
    "discriminator_predictions.",
    "vocab_transform.",
    "vocab_layer_norm.",
    "vocab_projector.",
    "lm_predictions.",
    "mask_predictions.",
)

_REGISTERED: dict = {}


@dataclasses.dataclass(frozen=True)
class EncoderFamily:
    """What the loader needs to know about one architecture family.

    Args:
        model_types: tuple of str. `model_type` values in config.json it serves.
        config_class: type. Frozen dataclass with `from_dict(data, source)`
            (validating, raising `BackboneError`) and `to_dict()`.
        encoder_class: type. The registered-serializable Keras encoder layer.
        encoder_kwargs: callable. config -> flat kwargs of `encoder_class`
            (without `seed`, `name`, `use_pooler`).
        weight_map: callable. Built encoder -> list of `(variable,
            pytorch_name, layout)` covering every encoder variable; names
            without the base prefix; layout from `LAYOUTS`.
        base_model_prefix: str. Prefix of the base model in task checkpoints
            ("bert", "roberta", "distilbert", "electra", "deberta").
        head_prefixes: tuple of str. Extra name prefixes (after the base prefix
            is stripped) of head tensors to skip, on top of `COMMON_HEAD_PREFIXES`.
            Defaults to ().
        tf_renames: tuple of (regex, replacement). Applied (`re.sub`) to the
            names of tensors read from HF-TF files (tf_model.h5), after the
            generic TF -> PyTorch conversion, where the 4.x TF class named a
            tensor differently from PyTorch (DeBERTa-v2's `pos_proj` ->
            `pos_key_proj`). Defaults to ().
        layer_name: str or None. Default name of the encoder layer (its
            variables' top scope) when it should differ from
            `base_model_prefix` (ModernBERT's prefix is the generic "model").
            Defaults to None (`base_model_prefix`).
    """

    model_types: tuple
    config_class: type
    encoder_class: type
    encoder_kwargs: Callable
    weight_map: Callable
    base_model_prefix: str
    head_prefixes: tuple = ()
    tf_renames: tuple = ()
    layer_name: str | None = None

    @property
    def model_type(self) -> str:
        return self.model_types[0]


def register_family(family: EncoderFamily) -> EncoderFamily:
    """Registers `family` under each of its model types and returns it."""
    for model_type in family.model_types:
        _REGISTERED[model_type] = family
    return family


def implemented_model_types() -> list:
    """The model types whose family module is present."""
    return sorted(
        t
        for t, module in _FAMILY_MODULES.items()
        if t in _REGISTERED or importlib.util.find_spec(module) is not None
    )


def get_family(model_type, *, source: str = "config.json") -> EncoderFamily:
    """The registered family for `model_type`, importing its module on first use.

    Args:
        model_type: str. The `model_type` of a config.json.
        source: str. Where it was read (for the error message). Defaults to "config.json".

    Example:
    >>> get_family("xlm-roberta").base_model_prefix
    'roberta'
    """
    if model_type not in _REGISTERED and model_type in _FAMILY_MODULES:
        module = _FAMILY_MODULES[model_type]
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    family = _REGISTERED.get(model_type)
    if family is None:
        raise BackboneError(
            f"{source}: `model_type` {model_type!r} has no encoder in kerastune_nlp. Expected "
            f"one of {implemented_model_types()}. Received: `model_type`={model_type!r}. Pick a "
            "checkpoint of one of those families."
        )
    return family
