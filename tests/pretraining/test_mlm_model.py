"""The masked-LM model: encoder weights really arrive, the head is created or loaded, masked-slot logits are right."""

from __future__ import annotations

import numpy as np
import pytest

FAMILIES = ("bert", "distilbert", "roberta", "electra", "deberta-v2", "xlm-roberta")


def _inputs(vocab_size: int, length: int = 9):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab_size, (2, length)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("family", FAMILIES)
def test_encoder_weights_arrive_and_masked_slot_logits_match_the_full_model(family, all_tiny_backbones, tmp_path):
    import shutil

    from kerastune_nlp.models.backbones import load_pretrained_backbone, resolve_backbone
    from kerastune_nlp.pretraining.mlm_model import (
        HEAD_NAMES,
        encoder_layer,
        head_group,
        load_mlm_model,
        masked_logits,
        save_mlm_checkpoint,
    )

    resolved = resolve_backbone(str(all_tiny_backbones[family]))
    loaded = load_mlm_model(resolved, seed=0)
    assert loaded.head == "created" and len(loaded.missing_head_weights) == 5  # the tiny checkpoints are bare encoders
    inputs = _inputs(loaded.model.backbone_config.vocab_size)
    reference = load_pretrained_backbone(resolved)(inputs, training=False).numpy()
    ours = encoder_layer(loaded.model)(inputs, training=False).numpy()
    np.testing.assert_allclose(ours[0], reference[0], atol=1e-5)
    np.testing.assert_allclose(ours[1, :6], reference[1, :6], atol=1e-5)
    # The head's variables (dense, LayerNorm, bias; the decoder is the tied word table) form their own group.
    group = head_group(loaded.model)
    assert sum(group(w) == 1 for w in loaded.model.trainable_weights) == 5
    assert sum(group(w) == 0 for w in loaded.model.trainable_weights) > 10
    positions = np.array([[1, 4, 0], [2, 5, 3]], np.int32)
    full = loaded.model(inputs, training=False).numpy()
    sliced = masked_logits(loaded.model, {**inputs, "masked_positions": positions}).numpy()
    np.testing.assert_allclose(sliced, np.take_along_axis(full, positions[..., None], axis=1), atol=1e-4)
    # Saved in PyTorch naming with the family's head names, it loads back whole, head included.
    out = save_mlm_checkpoint(loaded.model, tmp_path / "adapted")
    for item in resolved.directory.iterdir():
        if item.name not in ("config.json", "model.safetensors"):
            shutil.copy(item, out)
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), framework="np") as handle:
        assert HEAD_NAMES[family][0][2] in handle.keys()
    again = load_mlm_model(resolve_backbone(str(out)))
    assert again.head == "loaded" and not again.missing_head_weights
    np.testing.assert_array_equal(again.model(inputs, training=False).numpy(), full)


def test_the_real_bundled_checkpoint_loads_its_encoder_and_gets_a_new_head():
    """all-MiniLM-L6-v2 (PyTorch safetensors, a bare BertModel): 6 layers arrive, only the head is new."""
    from kerastune_nlp.models.backbones import load_pretrained_backbone, resolve_backbone
    from kerastune_nlp.pretraining.mlm_model import encoder_layer, head_layer_names, load_mlm_model

    resolved = resolve_backbone("all-minilm-l6-v2")
    assert resolved.weights_format == "pt-safetensors"
    loaded = load_mlm_model(resolved)
    assert loaded.head == "created"
    assert sorted(loaded.missing_head_weights) == sorted([
        "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias"])
    assert head_layer_names(loaded.model) == set(loaded.missing_head_weights)
    inputs = _inputs(30000)
    reference = load_pretrained_backbone(resolved)(inputs, training=False).numpy()
    ours = encoder_layer(loaded.model)(inputs, training=False).numpy()
    np.testing.assert_allclose(ours[0], reference[0], atol=1e-4)


def test_missing_encoder_weights_are_refused(tiny_bert, tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    from kerastune_nlp.errors import BackboneError
    from kerastune_nlp.models.backbones import resolve_backbone
    from kerastune_nlp.pretraining.mlm_model import load_mlm_model

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    tensors = load_file(str(broken / "model.safetensors"))
    del tensors["encoder.layer.1.output.dense.weight"]
    save_file(tensors, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(BackboneError, match=r"broken.*model.safetensors' into the 'bert' encoder.*1 missing tensor "
                                            r"\(encoder\.layer\.1\.output\.dense\.weight\)"):
        load_mlm_model(resolve_backbone(str(broken)))


@pytest.mark.parametrize("case", ["modernbert-mlm", "modernbert-mlm-biases"])
def test_modernbert_mlm_logits_match_transformers(case, tmp_path):
    """ModernBertForMaskedLM fixtures (benchmarks/mlm_head_parity/modernbert_reference.py): `head.dense`
    (bias only with classifier_bias), activation, `head.norm` (bias only with norm_bias), `decoder` tied to
    `tok_embeddings` plus `decoder.bias`; logits as PyTorch's within 1e-5 on real tokens (scale ~4.6)."""
    from pathlib import Path

    from kerastune_nlp.models.backbones import resolve_backbone
    from kerastune_nlp.pretraining.mlm_model import head_layer_names, load_mlm_model, save_mlm_checkpoint

    folder = Path(__file__).parents[1] / "fixtures" / "encoders" / case
    loaded = load_mlm_model(resolve_backbone(str(folder)))
    assert loaded.head == "loaded" and not loaded.missing_head_weights
    biases = case.endswith("biases")
    expected = {"head.dense.weight", "head.norm.weight", "decoder.bias"}
    expected |= {"head.dense.bias", "head.norm.bias"} if biases else set()
    assert head_layer_names(loaded.model) == expected
    reference = np.load(folder / "mlm_reference.npz")
    inputs = {"input_ids": reference["input_ids"], "attention_mask": reference["attention_mask"]}
    logits = loaded.model(inputs, training=False).numpy()
    real = reference["attention_mask"] == 1
    np.testing.assert_allclose(logits[real], reference["logits"][real], atol=1e-5)
    # Written back in PyTorch naming (the head's own names; the decoder weight stays tied), it loads whole.
    out = save_mlm_checkpoint(loaded.model, tmp_path / "adapted")
    again = load_mlm_model(resolve_backbone(str(out)))
    assert again.head == "loaded"
    np.testing.assert_array_equal(again.model(inputs, training=False).numpy(), logits)


def test_a_bare_modernbert_gets_a_created_head_of_its_own_shape(tiny_modernbert):
    from kerastune_nlp.models.backbones import resolve_backbone
    from kerastune_nlp.pretraining.mlm_model import load_mlm_model

    loaded = load_mlm_model(resolve_backbone(str(tiny_modernbert)), seed=0)
    assert loaded.head == "created"
    assert sorted(loaded.missing_head_weights) == ["decoder.bias", "head.dense.weight", "head.norm.weight"]
    inputs = _inputs(loaded.model.backbone_config.vocab_size)
    assert loaded.model(inputs).shape == (2, 9, loaded.model.backbone_config.vocab_size)


def test_a_modernbert_checkpoint_with_an_untied_decoder_is_refused(tmp_path):
    import shutil
    from pathlib import Path

    from safetensors.numpy import load_file, save_file

    from kerastune_nlp.errors import BackboneError
    from kerastune_nlp.models.backbones import resolve_backbone
    from kerastune_nlp.pretraining.mlm_model import load_mlm_model

    folder = tmp_path / "untied"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "encoders" / "modernbert-mlm", folder)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["decoder.weight"] = tensors["model.embeddings.tok_embeddings.weight"] * 2
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(BackboneError, match=r"untied.*model.safetensors'.*'decoder.weight' differs from the word "
                                            r"embeddings.*tie_word_embeddings false"):
        load_mlm_model(resolve_backbone(str(folder)))
    tensors["decoder.weight"] = tensors["model.embeddings.tok_embeddings.weight"]  # tied, written twice: fine
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    assert load_mlm_model(resolve_backbone(str(folder))).head == "loaded"
