"""tf.data input pipelines: length-grouped batches padded per batch.

Training batches come from a shuffle seeded by (seed, epoch), so a run
resumed in another process sees the same batches, then sentences of similar length
are grouped (sorted inside chunks of `group_batches` batches) and the batches
are shuffled again, so each batch is padded only to its own longest window,
rounded up to a multiple of `pad_to_multiple_of` (8 keeps the number of
distinct shapes, hence tf.function retraces, small). The number of batches
per epoch is fixed (ceil(n / batch_size)), so progress bars show a total.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from kerastune_nlp._tf import tf
from kerastune_nlp.data.ner_windows import IGNORE_INDEX, Window
from kerastune_nlp.errors import ConfigError


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuner off: fixed parallelism (the CPU count) and prefetch.

    The autotuner's thread sleeps up to a minute between rounds, and deleting
    an iterator waits for it. Keras drops each epoch's iterator unexhausted
    and makes a new one, so every epoch boundary of a long run stalled for
    30-60 s with the CPU idle (measured: 50-100 s of a 3-epoch WNUT-17 run,
    TF 2.21). These pipelines only gather and pad rows; nothing to tune.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _ragged(rows: Sequence[np.ndarray]) -> tf.RaggedTensor:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    values = np.concatenate(rows).astype(np.int32) if len(rows) else np.zeros(0, np.int32)
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def _padder(windows, input_names, pad_id, pad_to_multiple_of, with_labels, dense_labels=None):
    """Maps a batch of row indices to padded features (and labels).

    Rows carry `input_ids`, optionally `token_type_ids` (sentence pairs) and,
    for token tasks, per-token `labels`; sequence tasks pass `dense_labels`
    (one label, or one vector, per row) instead.
    """
    ids = _ragged([w.input_ids for w in windows])
    type_ids = None
    if "token_type_ids" in input_names and getattr(windows[0], "token_type_ids", None) is not None:
        type_ids = _ragged([w.token_type_ids for w in windows])
    labels = None
    if with_labels and dense_labels is None:
        labels = _ragged([w.labels for w in windows])
    if dense_labels is not None:
        dense_labels = tf.constant(dense_labels)

    def pad(rows: tf.RaggedTensor, value: int, width):
        dense = rows.to_tensor(default_value=value)
        return tf.pad(dense, [[0, 0], [0, width - tf.shape(dense)[1]]], constant_values=value)

    def gather(indices):
        batch_ids = tf.gather(ids, indices)
        longest = tf.cast(tf.reduce_max(batch_ids.row_lengths()), tf.int32)
        width = (longest + pad_to_multiple_of - 1) // pad_to_multiple_of * pad_to_multiple_of
        features = {"input_ids": pad(batch_ids, pad_id, width)}
        if "attention_mask" in input_names:
            features["attention_mask"] = pad(tf.ones_like(batch_ids), 0, width)
        if type_ids is not None:
            features["token_type_ids"] = pad(tf.gather(type_ids, indices), 0, width)
        elif "token_type_ids" in input_names:
            features["token_type_ids"] = tf.zeros_like(features["input_ids"])
        if dense_labels is not None and with_labels:
            return features, tf.gather(dense_labels, indices)
        if labels is None:
            return features
        return features, pad(tf.gather(labels, indices), IGNORE_INDEX, width)

    return gather


def make_train_dataset(
    windows: Sequence[Window],
    input_names: Sequence[str],
    pad_id: int,
    batch_size: int,
    seed: int,
    group_batches: int = 50,
    pad_to_multiple_of: int = 8,
    dense_labels: np.ndarray | None = None,
    fixed_length: int | None = None,
    *,
    epochs: int = 1,
    start_epoch: int = 0,
    start_step: int = 0,
) -> tf.data.Dataset:
    """Shuffled, length-grouped, padded-per-batch (features, labels) for epochs `start_epoch`..`epochs - 1`.

    Each epoch's order is a function of `(seed, epoch)` only (`batch_plan`),
    so a run resumed in a new process at (epoch, step) trains on exactly the
    batches the interrupted run would have: pass `start_epoch` and
    `start_step` (batches of that epoch already trained), and fit with
    `steps_per_epoch=train_steps(len(windows), batch_size)` so Keras reads one
    iterator across the epochs.

    Args:
        windows: encoded windows with labels.
        input_names: the tokenizer's `model_input_names`.
        pad_id: the tokenizer's padding id.
        batch_size: int. Windows per batch.
        seed: int. Seeds every epoch's order.
        group_batches: int. Batches whose windows are sorted together; larger
            means less padding and less randomness. Defaults to 50.
        pad_to_multiple_of: int. Round padded lengths up. Defaults to 8.
        dense_labels: array or None. One label (or label vector) per row for
            sequence-level tasks; None takes per-token `labels` from the rows.
        fixed_length: int or None. Pad every row to this length and skip the
            length grouping: the common tutorial pipeline, kept to measure
            what bucketing saves. Defaults to None.
        epochs: int. The epoch after the last one in the dataset. Defaults to 1.
        start_epoch: int. The first epoch in the dataset (0-based). Defaults to 0.
        start_step: int. Batches of `start_epoch` to leave out. Defaults to 0.
    """
    lengths = np.fromiter((len(w.input_ids) for w in windows), dtype=np.int64, count=len(windows))
    if fixed_length is not None and lengths.max(initial=0) > fixed_length:
        raise ConfigError(
            f"Expected every row to fit `fixed_length`={fixed_length}. Received a row of "
            f"{int(lengths.max())} tokens. Raise `fixed_length` or encode with a smaller max_length."
        )
    batches = [batch for epoch in range(start_epoch, epochs)
               for batch in batch_plan(lengths, batch_size, seed, epoch, group_batches, fixed_length is not None)]
    batches = batches[start_step:]
    sizes = np.fromiter((len(b) for b in batches), dtype=np.int64, count=len(batches))
    flat = tf.constant(np.concatenate(batches) if batches else np.zeros(0, np.int64))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(batches) else sizes
    dataset = (
        tf.data.Dataset.from_tensor_slices((starts, sizes))
        .map(lambda begin, size: flat[begin:begin + size])
        .map(_padder(windows, input_names, pad_id, fixed_length or pad_to_multiple_of, True, dense_labels),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .apply(tf.data.experimental.assert_cardinality(len(batches)))
    )
    return without_autotune(dataset.prefetch(tf.data.AUTOTUNE))


def train_steps(rows: int, batch_size: int) -> int:
    """Batches per training epoch: every row once, the last batch possibly short."""
    return math.ceil(rows / batch_size)


def batch_plan(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group_batches: int = 50,
               fixed_length: bool = False) -> list[np.ndarray]:
    """One epoch's batches of row indices, from `(seed, epoch)` alone.

    A seeded permutation; then, unless `fixed_length`, rows sorted by length
    inside chunks of `group_batches` batches (so a batch is padded only to
    its own longest row) and the batches shuffled again.
    """
    rng = np.random.default_rng([int(seed) % 2**32, epoch])
    order = rng.permutation(len(lengths))
    if not fixed_length:
        chunk = batch_size * group_batches
        order = np.concatenate([part[np.argsort(lengths[part], kind="stable")]
                                for part in np.split(order, range(chunk, len(order), chunk))]) \
            if len(order) else order
    batches = np.split(order, range(batch_size, len(order), batch_size)) if len(order) else []
    if not fixed_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def make_eval_dataset(
    windows: Sequence[Window],
    input_names: Sequence[str],
    pad_id: int,
    batch_size: int,
    pad_to_multiple_of: int = 8,
) -> tuple[tf.data.Dataset, np.ndarray]:
    """Features-only batches in length order, and that order.

    Returns:
        `(dataset, order)`: batch rows follow `windows[order[i]]`.
    """
    order = np.argsort([len(w.input_ids) for w in windows], kind="stable")
    ordered = [windows[i] for i in order]
    dataset = (
        tf.data.Dataset.range(len(ordered))
        .batch(batch_size)
        .map(_padder(ordered, input_names, pad_id, pad_to_multiple_of, False))
        .prefetch(tf.data.AUTOTUNE)
    )
    return without_autotune(dataset), order


def pad_rows(rows: Sequence, input_names: Sequence[str], pad_id: int, multiple: int = 8) -> dict:
    """Encoded rows -> padded int32 numpy arrays by input name (width rounded up to `multiple`)."""
    longest = max(len(r.input_ids) for r in rows)
    width = -(-longest // multiple) * multiple
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    types = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        ids[i, :n] = row.input_ids
        mask[i, :n] = 1
        if getattr(row, "token_type_ids", None) is not None:
            types[i, :n] = row.token_type_ids
    features = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: features[name] for name in input_names}
