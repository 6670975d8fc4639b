"""Backbone resolution: bundled, local folders of three families, hub, and every refusal."""

import shutil

import numpy as np
import pytest

from kerastune_nlp.config import DataConfig
from kerastune_nlp.errors import (
    BackboneError,
    ConfigError,
    HubUnavailableError,
    UnsafeCheckpointError,
)
from kerastune_nlp.models import backbones


def test_bundled_backbone_resolves_offline():
    resolved = backbones.resolve_backbone("all-minilm-l6-v2")
    assert resolved.weights_format == "pt-safetensors"
    config = backbones.load_config(resolved)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 6)
    assert backbones.max_sequence_length(config) == 512


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta"])
def test_local_folders_of_each_family_resolve_and_load(tiny_backbones, family):
    resolved = backbones.resolve_backbone(str(tiny_backbones[family]))
    assert resolved.weights_format == "tf-h5"
    model = backbones.load_pretrained_backbone(resolved)
    tokenizer = backbones.load_tokenizer(resolved.directory)
    inputs = tokenizer(["New", "York"], is_split_into_words=True, return_tensors="tf")
    hidden = model(dict(inputs)).last_hidden_state
    assert hidden.shape[-1] == 32
    if family == "distilbert":
        assert "token_type_ids" not in tokenizer.model_input_names


def test_unknown_short_name_lists_known_backbones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubUnavailableError, match=r"all-minilm-l6-v2"):
        backbones.resolve_backbone("no-such-backbone")


def test_hub_id_offline_says_to_use_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubUnavailableError, match=r"Could not download the backbone 'bert-base-cased'.*local directory"):
        backbones.resolve_backbone("bert-base-cased")


def test_missing_local_path_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "model"
    with pytest.raises(BackboneError, match=r"directory not found.*nowhere"):
        backbones.resolve_backbone(str(missing))


def test_folder_without_weights_lists_what_it_found(tiny_bert, tmp_path):
    folder = tmp_path / "no_weights"
    shutil.copytree(tiny_bert, folder)
    (folder / "tf_model.h5").unlink()
    with pytest.raises(BackboneError, match=r"has no weights.*Found: \['config.json'"):
        backbones.resolve_backbone(str(folder))


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(BackboneError, match="has no config.json"):
        backbones.resolve_backbone(str(tmp_path))


def test_pickle_checkpoint_refused_unless_opted_in(tiny_bert, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert, folder)
    (folder / "tf_model.h5").rename(folder / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match=r"pickle.*allow_pickle=True"):
        backbones.resolve_backbone(str(folder))
    assert backbones.resolve_backbone(str(folder), allow_pickle=True).weights_format == "pt-pickle"


def test_max_length_above_position_limit_is_refused(tiny_backbones):
    for family, limit in (("bert", 64), ("roberta", 64)):
        config = backbones.load_config(backbones.resolve_backbone(str(tiny_backbones[family])))
        backbones.check_max_length(limit, config, family)
        with pytest.raises(ConfigError, match=rf"has {limit} positions.*`max_length`={limit + 1}"):
            backbones.check_max_length(limit + 1, config, family)


def test_data_config_rejects_tiny_max_length():
    with pytest.raises(ConfigError, match="`max_length`=4"):
        DataConfig(max_length=4)


def test_real_bundled_weights_load_and_embed_meaningfully():
    """Mean-pooled embeddings of the real weights rank a paraphrase above an unrelated sentence."""
    resolved = backbones.resolve_backbone("all-minilm-l6-v2")
    model = backbones.load_pretrained_backbone(resolved)
    tokenizer = backbones.load_tokenizer(resolved.directory)
    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
    ]
    batch = tokenizer(sentences, padding=True, return_tensors="tf")
    hidden = model(dict(batch)).last_hidden_state.numpy()
    mask = batch["attention_mask"].numpy()[..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    paraphrase, unrelated = pooled[0] @ pooled[1], pooled[0] @ pooled[2]
    assert paraphrase > 0.6 and unrelated < 0.3, (paraphrase, unrelated)
