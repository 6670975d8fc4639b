"""The family table by name: variable groups, the fallback for unknown families, a TensorFlow-free import.

Groups, unfreezing, freezing and LoRA on real backbones of every family are
tested on our own encoders in test_own_encoder_stages.py; the stages no
longer build the transformers 4.x TF classes these tests used to load.
"""

import logging
import subprocess
import sys
import types

import pytest

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import families
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.training import finetuning

LAYERS = 2


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("m/electra/embeddings_project/kernel:0", 0),
        ("m/deberta/encoder/rel_embeddings.weight:0", 0),
        ("m/deberta/encoder/LayerNorm/beta:0", 0),
        ("m/deberta/encoder/conv/conv/kernel:0", 1),  # v2-xlarge: right after block 0
        ("m/deberta/encoder/layer_._1/attention/self/query_proj/lora_A:0", 2),
        ("m/distilbert/transformer/layer_._0/ffn/lin1/kernel:0", 1),
        ("m/bert/encoder/layer_._5/output/dense/bias:0", 2),  # deeper than the config says: clamp
        ("m/bert/embeddings/word_embeddings/weight:0", 0),
        ("m/bert/pooler/dense/kernel:0", 3),
        ("head/rel_embeddings_x/kernel:0", 3),
    ],
)
def test_variable_group_by_name(name, group):
    assert families.variable_group(name, LAYERS) == group


def test_unknown_family_falls_back_with_a_warning_and_clear_errors(caplog):
    with caplog.at_level(logging.WARNING, logger="kerastune_nlp.backbones"):
        assert families.family_of("no-such-type") is families.DEFAULT
    assert "no-such-type" in caplog.text
    distilbert = families.family_of(types.SimpleNamespace(model_type="distilbert"))
    assert distilbert.encoder == ("transformer.layer",)
    assert families.num_layers(types.SimpleNamespace(model_type="distilbert", n_layers=3)) == 3
    with pytest.raises(ConfigError, match="Train without layerwise_lr_decay"):
        families.num_layers(types.SimpleNamespace(model_type="no-such-type"))
    layer = keras.layers.Dense(2)
    with pytest.raises(ConfigError, match="which freeze_layers needs"):
        finetuning.encoder_layers(layer)
    with pytest.raises(ConfigError, match="which freeze_embeddings needs"):
        families.embeddings(layer)
    assert families.pooler(layer) is None


def test_package_imports_without_tensorflow():
    code = "import sys, kerastune_nlp.backbones.families; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
