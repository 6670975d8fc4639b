"""Fixtures for the continued-pretraining tests: a repetitive corpus and one tiny run shared by several tests."""

from __future__ import annotations

import pytest

# Four sentences the tiny WordPiece vocab of tests/conftest.py covers, repeated.
# In ~50 steps a random-init 2-layer model learns their word frequencies
# (held-out perplexity ~200 -> ~30); using the context takes it ~900 steps,
# too slow for a test, so the contextual gain is checked on the real weights.
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "Empire State Building is in New York City",
    "Apple released the iPhone in San Francisco on Monday",
    "Barack Obama met Angela Merkel in Berlin",
]


def write_corpus(path, repeats: int = 30, extra: list[str] | None = None):
    lines = SENTENCES * repeats + (extra or [])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_config(**overrides):
    from kerastune_nlp.pretraining import PretrainConfig

    settings = dict(epochs=6, batch_size=4, max_length=32, learning_rate=1e-2, warmup_ratio=0.0, seed=7)
    settings.update(overrides)
    return PretrainConfig(**settings)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "domain.txt")


@pytest.fixture(scope="session")
def tiny_pretrained(tiny_bert, corpus_file, tmp_path_factory):
    """One tiny continued-pretraining run (whole-word masking), trained once per session."""
    from kerastune_nlp.pretraining import continue_pretraining

    output = tmp_path_factory.mktemp("pretrained") / "tiny-domain"
    return continue_pretraining(corpus_file, output_dir=output, backbone=str(tiny_bert),
                                config=tiny_config(whole_word_masking=True), verbose=0)
