"""Our own Keras encoders: init, loading, errors, saving, serialization, graphs, mixed precision.

Tiny checkpoints from tests/fixtures/encoders (2 layers, hidden 32) keep each
test to about a second. Parity with PyTorch is in test_parity.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones.activations import get_activation
from kerastune_nlp.backbones.encoder import save_checkpoint
from kerastune_nlp.backbones.checkpoint_files import open_checkpoint
from kerastune_nlp.backbones.config import parse_config
from kerastune_nlp.backbones.encoder import build_encoder, load_encoder
from kerastune_nlp.backbones.tensor_layouts import tf_to_pytorch_name
from kerastune_nlp.models.backbones import KNOWN_BACKBONES, resolve_backbone
from kerastune_nlp.errors import BackboneError, ConfigError, UnsafeCheckpointError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
BERT = FIXTURES / "bert"
TINY = {
    "model_type": "bert",
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 40,
}


def _inputs(batch=2, length=7, vocab=99, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, size=(batch, length)).astype("int32")
    mask = np.ones((batch, length), "int32")
    mask[0, length // 2 :] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _copy_checkpoint(tmp_path, tensors_edit=None, config_edit=None, source=BERT):
    """A copy of a fixture checkpoint with edited tensors and/or config."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "ckpt"
    folder.mkdir()
    config = json.loads((source / "config.json").read_text())
    if config_edit:
        config_edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    tensors = load_file(str(source / "model.safetensors"))
    if tensors_edit:
        tensors_edit(tensors)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


# --- init and structure ------------------------------------------------------------------------


def test_same_seed_gives_identical_weights_and_other_seed_differs():
    first, second = build_encoder(TINY, seed=7), build_encoder(TINY, seed=7)
    other = build_encoder(TINY, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))
    kernels = [v.numpy() for v in first.weights if v.name.endswith(("kernel:0", "embeddings:0"))]
    other_kernels = [
        v.numpy() for v in other.weights if v.name.endswith(("kernel:0", "embeddings:0"))
    ]
    assert not any(np.array_equal(a, b) for a, b in zip(kernels, other_kernels))
    # Every random tensor differs from every other one (per-variable seeds).
    assert len({k.tobytes() for k in kernels}) == len(kernels)
    # HF init: truncated normal (|x| <= 2 std), LayerNorm ones / zeros, biases zeros.
    assert max(float(np.abs(k).max()) for k in kernels) <= 2 * 0.02 + 1e-6
    block = first.blocks[0]
    np.testing.assert_array_equal(block.output_layer_norm.gamma.numpy(), 1.0)
    np.testing.assert_array_equal(block.attention.query_dense.bias.numpy(), 0.0)


def test_parts_are_exposed_with_stable_names():
    encoder = build_encoder(TINY, seed=0, use_pooler=True)
    assert (
        len(encoder.blocks) == 2
        and encoder.pooler is not None
        and encoder.embeddings_project is None
    )
    attention = encoder.blocks[1].attention
    for dense in (
        attention.query_dense,
        attention.key_dense,
        attention.value_dense,
        attention.output_dense,
        encoder.blocks[1].ffn.intermediate_dense,
        encoder.blocks[1].ffn.output_dense,
    ):
        assert type(dense) is keras.layers.Dense
    assert attention.query_dense.kernel.name == "bert/encoder/layer_._1/attention/query/kernel:0"
    assert (
        encoder.embeddings.word_embeddings.embeddings.name
        == "bert/embeddings/word_embeddings/embeddings:0"
    )
    assert encoder.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert len({v.name for v in encoder.weights}) == len(encoder.weights)


def test_num_layers_override_builds_a_subset():
    encoder = build_encoder(TINY, seed=0, num_layers=1)
    assert len(encoder.blocks) == 1
    assert parse_config(TINY).with_num_layers(1).num_hidden_layers == 1


def test_outputs_and_hidden_states():
    encoder = build_encoder(TINY, seed=0, use_pooler=True)
    outputs = encoder(_inputs(), output_hidden_states=True)
    assert outputs["last_hidden_state"].shape == (2, 7, 32)
    assert len(outputs["hidden_states"]) == 3 and outputs["pooled_output"].shape == (2, 32)
    np.testing.assert_array_equal(outputs["hidden_states"][-1], outputs["last_hidden_state"])
    # Missing attention_mask / token_type_ids: all ones / all zeros.
    ids = _inputs()["input_ids"]
    np.testing.assert_allclose(
        encoder({"input_ids": ids}),
        encoder(
            {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            }
        ),
        atol=1e-6,
    )


def test_gradients_reach_every_trainable_weight_with_dropout():
    encoder = build_encoder(TINY, seed=0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(encoder(_inputs(), training=True) ** 2)
    gradients = tape.gradient(loss, encoder.trainable_weights)
    # Type row 1 and unused vocabulary rows get zero gradient, but every variable gets one.
    assert all(g is not None for g in gradients)


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ConfigError, match="Received: `hidden_act`='gelu_foo'"):
        get_activation("gelu_foo")
    with pytest.raises(BackboneError, match="field `hidden_act` must be one of"):
        parse_config({**TINY, "hidden_act": "gelu_foo"})


# --- config.json -------------------------------------------------------------------------------


def test_config_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({key: value for key, value in TINY.items() if key != "hidden_size"}))
    with pytest.raises(
        BackboneError,
        match=rf"{path}: field `hidden_size` must be an integer >= 1\. "
        r"Received: `hidden_size`='<missing>'\. Add it",
    ):
        parse_config(path)
    with pytest.raises(
        BackboneError, match="field `num_attention_heads` must be a divisor of hidden_size=32"
    ):
        parse_config({**TINY, "num_attention_heads": 5})
    with pytest.raises(BackboneError, match="field `position_embedding_type` must be one of"):
        parse_config({**TINY, "position_embedding_type": "relative_key"})
    with pytest.raises(BackboneError, match="field `hidden_dropout_prob`"):
        parse_config({**TINY, "hidden_dropout_prob": "high"})
    path.write_text("{not json")
    with pytest.raises(BackboneError, match="is not valid JSON"):
        parse_config(path)


def test_unknown_model_type_lists_the_implemented_ones():
    with pytest.raises(
        BackboneError,
        match=r"`model_type` 'gpt2' has no encoder.*Expected one of \[.*'bert'.*"
        r"'distilbert'.*'electra'.*'roberta'.*'xlm-roberta'",
    ):
        parse_config({**TINY, "model_type": "gpt2"})
    with pytest.raises(BackboneError, match="field `model_type` is missing"):
        parse_config({key: value for key, value in TINY.items() if key != "model_type"})


# --- loading -----------------------------------------------------------------------------------


def test_every_variable_is_loaded_and_heads_are_reported():
    encoder, report = load_encoder(BERT)
    assert report.loaded == len(encoder.weights) == 37
    assert report.not_in_encoder == ("pooler.dense.bias", "pooler.dense.weight")
    with open_checkpoint(BERT / "model.safetensors") as source:
        query = source.get("encoder.layer.1.attention.self.query.weight")
    np.testing.assert_array_equal(encoder.blocks[1].attention.query_dense.kernel.numpy(), query.T)
    pooled, pooled_report = load_encoder(BERT, use_pooler=True)
    assert pooled_report.loaded == 39 and pooled_report.not_in_encoder == ()


def test_task_checkpoint_with_prefix_heads_and_buffers_loads(tmp_path):
    def to_task_model(tensors):
        for name in list(tensors):
            tensors["bert." + name] = tensors.pop(name)
        tensors["bert.embeddings.position_ids"] = np.arange(64, dtype=np.int64)[None]
        tensors["cls.predictions.bias"] = np.zeros(128, np.float32)
        tensors["classifier.weight"] = np.zeros((3, 32), np.float32)

    encoder, report = load_encoder(_copy_checkpoint(tmp_path, to_task_model))
    assert report.loaded == 37
    assert (
        "cls.predictions.bias" in report.not_in_encoder
        and "classifier.weight" in report.not_in_encoder
    )
    assert report.ignored == ("bert.embeddings.position_ids",)


def test_old_gamma_beta_names_load(tmp_path):
    def rename(tensors):
        for name in [n for n in tensors if "LayerNorm" in n]:
            tensors[name.replace(".weight", ".gamma").replace(".bias", ".beta")] = tensors.pop(name)

    _, report = load_encoder(_copy_checkpoint(tmp_path, rename))
    assert report.loaded == 37


def test_missing_tensor_is_named(tmp_path):
    folder = _copy_checkpoint(tmp_path, lambda t: t.pop("encoder.layer.1.output.dense.weight"))
    with pytest.raises(
        BackboneError,
        match=r"into the 'bert' encoder .*: 1 missing tensor "
        r"\(encoder\.layer\.1\.output\.dense\.weight\)",
    ):
        load_encoder(folder)


def test_unexpected_tensor_is_named(tmp_path):
    folder = _copy_checkpoint(
        tmp_path,
        lambda t: t.update({"encoder.layer.2.output.dense.weight": t["pooler.dense.weight"]}),
    )
    with pytest.raises(
        BackboneError, match=r"1 unexpected tensor \(encoder\.layer\.2\.output\.dense\.weight\)"
    ):
        load_encoder(folder)


def test_wrong_shapes_are_named_with_counts(tmp_path):
    folder = _copy_checkpoint(
        tmp_path, config_edit=lambda c: c.update(vocab_size=100, intermediate_size=48)
    )
    with pytest.raises(
        BackboneError,
        match=r"7 tensors of the wrong shape \(embeddings\.word_embeddings\.weight: "
        r"file 128x32 vs encoder 100x32, encoder\.layer\.0\.intermediate\.dense\."
        r"weight: file 64x32 vs encoder 48x32, .*\(7 in all\)\)\. Check that config",
    ):
        load_encoder(folder)


def test_many_missing_tensors_show_the_first_few_and_the_count(tmp_path):
    folder = _copy_checkpoint(
        tmp_path,
        source=FIXTURES / "distilbert",
        config_edit=lambda c: c.update(
            model_type="bert",
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        ),
    )
    with pytest.raises(
        BackboneError,
        match=r"33 missing tensors \(.*, \.\.\. \(33 in all\)\); 32 unexpected tensors",
    ):
        load_encoder(folder)


def test_truncated_file_is_named(tmp_path):
    folder = _copy_checkpoint(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(
        BackboneError, match=rf"Cannot read the backbone weights '{weights}': the file is truncated"
    ):
        load_encoder(folder)


def test_random_bytes_h5_is_named(tmp_path):
    folder = tmp_path / "h5"
    shutil.copytree(FIXTURES / "bert-tf-h5", folder)
    (folder / "tf_model.h5").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(
        BackboneError, match=r"tf_model\.h5': the file is truncated or not an HDF5 file"
    ):
        load_encoder(folder)


def test_missing_shard_is_named(tmp_path):
    folder = tmp_path / "sharded"
    shutil.copytree(FIXTURES / "bert-sharded", folder)
    (folder / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(
        BackboneError, match=r"model-00002-of-00003\.safetensors': the file is missing"
    ):
        load_encoder(folder)


def test_missing_config_json_is_named(tmp_path):
    shutil.copy(BERT / "model.safetensors", tmp_path)
    with pytest.raises(BackboneError, match=rf"No config\.json at '{tmp_path}/config\.json'"):
        load_encoder(tmp_path)


@pytest.mark.parametrize(
    ("tf_name", "expected"),
    [
        (
            "tf_bert_model/bert/encoder/layer_._3/attention/self/query/kernel:0",
            ("bert.encoder.layer.3.attention.self.query.weight", "linear"),
        ),
        ("tf_bert_for_masked_lm/mlm___cls/predictions/bias:0", ("cls.predictions.bias", "copy")),
        (
            "m/bert/embeddings/word_embeddings/weight:0",
            ("bert.embeddings.word_embeddings.weight", "copy"),
        ),
        (
            "m/bert/embeddings/position_embeddings/embeddings:0",
            ("bert.embeddings.position_embeddings.weight", "copy"),
        ),
        ("m/bert/embeddings/LayerNorm/gamma:0", ("bert.embeddings.LayerNorm.weight", "copy")),
        (
            "m/deberta/encoder/rel_embeddings.weight:0",
            ("deberta.encoder.rel_embeddings.weight", "copy"),
        ),
    ],
)
def test_tf_names_convert_as_transformers_does(tf_name, expected):
    assert tf_to_pytorch_name(tf_name) == expected


def test_pickle_only_folder_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(UnsafeCheckpointError, match="pytorch_model.bin, a pickle"):
        load_encoder(tmp_path)


def test_bfloat16_safetensors_load(tmp_path):
    import struct

    from safetensors.numpy import load_file

    tensors = load_file(str(BERT / "model.safetensors"))
    # Write a BF16 file by hand (numpy has no bfloat16): round-to-zero of float32.
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        blob = (
            (np.ascontiguousarray(array, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        )
        header[name] = {
            "dtype": "BF16",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    folder = tmp_path / "bf16"
    folder.mkdir()
    shutil.copy(BERT / "config.json", folder)
    raw = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    encoder, _ = load_encoder(folder)
    word = tensors["embeddings.word_embeddings.weight"]
    np.testing.assert_allclose(
        encoder.embeddings.word_embeddings.embeddings.numpy(), word, rtol=1e-2, atol=1e-3
    )


# --- saving and serialization ------------------------------------------------------------------


def test_save_checkpoint_round_trip(tmp_path):
    encoder, _ = load_encoder(FIXTURES / "electra")
    config = json.loads((FIXTURES / "electra" / "config.json").read_text())
    save_checkpoint(encoder, config, tmp_path / "saved")
    with open_checkpoint(tmp_path / "saved" / "model.safetensors") as source:
        assert source._handles[0].metadata() == {"format": "pt"}
        assert "embeddings_project.weight" in source.names
    reloaded, report = load_encoder(tmp_path / "saved")
    assert report.loaded == len(encoder.weights)
    for a, b in zip(encoder.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_checkpoint_refuses_a_config_of_another_encoder(tmp_path):
    encoder = build_encoder(TINY, seed=0, num_layers=1)
    with pytest.raises(
        BackboneError, match=r"does not describe this encoder \(num_layers: config 2, encoder 1\)"
    ):
        save_checkpoint(encoder, TINY, tmp_path)
    save_checkpoint(encoder, parse_config(TINY).with_num_layers(1), tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["num_hidden_layers"] == 1


def test_get_config_from_config_round_trip():
    encoder, _ = load_encoder(FIXTURES / "roberta")
    config = encoder.get_config()
    clone = type(encoder).from_config(config)
    assert clone.get_config() == config
    inputs = {k: v for k, v in _inputs(vocab=128).items() if k != "token_type_ids"}
    clone(inputs)
    clone.set_weights(encoder.get_weights())
    np.testing.assert_array_equal(clone(inputs), encoder(inputs))


def test_functional_model_saves_to_h5_and_reloads(tmp_path):
    encoder, _ = load_encoder(FIXTURES / "distilbert")
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in encoder.input_names}
    hidden = encoder(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(hidden))
    path = tmp_path / "model.h5"
    model.save(path)
    reloaded = keras.models.load_model(path)
    batch = {k: v for k, v in _inputs(vocab=128).items() if k in encoder.input_names}
    np.testing.assert_array_equal(model(batch).numpy(), reloaded(batch).numpy())


def test_functional_model_round_trips_through_savedmodel(tmp_path):
    encoder, _ = load_encoder(FIXTURES / "roberta")
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in encoder.input_names}
    model = keras.Model(inputs, encoder(inputs))
    model.save(tmp_path / "saved", save_format="tf")
    serving = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    batch = {k: tf.constant(v) for k, v in _inputs(vocab=128).items() if k in encoder.input_names}
    (output,) = serving(**batch).values()
    np.testing.assert_allclose(output.numpy(), model(batch).numpy(), atol=1e-6)


def test_compiles_with_xla():
    encoder = build_encoder(TINY, seed=0)
    inputs = _inputs()
    compiled = tf.function(lambda x: encoder(x, training=False), jit_compile=True)
    np.testing.assert_allclose(compiled(inputs), encoder(inputs), atol=1e-5)


def test_runs_in_one_graph_for_any_batch_and_length():
    encoder = build_encoder(TINY, seed=0)
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(
        input_signature=[{"input_ids": spec, "attention_mask": spec, "token_type_ids": spec}]
    )
    def forward(inputs):
        return encoder(inputs, training=False)

    for batch, length in ((1, 3), (4, 11), (2, 40)):
        inputs = _inputs(batch, length)
        np.testing.assert_allclose(forward(inputs), encoder(inputs), atol=1e-5)
    assert forward.experimental_get_tracing_count() == 1


def test_mixed_bfloat16_policy():
    reference = build_encoder(TINY, seed=0)
    inputs = _inputs()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        encoder = build_encoder(TINY, seed=0)
        outputs = tf.function(lambda x: encoder(x, training=True))(inputs)
        inference = encoder(inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert encoder.blocks[0].attention.query_dense.kernel.dtype == tf.float32
    assert outputs.dtype == tf.bfloat16 and inference.dtype == tf.bfloat16
    assert np.isfinite(tf.cast(outputs, tf.float32).numpy()).all()
    # bfloat16 keeps ~3 significant digits: LayerNorm outputs of order 1 agree to a few 1e-2.
    assert np.abs(tf.cast(inference, tf.float32).numpy() - reference(inputs).numpy()).max() < 0.1


def test_minilm_loads_when_installed():
    folder = bundled_minilm_folder()
    encoder, report = load_encoder(folder)
    assert report.loaded == len(encoder.weights) and len(encoder.blocks) == 6
    assert report.ignored == ("embeddings.position_ids",)


# --- what later stages rely on -----------------------------------------------------------------


def test_swapped_projection_attribute_is_used():
    """LoRA replaces `attention.query_dense` by a wrapper: the call must look the attribute up."""
    encoder = build_encoder(TINY, seed=0)
    inputs = _inputs()
    before = encoder(inputs).numpy()
    attention = encoder.blocks[0].attention
    replacement = keras.layers.Dense(32, kernel_initializer="zeros", name="query")
    replacement.build((None, None, 32))
    attention.query_dense = replacement
    assert not np.allclose(encoder(inputs).numpy(), before)


def test_tfmot_prunes_the_block_kernels_without_a_wrapper():
    import tensorflow_model_optimization as tfmot
    encoder, _ = load_encoder(BERT)
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in encoder.input_names}
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(encoder(inputs)))
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    batch = {k: v for k, v in _inputs(vocab=128).items() if k in encoder.input_names}
    # One training-mode call at pruning step 1 updates the masks (what fit + UpdatePruningStep do).
    for layer in pruned.layers:
        if hasattr(layer, "pruning_step"):
            layer.pruning_step.assign(1)
    pruned(batch, training=True)
    stripped = tfmot.sparsity.keras.strip_pruning(pruned).get_layer("bert")
    kernels = stripped.get_prunable_weights()
    assert len(kernels) == 12
    assert all(abs(float(np.mean(k.numpy() == 0)) - 0.5) < 0.01 for k in kernels)


def bundled_minilm_folder() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (installed by `make test`; a clear error if missing)."""
    return resolve_backbone(next(iter(KNOWN_BACKBONES))).directory
