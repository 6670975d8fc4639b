"""Shared fixtures: tiny random-init backbones of six families, saved to disk.

Each is a real Hugging Face model directory (config.json, tokenizer files,
model.safetensors) small enough to build and train a step in seconds, so tests
exercise the same loading path as a user's own model folder.

The tiny backbones' weights come from seeded initialisers: the same seed gives
the same weights on every run and machine. The seed is `--seed N` or the
environment variable `KT_TEST_SEED` (default 0); `tests/seed_sweep.py` runs
test files under many seeds, so a test that holds for only some random
initialisations is found before CI finds it.
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

SEED_VARIABLE = "KT_TEST_SEED"

SHARED_DATA = Path(__file__).resolve().parents[1] / "kerastune_nlp" / "data" / "bundled"

_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "Empire State Building is in New York City",
    "@paulwalk It 's the view from where I 'm living for two weeks",
    "Apple released the iPhone in San Francisco on Monday",
    "Barack Obama met Angela Merkel in Berlin",
    "café naïve résumé 東京 😀 #hashtag http://example.com",
]


# Trainers of the `tokenizers` library break ties in hash-map order, so a
# trained vocab differs from run to run (WordPiece and Unigram did here; 208 vs
# 209 tokens). The tiny vocabs are therefore built from the corpus by rule:
# special tokens, every character, every word, except that words longer than
# six characters are kept as two pieces (first three characters + the rest),
# so multi-piece words occur in the corpus itself.
_LONG_WORD = 6


def _corpus_words(normalize, pre_tokenize) -> list[str]:
    words = {word for text in _CORPUS for word, _ in pre_tokenize(normalize(text))}
    return sorted(words)


def _train_wordpiece(directory: Path) -> None:
    from tokenizers import BertWordPieceTokenizer

    backend = BertWordPieceTokenizer(lowercase=True)._tokenizer
    words = _corpus_words(backend.normalizer.normalize_str, backend.pre_tokenizer.pre_tokenize_str)
    characters = sorted({c for word in words for c in word})
    pieces = set(characters) | {"##" + c for c in characters}
    for word in words:
        pieces |= {word[:3], "##" + word[3:]} if len(word) > _LONG_WORD else {word}
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (directory / "vocab.txt").write_text("\n".join(specials + sorted(pieces)) + "\n", encoding="utf-8")


def _train_byte_bpe(directory: Path) -> None:
    # Byte-level BPE training gave the same files on every run (checked).
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        _CORPUS * 5, vocab_size=400, min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    tokenizer.save_model(str(directory))


def _train_unigram(directory: Path, specials: list[str], template: tuple[str, str]) -> Path:
    """A sentencepiece-style Unigram tokenizer (the XLM-R / DeBERTa-v3 kind) as tokenizer.json.

    Built with the `tokenizers` library, so no `sentencepiece` install and no
    slow tokenizer are needed: the fast class loads from tokenizer.json alone.
    Pieces by rule (see `_LONG_WORD`); longer pieces score higher, so whole
    words win over their characters.
    """
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    tokenizer = SentencePieceUnigramTokenizer()
    backend = tokenizer._tokenizer
    words = _corpus_words(backend.normalizer.normalize_str, backend.pre_tokenizer.pre_tokenize_str)
    pieces = {c for word in words for c in word}
    for word in words:  # each starts with the word-start mark "▁"
        pieces |= {word[:4], word[4:]} if len(word) > _LONG_WORD + 1 else {word}
    vocab = [(token, 0.0) for token in specials]
    vocab += [(piece, -10.0 / len(piece)) for piece in sorted(pieces - set(specials))]
    backend.model = Unigram(vocab, unk_id=specials.index(specials[3]), byte_fallback=False)
    bos, eos = template
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B {eos}",
        special_tokens=[(bos, specials.index(bos)), (eos, specials.index(eos))],
    )
    path = directory / "unigram.json"
    tokenizer.save(str(path))
    return path


def _train_neox_bpe(directory: Path) -> Path:
    """A byte-level BPE tokenizer.json in ModernBERT's form (GPT-NeoX style, `[CLS] $A [SEP]`).

    Specials first in ModernBERT's order ([UNK] [CLS] [SEP] [PAD] [MASK]),
    then the 256 byte symbols and merges trained on the corpus (byte-level BPE
    training gave the same files on every run, as `_train_byte_bpe`).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    backend = Tokenizer(models.BPE(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, min_frequency=1, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(_CORPUS * 5, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)],
    )
    path = directory / "neox_bpe.json"
    backend.save(str(path))
    return path


def pytest_addoption(parser):
    parser.addoption(
        "--seed", type=int, default=None,
        help=f"Seed of the tiny random backbones and of the tests' random data "
             f"(default: ${SEED_VARIABLE}, else 0). tests/seed_sweep.py loops over seeds.",
    )


def seed_from_config(config) -> int:
    """The session's test seed: `--seed`, else $KT_TEST_SEED, else 0."""
    option = config.getoption("--seed")
    if option is not None:
        return option
    value = os.environ.get(SEED_VARIABLE, "0")
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"{SEED_VARIABLE} must be an integer. Received: {SEED_VARIABLE}={value!r}") from None


@pytest.fixture(scope="session")
def test_seed(pytestconfig) -> int:
    """Seed for anything random a test builds itself (tiny models, random data)."""
    return seed_from_config(pytestconfig)


def pytest_report_header(config):
    return f"kerastune_nlp test seed: {seed_from_config(config)} (--seed / ${SEED_VARIABLE})"


def make_tiny_backbone(directory: Path, family: str, seed: int = 0, max_positions: int = 64) -> Path:
    """Writes a 2-layer, 32-hidden random-init backbone of `family` to `directory`.

    Our own encoder of the family, built with `seed` (the same seed gives
    bit-identical weights) and saved with `save_checkpoint`: config.json and
    model.safetensors in PyTorch naming, as a user's Hugging Face folder.
    """
    import transformers

    from kerastune_nlp.backbones.encoder import build_encoder, save_checkpoint

    directory.mkdir(parents=True, exist_ok=True)
    common = dict(max_position_embeddings=max_positions)
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
    elif family == "electra":
        _train_wordpiece(directory)
        tokenizer = transformers.ElectraTokenizerFast(str(directory / "vocab.txt"))
        # embedding_size < hidden_size, as in the real ELECTRA checkpoints, so
        # the `embeddings_project` layer exists.
        config = transformers.ElectraConfig(
            vocab_size=tokenizer.vocab_size, embedding_size=16, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, **common,
        )
    elif family == "deberta-v2":
        # [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3 as in the DeBERTa-v3 vocab.
        specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
        tokenizer_file = _train_unigram(directory, specials, ("[CLS]", "[SEP]"))
        tokenizer = transformers.DebertaV2TokenizerFast(
            tokenizer_file=str(tokenizer_file), pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
            unk_token="[UNK]", mask_token="[MASK]", bos_token="[CLS]", eos_token="[SEP]",
        )
        # DeBERTa-v3's layout: relative attention with log buckets, the
        # encoder-level LayerNorm on the relative embeddings, no absolute
        # positions and no token types.
        config = transformers.DebertaV2Config(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, relative_attention=True, position_buckets=16, norm_rel_ebd="layer_norm",
            pos_att_type=["p2c", "c2p"], share_att_key=True, position_biased_input=False,
            type_vocab_size=0, pad_token_id=0, **common,
        )
    elif family == "xlm-roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tokenizer_file = _train_unigram(directory, specials, ("<s>", "</s>"))
        tokenizer = transformers.XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_file))
        config = transformers.XLMRobertaConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            max_position_embeddings=66,
        )
    elif family == "modernbert":
        tokenizer_file = _train_neox_bpe(directory)
        tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_file=str(tokenizer_file), unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
            pad_token="[PAD]", mask_token="[MASK]",
        )
        # 3 layers, global every 2nd (full, sliding, full), a window of 4 (2 each side)
        # so that the tests' sentences are longer than it.
        config = transformers.ModernBertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
            intermediate_size=48, global_attn_every_n_layers=2, local_attention=4,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id, cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id, **common,
        )
    else:
        raise ValueError(family)
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(str(directory))
    config_dict = {**config.to_dict(), "model_type": config.model_type}
    save_checkpoint(build_encoder(config_dict, seed=seed), config_dict, directory)
    (directory / "unigram.json").unlink(missing_ok=True)  # tokenizer.json holds it now
    (directory / "neox_bpe.json").unlink(missing_ok=True)
    return directory


ALL_FAMILIES = ("bert", "distilbert", "roberta", "electra", "deberta-v2", "xlm-roberta", "modernbert")


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory, test_seed) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backbones")
    return {family: make_tiny_backbone(root / family, family, test_seed)
            for family in ("bert", "distilbert", "roberta")}


@pytest.fixture(scope="session")
def tiny_bert_256(tmp_path_factory, test_seed) -> Path:
    """The tiny BERT with 256 positions: raw sentences of real text fit one window (the tiny vocabulary
    cuts words into many sub-tokens)."""
    return make_tiny_backbone(tmp_path_factory.mktemp("backbones_256") / "bert", "bert", test_seed, max_positions=256)


@pytest.fixture(scope="session")
def all_tiny_backbones(tiny_backbones, tmp_path_factory, test_seed) -> dict[str, Path]:
    """All six families; reuses the three of `tiny_backbones`."""
    root = tmp_path_factory.mktemp("more_backbones")
    extra = {family: make_tiny_backbone(root / family, family, test_seed) for family in ALL_FAMILIES
             if family not in tiny_backbones}
    return {family: {**tiny_backbones, **extra}[family] for family in ALL_FAMILIES}


@pytest.fixture(scope="session")
def tiny_modernbert(tmp_path_factory, test_seed) -> Path:
    """A 3-layer ModernBERT (full, sliding, full; window 4) with its BPE tokenizer."""
    return make_tiny_backbone(tmp_path_factory.mktemp("modernbert") / "modernbert", "modernbert", test_seed)


@pytest.fixture(scope="session")
def tiny_modernbert_run(tiny_modernbert, tmp_path_factory):
    """`tiny_modernbert_run(task_name)`: a tiny trained run on `tiny_modernbert`, trained once per session."""
    return _runs_trained_once(tiny_modernbert, tmp_path_factory, "modernbert_runs")


@pytest.fixture(scope="session")
def tiny_bert(tiny_backbones) -> Path:
    return tiny_backbones["bert"]


@pytest.fixture(scope="session")
def tiny_run(tiny_bert, tmp_path_factory):
    """`tiny_run(task_name)`: a tiny trained run of a built-in task, trained once per session.

    Shared by the export, inference and serving tests, which only read it.
    """
    return _runs_trained_once(tiny_bert, tmp_path_factory, "runs")


def _runs_trained_once(backbone: Path, tmp_path_factory, folder: str):
    """`get(task_name)`: the task harness's tiny run on `backbone`, trained at the first call, then reused."""
    from tests.tasks.harness import train_tiny

    runs: dict = {}

    def get(name: str) -> Path:
        if name not in runs:
            runs[name] = train_tiny(name, backbone, tmp_path_factory.mktemp(folder) / name).run_dir
        return runs[name]

    return get
