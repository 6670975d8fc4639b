"""The stages that reach into the backbone (families, LoRA, BitFit, freezing, layer-wise rates,
gradual unfreezing, the pooler freeze, pruning) on our own encoders, every family.

The encoders are the tiny checkpoints in tests/fixtures/encoders (2 blocks, hidden 32),
loaded with `load_encoder`; the task model is `encoder -> Dense` as the task heads build it.
Variable groups by name and the refusal of other backbones: test_families.py; LoRA on task
models built from backbone folders: test_lora.py; pruning a run: tests/pruning/test_pruning.py.
"""

import re
import types
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import families
from kerastune_nlp.backbones.encoder import load_encoder
from kerastune_nlp.errors import ConfigError
from kerastune_nlp import pruning
from kerastune_nlp.models import backbones
from kerastune_nlp.models.lora import LoRADense, add_lora, merge_lora
from kerastune_nlp.models.losses import IGNORE_INDEX, MaskedSparseCategoricalCrossentropy
from kerastune_nlp.training import finetuning
from kerastune_nlp.training.optimizer import build_adamw

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
CASES = ["bert", "distilbert", "roberta", "xlm-roberta", "electra", "deberta-v3", "deberta-v2"]
LAYERS = 2
NUM_LABELS = 3
LENGTHS = (7, 5, 3, 6)

# Written out here, independently of families.py: the variable scopes of depth group 0
# (ELECTRA's projection, DeBERTa's relative table and its LayerNorm) and of group 1
# outside the blocks (DeBERTa-v2's convolution after block 0).
GROUP_0 = (
    "/embeddings/", "/embeddings_project/", "/encoder/rel_embeddings/", "/encoder/LayerNorm/"
)
GROUP_1_EXTRAS = ("/encoder/conv/",)
# The part attributes each case has beyond `embeddings` (None where the config has none).
EXTRA_PARTS = {
    "electra": {"embeddings_project"},
    "deberta-v3": {"rel_embeddings", "rel_layer_norm"},
    "deberta-v2": {"rel_embeddings", "conv"},
}
# Dense layer names (the variable scope) of the attention projections LoRA wraps.
PROJECTIONS = {"query", "key", "value", "output"}
DEBERTA_PROJECTIONS = {"query_proj", "key_proj", "value_proj", "output"}


def _encoder(case: str, **options):
    encoder, _ = load_encoder(FIXTURES / case, **options)
    return encoder


def _model(encoder):
    """`encoder -> Dense` over every token: the token classifier's shape."""
    keras.utils.set_random_seed(0)
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in encoder.input_names}
    logits = keras.layers.Dense(NUM_LABELS, name="token_logits")(encoder(inputs))
    return keras.Model(inputs, logits)


def _batch(encoder, rows: int = len(LENGTHS)):
    rng = np.random.default_rng(0)
    lengths = [LENGTHS[i % len(LENGTHS)] for i in range(rows)]
    mask = (np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]).astype("int32")
    pad = getattr(encoder, "pad_token_id", 0)
    ids = np.where(mask == 1, rng.integers(3, encoder.vocab_size, size=mask.shape), pad)
    features = {"input_ids": ids.astype("int32"), "attention_mask": mask}
    if "token_type_ids" in encoder.input_names:
        features["token_type_ids"] = np.zeros_like(mask)
    # Padding carries no label, as in real batches.
    labels = np.where(mask == 1, rng.integers(0, NUM_LABELS, size=mask.shape), IGNORE_INDEX)
    return features, labels.astype("int32")


def _expected_group(name: str) -> int:
    for index in range(LAYERS):
        if f"/layer_._{index}/" in name:
            return index + 1
    if any(scope in name for scope in GROUP_1_EXTRAS):
        return 1
    if any(scope in name for scope in GROUP_0):
        return 0
    return LAYERS + 1


def _names(weights) -> list:
    return [w.name for w in weights]


def _values(model) -> dict:
    return {w.name: w.numpy() for w in model.trainable_weights}


def _largest_step(model, before: dict) -> dict:
    steps: dict = {}
    for weight in model.trainable_weights:
        group = finetuning.variable_group(weight, LAYERS)
        step = float(np.abs(weight.numpy() - before[weight.name]).max())
        steps[group] = max(steps.get(group, 0.0), step)
    return steps


def _options(**changes):
    """The fine-tuning settings `adapt_backbone` reads, none of them on."""
    return types.SimpleNamespace(**{"peft": "none", "freeze_embeddings": False, "freeze_layers": 0,
                                    **changes})


@pytest.mark.parametrize("case", CASES)
def test_families_finds_every_part(case):
    encoder = _encoder(case, use_pooler=case == "bert")
    assert families.is_own_encoder(encoder)
    assert families.check_own_encoder(encoder) is encoder
    assert families.num_layers(encoder) == LAYERS
    assert families.encoder_layers(encoder) == encoder.blocks
    assert families.embeddings(encoder) is encoder.embeddings
    parts = families.embedding_parts(encoder)
    assert [part for _, _, part in parts][0] is encoder.embeddings
    assert {name for _, name, _ in parts[1:]} == EXTRA_PARTS.get(case, set()) - {"conv"}
    assert all(owner is encoder and getattr(encoder, name) is part for owner, name, part in parts)
    extras = families.first_layer_extras(encoder)
    expected_extras = [(encoder, "conv")] if case == "deberta-v2" else []
    assert [(owner, name) for owner, name, _ in extras] == expected_extras
    assert families.pooler(encoder) is (encoder.pooler if case == "bert" else None)
    projections = families.attention_projections(encoder, ("query", "output"))
    assert projections == [
        (block.attention, attribute, getattr(block.attention, attribute))
        for block in encoder.blocks for attribute in ("query_dense", "output_dense")
    ]
    # The attention output, not the feed-forward's `output_dense`.
    assert all(dense is not block.ffn.output_dense for block in encoder.blocks for *_, dense in projections)


def test_our_encoders_are_told_apart_from_other_objects_and_configs():
    marked = type("Marked", (), {"is_own_encoder": True})()
    assert families.is_own_encoder(marked) and families.check_own_encoder(marked) is marked
    # A truthy non-bool, an instance attribute, HF configs and strings are not ours.
    others = (
        type("Truthy", (), {"is_own_encoder": 1})(),
        types.SimpleNamespace(is_own_encoder=True),
        types.SimpleNamespace(model_type="bert"),
        "bert",
    )
    for other in others:
        assert not families.is_own_encoder(other)
        kind = f"{type(other).__module__}.{type(other).__qualname__}"
        with pytest.raises(ConfigError, match=re.escape(f"of type {kind}, which is not a kerastune_nlp encoder")):
            families.check_own_encoder(other)


@pytest.mark.parametrize("case", CASES)
def test_variable_groups(case):
    encoder = _encoder(case)
    model = _model(encoder)
    groups = {w.name: finetuning.variable_group(w, LAYERS) for w in model.weights}
    assert groups == {name: _expected_group(name) for name in groups}
    assert sorted(set(groups.values())) == [0, 1, 2, 3]
    top = [name for name, group in groups.items() if group == LAYERS + 1]
    assert all(name.startswith("token_logits/") for name in top)
    # The extras this case has are where DESIGN and families.py put them.
    by_scope = {
        scope: {g for name, g in groups.items() if scope in name}
        for scope in (*GROUP_0, *GROUP_1_EXTRAS)
    }
    expected = {
        "electra": {"/embeddings_project/": {0}},
        "deberta-v3": {"/encoder/rel_embeddings/": {0}, "/encoder/LayerNorm/": {0}},
        "deberta-v2": {"/encoder/rel_embeddings/": {0}, "/encoder/conv/": {1}},
    }.get(case, {})
    for scope, group in expected.items():
        assert by_scope[scope] == group, (case, scope)


@pytest.mark.parametrize("case", CASES)
def test_lora_wraps_trains_and_merges(case):
    encoder = _encoder(case)
    model = _model(encoder)
    features, labels = _batch(encoder)
    plain = model(features).numpy()
    layout = [_names(weights) for weights in (encoder.weights, encoder.trainable_weights)]

    targets = ("query", "key", "value", "output")
    assert add_lora(encoder, rank=4, targets=targets, seed=0) == 4 * LAYERS

    wrappers = [layer for layer in encoder._flatten_layers() if isinstance(layer, LoRADense)]
    expected = DEBERTA_PROJECTIONS if case.startswith("deberta") else PROJECTIONS
    for index, block in enumerate(encoder.blocks):
        attention = block.attention
        in_block = [w for w in wrappers if f"/layer_._{index}/" in w.base.kernel.name]
        assert {w.base.name for w in in_block} == expected
        assert all(isinstance(getattr(attention, f"{t}_dense"), LoRADense) for t in targets)
        # The feed-forward's `output_dense` is not the attention output.
        assert not isinstance(block.ffn.output_dense, LoRADense)
        # A and B are named beside their kernel, so their depth group is the block's.
        assert all(f"/layer_._{index}/attention/" in w.lora_a.name for w in in_block)
    adapters = {id(v) for w in wrappers for v in (w.lora_a, w.lora_b)}
    trainable = {id(v) for v in model.trainable_weights}
    head = {id(v) for v in model.get_layer("token_logits").weights}
    assert trainable == adapters | head
    np.testing.assert_array_equal(model(features).numpy(), plain)  # B starts at zero

    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedSparseCategoricalCrossentropy())
    model.train_on_batch(features, labels)
    assert all(np.abs(w.lora_b.numpy()).max() > 0 for w in wrappers)
    adapted = model(features).numpy()
    assert not np.allclose(adapted, plain, atol=1e-4)

    assert merge_lora(encoder) == 4 * LAYERS
    assert not any(isinstance(layer, LoRADense) for layer in encoder._flatten_layers())
    np.testing.assert_allclose(model(features).numpy(), adapted, atol=1e-5)
    # Same weights, order and trainable flags as before (h5 files match by position).
    assert [_names(weights) for weights in (encoder.weights, encoder.trainable_weights)] == layout


@pytest.mark.parametrize("case", ["bert", "deberta-v2"])
def test_bitfit_trains_only_biases_and_restores(case):
    encoder = _encoder(case)
    model = _model(encoder)
    features, labels = _batch(encoder)
    order = _names(encoder.trainable_weights)
    adaptation = finetuning.adapt_backbone(encoder, None, _options(peft="bitfit"))
    names = _names(encoder.trainable_weights)
    assert names == [name for name in order if families.is_bias(name)]
    assert any(name.endswith("/beta:0") for name in names)
    assert any(name.endswith("/bias:0") for name in names)

    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedSparseCategoricalCrossentropy())
    before = {w.name: w.numpy() for w in encoder.weights}
    model.train_on_batch(features, labels)
    moved = {w.name for w in encoder.weights if not np.array_equal(w.numpy(), before[w.name])}
    assert moved and all(families.is_bias(name) for name in moved)

    adaptation.restore()
    assert _names(encoder.trainable_weights) == order


@pytest.mark.parametrize("case", ["bert", "electra", "deberta-v3", "deberta-v2"])
def test_freezing_embeddings_and_a_layer_covers_their_groups_and_restores(case):
    encoder = _encoder(case)
    order = _names(encoder.trainable_weights)
    options = _options(freeze_embeddings=True, freeze_layers=1)
    adaptation = finetuning.adapt_backbone(encoder, None, options)
    # Embeddings (with ELECTRA's projection, DeBERTa's relative table and norm) and block 0
    # (with DeBERTa-v2's convolution) are frozen: only block 1 trains.
    assert {finetuning.variable_group(w, LAYERS) for w in encoder.trainable_weights} == {2}
    assert {finetuning.variable_group(w, LAYERS) for w in encoder.non_trainable_weights} == {0, 1}
    adaptation.restore()
    assert _names(encoder.trainable_weights) == order


@pytest.mark.parametrize("case", CASES)
def test_layerwise_decay_then_gradual_unfreezing(case):
    encoder = _encoder(case)
    model = _model(encoder)
    features, labels = _batch(encoder)
    lr = 1e-3
    scales = finetuning.layerwise_scales(LAYERS, 0.5)
    optimizer = build_adamw(
        lr, total_steps=1000, warmup_ratio=0.0, weight_decay=0.0,
        group_of=lambda v: finetuning.variable_group(v, LAYERS), group_scales=scales,
    )
    model.compile(optimizer=optimizer, loss=MaskedSparseCategoricalCrossentropy())
    # Layer-wise decay: Adam's first step moves each group by lr * scale.
    before = _values(model)
    model.train_on_batch(features, labels)
    steps = _largest_step(model, before)
    assert sorted(steps) == [0, 1, 2, 3]
    for group, step in steps.items():
        assert step == pytest.approx(lr * scales[group], rel=3e-2), (case, group)

    # Gradual unfreezing, one group per epoch: frozen groups do not move at all.
    unfreezing = finetuning.GradualUnfreezing(optimizer, LAYERS, 1, scales)
    for epoch, still_frozen in ((0, {0, 1}), (1, {0})):
        unfreezing.on_epoch_begin(epoch)
        before = _values(model)
        model.train_on_batch(features, labels)
        steps = _largest_step(model, before)
        assert {g for g, step in steps.items() if step == 0.0} == still_frozen, (case, epoch, steps)


def test_unused_pooler_is_frozen():
    encoder = _encoder("bert", use_pooler=True)
    pooler = {id(w) for w in encoder.pooler.weights}
    assert pooler <= {id(w) for w in encoder.trainable_weights}
    backbones.freeze_unused_pooler(encoder)
    assert not encoder.pooler.trainable
    assert not pooler & {id(w) for w in encoder.trainable_weights}
    assert len(encoder.trainable_weights) == len(encoder.weights) - 2
    without = _encoder("distilbert")
    backbones.freeze_unused_pooler(without)  # no pooler: nothing to do
    assert len(without.trainable_weights) == len(without.weights)


@pytest.mark.parametrize(
    ("case", "kernels"), [("bert", 12), ("deberta-v3", 12), ("deberta-v2", 16)]
)
def test_pruning_reaches_the_target_on_every_block_kernel(case, kernels):
    encoder = _encoder(case)
    model = _model(encoder)
    features, labels = _batch(encoder, rows=8)
    # The kernels pruned are every Dense kernel in the blocks (DeBERTa-v2 without
    # share_att_key: its relative projections too), nothing outside them.
    in_blocks = {id(layer.kernel) for block in encoder.blocks for layer in block._flatten_layers()
                 if isinstance(layer, keras.layers.Dense)}
    assert {id(v) for v in pruning.encoder_kernels(encoder)} == in_blocks
    assert len(in_blocks) == kernels

    tfmot = pruning.import_tfmot()
    epochs, batch_size = 2, 2
    plan = pruning.fit_schedule(epochs * len(labels) // batch_size, 0.5)
    trainer, wrapped = pruning.pruning_model(tfmot, model, encoder, encoder.input_names, plan)
    assert wrapped.layer is encoder  # no PrunableLayer wrapper around our encoder
    loss = MaskedSparseCategoricalCrossentropy()
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    trainer.fit(features, labels, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=False,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    for weight, mask, _ in wrapped.pruning_vars:  # what prune_run does after fit
        weight.assign(weight * mask)

    sparsity = pruning.sparsity_of(pruning.encoder_kernels(encoder))
    assert len(sparsity) == kernels
    for name, value in sparsity.items():
        assert abs(value - 0.5) <= pruning.TOLERANCE, (name, value)
    dense = [w for w in encoder.weights if id(w) not in in_blocks]
    assert max(float(np.mean(w.numpy() == 0)) for w in dense) < 0.5  # embeddings, norms stay dense
    # The run model shares the pruned variables: it computes what the training model does.
    np.testing.assert_allclose(model(features).numpy(), trainer(features, training=False).numpy(),
                               atol=1e-6)
