"""`Predictor`: a trained model with its task, tokenizer and settings, for every task.

It runs the model on encoded rows (length-sorted batches, results back in
input order); the task turns inputs into rows and outputs into predictions
and scores, so `predict` and `evaluate` mean the same thing for every task:
`predict` returns one prediction per input, `evaluate` a dict of scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from kerastune_nlp.runs.layout import RunLayout


class Predictor:
    """Predicts with a trained model.

    Args:
        task: the `Task` (with its fitted state: labels, threshold ...).
        model: the Keras model.
        tokenizer: its Hugging Face fast tokenizer.
        backbone_config: the backbone's `PretrainedConfig`.
        max_length: int. Sub-tokens per model input.
        batch_size: int. Rows per prediction batch. Defaults to 32.

    Example:
    >>> predictor = kt.load_run("saved_models/wnut17")
    >>> predictor.predict(["Empire State Building is tall"])
    [['B-location', 'I-location', 'I-location', 'O', 'O']]
    """

    def __init__(self, task, model, tokenizer, backbone_config, max_length: int, batch_size: int = 32):
        self.task = task
        self.model = model
        self.tokenizer = tokenizer
        self.backbone_config = backbone_config
        self.max_length = max_length
        self.batch_size = batch_size
        self.input_names = list(tokenizer.model_input_names)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.retrace()

    @property
    def labels(self) -> list[str] | None:
        return self.task.state.get("labels")

    def retrace(self) -> None:
        """Drops the traced forward pass; needed after the model's layers change (LoRA merge).

        One trace for every batch shape (a [None, None] signature): tracing per
        shape would cost a second per new sentence length at batch 1.
        """
        from kerastune_nlp._tf import tf

        model = self.model
        signature = [{name: tf.TensorSpec([None, None], tf.int32, name=name) for name in self.input_names}]
        self._forward = tf.function(lambda features: model(features, training=False), input_signature=signature)

    def run_batch(self, features: dict) -> np.ndarray:
        """Padded int32 features by input name -> float32 outputs of the model."""
        return self._forward(features).numpy()

    def outputs(self, rows: Sequence) -> list[np.ndarray]:
        """The model's output for each encoded row, in row order (padding kept).

        Rows run in length order so each batch pads little; numpy padding
        instead of a tf.data pipeline keeps batch-1 latency low.
        """
        from kerastune_nlp.data.batching import pad_rows

        if not len(rows):
            return []
        order = np.argsort([len(r.input_ids) for r in rows], kind="stable")
        results: list = [None] * len(rows)
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin: begin + self.batch_size]
            outputs = self.run_batch(pad_rows([rows[i] for i in batch], self.input_names, self.pad_id))
            for index, output in zip(batch, outputs):
                results[index] = output
        return results

    def predict(self, inputs: Sequence, **options) -> list:
        """One prediction per input: word tags (ner), a label, labels, or a value."""
        return self.task.predict(self, inputs, **options)

    def evaluate(self, examples: Sequence) -> dict:
        """Scores against the examples' gold labels."""
        return self.task.evaluate(self, examples)

    def save_model_files(self, directory) -> None:
        """Writes the weights (model only, no optimizer state), tokenizer and backbone config."""
        layout = RunLayout(Path(directory))
        self.model.save_weights(str(layout.weights))
        self.tokenizer.save_pretrained(str(layout / RunLayout.TOKENIZER))
        self.backbone_config.save_pretrained(str(layout / RunLayout.BACKBONE_CONFIG))

    @classmethod
    def load(cls, path, batch_size: int = 32) -> "Predictor":
        """Loads a run directory (see `kerastune_nlp.load_run`)."""
        from kerastune_nlp.runs.loading import load_run

        return load_run(path, batch_size=batch_size)
