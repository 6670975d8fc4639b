"""`Predictor`: a trained model with its task, tokenizer and settings, for every task; and the loaders.

It runs the model on encoded rows (length-sorted batches, results back in
input order); the task turns inputs into rows and outputs into predictions
and scores, so `predict` and `evaluate` mean the same thing for every task:
`predict` returns one prediction per input, `evaluate` a dict of scores.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from kerastune_nlp.errors import RunDirectoryError
from kerastune_nlp.inference.artifacts import resolve_path
from kerastune_nlp.inference.cache import PredictionCache
from kerastune_nlp.inference.loading import backbone_config_of, load_tokenizer, sidecar_of, task_of
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

        cache_size: int. Recent answers kept (LRU) by `predict`, `serve`,
            `predict_entities` and `predict_json`; 0 (the default here) keeps
            none. `Predictor.load` turns it on.

    Every public method is safe to call from many threads at once: calls are
    serialized around the tokenizer and the model (the fast tokenizer and
    the TFLite interpreter are not re-entrant), so concurrent callers should
    send batches, not single texts, for throughput.

    Example:
    >>> predictor = kt.Predictor.load("saved_models/wnut17")
    >>> predictor.predict(["Empire State Building is tall"])
    [['B-location', 'I-location', 'I-location', 'O', 'O']]
    >>> predictor.predict_entities(["Barack Obama visited New York."])
    [[{'text': 'Barack Obama', 'label': 'person', 'start': 0, 'end': 12, 'score': 0.97}, ...]]
    """

    def __init__(self, task, model, tokenizer, backbone_config, max_length: int, batch_size: int = 32,
                 cache_size: int = 0):
        self.task = task
        self.model = model
        self.tokenizer = tokenizer
        self.backbone_config = backbone_config
        self.max_length = max_length
        self.batch_size = batch_size
        self.input_names = list(tokenizer.model_input_names)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.cache = PredictionCache(cache_size)
        self.source = {"kind": "keras", "path": None}
        self._lock = threading.RLock()
        self._signature = None
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

        if hasattr(self, "cache"):
            self.cache.clear()  # answers of the old layers are stale
        model = self.model
        signature = [{name: tf.TensorSpec([None, None], tf.int32, name=name) for name in self.input_names}]
        self._forward = tf.function(lambda features: model(features, training=False), input_signature=signature)

    # Fixed cost of one model call in tokens of work (measured on the bundled
    # MiniLM, 2-core CPU: 8.0 ms for 1 row of 16 tokens, 2.1 ms per row in a
    # batch of 32): batching pays in TensorFlow. See `length_batches`.
    call_overhead_tokens = 48

    def run_batch(self, features: dict) -> np.ndarray:
        """Padded int32 features by input name -> float32 outputs of the model."""
        return self._forward(features).numpy()

    def outputs(self, rows: Sequence) -> list[np.ndarray]:
        """The model's output for each encoded row, in row order (per-token outputs without padding).

        Rows run in length order so each batch pads little; numpy padding
        instead of a tf.data pipeline keeps batch-1 latency low.
        """
        from kerastune_nlp.data.batching import pad_rows

        if not len(rows):
            return []
        results: list = [None] * len(rows)
        with self._lock:
            for batch in length_batches([len(r.input_ids) for r in rows], self.batch_size,
                                        self.call_overhead_tokens):
                outputs = self.run_batch(pad_rows([rows[i] for i in batch], self.input_names, self.pad_id))
                for index, output in zip(batch, outputs):
                    # Per-token outputs lose their padding: what a row gets must not depend on its batch.
                    results[index] = output[: len(rows[index].input_ids)] if output.ndim >= 2 else output
        return results

    def predict(self, inputs: Sequence = (), **options) -> list:
        """One prediction per input: word tags (ner), a label, labels, or a value.

        Options: `top_k` (classification, multilabel: the k most probable
        `(label, probability)` pairs), `pairs` (the second text of each pair),
        `documents` (ner, instead of `inputs`): a list of documents, each one
        text or a list of sentences (strings or word lists); returns the word
        tags of each sentence of each document, read with the run's document
        context (see `predict_entities`).
        """
        if "documents" in options:
            return self._documents("predict", inputs, options.pop("documents"), options)
        inputs = list(inputs)
        pairs = options.pop("pairs", None)
        pairs = list(pairs) if pairs is not None else None
        keys = [("predict", _freeze(options), _freeze(x), None if pairs is None else _freeze(pairs[i]))
                for i, x in enumerate(inputs)]

        def compute(indices):
            chosen_pairs = {"pairs": [pairs[i] for i in indices]} if pairs is not None else {}
            return self.task.predict(self, [inputs[i] for i in indices], **chosen_pairs, **options)

        return self._cached(keys, compute)

    def predict_entities(self, texts: Sequence[str] = (), aggregation: str = "first",
                         documents: Sequence | None = None) -> list[list[dict]]:
        """Entity spans of raw texts (NER models): `{"text", "label", "start", "end", "score"}` per entity.

        `start`/`end` are character offsets into each original string. Texts
        are split into words and punctuation as CoNLL data is; texts longer
        than `max_length` sub-tokens are read in overlapping windows, so no
        entity is lost. `aggregation` combines a word's sub-tokens: "first"
        (what training labels), "average" (mean probabilities) or "max".

        `documents` (instead of `texts`): each document is a list of sentence
        strings, or one text cut into sentences by `split_sentences`
        (`inference.documents`). Every sentence is read with the document
        context the run was trained with (`context_size`; none when 0, so a
        sentence gets what `texts` gives it). Returns, per document, one
        `{"text", "start", "end", "entities"}` per sentence; every offset
        is into the caller's string: the document's text, or the sentence of
        a list. (`texts` may also hold `Document` objects: each is answered
        so.)

        Example:
        >>> predictor.predict_entities(documents=["Obama met Merkel. They spoke in Berlin."])
        [[{'text': 'Obama met Merkel.', 'start': 0, 'end': 17, 'entities': [...]}, {...}]]
        """
        if documents is not None:
            return self._documents("entities", texts, documents, {"aggregation": aggregation})
        texts = list(texts)
        keys = [("entities", aggregation, _freeze(t)) for t in texts]
        return self._cached(keys, lambda idx: self.task.entities(self, [texts[i] for i in idx], aggregation))

    def serve(self, inputs: dict) -> list[dict]:
        """The raw-string serving signature's outputs, one dict per example, computed by this predictor.

        Args:
            inputs: lists of str named as `serving_inputs()` ({"text": [...]},
                plus "text_pair" for pair models).
        """
        columns = self._check_serving_inputs(inputs)
        count = len(next(iter(columns.values())))
        keys = [("serve",) + tuple(_freeze(columns[name][i]) for name in sorted(columns)) for i in range(count)]
        return self._cached(keys, lambda idx: self.task.serve(
            self, {name: [values[i] for i in idx] for name, values in columns.items()}))

    def predict_json(self, texts: Sequence[str] = (), **options) -> list[dict]:
        """One JSON-ready answer per raw text (what `kerastune-nlp predict` writes as JSON Lines).

        `documents=[...]` (ner): per document, one answer per sentence (with
        its `start`/`end`), read with the run's document context.
        """
        if "documents" in options:
            return self._documents("json", texts, options.pop("documents"), options)
        texts = list(texts)
        keys = [("json", _freeze(options), _freeze(t)) for t in texts]
        return self._cached(keys, lambda idx: self.task.json_record(self, [texts[i] for i in idx], **options))

    def _documents(self, kind: str, inputs, documents, options: dict) -> list:
        """`predict`, `predict_entities` and `predict_json` on documents (see `task.tag_documents`)."""
        from kerastune_nlp.errors import ConfigError
        from kerastune_nlp.data.documents import Document

        inputs = list(inputs)
        if inputs:
            raise ConfigError(f"Pass either texts or `documents`, not both. Received: {len(inputs)} texts and "
                              f"`documents`.")
        if not hasattr(self.task, "tag_documents"):
            raise ConfigError(f"Expected a NER model for `documents`. Received: a {self.task.name} model.")
        if isinstance(documents, (str, Document)):
            raise ConfigError("Expected `documents` to be a list of documents. Received: one document; wrap it "
                              "in a list.")
        documents = [Document.of(d, i, words_allowed=kind == "predict") for i, d in enumerate(documents)]
        aggregation = options.get("aggregation", "first")
        compute = {"predict": lambda chosen: self.task.predict_documents(self, chosen),
                   "entities": lambda chosen: self.task.document_entities(self, chosen, aggregation),
                   "json": lambda chosen: self.task.document_json_records(self, chosen, aggregation)}[kind]
        keys = [("documents", kind, _freeze(options), d) for d in documents]
        return self._cached(keys, lambda idx: compute([documents[i] for i in idx]))

    @property
    def document_context(self) -> int:
        """Sub-tokens of document context per side the model reads (0: every sentence is read alone)."""
        size = getattr(self.task, "context_size", None)
        return int(size(self.max_length)) if callable(size) else 0

    def _cached(self, keys: list, compute) -> list:
        def locked(indices):
            with self._lock:
                return compute(indices)

        return self.cache.get_many(keys, locked)

    def serving_inputs(self) -> dict:
        """Names (and meaning) of the raw-string inputs `serve` takes."""
        return dict(self.task.raw_text_inputs())

    def _check_serving_inputs(self, inputs) -> dict:
        from kerastune_nlp.errors import ConfigError

        expected = self.serving_inputs()
        if not isinstance(inputs, dict):
            raise ConfigError(f"Expected a dict of input lists named {sorted(expected)}. Received: "
                              f"{type(inputs).__name__}.")
        unknown, missing = sorted(set(inputs) - set(expected)), sorted(set(expected) - set(inputs))
        if unknown or missing:
            raise ConfigError(f"Expected the inputs {sorted(expected)}. Received: {sorted(inputs)}"
                              + (f" (unknown: {unknown})" if unknown else "")
                              + (f" (missing: {missing})" if missing else "") + ".")
        columns = {name: list(values) if isinstance(values, (list, tuple)) else values
                   for name, values in inputs.items()}
        lengths = set()
        for name, values in columns.items():
            if not isinstance(values, list):
                raise ConfigError(f"Expected input {name!r} to be a list of strings. Received: "
                                  f"{type(values).__name__}.")
            bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
            if bad is not None:
                raise ConfigError(f"Expected input {name!r} to hold strings. Received: "
                                  f"{type(values[bad]).__name__} at index {bad}.")
            lengths.add(len(values))
        if len(lengths) > 1:
            raise ConfigError(f"Expected every input to hold one value per example. Received lengths "
                              f"{ {name: len(v) for name, v in columns.items()} }.")
        if not lengths or lengths == {0}:
            raise ConfigError("Expected at least one example. Received: empty inputs.")
        return columns

    def serving_signature(self) -> dict:
        """`{"inputs": {name: {"dtype", "shape"}}, "outputs": {...}}` of `serve`, as a SavedModel signature."""
        if self._signature is None:
            with self._lock:
                probe = self.task.serve(self, {name: ["a"] for name in self.serving_inputs()})[0]
            self._signature = {
                "inputs": {name: {"dtype": "string", "shape": [-1]} for name in self.serving_inputs()},
                "outputs": {name: _spec_of(value) for name, value in probe.items()},
            }
        return self._signature

    def cache_info(self) -> dict:
        """Hits, misses, size, capacity and hit rate of the answer cache."""
        return self.cache.info()

    def describe(self) -> dict:
        """What this predictor serves: task, labels, max length and where the model came from."""
        return {"task": self.task.name, "labels": list(self.labels) if self.labels else None,
                "max_length": self.max_length, "input_names": list(self.input_names), **self.source}

    def evaluate(self, examples: Sequence, split_name: str = "evaluation") -> dict:
        """Scores against the examples' gold labels.

        Labels the model never saw are refused (`LabelError` naming where each
        first appears), as `kerastune-nlp evaluate` refuses them: the model
        cannot predict them, so they would only pull the scores to 0.
        """
        self.task.check_examples(examples, split_name)
        return self.task.evaluate(self, examples)

    def save_model_files(self, directory) -> None:
        """Writes the weights (model only, no optimizer state), tokenizer and backbone config."""
        from kerastune_nlp.models import backbones

        layout = RunLayout(Path(directory))
        self.model.save_weights(str(layout.weights))
        self.tokenizer.save_pretrained(str(layout / RunLayout.TOKENIZER))
        backbones.write_config(self.backbone_config, layout / RunLayout.BACKBONE_CONFIG)

    @classmethod
    def load(cls, path, batch_size: int = 32, cache_size: int = 1024, threads: int | None = None) -> "Predictor":
        """Loads a run directory, a SavedModel version folder, a .tflite or an .onnx file.

        See `kerastune_nlp.inference.load_predictor`.
        """
        return load_predictor(path, batch_size=batch_size, cache_size=cache_size, threads=threads)


def length_batches(lengths: Sequence[int], batch_size: int, call_overhead_tokens: float) -> list[np.ndarray]:
    """Row indices in batches of at most `batch_size` similar lengths (shortest first).

    On CPU a padded token costs as much as a real one, and a batch saves only
    the engine's fixed cost per call. Rows are sorted by length; the next
    (longer) row joins the batch while the padding it adds to the rows already
    there costs less than a call of its own (`call_overhead_tokens`, the fixed
    cost of one call counted in tokens of work).
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, current, longest = [], [], 0
    for index in order:
        length = int(lengths[index])
        if current and (len(current) == batch_size or len(current) * (length - longest) > call_overhead_tokens):
            batches.append(np.asarray(current))
            current = []
        current.append(index)
        longest = length
    if current:
        batches.append(np.asarray(current))
    return batches


def _freeze(value):
    """A hashable form of an input or option (lists become tuples) for cache keys."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _spec_of(value) -> dict:
    """dtype and shape (batch first) of one output of `serve`."""
    shape = [-1]
    while isinstance(value, list):
        shape.append(-1)
        value = value[0] if value else ""
    dtype = {bool: "bool", int: "int32", float: "float32", str: "string"}[type(value)]
    return {"dtype": dtype, "shape": shape}


class ArtifactPredictor(Predictor):
    """A `Predictor` whose outputs come from an exported artifact instead of the Keras model.

    Args:
        task: the run's task, with its fitted state.
        runner: callable, padded features dict -> float32 outputs.
        tokenizer, backbone_config, max_length, batch_size: as in `Predictor`.
    """

    def __init__(self, task, runner, tokenizer, backbone_config, max_length: int, batch_size: int = 32):
        super().__init__(task, None, tokenizer, backbone_config, max_length, batch_size)
        self.runner = runner

    def retrace(self) -> None:
        pass

    @property
    def call_overhead_tokens(self):
        # A plain callable runner (tests, custom engines) batches as TensorFlow does.
        return getattr(self.runner, "call_overhead_tokens", Predictor.call_overhead_tokens)

    def run_batch(self, features: dict) -> np.ndarray:
        return self.runner(features)

    def save_model_files(self, directory) -> None:
        raise NotImplementedError("an exported artifact is already saved")


# -- loading: a run directory or any exported artifact -> a Predictor ---------------------------------------------
#
# PATH is read by `artifacts.resolve_path` (its docstring lists the forms). A
# run directory is rebuilt as its Keras model (`load_run`); an artifact answers
# through the `ids` signature (or the file's one function) on the same Python
# tokenization as the run, so it gives the run's labels; the task, labels and
# tokenizer come from the export's sidecar. They live beside the classes they
# build so that `Predictor.load` needs no import back into this module.


def load_predictor(path, batch_size: int = 32, cache_size: int = 1024, threads: int | None = None):
    """Loads any model this package wrote, for `predict`, `predict_entities` and `serve`.

    Args:
        path: str or Path. Any form `resolve_path` accepts.
        batch_size: int. Rows per model call. Defaults to 32.
        cache_size: int. Recent answers kept (LRU); 0 disables. Defaults to 1024.
        threads: int or None. Threads for TFLite / ONNX Runtime (None: their default).

    Returns:
        A `Predictor` (an `ArtifactPredictor` for exported files).
    """
    artifact = resolve_path(path)
    if artifact.kind == "run":
        predictor = load_run(artifact.path, batch_size=batch_size)
        predictor.source = {"kind": "run", "path": str(artifact.path)}
    else:
        predictor = _artifact_predictor(artifact, batch_size, threads)
    predictor.cache.capacity = cache_size
    return predictor


def load_run(path, batch_size: int = 32):
    """Rebuilds the trained model of a run directory; needs no pretrained backbone files.

    Args:
        path: str or Path. A folder `kerastune-nlp train` (or `kt.train`) wrote.
        batch_size: int. Rows per prediction batch. Defaults to 32.

    Returns:
        A `Predictor` whose `predict` / `evaluate` speak the run's task.

    Example:
    >>> predictor = load_run("saved_models/trec")
    >>> predictor.predict(["Who wrote Hamlet ?"])
    ['HUM']
    """
    from kerastune_nlp.runs.manifest import read_manifest
    from kerastune_nlp.tasks import get_task

    manifest = read_manifest(RunLayout(Path(path)).root)
    task = get_task(manifest.task)(manifest.task_config, manifest.task_state)
    predictor, _ = rebuild_model(task, manifest, path, batch_size)
    return predictor


def rebuild_model(task, manifest, path, batch_size: int = 32):
    """A run's Keras model rebuilt from its backbone config (with the run's dropout) and weights.

    Returns:
        `(predictor, backbone)`: a `Predictor` over the model, and the
        backbone layer inside it (for stages that fine-tune or prune it).
    """
    from kerastune_nlp.backbones.config import parse_config
    from kerastune_nlp.backbones.initializers import skip_initialization
    from kerastune_nlp.errors import BackboneError
    from kerastune_nlp.models import backbones
    from kerastune_nlp.runs.weights import load_weights

    layout = RunLayout(Path(path))
    try:
        config = parse_config(layout / RunLayout.BACKBONE_CONFIG / "config.json")
    except BackboneError as error:
        raise RunDirectoryError(f"Cannot read the backbone config in {str(layout.root)!r}: {error}. "
                                "The run directory is damaged; retrain it.") from error
    tokenizer = backbones.load_tokenizer(layout / RunLayout.TOKENIZER)
    # Every encoder weight is read from the run's weights below: skip the random draws
    # (22.6M truncated-normal values for MiniLM, about 0.6 s of a 2-core predict start-up).
    with skip_initialization():
        backbone = backbones.build_backbone_model(config)
    dropout = manifest.model.dropout if manifest.model.dropout is not None else backbones.hidden_dropout(config)
    model = task.build_model(backbone, tokenizer.model_input_names, dropout=dropout,
                             initializer_range=getattr(config, "initializer_range", 0.02))
    load_weights(model, layout.weights, backbone)
    return Predictor(task, model, tokenizer, config, manifest.data.max_length, batch_size=batch_size), backbone


def _artifact_predictor(artifact: ResolvedArtifact, batch_size: int, threads):
    from kerastune_nlp.inference.runners import OnnxRunner, SavedModelRunner, TFLiteRunner

    sidecar, tokenizer_dir = sidecar_of(artifact)
    if artifact.kind == "tflite":
        runner = TFLiteRunner(artifact.path, threads)
    elif artifact.kind == "onnx":
        runner = OnnxRunner(artifact.path, threads)
    else:
        runner = SavedModelRunner(artifact.version)
    predictor = ArtifactPredictor(task_of(sidecar, artifact.target), runner, load_tokenizer(tokenizer_dir),
                                  backbone_config_of(sidecar), int(sidecar["max_length"]), batch_size)
    predictor.source = {"kind": runner.kind, "path": str(artifact.target)}
    return predictor
