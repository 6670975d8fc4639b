"""Our encoders against transformers v5 PyTorch outputs (tests/fixtures/encoders/README.md).

Every tiny case is loaded from its model.safetensors and from the 4.x TF
tf_model.h5 copy, and compared on three batches (padded, long, single).
Compared: positions where attention_mask is 1, as the fixtures' README
asks (what an encoder puts at padded positions is not part of the
contract). Our BERT-style encoders also match at padded positions (the
additive float32.min mask leaves padded query rows attending to the real
keys, exactly as HF), which `test_padded_rows_match_too` pins down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.backbones.encoder import load_encoder
from kerastune_nlp.models.backbones import KNOWN_BACKBONES, resolve_backbone

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encoders"
CASES = ["bert", "bert-gelu-new", "distilbert", "roberta", "xlm-roberta", "electra"]
BATCHES = ("padded", "long", "single")
TOLERANCE = 1e-5
_cache = {}


def _encoder(folder: str, use_pooler: bool = False):
    key = (folder, use_pooler)
    if key not in _cache:
        _cache[key] = load_encoder(FIXTURES / folder, use_pooler=use_pooler)[0]
    return _cache[key]


def _batch(reference, name: str) -> dict:
    return {
        key: reference[f"{name}_{key}"]
        for key in ("input_ids", "attention_mask", "token_type_ids")
        if f"{name}_{key}" in reference.files
    }


@pytest.mark.parametrize("weights", ["safetensors", "tf-h5"])
@pytest.mark.parametrize("case", CASES)
def test_last_and_all_hidden_states_match_pytorch(case, weights):
    reference = np.load(FIXTURES / case / "reference.npz")
    encoder = _encoder(case if weights == "safetensors" else f"{case}-tf-h5")
    for name in BATCHES:
        outputs = encoder(_batch(reference, name), output_hidden_states=True)
        valid = reference[f"{name}_attention_mask"].astype(bool)
        last = np.abs(outputs["last_hidden_state"].numpy() - reference[f"{name}_last_hidden_state"])
        assert last[valid].max() <= TOLERANCE, (name, float(last[valid].max()))
        states = np.stack([s.numpy() for s in outputs["hidden_states"]])
        every = np.abs(states - reference[f"{name}_hidden_states"])
        assert every[:, valid].max() <= TOLERANCE, (name, float(every[:, valid].max()))


@pytest.mark.parametrize("case", ["bert", "roberta", "distilbert"])
def test_padded_rows_match_too(case):
    reference = np.load(FIXTURES / case / "reference.npz")
    outputs = _encoder(case)(_batch(reference, "padded")).numpy()
    assert np.abs(outputs - reference["padded_last_hidden_state"]).max() <= TOLERANCE


@pytest.mark.parametrize("case", ["bert", "roberta", "xlm-roberta"])
def test_pooler_matches_pytorch(case):
    reference = np.load(FIXTURES / case / "reference.npz")
    encoder = _encoder(case, use_pooler=True)
    for name in BATCHES:
        pooled = encoder(_batch(reference, name), output_hidden_states=True)[
            "pooled_output"
        ].numpy()
        assert np.abs(pooled - reference[f"{name}_pooler_output"]).max() <= TOLERANCE


def test_sharded_checkpoint_matches_pytorch():
    reference = np.load(FIXTURES / "bert" / "reference.npz")
    outputs = _encoder("bert-sharded")(_batch(reference, "long")).numpy()
    assert np.abs(outputs - reference["long_last_hidden_state"]).max() <= TOLERANCE


def test_bundled_minilm_matches_pytorch():
    folder = bundled_minilm_folder()
    reference = np.load(FIXTURES / "minilm_reference.npz")
    encoder, _ = load_encoder(folder, use_pooler=True)
    inputs = {key: reference[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    outputs = encoder(inputs, output_hidden_states=True)
    valid = reference["attention_mask"].astype(bool)
    last = np.abs(outputs["last_hidden_state"].numpy() - reference["last_hidden_state"])
    assert last[valid].max() <= 1e-4
    assert np.abs(outputs["pooled_output"].numpy() - reference["pooler_output"]).max() <= 1e-4


def bundled_minilm_folder() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (installed by `make test`; a clear error if missing)."""
    return resolve_backbone(next(iter(KNOWN_BACKBONES))).directory
