"""Dense matmuls in bfloat16 with float32 everywhere else, and back to float32 on restore."""

import numpy as np

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.models.autocast import AutocastDense


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 16))
    hidden = keras.layers.Dense(32, activation="gelu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.LayerNormalization()(hidden)))


def test_dense_matmuls_round_to_bfloat16_and_restore_gives_float32_back():
    model = _model()
    data = np.random.default_rng(0).normal(size=(4, 5, 16)).astype("float32")
    reference = model(data).numpy()
    autocast = AutocastDense(model)
    assert len(autocast.layers) == 2  # the two Dense layers, not the LayerNormalization
    outputs = model(data)
    assert outputs.dtype == tf.float32 and outputs.shape == (4, 5, 3)
    difference = np.abs(outputs.numpy() - reference).max() / np.abs(reference).max()
    assert 0 < difference < 2e-2  # bfloat16 keeps 8 bits of mantissa: rounded, not wrong
    np.testing.assert_array_equal(tf.function(model)(data).numpy(), outputs.numpy())  # same traced
    # Gradients flow to the float32 kernels through the casts.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(data) ** 2)
    gradients = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and g.dtype == tf.float32 for g in gradients)
    autocast.restore()
    np.testing.assert_array_equal(model(data).numpy(), reference)
    assert not any("call" in vars(layer) for layer in model.layers)


def test_a_two_dimensional_input_keeps_its_static_shape():
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    AutocastDense(model)
    traced = tf.function(model).get_concrete_function(tf.TensorSpec([None, 16], tf.float32))
    assert traced.structured_outputs.shape.as_list() == [None, 4]
