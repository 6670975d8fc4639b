"""ONNX through tf2onnx, always verified with ONNX Runtime, plus dynamic int8 quantization.

tf2onnx 1.17 has no converter for `Erfc` (TF 2.21's exact GELU emits it): it
logs "Unsupported ops" yet exits 0 and writes a file ONNX Runtime rejects.
`_register_erfc` rewrites Erfc(x) as 1 - Erf(x), and every written file is
loaded by ONNX Runtime and compared with TensorFlow before it is published.

Both steps are quiet unless the user asked for everything (`kerastune_nlp.noise`):
tf2onnx logs its passes, and ONNX Runtime's quantizer logs 38 lines per BERT
model on the root logger ("Please consider to run pre-processing ...",
"Ignore MatMul due to non constant B ...").
"""

from __future__ import annotations

import logging
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
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError("ONNX export needs tf2onnx: pip install 'kerastune-nlp[export]'.") from error
    from tf2onnx.convert import _convert_common

    from kerastune_nlp.noise import quiet
    from kerastune_nlp._tf import tf
    from kerastune_nlp.export.steps import collect_between_tf2onnx_passes

    _register_erfc()
    partial = target.with_name(target.name + ".partial")
    with quiet({"tf2onnx": logging.WARNING}), collect_between_tf2onnx_passes(), tf.device("/cpu:0"):
        graph_def, inputs, outputs, renamed = _frozen_graph(module)
        # What `tf2onnx.convert.from_function` does next, with the same arguments. The model proto
        # it returns is dropped at once: the file is what is verified and published.
        _convert_common(graph_def, name="logits", continue_on_error=True, target=None, opset=OPSET,
                        custom_ops=None, custom_op_handlers=None, custom_rewriter=None, extra_opset=None,
                        shape_override=None, input_names=inputs, output_names=outputs, inputs_as_nchw=None,
                        outputs_as_nchw=None, large_model=False, tensors_to_rename=renamed,
                        initialized_tables=None, output_path=str(partial))
        del graph_def
    try:
        import onnxruntime

        onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime raises its own exception types
        partial.unlink(missing_ok=True)
        raise ExportError(f"tf2onnx wrote a model ONNX Runtime rejects ({str(error)[:300]}); nothing was "
                          "published. Export the other formats, or report the op it names.") from error
    os.replace(partial, target)
    return target


def _frozen_graph(module):
    """The logits function frozen and optimized by grappler, as `tf2onnx.tf_loader.from_function` does.

    Done here rather than by `tf2onnx.convert.from_function` to hold one copy
    of the weights at a time: tf2onnx keeps the frozen function, its GraphDef
    and a session graph alive through grappler (MiniLM: the process grew by
    1.7 GB at that peak; here by 0.9 GB, and the whole conversion by 1.3 GB).
    The tf2onnx functions used are those of the pinned 1.17.

    Returns:
        `(graph_def, input_names, output_names, tensors_to_rename)`.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from tf2onnx import tf_loader
    from tf2onnx.convert import tensor_names_from_structed

    from kerastune_nlp._tf import tf
    from kerastune_nlp.export.steps import release_memory

    function = module.logits_function()
    concrete = function.get_concrete_function(*function.input_signature)
    inputs = [t.name for t in concrete.inputs if t.dtype != tf.dtypes.resource]
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    renamed = tensor_names_from_structed(concrete, inputs, outputs)
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    del frozen, concrete, function
    release_memory()
    graph_def = tf_loader.fix_freezing_errors_part2(graph_def)
    with tf.Graph().as_default():  # grappler runs on a graph, not eagerly
        graph_def = tf_loader.tf_optimize(inputs, outputs, graph_def)
    return graph_def, inputs, outputs, renamed


def quantize_int8(source: Path, target: Path) -> Path:
    """ONNX Runtime dynamic int8 quantization, per channel (cosine 0.991 vs 0.958 per tensor here)."""
    import onnxruntime.quantization
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from kerastune_nlp.noise import quiet

    partial = target.with_name(target.name + ".partial")
    with quiet(root_callers=(os.path.dirname(onnxruntime.quantization.__file__),)):
        quantize_dynamic(str(source), str(partial), per_channel=True, weight_type=QuantType.QInt8)
    os.replace(partial, target)
    return target
