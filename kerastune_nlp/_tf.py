"""Imports TensorFlow with Keras 2 (`tf_keras`), which our encoders and tfmot use.

Every module that touches TensorFlow imports `tf` and `keras` from here, so the
`TF_USE_LEGACY_KERAS` switch is set before TensorFlow is first imported and
Keras 3 objects never mix with Keras 2 ones in a model.

TensorFlow's native start-up lines are hidden unless asked for (see
`kerastune_nlp.noise`); the device probe that prints "failed call to cuInit"
runs inside that window too.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from kerastune_nlp import noise  # noqa: E402


def _import_tensorflow():
    import tensorflow
    import tf_keras

    return tensorflow, tf_keras


noise.configure()
if "tensorflow" in sys.modules:  # imported by the caller already: nothing left to hide
    tf, keras = _import_tensorflow()
else:
    with noise.native_startup_hidden():
        tf, keras = _import_tensorflow()
        # Probes CUDA now, inside the window ("failed call to cuInit"); physical devices only, so
        # logical devices can still be configured afterwards.
        tf.config.list_physical_devices()

__all__ = ["tf", "keras"]
