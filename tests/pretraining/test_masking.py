"""Masking: budget, 80/10/10, never specials or padding, whole words, reproducible from the seed."""

from __future__ import annotations

import numpy as np
import pytest

MASK, VOCAB = 4, 300
SPECIAL = (0, 1, 2, 3, 4)


def _packed(rows: int = 400, length: int = 32, seed: int = 0):
    """Random packed rows: [CLS]=2 words... [SEP]=3 then padding; words of 1-3 sub-tokens."""
    from kerastune_nlp.pretraining.packing import PackedSequences

    rng = np.random.default_rng(seed)
    ids = np.zeros((rows, length), np.int32)
    words = np.full((rows, length), -1, np.int32)
    lengths = rng.integers(6, length + 1, rows).astype(np.int32)
    for r, n in enumerate(lengths):
        ids[r, 0], ids[r, n - 1] = 2, 3
        ids[r, 1:n - 1] = rng.integers(5, VOCAB, n - 2)
        sizes = rng.integers(1, 4, n)
        words[r, 1:n - 1] = np.repeat(np.arange(n), sizes)[: n - 2]
    return PackedSequences(ids, words, lengths, rows, int((lengths - 2).sum()))


def _batches(packed, **overrides):
    from kerastune_nlp.pretraining.masking import EVAL_STREAM, masked_dataset, replacement_ids

    options = dict(batch_size=64, seed=11, stream=EVAL_STREAM, probability=0.15, max_predictions=6,
                   whole_word=False, mask_token_id=MASK, random_ids=replacement_ids(VOCAB, SPECIAL))
    options.update(overrides)
    batches = list(masked_dataset(packed, **options).as_numpy_iterator())
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


@pytest.mark.parametrize("whole_word", [False, True])
def test_masks_follow_the_budget_and_never_touch_specials_or_padding(whole_word):
    packed = _packed()
    out = _batches(packed, whole_word=whole_word)
    real = (packed.word_ids >= 0).sum(axis=1)
    count = out["masked_weights"].sum(axis=1)
    budget = np.clip(np.round(real * 0.15), 1, 6)
    if not whole_word:
        assert (count == budget).all()
    else:
        # A word overshooting the budget is passed over and smaller ones fill it: almost always exact.
        assert count.sum() >= 0.97 * budget.sum() and (count > 0).all()
        # Only a row that fits no whole word predicts one word over the budget.
        assert ((count <= budget) | ((budget == 1) & (count <= 3))).all()
    changed = out["input_ids"] != packed.input_ids
    for row in range(packed.sequences):
        slots = out["masked_positions"][row][out["masked_weights"][row] > 0]
        assert (packed.word_ids[row, slots] >= 0).all()  # content tokens only
        assert list(slots) == sorted(set(slots))
        assert not changed[row][np.setdiff1d(np.arange(32), slots)].any()  # nothing else changes
        assert (out["masked_labels"][row][: len(slots)] == packed.input_ids[row, slots]).all()
        assert (out["attention_mask"][row] == (np.arange(32) < packed.lengths[row])).all()
        if whole_word:  # every sub-token of a chosen word is chosen
            chosen_words = set(packed.word_ids[row, slots])
            assert set(np.flatnonzero(np.isin(packed.word_ids[row], list(chosen_words)))) == set(slots)


def test_eighty_ten_ten_and_random_tokens_are_never_special():
    packed = _packed(rows=2000)
    out = _batches(packed)
    weights = out["masked_weights"] > 0
    rows = np.repeat(np.arange(packed.sequences)[:, None], 6, axis=1)[weights]
    slots = out["masked_positions"][weights]
    new, old = out["input_ids"][rows, slots], packed.input_ids[rows, slots]
    masked, kept = (new == MASK).mean(), (new == old).mean()
    random = ((new != MASK) & (new != old)).mean()
    assert abs(masked - 0.8) < 0.03 and abs(kept - 0.1 - random * 1 / VOCAB) < 0.03 and abs(random - 0.1) < 0.03
    assert not np.isin(new[new != MASK], SPECIAL).any()


def test_masks_are_reproducible_and_change_with_seed_and_epoch():
    from kerastune_nlp.pretraining.masking import TRAIN_STREAM

    packed = _packed(rows=50)
    first, again = _batches(packed), _batches(packed, batch_size=7)
    assert all((first[k] == again[k]).all() for k in first)  # independent of the batch size
    assert (first["masked_positions"] != _batches(packed, seed=12)["masked_positions"]).any()
    epoch0 = _batches(packed, stream=TRAIN_STREAM, epoch=0)
    epoch1 = _batches(packed, stream=TRAIN_STREAM, epoch=1)
    assert (epoch0["masked_positions"] != epoch1["masked_positions"]).any()


def test_shuffled_epochs_skip_exactly_the_trained_batches():
    from kerastune_nlp.pretraining.masking import TRAIN_STREAM

    packed = _packed(rows=50)
    full = _batches(packed, stream=TRAIN_STREAM, epoch=2, shuffle=True, batch_size=8)
    resumed = _batches(packed, stream=TRAIN_STREAM, epoch=2, shuffle=True, batch_size=8, skip_batches=3)
    assert all((full[k][24:] == resumed[k]).all() for k in full)
    assert (full["input_ids"][:, 0] == 2).all() and sorted(full["masked_labels"][:, 0].tolist()) != \
        full["masked_labels"][:, 0].tolist()
