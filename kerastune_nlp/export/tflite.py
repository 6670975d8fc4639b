"""TFLite conversions of the token-id model: float32, float16, dynamic-range int8, full int8.

TFLite here cannot carry the in-graph tokenizer (the Flex delegate is in
neither TF 2.21's interpreter nor LiteRT), so every TFLite model takes ids.
Full-integer int8 converts and runs but loses most of the signal on BERT
encoders (activations through LayerNorm and GELU do not fit 8 bits): it is
only published when the accuracy gate lets it through.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Iterable

VARIANTS = {
    "tflite-float32": "float32 weights and activations",
    "tflite-float16": "float16 weights, float32 compute",
    "tflite-int8": "dynamic-range int8: int8 weights, activations quantized on the fly",
    "tflite-int8-full": "full-integer int8 (calibrated on a representative set; accuracy-gated)",
}


def convert(module, variant: str, target: Path, representative: Callable[[], Iterable] | None = None) -> Path:
    """Converts the `logits` function of a `ServingModule` and writes `target` atomically."""
    from kerastune_nlp._tf import tf
    from kerastune_nlp.errors import ConfigError

    function = module.logits_function().get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    if variant == "tflite-float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "tflite-int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "tflite-int8-full":
        if representative is None:
            raise ConfigError("Full-integer int8 needs a representative set of inputs: pass examples with test "
                              "or dev data in the run.")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    elif variant != "tflite-float32":
        raise ConfigError(f"Unknown TFLite variant {variant!r}; expected one of {sorted(VARIANTS)}.")
    from kerastune_nlp.noise import quiet

    # The converter's absl lines (its MLIR passes, "Ignored output_format") and tf.lite's Python warnings.
    with quiet({"tensorflow": logging.ERROR, "absl": logging.ERROR}):
        flatbuffer = converter.convert()
    del converter
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(flatbuffer)
    os.replace(partial, target)
    return target
