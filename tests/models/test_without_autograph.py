"""Graph-ready backbones are traced without autograph: the same outputs and gradients as with it."""

import numpy as np
import pytest

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.models import backbones
from kerastune_nlp.models.token_classifier import build_token_classifier

TEXTS = ["Barack Obama met Angela Merkel in Berlin", "the quick brown fox", "New York City"]


def _logits_and_gradient_norms(backbone, tokenizer):
    keras.utils.set_random_seed(0)
    model = build_token_classifier(backbone, tokenizer.model_input_names, 3, dropout=0.0, seed=0)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="np")
    features = {name: encoded[name].astype("int32") for name in tokenizer.model_input_names}

    @tf.function  # a graph, as in `fit`: where autograph would run
    def step(features):
        with tf.GradientTape() as tape:
            logits = model(features, training=False)
            loss = tf.reduce_sum(tf.square(logits))
        gradients = tape.gradient(loss, model.trainable_variables)
        return logits, tf.stack([tf.norm(tf.convert_to_tensor(g)) for g in gradients])

    logits, norms = step(features)
    return logits.numpy(), norms.numpy()


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "electra", "deberta-v2", "xlm-roberta", "modernbert"])
def test_backbone_without_autograph_computes_what_autograph_did(all_tiny_backbones, family):
    from kerastune_nlp.backbones.encoder import load_encoder

    resolved = backbones.resolve_backbone(str(all_tiny_backbones[family]))
    tokenizer = backbones.load_tokenizer(resolved.directory)
    plain = backbones.load_pretrained_backbone(resolved)
    assert not backbones.uses_autograph(plain)  # every family of ours is graph-ready
    converted, _ = load_encoder(resolved.directory)  # the same weights, autograph left on
    assert backbones.uses_autograph(converted)

    logits, norms = _logits_and_gradient_norms(plain, tokenizer)
    expected_logits, expected_norms = _logits_and_gradient_norms(converted, tokenizer)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norms, expected_norms, rtol=1e-5, atol=1e-6)
    assert np.all(norms > 0)  # every variable is reached by the gradient


def test_no_layer_of_a_graph_ready_backbone_uses_autograph(tiny_bert):
    backbone = backbones.load_pretrained_backbone(backbones.resolve_backbone(str(tiny_bert)))
    layers = list(backbone._flatten_layers(include_self=False))
    assert len(layers) > 10 and not any(layer._should_use_autograph() for layer in layers)
