"""DeBERTa-v2 / v3 encoder: PyTorch parity, loading, graph and Keras round trips.

The references are tests/fixtures/encoders/deberta-v3 (v3 layout: shared
attention keys, 16 log buckets, LayerNorm on the relative table, no absolute
positions) and deberta-v2 (separate pos_key_proj / pos_query_proj, absolute
positions, token types, clamped relative distances, the conv after block 0),
written by benchmarks/encoder_reference.py with DebertaV2Model (PyTorch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones import deberta_v2
from kerastune_nlp.backbones.deberta_v2_attention import (
    build_relative_position,
    make_log_bucket_position,
)
from kerastune_nlp.backbones.deberta_v2_config import DebertaV2Config
from kerastune_nlp.backbones.encoder import save_checkpoint
from kerastune_nlp.backbones.config import parse_config, read_config_json
from kerastune_nlp.backbones.encoder import build_encoder, load_encoder
from kerastune_nlp.errors import BackboneError, ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
CASES = ("deberta-v3", "deberta-v2")
BATCHES = ("padded", "long", "single")
# float32 against float32 PyTorch: observed max 1.7e-6 (2 layers, hidden 32).
TOLERANCE = 1e-5

_loaded = {}


def _load(case):
    """(encoder, report, reference npz) of a fixture folder, loaded once per test session."""
    if case not in _loaded:
        encoder, report = load_encoder(FIXTURES / case)
        _loaded[case] = (
            encoder,
            report,
            np.load(FIXTURES / case.replace("-tf-h5", "") / "reference.npz"),
        )
    return _loaded[case]


def _inputs(encoder, reference, batch):
    return {
        name: reference[f"{batch}_{name}"]
        for name in encoder.input_names
        if f"{batch}_{name}" in reference
    }


@pytest.mark.parametrize("case", CASES + ("deberta-v3-tf-h5", "deberta-v2-tf-h5"))
def test_matches_pytorch_at_every_position(case):
    encoder, _, reference = _load(case)
    for batch in BATCHES:
        outputs = encoder(_inputs(encoder, reference, batch), output_hidden_states=True)
        # Padded positions too: they follow the reference's uniform softmax over fully masked rows.
        np.testing.assert_allclose(
            outputs["last_hidden_state"].numpy(),
            reference[f"{batch}_last_hidden_state"],
            rtol=0,
            atol=TOLERANCE,
            err_msg=f"{case} {batch}",
        )
        states = np.stack([state.numpy() for state in outputs["hidden_states"]])
        np.testing.assert_allclose(
            states, reference[f"{batch}_hidden_states"], rtol=0, atol=TOLERANCE
        )


def test_fixtures_reach_beyond_the_relative_span():
    # The long batches must exercise the log buckets (v3) and the clamp (v2), or parity
    # proves little.
    v3, v2 = (read_config_json(FIXTURES / case / "config.json") for case in CASES)
    long_v3 = _load("deberta-v3")[2]["long_input_ids"].shape[1]
    long_v2 = _load("deberta-v2")[2]["long_input_ids"].shape[1]
    assert long_v3 - 1 > v3["position_buckets"] // 2 and long_v2 - 1 > v2["max_relative_positions"]
    assert (
        _load("deberta-v2")[0].conv is not None
        and _load("deberta-v3")[0].rel_layer_norm is not None
    )


@pytest.mark.parametrize("case", CASES)
def test_every_variable_comes_from_the_checkpoint(case):
    encoder, report, _ = _load(case)
    tensors = load_file(str(FIXTURES / case / "model.safetensors"))
    assert report.loaded == len(encoder.weights) == len(tensors)
    assert not report.not_in_encoder and not report.ignored
    for variable, name, layout in deberta_v2.weight_map(encoder):
        expected = tensors[name].T if layout == "linear" else tensors[name]
        if layout == "conv1d":
            expected = np.transpose(tensors[name], (2, 1, 0))
        np.testing.assert_array_equal(variable.numpy(), expected, err_msg=name)


def test_unused_absolute_position_table_is_reported_not_loaded(tmp_path):
    # DeBERTa-v3 checkpoints may hold embeddings.position_embeddings although
    # position_biased_input is false.
    tensors = load_file(str(FIXTURES / "deberta-v3" / "model.safetensors"))
    tensors["deberta.embeddings.position_embeddings.weight"] = np.zeros([64, 32], np.float32)
    tensors = {
        ("deberta." + k if not k.startswith("deberta.") else k): v for k, v in tensors.items()
    }
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((FIXTURES / "deberta-v3" / "config.json").read_text())
    _, report = load_encoder(tmp_path)
    assert report.not_in_encoder == ("deberta.embeddings.position_embeddings.weight",)


def test_wrong_config_names_the_missing_tensors(tmp_path):
    config = read_config_json(FIXTURES / "deberta-v3" / "config.json")
    config["share_att_key"] = False  # now expects pos_key_proj / pos_query_proj
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(
        (FIXTURES / "deberta-v3" / "model.safetensors").read_bytes()
    )
    with pytest.raises(
        BackboneError, match=r"missing tensors \(encoder\.layer\.0\.attention\.self\.pos_key_proj"
    ):
        load_encoder(tmp_path)


def _config(**overrides):
    return {**read_config_json(FIXTURES / "deberta-v3" / "config.json"), **overrides}


def test_seeded_init_is_reproducible():
    first, second = build_encoder(_config(), seed=7), build_encoder(_config(), seed=7)
    other = build_encoder(_config(), seed=8)
    for a, b, c in zip(first.weights, second.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
        if "kernel" in a.name or "embeddings:" in a.name:
            assert not np.array_equal(a.numpy(), c.numpy()), a.name
    # Every variable has its own seed: no two kernels start equal.
    attention = first.blocks[0].attention
    assert not np.array_equal(
        attention.query_dense.kernel.numpy(), attention.key_dense.kernel.numpy()
    )


def test_variable_names_keep_the_depth_group_scopes():
    encoder = build_encoder(_config(conv_kernel_size=3, conv_act="gelu"), seed=0)
    names = [variable.name for variable in encoder.weights]
    assert "deberta/encoder/rel_embeddings/embeddings:0" in names
    assert "deberta/encoder/LayerNorm/gamma:0" in names
    assert "deberta/encoder/conv/conv/kernel:0" in names
    assert "deberta/encoder/layer_._1/attention/query_proj/kernel:0" in names
    assert len(set(names)) == len(names)


def test_dynamic_shapes_under_tf_function_trace_once():
    encoder, _, reference = _load("deberta-v2")
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in encoder.input_names}
    forward = tf.function(lambda inputs: encoder(inputs), input_signature=[spec])
    for batch in BATCHES:
        inputs = {
            name: tf.constant(value, tf.int32)
            for name, value in _inputs(encoder, reference, batch).items()
        }
        np.testing.assert_allclose(
            forward(inputs).numpy(), reference[f"{batch}_last_hidden_state"], rtol=0, atol=TOLERANCE
        )
    assert forward.experimental_get_tracing_count() == 1


def test_compiles_with_xla():
    # The relative-table slice has data-dependent bounds; XLA must still resolve them per shape.
    encoder, _, reference = _load("deberta-v3")
    forward = tf.function(lambda inputs: encoder(inputs), jit_compile=True)
    for batch in ("padded", "long"):
        inputs = {
            name: tf.constant(value, tf.int32)
            for name, value in _inputs(encoder, reference, batch).items()
        }
        np.testing.assert_allclose(
            forward(inputs).numpy(), reference[f"{batch}_last_hidden_state"], rtol=0, atol=TOLERANCE
        )


def test_gradients_reach_every_variable_in_training():
    encoder, _, reference = _load("deberta-v2")
    inputs = _inputs(encoder, reference, "padded")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(encoder(inputs, training=True)))
    gradients = tape.gradient(loss, encoder.trainable_variables)
    assert len(encoder.trainable_variables) == len(encoder.weights)
    assert all(g is not None for g in gradients)


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("case", CASES)
def test_mixed_bfloat16_stays_close_to_float32(case, mixed_bfloat16):
    encoder, _ = load_encoder(FIXTURES / case)
    reference = np.load(FIXTURES / case / "reference.npz")
    assert encoder.blocks[0].attention.query_dense.kernel.dtype == tf.float32
    outputs = encoder(_inputs(encoder, reference, "long"))
    assert outputs.dtype == tf.bfloat16
    error = np.abs(tf.cast(outputs, tf.float32).numpy() - reference["long_last_hidden_state"])
    # bfloat16 keeps 8 bits of mantissa: outputs of scale ~0.8 were off by at most 0.04
    # (mean 0.007).
    assert np.isfinite(error).all() and error.max() < 0.1 and error.mean() < 0.015


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_h5_save_and_reload_of_a_functional_model(tmp_path):
    encoder, _, reference = _load("deberta-v2")
    inputs = {
        name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in encoder.input_names
    }
    model = keras.Model(inputs, encoder(inputs))
    batch = _inputs(encoder, reference, "padded")
    model.save(tmp_path / "model.h5")
    reloaded = keras.models.load_model(tmp_path / "model.h5")
    assert isinstance(reloaded.get_layer("deberta"), deberta_v2.DebertaV2Encoder)
    np.testing.assert_array_equal(reloaded(batch).numpy(), model(batch).numpy())


@pytest.mark.parametrize("case", CASES)
def test_get_config_round_trip(case):
    encoder = _load(case)[0]
    config = encoder.get_config()
    clone = deberta_v2.DebertaV2Encoder.from_config(config)
    assert clone.get_config() == config
    shallower = deberta_v2.DebertaV2Encoder.from_config({**config, "num_layers": 1})
    assert len(shallower.blocks) == 1


def test_save_checkpoint_round_trip(tmp_path):
    encoder, _, reference = _load("deberta-v2")
    config = parse_config(FIXTURES / "deberta-v2" / "config.json")
    save_checkpoint(encoder, config, tmp_path)
    reloaded, report = load_encoder(tmp_path)
    assert report.loaded == len(encoder.weights)
    batch = _inputs(encoder, reference, "single")
    np.testing.assert_array_equal(reloaded(batch).numpy(), encoder(batch).numpy())


def test_config_reads_the_older_string_forms():
    config = parse_config(_config(pos_att_type="p2c|c2p", norm_rel_ebd="layer_norm"))
    assert isinstance(config, DebertaV2Config)
    assert config.pos_att_type == ("p2c", "c2p") and config.embedding_size == config.hidden_size


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("pos_att_type", ["c2p", "p2p"], "`pos_att_type` must be a list"),
        ("norm_rel_ebd", "batch_norm", "`norm_rel_ebd` must be"),
        (
            "attention_head_size",
            8,
            "`attention_head_size` must be hidden_size / num_attention_heads = 16",
        ),
        (
            "max_relative_positions",
            9,
            "`max_relative_positions` must be above position_buckets / 2 \\+ 1 = 9",
        ),
        ("num_attention_heads", 3, "`num_attention_heads` must be a divisor of hidden_size=32"),
        (
            "conv_kernel_size",
            4,
            "`conv_kernel_size` must be 0 \\(no convolution\\) or an odd integer",
        ),
    ],
)
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(BackboneError, match="my/config.json: field " + message):
        parse_config(_config(**{field: value}), source="my/config.json")


def test_no_pooler():
    with pytest.raises(ConfigError, match="has no pooler"):
        build_encoder(_config(), use_pooler=True)


def test_log_buckets_keep_short_distances_and_compress_long_ones():
    distances = tf.range(-600, 601)
    buckets = make_log_bucket_position(distances, 256, 512).numpy()
    assert (buckets[600 - 128 : 600 + 129] == np.arange(-128, 129)).all()  # |d| <= 128 kept
    assert (
        buckets[600 + 511] == 255 and buckets[600 - 511] == -255
    )  # max_position - 1 -> bucket_size - 1
    assert (np.diff(buckets) >= 0).all()
    relative = build_relative_position(3, 3).numpy()
    assert relative.tolist() == [[0, -1, -2], [1, 0, -1], [2, 1, 0]]
