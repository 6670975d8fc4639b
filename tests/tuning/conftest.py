"""Small data for search tests: 64 TREC questions to train on, 24 to score."""

import pytest


@pytest.fixture(scope="session")
def trec_small():
    from kerastune_nlp.data.bundled_trec import load_bundled_trec

    train = load_bundled_trec()["train"]
    known = {e.label for e in train[:64]}
    return train[:64], [e for e in train[64:96] if e.label in known][:24]
