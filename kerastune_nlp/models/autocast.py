"""Dense-layer matmuls in bfloat16, everything else in float32 (the split of PyTorch's CPU autocast).

Keras' `mixed_bfloat16` policy runs whole layers in bfloat16: GELU, dropout,
residual adds and the LayerNorm casts included. On a CPU, TensorFlow's
oneDNN matmuls in bfloat16 are fast (AVX512-BF16, AMX), but the elementwise
ops run through Eigen, which converts element by element; measured on
MiniLM-L6 NER (2-core AVX512-BF16 CPU), `mixed_bfloat16` made the training
steps 1.16x faster and Dense matmuls alone in bfloat16 1.22x, with scores
closer to float32 (only the matmul inputs are rounded).

`AutocastDense` swaps the `call` of every Dense layer of one model for a
bfloat16 matmul with float32 output, and puts the original back on
`restore()`. It is a training-time device: run directories keep float32
weights (`model.h5`), and a reloaded or exported model runs plain float32.
"""

from __future__ import annotations

import types

from kerastune_nlp._tf import keras, tf


def _bfloat16_matmul_call(self, inputs):
    """Dense.call with the matmul in bfloat16: float32 in, float32 out, bias and activation in float32."""
    rank = inputs.shape.rank
    if inputs.dtype != tf.float32 or rank is None or rank < 2 or not isinstance(inputs, tf.Tensor):
        return type(self).call(self, inputs)  # ragged, sparse or non-float input: Keras' own path
    kernel = tf.cast(self.kernel, tf.bfloat16)
    flat = tf.reshape(tf.cast(inputs, tf.bfloat16), [-1, inputs.shape[-1]])  # one 2-D MatMul for oneDNN
    outputs = tf.cast(tf.matmul(flat, kernel), tf.float32)
    outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [self.units]], axis=0))
    outputs.set_shape(inputs.shape[:-1].concatenate([self.units]))
    if self.use_bias:
        outputs = tf.nn.bias_add(outputs, self.bias)
    if self.activation is not None:
        outputs = self.activation(outputs)
    return outputs


class AutocastDense:
    """Runs the Dense layers of `model` with bfloat16 matmuls until `restore()`.

    Args:
        model: a built Keras model whose weights are float32 (policy "float32").
    """

    def __init__(self, model):
        self.layers = [layer for layer in model._flatten_layers(include_self=False)
                       if isinstance(layer, keras.layers.Dense) and layer.dtype == "float32"]
        for layer in self.layers:
            layer.call = types.MethodType(_bfloat16_matmul_call, layer)

    def restore(self) -> None:
        """Puts Keras' own Dense.call back on every layer."""
        for layer in self.layers:
            if "call" in vars(layer):
                del layer.call
        self.layers = []
