"""Imports TensorFlow with Keras 2 (`tf_keras`), which our encoders and tfmot use.

Every module that touches TensorFlow imports `tf` and `keras` from here, so the
`TF_USE_LEGACY_KERAS` switch is set before TensorFlow is first imported and
Keras 3 objects never mix with Keras 2 ones in a model.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides real output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
