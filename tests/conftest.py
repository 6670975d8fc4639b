"""Shared fixtures: tiny random-init backbones of three families, saved to disk.

Each is a real Hugging Face model directory (config.json, tokenizer files,
tf_model.h5) small enough to build and train a step in seconds, so tests
exercise the same loading path as a user's own model folder.
"""

from __future__ import annotations

import os

# Offline like CI; must be set before transformers / huggingface_hub import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1] / "kerastune_nlp" / "data" / "bundled"

_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "Empire State Building is in New York City",
    "@paulwalk It 's the view from where I 'm living for two weeks",
    "Apple released the iPhone in San Francisco on Monday",
    "Barack Obama met Angela Merkel in Berlin",
    "café naïve résumé 東京 😀 #hashtag http://example.com",
]


def _train_wordpiece(directory: Path) -> None:
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(lowercase=True)
    tokenizer.train_from_iterator(_CORPUS * 5, vocab_size=300, min_frequency=1)
    tokenizer.save_model(str(directory))


def _train_byte_bpe(directory: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        _CORPUS * 5, vocab_size=400, min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    tokenizer.save_model(str(directory))


def make_tiny_backbone(directory: Path, family: str) -> Path:
    """Writes a 2-layer, 32-hidden random-init backbone of `family` to `directory`."""
    import transformers
    from transformers import TFAutoModel

    directory.mkdir(parents=True, exist_ok=True)
    common = dict(max_position_embeddings=64)
    if family == "bert":
        _train_wordpiece(directory)
        tokenizer = transformers.BertTokenizerFast(str(directory / "vocab.txt"))
        config = transformers.BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, **common,
        )
    elif family == "distilbert":
        _train_wordpiece(directory)
        tokenizer = transformers.DistilBertTokenizerFast(str(directory / "vocab.txt"))
        config = transformers.DistilBertConfig(
            vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64, **common,
        )
    elif family == "roberta":
        _train_byte_bpe(directory)
        tokenizer = transformers.RobertaTokenizerFast(
            str(directory / "vocab.json"), str(directory / "merges.txt")
        )
        config = transformers.RobertaConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            max_position_embeddings=66,
        )
    else:
        raise ValueError(family)
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(str(directory))
    model = TFAutoModel.from_config(config)
    model(model.dummy_inputs)
    model.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backbones")
    return {family: make_tiny_backbone(root / family, family) for family in ("bert", "distilbert", "roberta")}


@pytest.fixture(scope="session")
def tiny_bert(tiny_backbones) -> Path:
    return tiny_backbones["bert"]
