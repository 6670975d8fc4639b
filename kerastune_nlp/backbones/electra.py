"""ELECTRA (discriminator or generator body): BERT's blocks, narrower embeddings.

The embeddings (word + token type + position, LayerNorm, dropout) are
`embedding_size` wide; when that differs from `hidden_size`, the Dense
`embeddings_project` (HF `embeddings_project`) maps them up before block 0.
No pooler.
"""

from __future__ import annotations

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import bert
from kerastune_nlp.backbones.config import ElectraConfig
from kerastune_nlp.backbones.registry import EncoderFamily, register_family
from kerastune_nlp.backbones.transformer_encoder import TransformerEncoder


@keras.utils.register_keras_serializable(package="kerastune_nlp")
class ElectraEncoder(TransformerEncoder):
    """ELECTRA encoder (see `TransformerEncoder`; `embedding_size` sets the embedding width)."""

    model_type = "electra"
    supports_pooler = False


def encoder_kwargs(config: ElectraConfig) -> dict:
    return dict(bert.encoder_kwargs(config), embedding_size=config.embedding_size)


FAMILY = register_family(
    EncoderFamily(
        model_types=("electra",),
        config_class=ElectraConfig,
        encoder_class=ElectraEncoder,
        encoder_kwargs=encoder_kwargs,
        weight_map=bert.weight_map,
        base_model_prefix="electra",
    )
)
