"""What the sequence-level tasks share: reading, cleaning and encoding texts, the first-token head.

`TextTask` is the base of classification, multilabel and regression; each
subclass says how a label is written (`parse_label`), which labels an example
carries, how splits are stratified, how labels become targets, its loss, and
how outputs become predictions and scores. The data readers take these rules
as plain callables.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path

import numpy as np

from kerastune_nlp.config import QUICK_SIZES, DataConfig, TextDataConfig
from kerastune_nlp.errors import ConfigError, DataFormatError, LabelError
from kerastune_nlp.tasks.base import EncodedSplit, Task

logger = logging.getLogger("kerastune_nlp.tasks")


@dataclasses.dataclass(frozen=True)
class EncodedText:
    input_ids: np.ndarray
    token_type_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)


class TextTask(Task):
    """Base of the tasks with one label (or value) per text or text pair."""

    config_class = TextDataConfig
    # Measured on the bundled TREC and the IMDb sample (README, "Default
    # recipes"): against NER's 2e-4 / batch 8, 5e-5 / batch 16 gained 1.6
    # points of test accuracy on TREC and 2.4 on IMDb, where 2e-4 overfits
    # from the first epoch (dev loss climbs). Multi-label and regression
    # inherit it; no bundled data measures them.
    recipe = {"learning_rate": 5e-5, "batch_size": 16}

    # -- data ------------------------------------------------------------------

    def bundled_splits(self) -> tuple[dict, str] | None:
        """The data set used when no file is given, or None."""
        return None

    # -- label rules -------------------------------------------------------------

    def parse_label(self, value, where: str, column: str, separator: str = ","):
        """One label cell as read -> this task's label; raises DataFormatError naming `where` when it is not one.

        This base rule: one class name. `separator` is for tasks whose cell
        holds several labels.
        """
        if isinstance(value, (list, tuple, dict)):
            raise DataFormatError(
                f"{where}: expected one label in column {column!r}. Received: {json.dumps(value)[:60]}. "
                'For several labels per example use task="multilabel".'
            )
        if value is None or str(value).strip() == "":
            raise DataFormatError(f"{where}: empty label in column {column!r}. Every example needs a label.")
        return str(value).strip()

    def labels_of(self, example) -> tuple:
        """The label names one example carries (none when the task predicts a value)."""
        return (example.label,)

    def label_set(self, examples) -> list[str]:
        """Sorted distinct label names of `examples`."""
        return sorted({label for e in examples for label in self.labels_of(e)})

    def strata(self, examples: list, parts: int) -> dict:
        """`{stratum: examples}` that `data.splits.stratified_split` keeps the shares of: here, the class."""
        from kerastune_nlp.data.splits import by_label

        return by_label(examples, parts)

    def check_trainable(self, train) -> None:
        """Raises LabelError unless the training set can teach something: here, two classes."""
        _require_examples(train)
        labels = self.label_set(train)
        if len(labels) < 2:
            raise LabelError(
                f"The training set ({train[0].source}) has a single class {labels} ({len(train)} examples): "
                "a classifier needs at least two. Check the label column or add examples of other classes."
            )

    # -- data ------------------------------------------------------------------

    def read_options(self) -> dict:
        """The keyword arguments the `data.text_files` and `data.text_datasets` readers take for this task."""
        config = self.config
        return dict(parse_label=self.parse_label, text_column=config.text_column,
                    text_pair_column=config.text_pair_column, label_column=config.label_column)

    def load_splits(self, data: DataConfig, seed: int) -> tuple[dict, str]:
        from kerastune_nlp.data import augment, cleaning
        from kerastune_nlp.data.splits import stratified_split
        from kerastune_nlp.data.text_datasets import read_hub_dataset

        config = self.config
        if data.dataset:
            splits = {ours: read_hub_dataset(data.dataset, split, **self.read_options())
                      for ours, split in (("train", "train"), ("dev", "validation"), ("test", "test"))}
            name = data.dataset
        elif data.train:
            splits = {split: self.read_file(path, data)
                      for split, path in (("train", data.train), ("dev", data.dev), ("test", data.test)) if path}
            name = Path(data.train).stem
        else:
            bundled = self.bundled_splits()
            if bundled is None:
                raise ConfigError(f"--task {self.name} needs data: pass --train FILE (and --dev/--test) "
                                  "or --dataset NAME.")
            splits, name = bundled
        if "dev" not in splits:
            if "test" in splits:
                splits["train"], splits["dev"] = stratified_split(splits["train"], (0.9, 0.1), seed, self.strata)
            else:
                parts = stratified_split(splits["train"], data.split, seed, self.strata)
                splits.update(zip(("train", "dev", "test"), parts))
            logger.info("Split with seed %d: %s", seed, {k: len(v) for k, v in splits.items()})
        if config.clean:
            for split in list(splits):
                splits[split], report = cleaning.clean_examples(splits[split], list(config.clean))
                logger.info("cleaning %s: %s", split, report)
        if data.quick:
            for split, size in QUICK_SIZES.items():
                if len(splits.get(split) or []) > size:
                    splits[split] = random.Random(seed).sample(list(splits[split]), size)
        if config.augment == "eda":
            synonyms = augment.default_synonyms(config.synonyms)
            splits["train"], report = augment.eda_augment(splits["train"], synonyms,
                                                          n_aug=config.augment_per_example, seed=seed)
            logger.info("EDA augmentation added %d training examples to %d.", report.added, report.original)
        return splits, name

    def read_file(self, path, data: DataConfig) -> list:
        from kerastune_nlp.data.text_files import read_text_file

        return read_text_file(path, **self.read_options(), encoding=data.encoding,
                              file_format=self.config.file_format, empty=self.config.empty)[0]

    def check_examples(self, examples, split_name) -> None:
        from kerastune_nlp.data.text_examples import check_labels

        labels = self.state.get("labels")
        if labels:
            check_labels(labels, examples, split_name, self.labels_of)

    def check_splits(self, splits) -> None:
        from kerastune_nlp.data.text_examples import check_labels

        super().check_splits(splits)
        self.check_trainable(splits["train"])
        known = self.label_set(splits["train"])
        for name in ("dev", "test"):
            if splits.get(name):
                check_labels(known, splits[name], name, self.labels_of)

    def input_key(self, example):
        return example.text, example.text_pair

    def example_record(self, example):
        return [example.text, example.text_pair, example.label]

    # -- model -----------------------------------------------------------------

    def num_outputs(self) -> int:
        return len(self.state["labels"])

    def targets(self, examples) -> np.ndarray:
        raise NotImplementedError

    @property
    def truncation(self) -> str:
        # "auto": head_tail, measured best on the long IMDb reviews (README, "Default recipes").
        return "head_tail" if self.config.truncation == "auto" else self.config.truncation

    def encode(self, tokenizer, examples, max_length, labelled=True) -> EncodedSplit:
        if labelled:
            texts = [e.text for e in examples]
            pairs = [e.text_pair or "" for e in examples] if any(e.text_pair is not None for e in examples) else None
        else:
            texts, pairs = examples
        rows, flags = self.encode_rows(tokenizer, list(texts), None if pairs is None else list(pairs), max_length)
        truncated = sum(flags)
        if labelled and truncated:
            logger.warning("%d of %d texts are longer than max_length=%d sub-tokens and were truncated "
                           "(kept: %s); raise --max-length to keep more.",
                           truncated, len(rows), max_length, self.truncation)
        targets = self.targets(examples) if labelled else None
        return EncodedSplit(rows, targets, {"examples": len(rows), "truncated": int(truncated)})

    def encode_rows(self, tokenizer, texts: list, pairs: list | None, max_length: int) -> tuple[list, list[bool]]:
        """Model rows of texts (or pairs), and whether each was truncated to `max_length`."""
        if pairs is None:
            return self._encode_single(tokenizer, texts, max_length)
        encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length,
                            return_token_type_ids=True, verbose=False)
        full = tokenizer(texts, pairs, truncation=False, verbose=False)["input_ids"]
        rows = [EncodedText(np.asarray(ids, np.int32), np.asarray(types, np.int32))
                for ids, types in zip(encoded["input_ids"], encoded["token_type_ids"])]
        return rows, [len(ids) > max_length for ids in full]

    def _encode_single(self, tokenizer, texts: list, max_length: int) -> tuple[list, list[bool]]:
        """Tokenizes once in full, then keeps the head, tail or both of each text's sub-tokens."""
        from kerastune_nlp.data.truncation import keep, special_layout

        encoded = tokenizer(texts, truncation=False, return_token_type_ids=True, verbose=False)
        prefix, suffix = special_layout(tokenizer)
        budget = max_length - prefix - suffix
        rows, truncated = [], []
        for ids, types in zip(encoded["input_ids"], encoded["token_type_ids"]):
            truncated.append(len(ids) > max_length)
            if truncated[-1]:
                positions = keep(range(prefix, len(ids) - suffix), budget, self.truncation)
                positions = [*range(prefix), *positions, *range(len(ids) - suffix, len(ids))]
                ids, types = [ids[i] for i in positions], [types[i] for i in positions]
            rows.append(EncodedText(np.asarray(ids, np.int32), np.asarray(types, np.int32)))
        return rows, truncated

    def build_model(self, backbone, input_names, *, dropout, initializer_range, seed=None):
        from kerastune_nlp.models.sequence_classifier import build_sequence_classifier

        return build_sequence_classifier(backbone, input_names, self.num_outputs(), dropout=dropout,
                                         initializer_range=initializer_range, seed=seed)

    def validation_data(self, predictor, dev_encoded):
        from kerastune_nlp._tf import tf
        from kerastune_nlp.data.batching import make_eval_dataset

        dataset, order = make_eval_dataset(dev_encoded.rows, predictor.input_names, predictor.pad_id,
                                           predictor.batch_size)
        labels = tf.data.Dataset.from_tensor_slices(dev_encoded.targets[order]).batch(predictor.batch_size)
        return tf.data.Dataset.zip((dataset, labels))

    # -- outputs ---------------------------------------------------------------

    def split_inputs(self, inputs, pairs=None) -> tuple[list[str], list[str] | None]:
        """Raw inputs -> texts and optional pairs; (text, pair) tuples are accepted."""
        inputs = list(inputs)
        if pairs is None and inputs and all(isinstance(i, (tuple, list)) and len(i) == 2 for i in inputs):
            texts, pairs = [i[0] for i in inputs], [i[1] for i in inputs]
        else:
            texts = inputs
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise ConfigError(
                f"Expected non-empty texts. Received: an empty text at index {bad[0]}. Remove empty "
                "texts before predicting."
            )
        if pairs is not None and len(pairs) != len(texts):
            raise ConfigError(f"Expected one pair per text. Received: {len(texts)} texts and {len(pairs)} pairs.")
        return texts, (list(pairs) if pairs is not None else None)

    def scores_of(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs -> probabilities (or values)."""
        raise NotImplementedError

    def raw_outputs(self, predictor, inputs, pairs=None, with_truncation: bool = False):
        """Probabilities (classification, multilabel) or values (regression), in input order.

        Texts longer than `max_length` sub-tokens are truncated (the task's
        head / tail / head_tail rule) and a warning says how many; with
        `with_truncation`, also returns one flag per text.
        """
        texts, pairs = self.split_inputs(inputs, pairs)
        rows, flags = self.encode_rows(predictor.tokenizer, texts, pairs, predictor.max_length)
        if any(flags):
            logger.warning("%d of %d texts are longer than max_length=%d sub-tokens and were truncated "
                           "(kept: %s) before predicting.", sum(flags), len(flags), predictor.max_length,
                           self.truncation)
        scores = self.scores_of(np.stack(predictor.outputs(rows)))
        return (scores, flags) if with_truncation else scores

    def serve(self, predictor, inputs: dict) -> list[dict]:
        """What the raw-string SavedModel signature returns, per text (or pair)."""
        scores = self.raw_outputs(predictor, inputs["text"], inputs.get("text_pair"))
        return [self.serve_record(row) for row in scores]

    def serve_record(self, scores: np.ndarray) -> dict:
        """One text's probabilities (or value) -> the signature's outputs for it."""
        raise NotImplementedError

    def json_record(self, predictor, texts, pairs=None, **options) -> list[dict]:
        """One JSON-ready answer per text, saying whether the text was truncated."""
        scores, flags = self.raw_outputs(predictor, texts, pairs, with_truncation=True)
        return [{**self.json_fields(row, **options), "truncated": bool(flag)} for row, flag in zip(scores, flags)]

    def json_fields(self, scores: np.ndarray, **options) -> dict:
        raise NotImplementedError

    def outputs_of_examples(self, predictor, examples) -> np.ndarray:
        encoded = self.encode(predictor.tokenizer, examples, predictor.max_length)
        return self.scores_of(np.stack(predictor.outputs(encoded.rows)))

    def format_prediction(self, text, prediction):
        if isinstance(prediction, list):  # top-k (label, probability) pairs
            return "  ".join(f"{label} {p:.3f}" for label, p in prediction) + f"\t{text}"
        return f"{self.format_value(prediction)}\t{text}"

    def format_value(self, prediction) -> str:
        """One prediction as printed before its text."""
        return str(prediction)

    def per_example_loss(self, examples, outputs) -> np.ndarray:
        raise NotImplementedError

    def raw_text_inputs(self) -> dict:
        inputs = {"text": "one text per example"}
        if self.config.text_pair_column:
            inputs["text_pair"] = "the second text of each pair"
        return inputs

    def tokenizer_agreement(self, tokenizer, graph_tokenizer, examples, extra=()):
        from kerastune_nlp.data.graph_tokenizer import agreement

        # Pairs are checked through the raw signature's predictions; single texts id by id.
        texts = [e.text for e in examples if e.text_pair is None] + list(extra)
        rows = self.encode(tokenizer, (texts, None), graph_tokenizer.max_length, labelled=False).rows
        return agreement(tokenizer, graph_tokenizer, texts, [r.input_ids for r in rows], words=False)

    def raw_inputs_of(self, examples) -> dict:
        inputs = {"text": [e.text for e in examples]}
        if self.config.text_pair_column:
            inputs["text_pair"] = [e.text_pair or "" for e in examples]
        return inputs

    def predict_raw(self, predictor, inputs):
        return self.predict(predictor, inputs["text"], pairs=inputs.get("text_pair"))

    def from_raw_outputs(self, outputs):
        return [label.decode() for label in outputs["labels"]]

    def prediction_row(self, output) -> dict:
        raise NotImplementedError

    def write_reports(self, directory, predictor, examples, scores):
        from kerastune_nlp.evaluation import reports

        outputs = self.outputs_of_examples(predictor, examples)
        rows = []
        for example, output in zip(examples, outputs):
            row = {"text": example.text, "gold": example.label, "source": example.source, "line": example.line}
            if example.text_pair is not None:
                row["text_pair"] = example.text_pair
            rows.append({**row, **self.prediction_row(output)})
        reports.write_worst_predictions(Path(directory) / "worst_predictions.jsonl", rows,
                                        self.per_example_loss(examples, outputs))
        return ["worst_predictions.jsonl"]


def _require_examples(train) -> None:
    if not train:
        raise LabelError("The training set is empty. Check the file and the `empty`/cleaning settings.")
