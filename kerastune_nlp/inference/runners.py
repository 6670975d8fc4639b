"""Runs an exported artifact (SavedModel, TFLite, ONNX) on token ids (`ArtifactPredictor` wraps a runner).

Every artifact takes the same padded int32 `input_ids` / `attention_mask` /
`token_type_ids` batch and returns the model's float32 outputs, so the
task's own `predict` and `evaluate` score an artifact exactly as they score
the Keras model: `ArtifactPredictor` only replaces how outputs are computed.
"""

from __future__ import annotations

import numpy as np

from kerastune_nlp.errors import MissingDependencyError
from kerastune_nlp.inference.artifacts import IDS_SIGNATURE


def load_saved_model(path):
    """`tf.saved_model.load` with the tensorflow-text ops registered first."""
    import tensorflow_text  # noqa: F401  (registers the in-graph tokenizer's ops)

    from kerastune_nlp._tf import tf

    return tf.saved_model.load(str(path))


class SavedModelRunner:
    """The `ids` signature of a SavedModel version folder."""

    kind = "savedmodel"
    call_overhead_tokens = 48  # as the Keras model's (TensorFlow's per-call cost)

    def __init__(self, path):
        self.loaded = load_saved_model(path)
        self.signature = self.loaded.signatures[IDS_SIGNATURE]

    def __call__(self, features: dict) -> np.ndarray:
        from kerastune_nlp._tf import tf

        return self.signature(**{k: tf.constant(v) for k, v in features.items()})["logits"].numpy()


class TFLiteRunner:
    """A .tflite file through LiteRT (`ai-edge-litert`), resized to each batch's shape."""

    kind = "tflite"
    # 1.38 ms for 1 row of 16 tokens, 1.14 ms per row in a batch of 32: padding costs more than calls.
    call_overhead_tokens = 4

    def __init__(self, path, threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise MissingDependencyError("Running TFLite models needs ai-edge-litert: "
                                         "pip install 'kerastune-nlp[export]'.") from error
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.inputs = {self._name(d["name"]): d for d in self.interpreter.get_input_details()}
        self.output = self.interpreter.get_output_details()[0]
        self.shape = None

    @staticmethod
    def _name(tensor_name: str) -> str:
        # "serving_default_input_ids:0" -> "input_ids"
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            if name in tensor_name:
                return name
        return tensor_name

    def __call__(self, features: dict) -> np.ndarray:
        shape = next(iter(features.values())).shape
        if shape != self.shape:
            for name, array in features.items():
                self.interpreter.resize_tensor_input(self.inputs[name]["index"], list(array.shape), strict=False)
            self.interpreter.allocate_tensors()
            self.output = self.interpreter.get_output_details()[0]
            self.shape = shape
        for name, array in features.items():
            self.interpreter.set_tensor(self.inputs[name]["index"], array.astype(self.inputs[name]["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).astype(np.float32)


class OnnxRunner:
    """An .onnx file through ONNX Runtime on the CPU."""

    kind = "onnx"
    call_overhead_tokens = 8

    def __init__(self, path, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError as error:
            raise MissingDependencyError("Running ONNX models needs onnxruntime: "
                                         "pip install 'kerastune-nlp[export]'.") from error
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, features: dict) -> np.ndarray:
        feed = {name: features[name.split(":")[0]] for name in self.input_names}
        return self.session.run(None, feed)[0].astype(np.float32)
