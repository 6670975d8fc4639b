"""Export of NER runs trained with document context: what the report says, and the context signature's check.

Every artifact is scored as the run was trained: each evaluation sentence
read with its document's neighbours (`task.evaluate` lays the context out in
the ids, which is all TFLite and ONNX see). The `text_with_context`
signature must give the Keras Predictor's labels on the same sentences.
"""

from __future__ import annotations

from kerastune_nlp.errors import ExportError


def context_note(predictor) -> str | None:
    """The report's note on document context, or None for a run without it."""
    size = predictor.document_context
    if not size:
        return None
    return (f"Document context: every artifact is scored with each sentence read in its document ({size} "
            "sub-tokens of context per side, as trained). TFLite and ONNX take ids with the context laid out "
            "([CLS] left sentence right [SEP]; only the sentence's positions are read); the SavedModel's "
            "`text_with_context` signature takes text, left_context and right_context strings.")


def check_context_signature(task, predictor, examples, signature, row, batch: int = 32) -> None:
    """`text_with_context` on the evaluation sentences (context from their documents) == the Predictor's labels."""
    from kerastune_nlp._tf import tf

    inputs = task.raw_context_inputs_of(list(examples))
    expected = task.predict_with_context(predictor, inputs)
    got = []
    for begin in range(0, len(expected), batch):
        outputs = signature(**{name: tf.constant(values[begin: begin + batch]) for name, values in inputs.items()})
        got.extend(task.from_raw_outputs({name: value.numpy() for name, value in outputs.items()}))
    compared = [(a, b) for a, b in zip(got, expected) if a is not None]
    same = sum(task.same_prediction(a, b) for a, b in compared)
    row.extra["context_signature_agreement"] = f"{same}/{len(compared)}"
    if same < len(compared):
        bad = next(i for i, (a, b) in enumerate(zip(got, expected))
                   if a is not None and not task.same_prediction(a, b))
        raise ExportError(f"the text_with_context signature disagrees with the Keras model on "
                          f"{len(compared) - same} of {len(compared)} texts (first: #{bad}, {got[bad]!r} vs "
                          f"{expected[bad]!r})")
