"""FineTuneAdamW: gradient accumulation equals the large batch; layer-wise rates."""

import numpy as np
import pytest

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.models import backbones
from kerastune_nlp.models.sequence_classifier import build_sequence_classifier
from kerastune_nlp.training import finetuning
from kerastune_nlp.training.optimizer import build_adamw


def _classifier(directory, weights=None):
    backbone = backbones.load_pretrained_backbone(backbones.resolve_backbone(str(directory)))
    model = build_sequence_classifier(backbone, ["input_ids", "token_type_ids", "attention_mask"], 3,
                                      dropout=0.0, seed=0)
    if weights is not None:
        model.set_weights(weights)
    return model, backbone


def _batches(batch_size, examples=16, length=12):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, size=(examples, length)).astype(np.int32)
    features = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}
    labels = rng.integers(0, 3, size=(examples,)).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)


def _fit(model, optimizer, batch_size):
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(_batches(batch_size), epochs=1, shuffle=False, verbose=0)


def test_accumulating_two_micro_batches_equals_the_large_batch(tiny_bert_no_dropout):
    large, _ = _classifier(tiny_bert_no_dropout)
    initial = large.get_weights()
    accumulated, _ = _classifier(tiny_bert_no_dropout, initial)
    # Two updates: also covers the moments, bias correction and schedule step.
    large_optimizer = build_adamw(1e-3, total_steps=2, warmup_ratio=0.0)
    accumulating_optimizer = build_adamw(1e-3, total_steps=2, warmup_ratio=0.0, accumulation_steps=2)
    _fit(large, large_optimizer, batch_size=8)
    _fit(accumulated, accumulating_optimizer, batch_size=4)

    assert int(large_optimizer.iterations.numpy()) == 2
    assert int(accumulating_optimizer.iterations.numpy()) == 2
    moved = max(float(np.abs(a - b).max()) for a, b in zip(large.get_weights(), initial))
    assert moved > 1e-4  # the updates did something to compare
    for name, a, b in zip([w.name for w in large.weights], large.get_weights(), accumulated.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6, err_msg=name)


def test_without_accumulation_each_micro_batch_is_an_update(tiny_bert_no_dropout):
    # The negative control: applying every micro-batch ends somewhere else.
    large, _ = _classifier(tiny_bert_no_dropout)
    initial = large.get_weights()
    every_batch, _ = _classifier(tiny_bert_no_dropout, initial)
    _fit(large, build_adamw(1e-3, total_steps=2, warmup_ratio=0.0), batch_size=8)
    optimizer = build_adamw(1e-3, total_steps=4, warmup_ratio=0.0)
    _fit(every_batch, optimizer, batch_size=4)
    assert int(optimizer.iterations.numpy()) == 4
    differences = [np.abs(a - b).max() for a, b in zip(large.get_weights(), every_batch.get_weights())]
    assert max(differences) > 1e-4


def test_layerwise_decay_scales_each_layers_first_step(tiny_bert_no_dropout):
    model, _ = _classifier(tiny_bert_no_dropout)
    before = {w.name: w.numpy() for w in model.trainable_weights}
    layers, decay, lr = 2, 0.5, 1e-3
    scales = finetuning.layerwise_scales(layers, decay)
    assert scales == [0.125, 0.25, 0.5, 1.0]
    optimizer = build_adamw(lr, total_steps=1, warmup_ratio=0.0, weight_decay=0.0,
                            group_of=lambda v: finetuning.variable_group(v, layers), group_scales=scales)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # One step at the schedule's first rate (lr * (total - 0) / total = lr).
    model.train_on_batch(*next(iter(_batches(8))))

    largest_step = {}
    for weight in model.trainable_weights:
        group = finetuning.variable_group(weight, layers)
        step = float(np.abs(weight.numpy() - before[weight.name]).max())
        largest_step[group] = max(largest_step.get(group, 0.0), step)
    # Adam's first step moves each weight with a gradient by lr * scale.
    assert sorted(largest_step) == [0, 1, 2, 3]
    for group, step in largest_step.items():
        assert step == pytest.approx(lr * scales[group], rel=1e-2), group


def test_variable_groups_follow_depth(tiny_bert_no_dropout):
    model, _ = _classifier(tiny_bert_no_dropout)
    groups = {w.name: finetuning.variable_group(w, 2) for w in model.weights}
    assert all(g == 0 for n, g in groups.items() if "/embeddings/" in n)
    assert all(g == 1 for n, g in groups.items() if "/layer_._0/" in n)
    assert all(g == 2 for n, g in groups.items() if "/layer_._1/" in n)
    head = [n for n in groups if n.startswith("head/")]
    assert head and all(groups[n] == 3 for n in head)


def test_unfreezing_mask_opens_from_the_top():
    assert finetuning.unfrozen_mask(2, 1, 0) == [0.0, 0.0, 1.0, 1.0]
    assert finetuning.unfrozen_mask(2, 1, 1) == [0.0, 1.0, 1.0, 1.0]
    assert finetuning.unfrozen_mask(2, 1, 2) == [1.0, 1.0, 1.0, 1.0]
    assert finetuning.unfrozen_mask(2, None, 0) == [1.0] * 4
