"""BERT-style masking inside the tf.data pipeline, reproducible from a seed.

Each sequence predicts `round(mlm_probability * content tokens)` positions
(at least one), chosen uniformly among its content tokens - or, with whole
word masking, among its words, all sub-tokens of a chosen word together
(a word that would overshoot the budget is passed over, as in Google's BERT).
Of the chosen positions 80% become the mask token, 10% a random non-special
token and 10% stay as they are. Special tokens and padding are never chosen.

The random draws are stateless, keyed by (seed, stream, epoch, sequence
index): the held-out masks are the same before and after training and from
run to run, whatever the batch size, and a resumed run masks exactly as the
interrupted one would have.

The positions to predict come out as a fixed number of slots per sequence
(`max_predictions`, padded with weight 0), so the vocabulary projection
runs on those slots only - about 15% of the positions - and every batch has
one shape.
"""

from __future__ import annotations

import numpy as np

from kerastune_nlp._tf import tf
from kerastune_nlp.data.batching import without_autotune
from kerastune_nlp.pretraining.packing import PackedSequences

# Streams of random draws; each epoch of training has its own.
EVAL_STREAM, TRAIN_STREAM = 0, 1
MASK_SHARE, RANDOM_SHARE = 0.8, 0.1
# Greedy passes of whole-word selection (each ends at a word that overshoots the budget left).
_PASSES = 4


def replacement_ids(vocab_size: int, special_ids) -> np.ndarray:
    """The ids a masked position may be replaced with at random: every non-special id."""
    special = set(int(i) for i in special_ids)
    return np.asarray([i for i in range(vocab_size) if i not in special], dtype=np.int32)


def mask_sequence(input_ids, word_ids, key, *, probability: float, max_predictions: int, whole_word: bool,
                  mask_token_id: int, random_ids):
    """Masks one sequence.

    Args:
        input_ids: int32 [L]. The packed sequence.
        word_ids: int32 [L]. Word of each position; -1 for special tokens and padding.
        key: int [2]. Stateless seed of this sequence.
        probability: float. Share of content tokens to predict.
        max_predictions: int. Slots in the output (>= the largest budget).
        whole_word: bool. Choose whole words.
        mask_token_id: int. The mask token.
        random_ids: int32 [R]. Ids a position may be replaced with.

    Returns:
        `(masked_ids [L], positions [K], labels [K], weights [K])`: the input
        with its replacements; the chosen positions in ascending order, their
        original ids, and 1.0 for each real slot (0.0 for padding slots).
    """
    length = tf.shape(input_ids)[0]
    keys = tf.random.experimental.stateless_split(key, num=3)
    candidates = word_ids >= 0
    real = tf.reduce_sum(tf.cast(candidates, tf.int32))
    budget = tf.cast(tf.round(tf.cast(real, tf.float32) * probability), tf.int32)
    budget = tf.clip_by_value(budget, tf.minimum(real, 1), max_predictions)
    # Units to choose: words, or single sub-tokens; specials fall in the extra unit `length`.
    units = word_ids if whole_word else tf.range(length, dtype=word_ids.dtype)
    units = tf.where(candidates, units, tf.cast(length, units.dtype))
    sizes = tf.math.unsorted_segment_sum(tf.ones_like(units), units, num_segments=length + 1)[:length]
    order = tf.argsort(tf.random.stateless_uniform([length], keys[0]))  # a random order of the units
    sorted_sizes = tf.gather(sizes, order)
    chosen_sorted = tf.zeros([length], tf.bool)
    remaining = budget
    # Greedy in that order, passing over a unit that overshoots the budget (as Google's BERT does): each
    # pass takes the longest prefix that fits among the units that still fit; a few passes finish it.
    for _ in range(_PASSES):
        eligible = (sorted_sizes > 0) & ~chosen_sorted & (sorted_sizes <= remaining)
        total = tf.cumsum(tf.where(eligible, sorted_sizes, 0))
        take = eligible & (total <= remaining)
        chosen_sorted = chosen_sorted | take
        remaining -= tf.reduce_sum(tf.where(take, sorted_sizes, 0))
    # A short sequence of long words may fit none (budget 1, words of 2 sub-tokens): predict its first
    # word anyway, so no sequence goes without a prediction.
    fits = (sorted_sizes > 0) & (sorted_sizes <= max_predictions)
    first = fits & (tf.cumsum(tf.cast(fits, tf.int32)) == 1)
    chosen_sorted = tf.cond(tf.reduce_any(chosen_sorted), lambda: chosen_sorted, lambda: first)
    chosen_units = tf.gather(chosen_sorted, tf.math.invert_permutation(order))
    chosen = candidates & tf.gather(tf.concat([chosen_units, [False]], 0), units)
    action = tf.random.stateless_uniform([length], keys[1])
    replacement = tf.gather(random_ids, tf.random.stateless_uniform(
        [length], keys[2], minval=0, maxval=tf.shape(random_ids)[0], dtype=tf.int32))
    masked = tf.where(chosen & (action < MASK_SHARE), tf.cast(mask_token_id, input_ids.dtype),
                      tf.where(chosen & (action < MASK_SHARE + RANDOM_SHARE), replacement, input_ids))
    positions = tf.cast(tf.where(chosen)[:, 0], tf.int32)
    count = tf.shape(positions)[0]
    positions = tf.pad(positions, [[0, max_predictions - count]])
    labels = tf.gather(input_ids, positions)
    weights = tf.cast(tf.sequence_mask(count, max_predictions), tf.float32)
    return masked, positions, labels, weights


def masked_dataset(packed: PackedSequences, *, batch_size: int, seed: int, stream: int, epoch: int = 0,
                   shuffle: bool = False, skip_batches: int = 0, probability: float, max_predictions: int,
                   whole_word: bool, mask_token_id: int, random_ids: np.ndarray) -> tf.data.Dataset:
    """Batches of masked sequences: the model's features, ready for `fit` or `evaluate`.

    Args:
        packed: PackedSequences. The sequences.
        batch_size: int. Sequences per batch (the last batch may be smaller).
        seed: int. The run's seed.
        stream: int. `TRAIN_STREAM` or `EVAL_STREAM`.
        epoch: int. Zero-based epoch (changes the order and the masks). Defaults to 0.
        shuffle: bool. Shuffle the sequences (seeded by seed and epoch). Defaults to False.
        skip_batches: int. Batches to skip (resuming mid-epoch). Defaults to 0.
        probability, max_predictions, whole_word, mask_token_id, random_ids:
            see `mask_sequence`.

    Returns:
        A dataset of dicts: input_ids, attention_mask, masked_positions,
        masked_labels, masked_weights.
    """
    count = packed.sequences
    order = np.arange(count)
    if shuffle:
        order = np.random.default_rng([seed, stream, epoch]).permutation(count)
    if skip_batches:
        order = order[skip_batches * batch_size:]
    key = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(tf.constant([seed, stream], tf.int64), epoch), 0)
    random_ids = tf.constant(random_ids, tf.int32)
    # Only the order is a tensor; each map gathers its row (no copy of the corpus per epoch).
    input_ids, word_ids = tf.constant(packed.input_ids), tf.constant(packed.word_ids)
    lengths = tf.constant(packed.lengths)
    max_length = packed.max_length

    def one(index):
        ids, words = input_ids[index], word_ids[index]
        sequence_key = tf.random.experimental.stateless_fold_in(key, tf.cast(index, tf.int64))
        masked, positions, labels, weights = mask_sequence(
            ids, words, sequence_key, probability=probability, max_predictions=max_predictions,
            whole_word=whole_word, mask_token_id=mask_token_id, random_ids=random_ids)
        return {"input_ids": masked, "attention_mask": tf.sequence_mask(lengths[index], max_length, tf.int32),
                "masked_positions": positions, "masked_labels": labels, "masked_weights": weights}

    dataset = tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
    dataset = dataset.map(one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # Autotuning off: its thread stalls each dropped iterator (data/batching.py).
    return without_autotune(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE))
