"""The parts table by name: variable groups, layer counts, the refusal of other backbones, a TensorFlow-free import.

Every part of our encoders of every family (blocks, embeddings, pooler,
projections) and the stages that use them are tested on real encoders in
test_own_encoder_stages.py.
"""

import subprocess
import sys
import types
from pathlib import Path

import pytest

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import families
from kerastune_nlp.backbones.config import parse_config
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.training import finetuning

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
LAYERS = 2
NOT_OURS = "which is not a kerastune_nlp encoder"


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("m/electra/embeddings_project/kernel:0", 0),
        ("m/deberta/encoder/rel_embeddings/embeddings:0", 0),
        ("m/deberta/encoder/LayerNorm/beta:0", 0),
        ("m/deberta/encoder/conv/conv/kernel:0", 1),  # v2-xlarge: right after block 0
        ("m/deberta/encoder/conv/LayerNorm/gamma:0", 1),  # the conv's own norm, not the encoder's
        ("m/deberta/encoder/layer_._1/attention/query_proj/lora_A:0", 2),
        ("m/distilbert/encoder/layer_._0/ffn/output/kernel:0", 1),
        ("m/bert/encoder/layer_._5/attention/output/bias:0", 2),  # deeper than the config says: clamp
        ("m/bert/embeddings/word_embeddings/embeddings:0", 0),
        ("m/bert/pooler/kernel:0", 3),
        ("head/rel_embeddings_x/kernel:0", 3),
        ("token_logits/kernel:0", 3),
    ],
)
def test_variable_group_by_name(name, group):
    assert families.variable_group(name, LAYERS) == group


@pytest.mark.parametrize("case", ["bert", "distilbert", "deberta-v2"])
def test_num_layers_of_our_configs(case):
    assert families.num_layers(parse_config(FIXTURES / case / "config.json")) == LAYERS


@pytest.mark.parametrize(
    ("config", "layers"),
    [
        (types.SimpleNamespace(num_hidden_layers=4), 4),
        (types.SimpleNamespace(n_layers=3), 3),  # DistilBERT
        (types.SimpleNamespace(num_layers=5), 5),
        (types.SimpleNamespace(num_hidden_layers=True, n_layers=6), 6),  # a bool is not a count
    ],
)
def test_num_layers_of_plain_configs(config, layers):
    assert families.num_layers(config) == layers


def test_num_layers_without_a_count_names_the_options():
    with pytest.raises(ConfigError, match=r"\(SimpleNamespace\) has no integer num_hidden_layers / n_layers / "
                                          r"num_layers.*parse_config`, or train without layerwise_lr_decay"):
        families.num_layers(types.SimpleNamespace(model_type="bert", num_hidden_layers="2"))


@pytest.mark.parametrize(
    "lookup",
    [
        families.embeddings,
        families.embedding_parts,
        families.encoder_layers,
        families.first_layer_extras,
        families.pooler,
        lambda backbone: families.attention_projections(backbone, ("query",)),
        finetuning.encoder_layers,
    ],
)
def test_other_backbones_are_refused(lookup):
    with pytest.raises(ConfigError) as caught:
        lookup(keras.layers.Dense(2))
    message = str(caught.value)
    assert "Received: `backbone` of type tf_keras.src.layers.core.dense.Dense, " + NOT_OURS in message
    assert "`kerastune_nlp.backbones.encoder.build_encoder` / `load_encoder`" in message
    assert "`kerastune_nlp.models.backbones`" in message


def test_configs_and_names_are_not_backbones():
    # What 0.2 accepted in place of a backbone: an HF config or a model_type.
    for other in (types.SimpleNamespace(model_type="bert", num_hidden_layers=2), "bert"):
        with pytest.raises(ConfigError, match=NOT_OURS):
            families.encoder_layers(other)


def test_package_imports_without_tensorflow():
    code = "import sys, kerastune_nlp.backbones.families; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
