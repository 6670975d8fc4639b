"""A wrong backbone through `kerastune-nlp train`, as a user meets it: the message names the file
and the fix, the exit code is 2, and no run directory is left behind."""

import json
import shutil
from pathlib import Path

import pytest

from kerastune_nlp.cli import main

SENTENCES = "Barack\tB-person\nObama\tI-person\nvisited\tO\nParis\tB-location\n\nHello\tO\nworld\tO\n"


@pytest.fixture
def data(tmp_path) -> list[str]:
    path = tmp_path / "tiny.conll"
    path.write_text(SENTENCES)
    return ["--train", str(path), "--dev", str(path), "--test", str(path)]


def _copy(source: Path, tmp_path: Path, name: str = "backbone") -> Path:
    return Path(shutil.copytree(source, tmp_path / name))


def _train(backbone, data, output, capsys) -> str:
    code = main(["train", "--backbone", str(backbone), *data, "--epochs", "1", "--max-length", "32", "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not output.exists(), f"{output} was written by a run that failed"
    return err


def test_tokenizer_of_another_model_is_refused_naming_both_sizes(tiny_bert, tmp_path, data, capsys):
    from kerastune_nlp.models.backbones import resolve_backbone

    backbone = _copy(tiny_bert, tmp_path)
    bundled = resolve_backbone("all-minilm-l6-v2").directory
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (bundled / name).exists():
            shutil.copy(bundled / name, backbone / name)
    vocab_size = json.loads((backbone / "config.json").read_text())["vocab_size"]
    err = _train(backbone, data, tmp_path / "run", capsys)
    assert "30522 tokens" in err and f"vocab_size {vocab_size}" in err
    assert str(backbone) in err and "tokenizer.json" in err and "save_pretrained" in err


def test_hub_id_offline_says_to_pass_a_local_folder(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = _train("some-org/some-encoder", data, tmp_path / "run", capsys)
    assert "some-org/some-encoder" in err and "offline" in err and "local directory" in err


@pytest.mark.parametrize("damage, words", [
    ("truncate", ("model.safetensors", "truncated")),
    ("random", ("model.safetensors", "not a safetensors file")),
])
def test_damaged_weights_file_is_named(tiny_bert, tmp_path, data, capsys, damage, words):
    backbone = _copy(tiny_bert, tmp_path)
    weights = backbone / "model.safetensors"
    content = weights.read_bytes()
    weights.write_bytes(content[: len(content) // 2] if damage == "truncate" else bytes(range(256)) * 64)
    err = _train(backbone, data, tmp_path / "run", capsys)
    for word in words:
        assert word in err, err


def test_weights_of_another_architecture_name_missing_and_unexpected_tensors(all_tiny_backbones, tmp_path, data,
                                                                                capsys):
    backbone = _copy(all_tiny_backbones["bert"], tmp_path)
    shutil.copy(all_tiny_backbones["distilbert"] / "model.safetensors", backbone / "model.safetensors")
    err = _train(backbone, data, tmp_path / "run", capsys)
    assert "model.safetensors" in err and "bert" in err
    assert "missing" in err and "unexpected" in err
    assert "encoder.layer.0.attention.self.query.weight" in err  # a BERT name the file lacks
    assert "transformer.layer.0.attention.k_lin.bias" in err  # a DistilBERT name it has


def test_missing_shard_is_named(tiny_bert, tmp_path, data, capsys):
    from safetensors.numpy import load_file, save_file

    backbone = _copy(tiny_bert, tmp_path)
    tensors = load_file(str(backbone / "model.safetensors"))
    (backbone / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, shard_names in shards.items():
        save_file({name: tensors[name] for name in shard_names}, str(backbone / shard), metadata={"format": "pt"})
    weight_map = {name: shard for shard, shard_names in shards.items() for name in shard_names}
    (backbone / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (backbone / "model-00002-of-00002.safetensors").unlink()
    err = _train(backbone, data, tmp_path / "run", capsys)
    assert "model-00002-of-00002.safetensors" in err and "model.safetensors.index.json" in err


def test_folder_without_tokenizer_files_is_refused(tiny_bert, tmp_path, data, capsys):
    # transformers 5 would build an empty tokenizer here, and every word would become [UNK].
    backbone = _copy(tiny_bert, tmp_path)
    for path in backbone.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            path.unlink()
    err = _train(backbone, data, tmp_path / "run", capsys)
    assert "No tokenizer files" in err and str(backbone) in err and "tokenizer.save_pretrained" in err
