"""The token-classification (NER) model: backbone -> dropout -> linear head."""

from __future__ import annotations

from typing import Sequence

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.models import backbones


def build_token_classifier(
    backbone,
    input_names: Sequence[str],
    num_labels: int,
    dropout: float = 0.1,
    initializer_range: float = 0.02,
    seed: int | None = None,
) -> keras.Model:
    """Wraps a backbone (one of our encoders) in a Keras functional model.

    Args:
        backbone: our encoder (`backbones.build_encoder` / `load_encoder`).
        input_names: the tokenizer's `model_input_names`; the model's inputs
            take these names so tokenizer output can be fed as is.
        num_labels: int. Size of the tag set.
        dropout: float. Dropout on the hidden states before the head.
            Defaults to 0.1.
        initializer_range: float. Stddev of the head's initial kernel, as the
            backbone initialises its own layers. Defaults to 0.02.
        seed: int or None. Seeds the head's initialisation. Defaults to None.

    Returns:
        A model mapping `{name: int32 [batch, length]}` to float32 logits
        `[batch, length, num_labels]`.

    Example:
    >>> model = build_token_classifier(backbone, tokenizer.model_input_names, 13)
    """
    backbones.freeze_unused_pooler(backbone)
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in input_names}
    hidden = backbones.last_hidden_state(backbone, inputs)
    hidden = keras.layers.Dropout(dropout, name="head_dropout")(hidden)
    logits = keras.layers.Dense(
        num_labels,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range, seed=seed),
        name="token_logits",
    )(hidden)
    # Logits stay float32 under mixed precision so the softmax and loss are stable.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(inputs=inputs, outputs=logits, name="token_classifier")
