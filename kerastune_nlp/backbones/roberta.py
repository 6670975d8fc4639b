"""RoBERTa and XLM-RoBERTa: BERT's blocks, positions counted after the padding id.

As HF's `create_position_ids_from_input_ids`: a real token's position is
`pad_token_id` + its rank among the non-pad tokens (so the first is
`pad_token_id + 1`), a pad's is `pad_token_id`. Tensor names are BERT's
under the base prefix "roberta" (both families); type_vocab_size is 1 in the
released checkpoints, so no token_type_ids input is needed.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import bert
from kerastune_nlp.backbones.config import RobertaConfig, XLMRobertaConfig
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import TransformerEncoder


@keras.utils.register_keras_serializable(package="kerastune_nlp")
class RobertaEncoder(TransformerEncoder):
    """RoBERTa / XLM-RoBERTa encoder (see `TransformerEncoder`); `pad_token_id` defaults to 1."""

    model_type = "roberta"
    position_ids = "padding_offset"

    def __init__(self, *args, pad_token_id=1, **kwargs):
        super().__init__(*args, pad_token_id=pad_token_id, **kwargs)


_COMMON = dict(
    encoder_class=RobertaEncoder,
    encoder_kwargs=bert.encoder_kwargs,
    weight_map=bert.weight_map,
    base_model_prefix="roberta",
)
FAMILY = register_family(
    EncoderFamily(model_types=("roberta",), config_class=RobertaConfig, **_COMMON)
)
XLM_FAMILY = register_family(
    EncoderFamily(model_types=("xlm-roberta",), config_class=XLMRobertaConfig, **_COMMON)
)
