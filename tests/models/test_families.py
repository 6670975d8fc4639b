"""The family table against real tiny backbones of six families: groups, unfreezing, LoRA."""

import logging
import subprocess
import sys
import types

import numpy as np
import pytest

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import families
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.models import backbones
from kerastune_nlp.models.lora import LoRADense, add_lora, merge_lora
from kerastune_nlp.models.losses import IGNORE_INDEX, MaskedSparseCategoricalCrossentropy
from kerastune_nlp.models.token_classifier import build_token_classifier
from kerastune_nlp.training import finetuning
from kerastune_nlp.training.optimizer import build_adamw

FAMILIES = ["bert", "distilbert", "roberta", "electra", "deberta-v2", "xlm-roberta"]
LAYERS = 2
NUM_LABELS = 3
TEXTS = ["Barack Obama met Angela Merkel in Berlin", "the quick brown fox", "New York City"]

# Written out here, independently of families.py: the scopes of each family's
# depth-group-0 variables, and the attention projections LoRA must wrap.
GROUP_0 = {
    "bert": ("/embeddings/",),
    "distilbert": ("/embeddings/",),
    "roberta": ("/embeddings/",),
    "xlm-roberta": ("/embeddings/",),
    "electra": ("/embeddings/", "/embeddings_project/"),
    "deberta-v2": ("/embeddings/", "/encoder/rel_embeddings.weight:", "/encoder/LayerNorm/"),
}
PROJECTIONS = {
    "distilbert": {"q_lin", "k_lin", "v_lin", "out_lin"},
    "deberta-v2": {"query_proj", "key_proj", "value_proj", "dense"},
}


def _expected_group(family: str, name: str) -> int:
    for index in range(LAYERS):
        if f"/layer_._{index}/" in name:
            return index + 1
    if any(scope in name for scope in GROUP_0[family]):
        return 0
    return LAYERS + 1


def _classifier(directory):
    resolved = backbones.resolve_backbone(str(directory))
    backbone = backbones.load_pretrained_backbone(resolved)
    tokenizer = backbones.load_tokenizer(resolved.directory)
    keras.utils.set_random_seed(0)
    model = build_token_classifier(backbone, tokenizer.model_input_names, NUM_LABELS, dropout=0.0, seed=0)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="np")
    features = {name: encoded[name].astype("int32") for name in tokenizer.model_input_names}
    labels = np.random.default_rng(0).integers(0, NUM_LABELS, size=features["input_ids"].shape)
    # Padding carries no label, as in real batches. (DeBERTa-v2 zeroes padded
    # embeddings, and a loss there sends ~1e11 gradients through LayerNorms
    # of constant vectors, which global clipping turns into near-zero steps.)
    labels = np.where(features["attention_mask"] == 1, labels, IGNORE_INDEX)
    return model, backbone, features, labels.astype("int32")


def _values(model) -> dict:
    return {w.name: w.numpy() for w in model.trainable_weights}


def _largest_step(model, before: dict) -> dict:
    steps: dict = {}
    for weight in model.trainable_weights:
        group = finetuning.variable_group(weight, LAYERS)
        step = float(np.abs(weight.numpy() - before[weight.name]).max())
        steps[group] = max(steps.get(group, 0.0), step)
    return steps


@pytest.mark.parametrize("family", FAMILIES)
def test_layerwise_decay_then_gradual_unfreezing(all_tiny_backbones, family):
    model, backbone, features, labels = _classifier(all_tiny_backbones[family])
    config = backbone.config
    assert finetuning.num_hidden_layers(config) == LAYERS
    names = [w.name for w in model.trainable_weights]
    groups = {name: finetuning.variable_group(w, LAYERS) for name, w in zip(names, model.trainable_weights)}
    assert groups == {name: _expected_group(family, name) for name in names}
    assert sorted(set(groups.values())) == [0, 1, 2, 3]
    # The pooler (frozen: our heads never read it) is not trainable, so the
    # top group is the task head only.
    assert all(name.startswith("token_logits/") for name, g in groups.items() if g == LAYERS + 1)

    # (1) layer-wise decay: Adam's first step moves each group by lr * scale.
    lr = 1e-3
    scales = finetuning.layerwise_scales(LAYERS, 0.5)
    optimizer = build_adamw(lr, total_steps=1000, warmup_ratio=0.0, weight_decay=0.0,
                            group_of=lambda v: finetuning.variable_group(v, LAYERS), group_scales=scales)
    model.compile(optimizer=optimizer, loss=MaskedSparseCategoricalCrossentropy())
    before = _values(model)
    model.train_on_batch(features, labels)
    for group, step in _largest_step(model, before).items():
        assert step == pytest.approx(lr * scales[group], rel=3e-2), (family, group)

    # (2) gradual unfreezing, one layer per epoch: the callback changes the
    # scales of the compiled model; frozen groups must not move at all.
    unfreezing = finetuning.GradualUnfreezing(optimizer, LAYERS, 1, scales)
    for epoch, still_frozen in ((0, {0, 1}), (1, {0})):
        unfreezing.on_epoch_begin(epoch)
        before = _values(model)
        model.train_on_batch(features, labels)
        steps = _largest_step(model, before)
        assert {g for g, step in steps.items() if step == 0.0} == still_frozen, (family, epoch, steps)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_on_all_projections_trains_and_merges(all_tiny_backbones, family):
    model, backbone, features, labels = _classifier(all_tiny_backbones[family])
    plain = model(features).numpy()
    layout = [[w.name for w in weights] for weights in (backbone.weights, backbone.trainable_weights)]

    assert add_lora(backbone, rank=4, targets=("query", "key", "value", "output"), seed=0) == 4 * LAYERS

    wrappers = [layer for layer in backbone._flatten_layers() if isinstance(layer, LoRADense)]
    expected = PROJECTIONS.get(family, {"query", "key", "value", "dense"})
    for index in range(LAYERS):
        in_layer = [w for w in wrappers if f"/layer_._{index}/" in w.base.kernel.name]
        assert sorted(w.base.name for w in in_layer) == sorted(expected), family
        # The `dense` wrapped is the attention output, not the FFN's.
        assert all("/attention/" in w.base.kernel.name for w in in_layer), family
    adapters = {id(v) for w in wrappers for v in (w.lora_a, w.lora_b)}
    trainable = model.trainable_weights
    assert {id(v) for v in trainable} - adapters == {id(v) for v in trainable if v.name.startswith("token_logits/")}
    assert len(trainable) == 2 * 4 * LAYERS + 2
    np.testing.assert_array_equal(model(features).numpy(), plain)

    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedSparseCategoricalCrossentropy())
    model.train_on_batch(features, labels)
    assert all(np.abs(w.lora_b.numpy()).max() > 0 for w in wrappers)
    wrapped = model(features).numpy()
    assert not np.allclose(wrapped, plain, atol=1e-4)

    assert merge_lora(backbone) == 4 * LAYERS
    assert not any(isinstance(layer, LoRADense) for layer in backbone._flatten_layers())
    np.testing.assert_allclose(model(features).numpy(), wrapped, atol=1e-5)
    # Same weights, order and trainable flags as before (h5 files match by position).
    assert [[w.name for w in weights] for weights in (backbone.weights, backbone.trainable_weights)] == layout


@pytest.mark.parametrize("family", ["electra", "deberta-v2"])
def test_freezing_embeddings_covers_group_0_and_restores(all_tiny_backbones, family):
    backbone = backbones.load_pretrained_backbone(backbones.resolve_backbone(str(all_tiny_backbones[family])))
    order = [w.name for w in backbone.trainable_weights]
    options = types.SimpleNamespace(peft="none", freeze_embeddings=True, freeze_layers=1)
    adaptation = finetuning.adapt_backbone(backbone, backbone.config, options)
    groups = {finetuning.variable_group(w, LAYERS) for w in backbone.trainable_weights}
    assert groups == {2}  # embeddings (with ELECTRA's projection, DeBERTa's relative table) and layer 0
    adaptation.restore()
    assert [w.name for w in backbone.trainable_weights] == order


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
