"""Hugging Face activation names (`hidden_act`, `conv_act`) and the TF functions behind them.

One table serves both sides: config.py validates `hidden_act` against
`ACTIVATION_NAMES` without importing TensorFlow (so config checks and the
CLI stay fast), and the layers get the function from `get_activation`,
which imports TensorFlow on first use. Before, config.py kept its own copy
of the names.
"""

from __future__ import annotations

import functools

from kerastune_nlp.errors import ConfigError

# Hugging Face name (transformers.activations.ACT2CLS) -> the function it computes.
_KINDS = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_accurate": "gelu_tanh",
    "quick_gelu": "quick_gelu",
    "relu": "relu",
    "relu6": "relu6",
    "silu": "silu",
    "swish": "silu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "linear": "linear",
}
ACTIVATION_NAMES = tuple(_KINDS)


@functools.cache
def _functions() -> dict:
    from kerastune_nlp._tf import tf

    def gelu_tanh(x):
        return tf.nn.gelu(x, approximate=True)

    def quick_gelu(x):
        return x * tf.sigmoid(tf.cast(1.702, x.dtype) * x)

    # "gelu" is the exact erf form: tf.nn.gelu(approximate=False) is what the
    # TFLite converter maps to its builtin GELU op.
    return {
        "gelu": tf.nn.gelu,
        "gelu_tanh": gelu_tanh,
        "quick_gelu": quick_gelu,
        "relu": tf.nn.relu,
        "relu6": tf.nn.relu6,
        "silu": tf.nn.silu,
        "sigmoid": tf.sigmoid,
        "tanh": tf.tanh,
        "linear": tf.identity,
    }


def get_activation(name: str):
    """The TF function for a Hugging Face activation name (`hidden_act`).

    Args:
        name: str. For example "gelu" (exact, erf), "gelu_new" or
            "gelu_pytorch_tanh" (tanh approximation), "relu", "silu".

    Example:
    >>> get_activation("gelu_new") is get_activation("gelu_pytorch_tanh")
    True
    """
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ConfigError(
            f"Unknown activation. Expected one of {sorted(ACTIVATION_NAMES)}. Received: "
            f"`hidden_act`={name!r}. Use a checkpoint whose config names one of these."
        )
    return _functions()[kind]
