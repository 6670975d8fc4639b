"""The token classifier builds and learns on tiny backbones of three families and on the real weights."""

import numpy as np
import pytest

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.data.batching import make_eval_dataset, make_train_dataset
from kerastune_nlp.data.ner_windows import WindowEncoder
from kerastune_nlp.models import backbones
from kerastune_nlp.models.losses import MaskedAccuracy, MaskedSparseCategoricalCrossentropy
from kerastune_nlp.models.token_classifier import build_token_classifier
from kerastune_nlp.training.optimizer import build_adamw

LABELS = {"O": 0, "B-loc": 1, "I-loc": 2}
SENTENCES = [
    (["I", "live", "in", "New", "York"], ["O", "O", "O", "B-loc", "I-loc"]),
    (["Berlin", "is", "big"], ["B-loc", "O", "O"]),
    (["the", "quick", "brown", "fox"], ["O", "O", "O", "O"]),
    (["San", "Francisco", "and", "Berlin"], ["B-loc", "I-loc", "O", "B-loc"]),
] * 4


def _compiled_model(directory, total_steps=20, learning_rate=1e-3):
    resolved = backbones.resolve_backbone(str(directory))
    tokenizer = backbones.load_tokenizer(resolved.directory)
    keras.utils.set_random_seed(0)
    model = build_token_classifier(
        backbones.load_pretrained_backbone(resolved), tokenizer.model_input_names, len(LABELS), seed=0
    )
    model.compile(
        optimizer=build_adamw(learning_rate, total_steps, warmup_ratio=0.0),
        loss=MaskedSparseCategoricalCrossentropy(),
        metrics=[MaskedAccuracy()],
    )
    encoder = WindowEncoder(tokenizer, max_length=32, label_to_id=LABELS)
    windows, _ = encoder.encode([w for w, _ in SENTENCES], [t for _, t in SENTENCES])
    return model, tokenizer, windows


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta"])
def test_builds_with_tokenizer_input_names_and_trains(tiny_backbones, family):
    model, tokenizer, windows = _compiled_model(tiny_backbones[family])
    assert sorted(model.input_names) == sorted(tokenizer.model_input_names)
    dataset = make_train_dataset(windows, tokenizer.model_input_names, tokenizer.pad_token_id, 4, seed=0)
    history = model.fit(dataset, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    features = next(iter(make_eval_dataset(windows, tokenizer.model_input_names, tokenizer.pad_token_id, 4)[0]))
    logits = model(features, training=False)
    assert logits.dtype == tf.float32 and logits.shape[-1] == len(LABELS)


def test_masked_loss_ignores_marked_positions():
    loss = MaskedSparseCategoricalCrossentropy()
    logits = tf.constant([[[5.0, 0.0], [0.0, 5.0], [9.0, -9.0]]])
    with_ignored = loss(tf.constant([[0, 1, -100]]), logits)
    without = loss(tf.constant([[0, 1]]), logits[:, :2])
    np.testing.assert_allclose(with_ignored.numpy(), without.numpy(), rtol=1e-6)
    # Changing the logits of an ignored position changes nothing.
    changed = loss(tf.constant([[0, 1, -100]]), tf.constant([[[5.0, 0.0], [0.0, 5.0], [-9.0, 9.0]]]))
    np.testing.assert_allclose(changed.numpy(), with_ignored.numpy(), rtol=1e-6)


def test_weight_decay_skips_biases_and_layernorm(tiny_bert):
    model, _, _ = _compiled_model(tiny_bert)
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    decayed = {v.name for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert any("kernel" in name for name in decayed)
    assert not any("bias" in name or "LayerNorm" in name for name in decayed)


def test_real_bundled_weights_lower_the_loss_in_a_few_steps():
    directory = backbones.resolve_backbone("all-minilm-l6-v2").directory
    model, tokenizer, windows = _compiled_model(directory, total_steps=30, learning_rate=1e-4)
    dataset = make_train_dataset(windows, tokenizer.model_input_names, tokenizer.pad_token_id, 8, seed=0)
    history = model.fit(dataset, epochs=4, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]


def test_constant_normaliser_weighs_every_token_alike():
    loss = MaskedSparseCategoricalCrossentropy(tokens_per_batch=4.0)
    logits = tf.constant([[[5.0, 0.0], [0.0, 5.0], [9.0, -9.0]]])
    per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant([[0, 1, 0]]), logits)
    value = loss(tf.constant([[0, 1, -100]]), logits)
    np.testing.assert_allclose(value.numpy(), per_token.numpy()[0, :2].sum() / 4.0, rtol=1e-6)
