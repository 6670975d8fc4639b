"""The serving signatures of an exported model, for every task.

`serving_default` takes raw UTF-8 strings and tokenizes inside the graph
(BERT-family WordPiece vocabularies only); `ids` takes token ids and masks
and works for any backbone. A NER run trained with document context also
gets `text_with_context`: `text`, `left_context`, `right_context` (strings,
'' for none), the context cut and laid out in the graph as training did. What each returns is the task's business
(`Task.serve_raw_text`, `Task.serving_outputs`): this module only wires the
model, the in-graph tokenizer and the input specs together.
"""

from __future__ import annotations

from kerastune_nlp._tf import tf
from kerastune_nlp.inference.artifacts import CONTEXT_SIGNATURE, IDS_SIGNATURE, RAW_SIGNATURE


class ServingModule(tf.Module):
    """A trained model with its serving functions, ready for `tf.saved_model.save`.

    Args:
        predictor: a `Predictor` (model, task, tokenizer, max_length).
        graph_tokenizer: a `GraphWordPiece`, or None for the ids signature only.
    """

    def __init__(self, predictor, graph_tokenizer=None):
        super().__init__(name="kerastune_nlp_serving")
        self.model = predictor.model
        self.graph_tokenizer = graph_tokenizer
        self._task = predictor.task
        self._input_names = list(predictor.input_names)

    def forward(self, features: dict):
        """Model outputs as float32 (mixed-precision heads already are; this makes sure)."""
        wanted = {name: features[name] for name in self._input_names}
        return tf.cast(self.model(wanted, training=False), tf.float32)

    def ids_function(self):
        names = self._input_names
        specs = [tf.TensorSpec([None, None], tf.int32, name=name) for name in names]

        # Positional tensors named by their specs: SavedModel signatures need flat named inputs.
        @tf.function(input_signature=specs)
        def serve_ids(*tensors):
            outputs = self.forward(dict(zip(names, tensors)))
            return {"logits": outputs, **self._task.serving_outputs(outputs)}

        return serve_ids

    def logits_function(self):
        """Token ids -> logits only: what TFLite and ONNX carry (no string outputs)."""
        names = self._input_names
        specs = [tf.TensorSpec([None, None], tf.int32, name=name) for name in names]

        @tf.function(input_signature=specs)
        def logits(*tensors):
            return {"logits": self.forward(dict(zip(names, tensors)))}

        return logits

    def raw_text_function(self, names=None):
        names = list(names or self._task.raw_text_inputs())
        specs = [tf.TensorSpec([None], tf.string, name=name) for name in names]

        @tf.function(input_signature=specs)
        def serve_text(*tensors):
            return self._task.serve_raw_text(self.graph_tokenizer, self.forward, dict(zip(names, tensors)))

        return serve_text

    def signatures(self) -> dict:
        """Concrete functions by signature name (the raw one only with an in-graph tokenizer)."""
        ids = self.ids_function()
        signatures = {IDS_SIGNATURE: ids.get_concrete_function()}
        if self.graph_tokenizer is not None:
            signatures[RAW_SIGNATURE] = self.raw_text_function().get_concrete_function()
            context_inputs = getattr(self._task, "raw_context_inputs", dict)()
            if context_inputs:
                signatures[CONTEXT_SIGNATURE] = self.raw_text_function(context_inputs).get_concrete_function()
        else:
            signatures[RAW_SIGNATURE] = signatures[IDS_SIGNATURE]
        return signatures


def describe_signature(concrete) -> dict:
    """`{"inputs": {name: [dtype, shape]}, "outputs": {...}}` of one signature, for reports and metadata."""
    def spec(tensor_spec):
        shape = [d if d is not None else -1 for d in tensor_spec.shape.as_list()]
        return {"dtype": tensor_spec.dtype.name, "shape": shape}

    inputs = [s for s in tf.nest.flatten(concrete.structured_input_signature) if isinstance(s, tf.TensorSpec)]
    outputs = concrete.structured_outputs
    return {"inputs": {s.name: spec(s) for s in inputs},
            "outputs": {name: spec(tf.TensorSpec.from_tensor(t)) for name, t in outputs.items()}}
