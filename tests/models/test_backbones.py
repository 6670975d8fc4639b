"""Backbone resolution: bundled, local folders of three families, hub, and every refusal."""

import shutil
from pathlib import Path

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

FIXTURES = Path(__file__).parents[1] / "fixtures" / "encoders"


def test_bundled_backbone_resolves_offline():
    resolved = backbones.resolve_backbone("all-minilm-l6-v2")
    assert resolved.weights_format == "pt-safetensors"
    config = backbones.load_config(resolved)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 6)
    assert backbones.max_sequence_length(config) == 512


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta"])
def test_local_folders_of_each_family_resolve_and_load(tiny_backbones, family):
    resolved = backbones.resolve_backbone(str(tiny_backbones[family]))
    assert resolved.weights_format == "pt-safetensors"
    model = backbones.load_pretrained_backbone(resolved)
    tokenizer = backbones.load_tokenizer(resolved.directory)
    inputs = tokenizer(["New", "York"], is_split_into_words=True, return_tensors="np")
    hidden = model(dict(inputs))
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
    (folder / "model.safetensors").unlink()
    with pytest.raises(BackboneError, match=r"has no weights.*Found: \['config.json'"):
        backbones.resolve_backbone(str(folder))


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(BackboneError, match="has no config.json"):
        backbones.resolve_backbone(str(tmp_path))


def test_pickle_checkpoint_refused_unless_opted_in(tmp_path):
    folder = Path(shutil.copytree(FIXTURES / "bert-pickle", tmp_path / "pickled"))
    with pytest.raises(UnsafeCheckpointError, match=r"pickle.*allow_pickle=True"):
        backbones.resolve_backbone(str(folder))
    resolved = backbones.resolve_backbone(str(folder), allow_pickle=True)
    assert resolved.weights_format == "pt-pickle"
    # Opted in, the restricted unpickler reads the tensors: the same encoder as the safetensors copy.
    from_pickle = backbones.load_pretrained_backbone(resolved)
    from_safetensors = backbones.load_pretrained_backbone(backbones.resolve_backbone(str(FIXTURES / "bert")))
    ids = np.array([[2, 17, 40, 3]], dtype="int32")
    features = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    np.testing.assert_array_equal(from_pickle(features).numpy(), from_safetensors(features).numpy())


def test_pickle_that_is_not_a_torch_archive_is_named(tiny_bert, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    resolved = backbones.resolve_backbone(str(folder), allow_pickle=True)
    with pytest.raises(BackboneError, match=r"pytorch_model\.bin'.*not a torch.save zip archive"):
        backbones.load_pretrained_backbone(resolved)


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
    batch = tokenizer(sentences, padding=True, return_tensors="np")
    hidden = model(dict(batch)).numpy()
    mask = batch["attention_mask"][..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    paraphrase, unrelated = pooled[0] @ pooled[1], pooled[0] @ pooled[2]
    assert paraphrase > 0.6 and unrelated < 0.3, (paraphrase, unrelated)


# Broken weight files: a clear BackboneError naming the file and the fix, not a raw traceback.
_BROKEN = {
    "truncated": lambda data: data[: len(data) // 2],
    "random": lambda data: np.random.default_rng(0).integers(0, 256, size=4096, dtype=np.uint8).tobytes(),
}


def _copy_with_h5(tiny_bert, folder):
    """The tiny backbone's folder with a (valid, small) tf_model.h5 instead of model.safetensors."""
    import h5py

    shutil.copytree(tiny_bert, folder)
    (folder / "model.safetensors").unlink()
    with h5py.File(folder / "tf_model.h5", "w") as handle:
        handle.create_dataset("tf_bert_model/bert/embeddings/word_embeddings/weight:0",
                              data=np.zeros((64, 32), np.float32))
    return folder / "tf_model.h5"


def _copy_with_safetensors(tiny_bert, folder):
    from safetensors.numpy import save_file

    shutil.copytree(tiny_bert, folder)
    (folder / "model.safetensors").unlink()
    save_file({"weight": np.zeros((64, 32), np.float32)}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder / "model.safetensors"


@pytest.mark.parametrize("damage", sorted(_BROKEN))
def test_broken_safetensors_file_is_named_with_the_fix(tiny_bert, tmp_path, damage):
    weights = _copy_with_safetensors(tiny_bert, tmp_path / "model")
    weights.write_bytes(_BROKEN[damage](weights.read_bytes()))
    with pytest.raises(BackboneError, match=r"model\.safetensors'.*truncated or not a safetensors file"
                                            r".*Re-download it.*save_pretrained"):
        backbones.resolve_backbone(str(tmp_path / "model"))


@pytest.mark.parametrize("damage", sorted(_BROKEN))
def test_broken_h5_file_is_named_with_the_fix(tiny_bert, tmp_path, damage):
    folder = tmp_path / "model"
    weights = _copy_with_h5(tiny_bert, folder)
    weights.write_bytes(_BROKEN[damage](weights.read_bytes()))
    with pytest.raises(BackboneError, match=r"tf_model\.h5'.*truncated or not an HDF5 file"
                                            r".*Re-download it.*save_pretrained"):
        backbones.resolve_backbone(str(folder))


@pytest.mark.parametrize("file_name", ["tf_model.h5", "model.safetensors"])
def test_file_damaged_after_resolving_fails_clearly_at_load(tiny_bert, tmp_path, file_name):
    folder = tmp_path / "model"
    if file_name == "tf_model.h5":
        _copy_with_h5(tiny_bert, folder)
    else:
        shutil.copytree(tiny_bert, folder)
    resolved = backbones.resolve_backbone(str(folder))
    weights = folder / file_name
    weights.write_bytes(_BROKEN["truncated"](weights.read_bytes()))
    with pytest.raises(BackboneError, match=rf"{file_name.replace('.', '[.]')}'.*truncated.*Re-download it"):
        backbones.load_pretrained_backbone(resolved)


def test_git_lfs_pointer_instead_of_weights_says_git_lfs_pull(tiny_bert, tmp_path):
    weights = _copy_with_safetensors(tiny_bert, tmp_path / "model")
    weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 90868376\n")
    with pytest.raises(BackboneError, match=r"model\.safetensors'.*Git LFS pointer.*git lfs pull"):
        backbones.resolve_backbone(str(tmp_path / "model"))


def test_broken_shard_index_is_named(tiny_bert, tmp_path):
    weights = _copy_with_safetensors(tiny_bert, tmp_path / "model")
    weights.rename(weights.with_name("model-00001-of-00002.safetensors"))
    (tmp_path / "model" / "model.safetensors.index.json").write_text('{"weight_map": ')
    with pytest.raises(BackboneError, match=r"shard index .*model\.safetensors\.index\.json'.*weight_map"):
        backbones.resolve_backbone(str(tmp_path / "model"))


def test_missing_shard_is_named(tiny_bert, tmp_path):
    weights = _copy_with_safetensors(tiny_bert, tmp_path / "model")
    weights.unlink()
    (tmp_path / "model" / "model.safetensors.index.json").write_text(
        '{"weight_map": {"weight": "model-00001-of-00002.safetensors"}}'
    )
    with pytest.raises(BackboneError, match=r"model-00001-of-00002\.safetensors'.*is missing"):
        backbones.resolve_backbone(str(tmp_path / "model"))


def test_an_architecture_we_do_not_implement_is_refused_naming_those_we_do(tiny_bert, tmp_path):
    import json

    from kerastune_nlp.backbones.registry import implemented_model_types

    folder = tmp_path / "gpt2"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    resolved = backbones.resolve_backbone(str(folder))
    expected = r"`model_type` 'gpt2' has no encoder in kerastune_nlp\. Expected one of \[.*'bert'.*'deberta-v2'"
    with pytest.raises(BackboneError, match=expected):
        backbones.load_config(resolved)
    with pytest.raises(BackboneError, match=expected):
        backbones.load_pretrained_backbone(resolved)
    assert {"bert", "distilbert", "roberta", "xlm-roberta", "electra", "deberta-v2"} <= set(implemented_model_types())


def test_loading_a_tokenizer_prints_no_advice_about_pytorch():
    # transformers 5 advises at import that PyTorch is missing; the package never needs PyTorch.
    import os
    import subprocess
    import sys

    code = ("from kerastune_nlp.models.backbones import load_tokenizer, resolve_backbone; "
            "print(len(load_tokenizer(resolve_backbone('all-minilm-l6-v2').directory)))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSFORMERS_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "30522"
    assert "PyTorch" not in done.stderr, done.stderr
