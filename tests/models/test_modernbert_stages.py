"""The stages that reach into the backbone, on the ModernBERT encoder (4 blocks).

test_own_encoder_stages.py runs the same checks on the 2-block fixtures of
the other families; ModernBERT's fixture has 4 blocks (so that global and
sliding layers both occur), hence this file. Also: a tiny NER and a
classification run end to end on a ModernBERT backbone folder.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import kerastune_nlp as kt
from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import families
from kerastune_nlp.backbones.encoder import load_encoder
from kerastune_nlp.errors import ConfigError
from kerastune_nlp import pruning
from kerastune_nlp.models.lora import LoRADense, add_lora, merge_lora
from kerastune_nlp.models.losses import IGNORE_INDEX, MaskedSparseCategoricalCrossentropy
from kerastune_nlp.training import finetuning
from kerastune_nlp.training.optimizer import build_adamw

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
LAYERS = 4
NUM_LABELS = 3


def _encoder(case="modernbert"):
    return load_encoder(FIXTURES / case)[0]


def _model(encoder):
    keras.utils.set_random_seed(0)
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in encoder.input_names}
    return keras.Model(inputs, keras.layers.Dense(NUM_LABELS, name="token_logits")(encoder(inputs)))


def _batch(encoder, rows=4):
    rng = np.random.default_rng(0)
    lengths = [12, 9, 5, 11][:rows] * (rows // 4 or 1)
    mask = (np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]).astype("int32")
    ids = np.where(mask == 1, rng.integers(5, encoder.vocab_size, size=mask.shape), encoder.pad_token_id)
    labels = np.where(mask == 1, rng.integers(0, NUM_LABELS, size=mask.shape), IGNORE_INDEX)
    return {"input_ids": ids.astype("int32"), "attention_mask": mask}, labels.astype("int32")


def test_families_finds_every_part():
    encoder = _encoder()
    assert families.is_own_encoder(encoder) and families.num_layers(encoder) == LAYERS
    assert families.encoder_layers(encoder) == encoder.blocks
    assert [part for _, _, part in families.embedding_parts(encoder)] == [encoder.embeddings]
    assert families.first_layer_extras(encoder) == [] and families.pooler(encoder) is None
    projections = families.attention_projections(encoder, ("query", "output"))
    assert projections == [
        (block.attention, attribute, getattr(block.attention, attribute))
        for block in encoder.blocks for attribute in ("query_dense", "output_dense")
    ]


def test_variable_groups():
    encoder = _encoder("modernbert-biases")
    groups = {w.name: finetuning.variable_group(w, LAYERS) for w in _model(encoder).weights}
    for name, group in groups.items():
        if "/embeddings/" in name:
            assert group == 0, name
        elif "/layer_._" in name:
            assert group == 1 + int(name.split("/layer_._")[1].split("/")[0]), name
        else:  # final_norm and the head: after the blocks
            assert group == LAYERS + 1 and ("/final_norm/" in name or name.startswith("token_logits/")), name
    assert sorted(set(groups.values())) == list(range(LAYERS + 2))


def test_lora_wraps_trains_and_merges():
    encoder = _encoder()
    model = _model(encoder)
    features, labels = _batch(encoder)
    plain = model(features).numpy()
    layout = [w.name for w in encoder.weights]
    targets = ("query", "key", "value", "output")
    assert add_lora(encoder, rank=4, targets=targets, seed=0) == 4 * LAYERS
    wrappers = [layer for layer in encoder._flatten_layers() if isinstance(layer, LoRADense)]
    assert {w.base.name for w in wrappers} == {"query", "key", "value", "output"}
    assert not any(isinstance(block.ffn.output_dense, LoRADense) for block in encoder.blocks)
    np.testing.assert_array_equal(model(features).numpy(), plain)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedSparseCategoricalCrossentropy())
    model.train_on_batch(features, labels)
    adapted = model(features).numpy()
    assert not np.allclose(adapted, plain, atol=1e-4)
    assert merge_lora(encoder) == 4 * LAYERS
    np.testing.assert_allclose(model(features).numpy(), adapted, atol=1e-5)
    assert [w.name for w in encoder.weights] == layout


def test_bitfit_is_refused_without_biases_and_trains_only_biases_with_them():
    options = type("Options", (), {"peft": "bitfit", "freeze_embeddings": False, "freeze_layers": 0})()
    with pytest.raises(ConfigError, match="backbone has none"):
        finetuning.adapt_backbone(_encoder(), None, options)
    encoder = _encoder("modernbert-biases")
    adaptation = finetuning.adapt_backbone(encoder, None, options)
    assert encoder.trainable_weights and all(families.is_bias(w.name) for w in encoder.trainable_weights)
    adaptation.restore()


def test_freezing_embeddings_and_a_layer():
    encoder = _encoder()
    options = type("Options", (), {"peft": "none", "freeze_embeddings": True, "freeze_layers": 1})()
    adaptation = finetuning.adapt_backbone(encoder, None, options)
    assert {finetuning.variable_group(w, LAYERS) for w in encoder.non_trainable_weights} == {0, 1}
    assert {finetuning.variable_group(w, LAYERS) for w in encoder.trainable_weights} == {2, 3, 4, 5}
    adaptation.restore()
    assert len(encoder.trainable_weights) == len(encoder.weights)


def test_layerwise_decay_moves_each_group_by_its_rate():
    encoder = _encoder()
    model = _model(encoder)
    features, labels = _batch(encoder)
    lr, scales = 1e-3, finetuning.layerwise_scales(LAYERS, 0.5)
    optimizer = build_adamw(lr, total_steps=1000, warmup_ratio=0.0, weight_decay=0.0,
                            group_of=lambda v: finetuning.variable_group(v, LAYERS), group_scales=scales)
    model.compile(optimizer=optimizer, loss=MaskedSparseCategoricalCrossentropy())
    before = {w.name: w.numpy() for w in model.trainable_weights}
    model.train_on_batch(features, labels)
    steps: dict = {}
    for weight in model.trainable_weights:
        group = finetuning.variable_group(weight, LAYERS)
        steps[group] = max(steps.get(group, 0.0), float(np.abs(weight.numpy() - before[weight.name]).max()))
    assert sorted(steps) == list(range(LAYERS + 2))
    for group, step in steps.items():
        assert step == pytest.approx(lr * scales[group], rel=3e-2), group


def test_pruning_reaches_the_target_on_every_block_kernel():
    encoder = _encoder()
    model = _model(encoder)
    features, labels = _batch(encoder, rows=8)
    kernels = pruning.encoder_kernels(encoder)
    assert len(kernels) == 6 * LAYERS  # q, k, v (Wqkv's blocks), Wo, Wi, the MLP's Wo
    tfmot = pruning.import_tfmot()
    plan = pruning.fit_schedule(2 * len(labels) // 2, 0.5)
    trainer, wrapped = pruning.pruning_model(tfmot, model, encoder, encoder.input_names, plan)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss=MaskedSparseCategoricalCrossentropy())
    trainer.fit(features, labels, batch_size=2, epochs=2, verbose=0, shuffle=False,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    for weight, mask, _ in wrapped.pruning_vars:
        weight.assign(weight * mask)
    for name, value in pruning.sparsity_of(pruning.encoder_kernels(encoder)).items():
        assert abs(value - 0.5) <= pruning.TOLERANCE, (name, value)


@pytest.mark.parametrize("task", ["ner", "classification"])
def test_a_tiny_run_trains_saves_and_reloads(task, tiny_modernbert, tmp_path):
    if task == "ner":
        paths = kt.bundled_wnut17()
        train, dev = kt.read_conll(paths["train"])[:40], kt.read_conll(paths["dev"])[:16]
    else:
        from kerastune_nlp.data.bundled_trec import load_bundled_trec

        examples = load_bundled_trec()["train"]
        train, dev = examples[:96], examples[96:128]
        dev = [e for e in dev if e.label in {t.label for t in train}]
    result = kt.train(task, train, dev, dev, output_dir=tmp_path / task,
                      model_config=kt.ModelConfig(backbone=str(tiny_modernbert)),
                      data_config=kt.DataConfig(max_length=32), verbose=0,
                      train_config=kt.TrainConfig(epochs=2, batch_size=16, learning_rate=1e-3))
    history = json.loads((result.run_dir / "history.json").read_text())
    assert len(history["loss"]) == 2 and all(math.isfinite(loss) for loss in history["loss"])
    assert result.metrics["test"]
    reloaded = kt.load_run(result.run_dir)
    inputs = [e.tokens for e in dev] if task == "ner" else [e.text for e in dev]
    assert reloaded.predict(inputs) == result.predictor.predict(inputs)
    assert reloaded.evaluate(dev) == result.metrics["test"]


def test_continued_pretraining_runs_on_modernbert_and_keeps_its_head(tiny_modernbert, tmp_path):
    """A created head (the fixture is a bare encoder), whole-word masking over byte-level BPE, written back
    with the head, which a second load finds. The head's parity with ModernBertForMaskedLM:
    tests/pretraining/test_mlm_model.py."""
    from kerastune_nlp.models.backbones import resolve_backbone
    from kerastune_nlp.pretraining import PretrainConfig, continue_pretraining
    from kerastune_nlp.pretraining.mlm_model import load_mlm_model

    loaded = load_mlm_model(resolve_backbone(str(tiny_modernbert)))
    assert loaded.head == "created" and "head.dense.weight" in loaded.missing_head_weights
    corpus = tmp_path / "domain.txt"
    corpus.write_text("\n".join(["Barack Obama met Angela Merkel in Berlin",
                                  "the quick brown fox jumps over the lazy dog"] * 12) + "\n", encoding="utf-8")
    result = continue_pretraining(corpus, output_dir=tmp_path / "adapted", backbone=str(tiny_modernbert),
                                  config=PretrainConfig(epochs=1, batch_size=4, max_length=32, learning_rate=1e-3,
                                                        warmup_ratio=0.0, seed=7, whole_word_masking=True),
                                  verbose=0)
    assert result.report["history"] and all(math.isfinite(epoch["loss"]) for epoch in result.report["history"])
    again = load_mlm_model(resolve_backbone(str(tmp_path / "adapted")))
    assert again.head == "loaded" and not again.missing_head_weights


@pytest.mark.parametrize("layers", [(0, 1, 2, 3), (0, 3), (0, 2), (0, 1, 3)])
def test_a_layer_subset_student_computes_the_kept_teacher_blocks(layers):
    """Fixture kinds: full, sliding, sliding, full. Student block j is teacher block layers[j], with its kind."""
    from kerastune_nlp.backbones.config import parse_config
    from kerastune_nlp.backbones.modernbert_layers import attention_biases, rotary_cos_sin
    from kerastune_nlp.distillation.students import build_subset_backbone, subset_config

    teacher = _encoder()
    config = subset_config(parse_config(FIXTURES / "modernbert" / "config.json"), layers)
    assert config.layer_types == tuple(teacher.layer_types[i] for i in layers)
    assert config.to_dict()["layer_types"] == list(config.layer_types)
    student = build_subset_backbone(teacher, config, layers)
    features, _ = _batch(teacher)
    # The teacher's own blocks, run in the kept order (mask width 8: sentences of 12 tokens cross it).
    hidden = teacher.embeddings(features["input_ids"])
    length = features["input_ids"].shape[1]
    biases = attention_biases(features["attention_mask"], teacher.local_attention // 2)
    thetas = {"full_attention": teacher.global_rope_theta, "sliding_attention": teacher.local_rope_theta}
    for index in layers:
        block = teacher.blocks[index]
        cos, sin = rotary_cos_sin(length, teacher.head_size, thetas[block.layer_type])
        hidden = block(hidden, cos, sin, biases[block.layer_type])
    expected = teacher.final_norm(hidden).numpy()
    mask = features["attention_mask"][..., None] == 1
    np.testing.assert_allclose(np.where(mask, student(features).numpy(), 0), np.where(mask, expected, 0),
                               atol=1e-5)


def test_a_layer_subset_without_block_0_is_refused_with_the_reason():
    from kerastune_nlp.backbones.config import parse_config
    from kerastune_nlp.distillation.students import choose_layers, subset_config

    config = parse_config(FIXTURES / "modernbert" / "config.json")
    with pytest.raises(ConfigError, match=r"must keep block 0: ModernBERT's first block has no attention "
                                          r"LayerNorm \(attn_norm\) while block 2 has one.*\[0, 3\]"):
        subset_config(config, (2, 3))
    assert choose_layers(4, 2, None, keep_first=True) == (0, 3)
    assert choose_layers(4, 3, None, keep_first=True) == (0, 2, 3)
    assert choose_layers(4, 1, None, keep_first=True) == (0,)
