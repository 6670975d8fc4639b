"""How a task's head looks as a Hugging Face transformers model: `HFHead`, returned by `Task.hf_head()`.

The Hugging Face export (`export/hf_checkpoint.py`, `export/hf_card.py`)
writes config.json and the model card from it and never asks which task it
holds. A task whose head transformers has no class for returns None from
`Task.hf_head()` (the default), and the export refuses it.

Example:
>>> from kerastune_nlp.tasks import get_task
>>> head = get_task("classification")(None, {"labels": ["neg", "pos"]}).hf_head()
>>> head.token_level, head.problem_type, head.labels
(False, 'single_label_classification', ('neg', 'pos'))
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class HFHead:
    """A task head as transformers' `*ForTokenClassification` / `*ForSequenceClassification` model.

    Args:
        labels: tuple of str. The output names in output order: config.json's `id2label` / `label2id`.
        usage: str. The model card's "Use" snippet, a fenced Python block ("PATH" stands for the folder).
        token_level: bool. One output per token (`*ForTokenClassification`, on every token's last hidden
            state) rather than one per text (`*ForSequenceClassification`, on the first token's). Defaults to
            False.
        problem_type: str or None. config.json's `problem_type` ("single_label_classification",
            "multi_label_classification", "regression"); None writes none. Defaults to None.
        pipeline_tag: str. The model card's `pipeline_tag`. Defaults to "text-classification".
        notes: tuple of str. The task's paragraphs among the model card's notes (decoding, threshold, ...).
            Defaults to ().
        config_fields: dict. Added to the `kerastune_nlp` block of config.json (threshold, target scaling,
            ...). Defaults to {}.
        example_dataset: str or None. The data set bundled with kerastune_nlp that a run given no data
            trains on ("wnut17"), named in the model card. Defaults to None.
        target_scaling: (float, float) or None. `(mean, std)` when the model outputs standardised targets:
            the export folds `value = output * std + mean` into the head, so transformers outputs values.
            Defaults to None.
    """

    labels: tuple[str, ...]
    usage: str
    token_level: bool = False
    problem_type: str | None = None
    pipeline_tag: str = "text-classification"
    notes: tuple[str, ...] = ()
    config_fields: Mapping = dataclasses.field(default_factory=dict)
    example_dataset: str | None = None
    target_scaling: tuple[float, float] | None = None

    def fold_scaling(self, kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The head's Dense `(kernel, bias)` with `target_scaling` folded in (unchanged without it)."""
        if self.target_scaling is None:
            return kernel, bias
        mean, std = (float(v) for v in self.target_scaling)
        return kernel * std, bias * std + mean

    def unfold_scaling(self, outputs: np.ndarray) -> np.ndarray:
        """The exported head's outputs mapped back to the Keras model's (unchanged without `target_scaling`)."""
        if self.target_scaling is None:
            return outputs
        mean, std = self.target_scaling
        return (outputs - mean) / std


def sequence_usage(read: str) -> str:
    """The card's snippet for a sequence-level head; `read` turns `logits` ([1, labels]) into the prediction."""
    head = "AutoModelForSequenceClassification"
    return f"""```python
import torch
from transformers import {head}, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("PATH")
model = {head}.from_pretrained("PATH").eval()
batch = tokenizer(["your text"], return_tensors="pt")  # pairs: tokenizer(texts, text_pairs, ...)
with torch.no_grad():
    logits = model(**batch).logits
prediction = {read}
```"""


# The card's snippet for a word-tagging head: one label per word, read at its first sub-token.
WORD_TAGGING_USAGE = """```python
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("PATH")
model = AutoModelForTokenClassification.from_pretrained("PATH").eval()
words = ["Barack", "Obama", "visited", "Paris"]
batch = tokenizer(words, is_split_into_words=True, return_tensors="pt")
with torch.no_grad():
    logits = model(**batch).logits[0]
# one label per word, read at its first sub-token (as kerastune_nlp does)
first = [batch.word_ids().index(i) for i in range(len(words))]
labels = [model.config.id2label[int(logits[j].argmax())] for j in first]
```"""
