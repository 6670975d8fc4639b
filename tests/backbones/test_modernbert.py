"""ModernBERT encoder: PyTorch parity, tokenizer, loading and saving, config forms, graph round trips.

The references are tests/fixtures/encoders/modernbert (as released: no
biases, exact GELU, layer_types full/sliding/sliding/full, window 8, with a
byte-level BPE tokenizer.json) and modernbert-biases (every bias, tanh
GELU, layer 0 sliding, window 6, rope_parameters), written by
benchmarks/encoder_reference.py with ModernBertModel (PyTorch, eager
attention). Rows are up to 60 tokens long: far past the sliding window.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones import modernbert
from kerastune_nlp.backbones.encoder import save_checkpoint
from kerastune_nlp.backbones.config import parse_config, read_config_json
from kerastune_nlp.backbones.encoder import build_encoder, load_encoder
from kerastune_nlp.backbones.modernbert_config import ModernBertConfig
from kerastune_nlp.errors import BackboneError, ConfigError
from kerastune_nlp.models import backbones

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
CASES = ("modernbert", "modernbert-biases")
# float32 against float32 PyTorch: observed max 7.3e-6 over every hidden state (4 layers).
TOLERANCE = 1e-5
_loaded = {}


def _load(case):
    if case not in _loaded:
        encoder, report = load_encoder(FIXTURES / case)
        _loaded[case] = (encoder, report, np.load(FIXTURES / case / "reference.npz"))
    return _loaded[case]


def _batches(reference) -> list:
    return sorted({key.split("_", 1)[0] for key in reference.files})


def _inputs(reference, batch):
    return {name: reference[f"{batch}_{name}"] for name in ("input_ids", "attention_mask")}


@pytest.mark.parametrize("case", CASES)
def test_matches_pytorch(case):
    encoder, _, reference = _load(case)
    assert {"padded", "long", "single"} <= set(_batches(reference))
    for batch in _batches(reference):
        outputs = encoder(_inputs(reference, batch), output_hidden_states=True)
        valid = reference[f"{batch}_attention_mask"].astype(bool)
        last = np.abs(outputs["last_hidden_state"].numpy() - reference[f"{batch}_last_hidden_state"])
        assert last[valid].max() <= TOLERANCE, (batch, float(last[valid].max()))
        states = np.stack([state.numpy() for state in outputs["hidden_states"]])
        assert states.shape[0] == len(encoder.blocks) + 1
        every = np.abs(states - reference[f"{batch}_hidden_states"])
        assert every[:, valid].max() <= TOLERANCE, (batch, float(every[:, valid].max()))
        # Padded query rows too: they attend as the reference's do.
        assert last.max() <= TOLERANCE, batch


def test_fixtures_reach_past_the_window_with_both_kinds_of_layer():
    for case in CASES:
        encoder, _, reference = _load(case)
        assert set(encoder.layer_types) == {"full_attention", "sliding_attention"}
        assert reference["long_input_ids"].shape[1] > 4 * encoder.local_attention
        lengths = reference["padded_attention_mask"].sum(axis=1)
        assert len(set(lengths)) == len(lengths) and lengths.max() > encoder.local_attention
    assert _load("modernbert-biases")[0].layer_types[0] == "sliding_attention"


def test_tokenizer_loads_offline_and_gives_the_reference_ids():
    import transformers

    reference = _load("modernbert")[2]
    # As saved (the reference's ids). `backbones.load_tokenizer` adds a prefix space,
    # as for RoBERTa: see the next test.
    tokenizer = transformers.AutoTokenizer.from_pretrained(FIXTURES / "modernbert")
    sentences = [
        "Barack Obama visited Paris.",
        "Müller ate crème brûlée in Zürich, then flew to New York City.",
        "Hello world!",
    ]
    encoded = tokenizer(sentences, padding="longest", return_tensors="np")
    np.testing.assert_array_equal(encoded["input_ids"], reference["tokenized_input_ids"])
    np.testing.assert_array_equal(encoded["attention_mask"], reference["tokenized_attention_mask"])
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id) == (1, 2, 3)
    backbones.check_tokenizer_fits(tokenizer, _load("modernbert")[0].vocab_size, FIXTURES / "modernbert")


@pytest.mark.parametrize("case", CASES)
def test_every_variable_comes_from_the_checkpoint(case):
    encoder, report, _ = _load(case)
    tensors = load_file(str(FIXTURES / case / "model.safetensors"))
    assert report.loaded == len(encoder.weights)
    assert {name for _, name, _ in modernbert.weight_map(encoder)} == set(tensors)
    for block, index in zip(encoder.blocks, range(len(encoder.blocks))):
        rows = tensors[f"layers.{index}.attn.Wqkv.weight"]
        kernels = [block.attention.query_dense, block.attention.key_dense, block.attention.value_dense]
        np.testing.assert_array_equal(np.concatenate([d.kernel.numpy().T for d in kernels]), rows)
    assert encoder.blocks[0].attention_layer_norm is None  # Identity in the reference
    has_bias = case == "modernbert-biases"
    assert any(name.endswith(".bias") for name in tensors) == has_bias
    assert any(w.name.endswith(("/bias:0", "/beta:0")) for w in encoder.weights) == has_bias


@pytest.mark.parametrize("case", CASES)
def test_save_checkpoint_writes_the_reference_tensors_and_config(case, tmp_path):
    encoder, _, reference = _load(case)
    config = parse_config(FIXTURES / case / "config.json")
    save_checkpoint(encoder, config, tmp_path)
    original = load_file(str(FIXTURES / case / "model.safetensors"))
    written = load_file(str(tmp_path / "model.safetensors"))
    assert sorted(written) == sorted(original)
    for name, value in original.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    assert parse_config(tmp_path / "config.json") == config
    saved = read_config_json(tmp_path / "config.json")
    assert saved["rope_parameters"]["full_attention"]["rope_theta"] == config.global_rope_theta
    reloaded, _ = load_encoder(tmp_path)
    batch = _inputs(reference, "padded")
    np.testing.assert_array_equal(reloaded(batch).numpy(), encoder(batch).numpy())


def test_older_config_fields_read_as_v5_ones():
    v5 = read_config_json(FIXTURES / "modernbert" / "config.json")
    old = {k: v for k, v in v5.items() if k not in ("layer_types", "rope_parameters")}
    old.update(global_attn_every_n_layers=3, global_rope_theta=160000.0, local_rope_theta=10000.0)
    assert parse_config(old) == parse_config(v5)
    config = parse_config(v5)
    assert config.layer_types == ("full_attention", "sliding_attention", "sliding_attention", "full_attention")
    assert config.with_num_layers(2).layer_types == config.layer_types[:2]
    assert config.to_dict()["global_attn_every_n_layers"] == 3


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rope_parameters": {"full_attention": {"rope_type": "yarn", "rope_theta": 1.0}}},
         '`rope_parameters` must be a dict whose "full_attention" entry has rope_type "default"'),
        ({"layer_types": ["full_attention"]}, "`layer_types` must be a list of 4"),
        ({"num_attention_heads": 32}, "`num_attention_heads` must be such that hidden_size / num_attention_heads is even"),
        ({"num_attention_heads": 3}, "`num_attention_heads` must be a divisor of hidden_size=32"),
        ({"pad_token_id": 999}, "`pad_token_id` must be below vocab_size"),
    ],
)
def test_config_errors_name_the_field(change, message):
    data = {**read_config_json(FIXTURES / "modernbert" / "config.json"), **change}
    with pytest.raises(BackboneError, match="my/config.json: field " + message):
        parse_config(data, source="my/config.json")


def test_wrong_config_names_the_missing_tensors(tmp_path):
    config = read_config_json(FIXTURES / "modernbert" / "config.json")
    (tmp_path / "config.json").write_text(json.dumps({**config, "mlp_bias": True}))
    (tmp_path / "model.safetensors").write_bytes((FIXTURES / "modernbert" / "model.safetensors").read_bytes())
    with pytest.raises(BackboneError, match=r"missing tensors \(layers\.0\.mlp\.Wi\.bias"):
        load_encoder(tmp_path)


def test_task_checkpoint_heads_are_reported_not_loaded(tmp_path):
    tensors = load_file(str(FIXTURES / "modernbert" / "model.safetensors"))
    tensors = {f"model.{name}": value for name, value in tensors.items()}
    tensors["head.dense.weight"] = np.zeros([32, 32], np.float32)
    tensors["head.norm.weight"] = np.ones([32], np.float32)
    tensors["classifier.weight"] = np.zeros([5, 32], np.float32)
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((FIXTURES / "modernbert" / "config.json").read_text())
    _, report = load_encoder(tmp_path)
    assert report.not_in_encoder == ("classifier.weight", "head.dense.weight", "head.norm.weight")


def test_seeded_build_and_names():
    config = read_config_json(FIXTURES / "modernbert-biases" / "config.json")
    first, second = build_encoder(config, seed=7), build_encoder(config, seed=7)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    names = [w.name for w in first.weights]
    assert len(set(names)) == len(names)
    assert "modernbert/embeddings/tok_embeddings/embeddings:0" in names
    assert "modernbert/encoder/layer_._1/attention/query/kernel:0" in names
    assert "modernbert/encoder/layer_._1/attn_norm/beta:0" in names
    assert "modernbert/final_norm/gamma:0" in names
    attention = first.blocks[0].attention
    assert not np.array_equal(attention.query_dense.kernel.numpy(), attention.key_dense.kernel.numpy())


def test_dynamic_shapes_under_tf_function_trace_once():
    encoder, _, reference = _load("modernbert")
    spec = {name: tf.TensorSpec([None, None], tf.int32) for name in encoder.input_names}
    forward = tf.function(lambda inputs: encoder(inputs), input_signature=[spec])
    for batch in ("padded", "long", "single"):
        inputs = {k: tf.constant(v, tf.int32) for k, v in _inputs(reference, batch).items()}
        valid = reference[f"{batch}_attention_mask"].astype(bool)
        error = np.abs(forward(inputs).numpy() - reference[f"{batch}_last_hidden_state"])
        assert error[valid].max() <= TOLERANCE
    assert forward.experimental_get_tracing_count() == 1


def test_compiles_with_xla():
    encoder, _, reference = _load("modernbert-biases")
    forward = tf.function(lambda inputs: encoder(inputs), jit_compile=True)
    inputs = {k: tf.constant(v, tf.int32) for k, v in _inputs(reference, "padded").items()}
    valid = reference["padded_attention_mask"].astype(bool)
    error = np.abs(forward(inputs).numpy() - reference["padded_last_hidden_state"])
    assert error[valid].max() <= TOLERANCE


def test_gradients_reach_every_variable_in_training():
    encoder, _, reference = _load("modernbert-biases")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(encoder(_inputs(reference, "padded"), training=True)))
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


def test_mixed_bfloat16_stays_close_to_float32(mixed_bfloat16):
    encoder, _ = load_encoder(FIXTURES / "modernbert")
    reference = np.load(FIXTURES / "modernbert" / "reference.npz")
    outputs = encoder(_inputs(reference, "long"))
    assert outputs.dtype == tf.bfloat16
    error = np.abs(tf.cast(outputs, tf.float32).numpy() - reference["long_last_hidden_state"])
    assert np.isfinite(error).all() and error.max() < 0.15 and error.mean() < 0.02


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_get_config_and_h5_round_trip(tmp_path):
    encoder, _, reference = _load("modernbert")
    config = encoder.get_config()
    assert modernbert.ModernBertEncoder.from_config(config).get_config() == config
    shallower = modernbert.ModernBertEncoder.from_config({**config, "num_layers": 2})
    assert [b.layer_type for b in shallower.blocks] == encoder.layer_types[:2]
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in encoder.input_names}
    model = keras.Model(inputs, encoder(inputs))
    model.save(tmp_path / "model.h5")
    reloaded = keras.models.load_model(tmp_path / "model.h5")
    assert isinstance(reloaded.get_layer("modernbert"), modernbert.ModernBertEncoder)
    batch = _inputs(reference, "padded")
    np.testing.assert_array_equal(reloaded(batch).numpy(), model(batch).numpy())


def test_no_pooler_and_no_token_types():
    config = read_config_json(FIXTURES / "modernbert" / "config.json")
    with pytest.raises(ConfigError, match="has no pooler"):
        build_encoder(config, use_pooler=True)
    encoder = _load("modernbert")[0]
    assert encoder.input_names == ("input_ids", "attention_mask")
    assert isinstance(parse_config(config), ModernBertConfig)


def test_pre_split_words_get_the_mid_sentence_space_mark():
    # The byte-level tokenizer marks a word after a space with "Ġ"; pre-split words
    # (NER) must be tokenized as in running text, as for RoBERTa.
    tokenizer = backbones.load_tokenizer(FIXTURES / "modernbert")
    words = tokenizer(["Barack", "in", "Paris"], is_split_into_words=True)
    tokens = tokenizer.convert_ids_to_tokens(words["input_ids"])
    starts = [tokens[words.word_ids().index(index)] for index in range(3)]
    assert all(token.startswith("Ġ") for token in starts), tokens
