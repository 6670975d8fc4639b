"""The sequence-level model: backbone -> first-token vector -> dropout -> linear head."""

from __future__ import annotations

from typing import Sequence

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.models import backbones


def build_sequence_classifier(
    backbone,
    input_names: Sequence[str],
    num_outputs: int,
    dropout: float = 0.1,
    initializer_range: float = 0.02,
    seed: int | None = None,
) -> keras.Model:
    """Wraps a backbone (one of our encoders) for classification or regression.

    The head reads the hidden state of the first token ([CLS] or <s>), as
    the Hugging Face sequence-classification heads do.

    Args:
        backbone: our encoder (`backbones.build_encoder` / `load_encoder`).
        input_names: the tokenizer's `model_input_names`.
        num_outputs: int. Classes (softmax), labels (sigmoid) or 1 (regression).
        dropout: float. Dropout before the head. Defaults to 0.1.
        initializer_range: float. Stddev of the head's initial kernel.
        seed: int or None. Seeds the head's initialisation.

    Returns:
        A model mapping `{name: int32 [batch, length]}` to float32
        `[batch, num_outputs]` logits (or values).

    Example:
    >>> model = build_sequence_classifier(backbone, tokenizer.model_input_names, 6)
    """
    backbones.freeze_unused_pooler(backbone)
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in input_names}
    hidden = backbones.last_hidden_state(backbone, inputs)
    first_token = keras.layers.Lambda(lambda h: h[:, 0, :], name="first_token")(hidden)
    first_token = keras.layers.Dropout(dropout, name="head_dropout")(first_token)
    outputs = keras.layers.Dense(
        num_outputs,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range, seed=seed),
        name="head",
    )(first_token)
    # Float32 outputs keep the loss stable under mixed precision.
    outputs = keras.layers.Activation("linear", dtype="float32", name="outputs")(outputs)
    return keras.Model(inputs=inputs, outputs=outputs, name="sequence_classifier")
