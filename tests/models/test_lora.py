"""LoRA wraps, trains, merges and saves on tiny backbones of three families."""

import numpy as np
import pytest

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.bert import BertEncoder
from kerastune_nlp.backbones.encoder import ensure_built
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.models import backbones
from kerastune_nlp.models.lora import LoRADense, add_lora, count_parameters, merge_lora
from kerastune_nlp.models.losses import MaskedSparseCategoricalCrossentropy
from kerastune_nlp.models.token_classifier import build_token_classifier

FAMILIES = ["bert", "distilbert", "roberta"]
TEXTS = ["Barack Obama met Angela Merkel in Berlin", "the quick brown fox", "New York City"]
NUM_LABELS = 3


def _load(directory):
    resolved = backbones.resolve_backbone(str(directory))
    return backbones.load_pretrained_backbone(resolved), backbones.load_tokenizer(resolved.directory)


def _batch(tokenizer):
    encoded = tokenizer(TEXTS, padding=True, return_tensors="np")
    return {name: encoded[name].astype("int32") for name in tokenizer.model_input_names}


def _classifier(directory):
    backbone, tokenizer = _load(directory)
    keras.utils.set_random_seed(0)
    model = build_token_classifier(backbone, tokenizer.model_input_names, NUM_LABELS, dropout=0.0, seed=0)
    return model, backbone, tokenizer


def _labels(features):
    return np.random.default_rng(0).integers(0, NUM_LABELS, size=features["input_ids"].shape).astype("int32")


def _lora_layers(layer):
    return [sub for sub in layer._flatten_layers() if isinstance(sub, LoRADense)]


def _train(model, features, steps):
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedSparseCategoricalCrossentropy())
    return [float(model.train_on_batch(features, _labels(features))) for _ in range(steps)]


@pytest.mark.parametrize("family", FAMILIES)
def test_add_lora_keeps_outputs_and_trains_only_the_pairs(tiny_backbones, family):
    backbone, tokenizer = _load(tiny_backbones[family])
    features = _batch(tokenizer)
    before = backbone(features).numpy()
    weight_count = len(backbone.weights)

    assert add_lora(backbone, rank=4, seed=0) == 4  # 2 layers x (query, value)

    np.testing.assert_array_equal(backbone(features).numpy(), before)
    lora = _lora_layers(backbone)
    pairs = {id(v) for layer in lora for v in (layer.lora_a, layer.lora_b)}
    assert {id(v) for v in backbone.trainable_weights} == pairs and len(backbone.trainable_weights) == 8
    # The old Dense is tracked once (under its wrapper), not also as a sibling.
    assert len(backbone.weights) == weight_count + 8 == len({id(v) for v in backbone.weights})
    counts = count_parameters(backbone)
    assert counts["trainable"] == 4 * 2 * 4 * 32 and counts["trainable_share"] < 0.1
    # The encoder's layers really call the wrappers: a non-zero B changes the output.
    lora[0].lora_b.assign(tf.ones_like(lora[0].lora_b))
    assert not np.allclose(backbone(features).numpy(), before)


def test_training_moves_only_lora_and_lowers_the_loss(tiny_bert):
    model, backbone, tokenizer = _classifier(tiny_bert)
    add_lora(backbone, rank=4, seed=0)
    frozen = {v.name: v.numpy() for v in backbone.weights if "lora_" not in v.name}
    features = _batch(tokenizer)

    losses = _train(model, features, steps=20)

    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0]
    for variable in backbone.weights:
        if variable.name in frozen:
            np.testing.assert_array_equal(variable.numpy(), frozen[variable.name], err_msg=variable.name)
    assert all(np.abs(layer.lora_b.numpy()).max() > 0 for layer in _lora_layers(backbone))
    assert "token_logits/kernel:0" in [v.name for v in model.trainable_weights]


@pytest.mark.parametrize("family", FAMILIES)
def test_merge_restores_the_plain_model_and_its_h5_weights(tiny_backbones, family, tmp_path):
    model, backbone, tokenizer = _classifier(tiny_backbones[family])
    add_lora(backbone, rank=4, targets=("query", "key", "value", "output"), seed=0)
    features = _batch(tokenizer)
    _train(model, features, steps=3)
    lora_logits = model(features).numpy()

    assert merge_lora(backbone) == 8
    np.testing.assert_allclose(model(features).numpy(), lora_logits, atol=1e-5)
    assert not _lora_layers(backbone)

    fresh, _, _ = _classifier(tiny_backbones[family])

    def layout(weights):  # name below the top scope (the layer's name), and shape
        return [(w.name.split("/", 1)[-1], tuple(w.shape)) for w in weights]

    assert layout(model.weights) == layout(fresh.weights)
    assert layout(model.trainable_weights) == layout(fresh.trainable_weights)
    assert not np.allclose(fresh(features).numpy(), lora_logits, atol=1e-3)
    model.save_weights(str(tmp_path / "merged.h5"))
    fresh.load_weights(str(tmp_path / "merged.h5"))
    np.testing.assert_allclose(fresh(features).numpy(), model(features).numpy(), atol=1e-6)


class _Block(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.proj = keras.layers.Dense(4)

    def call(self, inputs):
        return self.proj(inputs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rank": 0}, "`rank` must be an int >= 1. Received: `rank`=0"),
        ({"alpha": 0.0}, "`alpha` must be > 0"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\)"),
        ({"targets": ("query", "attention")}, "Received: `targets`=\\('query', 'attention'\\)"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    block = _Block()
    block(tf.zeros((1, 2, 4)))
    with pytest.raises(ConfigError, match=message):
        add_lora(block, **kwargs)


def test_other_backbones_are_refused_untouched():
    block = _Block()
    block(tf.zeros((1, 2, 4)))
    with pytest.raises(ConfigError, match=r"`backbone` of type .*_Block, which is not a kerastune_nlp encoder\. "
                                          r"Build backbones with `kerastune_nlp\.backbones\.encoder\.build_encoder`"):
        add_lora(block)
    assert block.proj.trainable and len(block.trainable_weights) == 2


def test_an_unbuilt_encoder_is_refused_before_any_change():
    encoder = BertEncoder(vocab_size=50, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=16)
    with pytest.raises(ConfigError, match=r"`backbone` is not built \('query' has no kernel yet\).*ensure_built"):
        add_lora(encoder)
    assert not _lora_layers(encoder)
    ensure_built(encoder)
    assert add_lora(encoder, rank=2) == 4


def test_a_target_named_twice_is_wrapped_once(tiny_bert):
    backbone, _ = _load(tiny_bert)
    assert add_lora(backbone, rank=2, targets=("query", "query")) == 2
    assert all(not isinstance(layer.base, LoRADense) for layer in _lora_layers(backbone))


def test_second_add_lora_asks_for_a_merge(tiny_bert):
    backbone, _ = _load(tiny_bert)
    add_lora(backbone, rank=2)
    with pytest.raises(ConfigError, match="merge_lora"):
        add_lora(backbone, rank=2)


def test_lora_dense_serializes_and_handles_rank_3_inputs():
    base = keras.layers.Dense(6)
    base.build((None, None, 5))
    layer = LoRADense(base, rank=2, alpha=4.0, dropout=0.1, seed=3)
    inputs = tf.random.normal((2, 7, 5))
    np.testing.assert_allclose(layer(inputs, training=True).numpy(), base(inputs).numpy(), atol=1e-6)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, LoRADense) and (clone.rank, clone.alpha, clone.dropout) == (2, 4.0, 0.1)
    assert clone(inputs).shape == (2, 7, 6)


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_forward_is_finite(tiny_bert, mixed_bfloat16):
    backbone, tokenizer = _load(tiny_bert)
    add_lora(backbone, rank=4, seed=0)
    for layer in _lora_layers(backbone):
        layer.lora_b.assign(tf.fill(layer.lora_b.shape, 0.01))
    layer = _lora_layers(backbone)[0]
    assert (layer.compute_dtype, layer.lora_a.dtype) == ("bfloat16", tf.float32)
    hidden = backbone(_batch(tokenizer))
    assert hidden.dtype == tf.bfloat16
    assert np.isfinite(tf.cast(hidden, tf.float32).numpy()).all()
