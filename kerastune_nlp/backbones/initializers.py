"""Sub-layers with Hugging Face initialisation, seeded per variable.

`make_dense`, `make_embedding` and `make_layer_norm` give plain tf-keras
layers initialised as transformers does (truncated normal with stddev
`initializer_range`, zero biases, LayerNorm ones / zeros); `derive_seed`
gives every variable its own seed from the model seed and a stable path, so
one `seed` reproduces a whole encoder bit for bit; `skip_initialization`
skips the random draws when a checkpoint overwrites every weight anyway.
Every encoder family builds its parts from these, so they live apart from
any one family's layers.
"""

from __future__ import annotations

import contextlib
import contextvars
import zlib

import numpy as np

from kerastune_nlp._tf import keras, tf


def derive_seed(seed, path: str):
    """A per-variable seed from the model seed and a stable path, or None when `seed` is None.

    tf-keras initializers with a seed are stateless (the same seed gives the
    same values), so every variable needs its own seed to differ from the others.
    """
    if seed is None:
        return None
    return zlib.crc32(f"{int(seed)}/{path}".encode()) & 0x7FFFFFFF


_SKIP_INIT = contextvars.ContextVar("kerastune_nlp_skip_init", default=False)


@contextlib.contextmanager
def skip_initialization():
    """Layers constructed inside start with zero weights instead of random ones.

    For encoders whose every weight is loaded right after building: drawing
    110M truncated-normal values for BERT-base only to overwrite them costs
    seconds on two cores.
    """
    token = _SKIP_INIT.set(True)
    try:
        yield
    finally:
        _SKIP_INIT.reset(token)


def truncated_normal(initializer_range: float, seed, path: str):
    """HF's initializer: truncated normal with stddev `initializer_range`, seeded per path."""
    if _SKIP_INIT.get():
        return keras.initializers.Zeros()
    return keras.initializers.TruncatedNormal(
        stddev=initializer_range, seed=derive_seed(seed, path)
    )


def make_dense(
    units, *, name, initializer_range, seed, path, use_bias=True, activation=None, dtype=None
):
    """A plain `keras.layers.Dense` with HF initialisation (truncated normal kernel, zero bias).

    Args:
        units: int. Output size.
        name: str. Layer (and variable scope) name.
        initializer_range: float. Stddev of the kernel initializer.
        seed: int or None. Model seed; the kernel's own seed is derived from it and `path`.
        path: str. Stable, unique path of the layer inside the encoder (for the seed).
        use_bias: bool. Defaults to True.
        activation: str or None. Keras activation. Defaults to None.
        dtype: policy or None. Defaults to the global policy.
    """
    return keras.layers.Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        name=name,
        dtype=dtype,
        kernel_initializer=truncated_normal(initializer_range, seed, path),
        bias_initializer="zeros",
    )


def make_layer_norm(epsilon, *, name, dtype=None, center=True):
    """LayerNormalization over the last axis (gamma ones, beta zeros; float32 inside).

    `center=False` is `nn.LayerNorm(bias=False)`: no beta variable.
    """
    return keras.layers.LayerNormalization(epsilon=epsilon, name=name, dtype=dtype, center=center)


def make_embedding(
    input_dim, output_dim, *, name, initializer_range, seed, path, initializer=None, dtype=None
):
    """A `keras.layers.Embedding` (variable `<name>/embeddings`) with HF initialisation."""
    return keras.layers.Embedding(
        input_dim,
        output_dim,
        name=name,
        dtype=dtype,
        embeddings_initializer=(
            initializer
            if initializer is not None and not _SKIP_INIT.get()
            else truncated_normal(initializer_range, seed, path)
        ),
    )


def sinusoidal_initializer(shape, dtype=None):
    """Fixed sin/cos position table (DistilBERT's `sinusoidal_pos_embds`), as HF computes it."""
    n_pos, dim = shape
    angles = np.array(
        [[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)]
    )
    table = np.zeros((n_pos, dim), dtype=np.float32)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return tf.constant(table, dtype=dtype or tf.float32)
