"""Named-entity recognition: one IOB2 tag per word, scored at entity level."""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path
import numpy as np

from kerastune_nlp.config import QUICK_SIZES, DataConfig, NERDataConfig
from kerastune_nlp.errors import ConfigError, LabelError
from kerastune_nlp.tasks import register_task
from kerastune_nlp.tasks.base import DevScore, EncodedSplit, Task

logger = logging.getLogger("kerastune_nlp.tasks")


@register_task
class NERTask(Task):
    """Token classification on CoNLL files (WNUT-17 bundled).

    State: `labels`, the IOB2 tag set (from the training split).
    Predictions: one tag per word, decoded with constrained Viterbi so only
    valid IOB2 sequences come out.
    """

    name = "ner"
    description = "token classification (NER) on CoNLL or JSON/JSONL token files"
    config_class = NERDataConfig
    monitor = "val_entity_f1"
    mode = "max"
    has_entities = True

    # -- data ------------------------------------------------------------------

    def load_splits(self, data: DataConfig, seed: int) -> tuple[dict, str]:
        from kerastune_nlp.data import bundled_wnut17, load_hub_conll

        if data.dataset:
            splits, name = load_hub_conll(data.dataset, document_column=self.config.document_column), data.dataset
        else:
            if data.train:
                paths, name = {"train": data.train, "dev": data.dev, "test": data.test}, Path(data.train).stem
            else:
                paths, name = bundled_wnut17(), "wnut17"
            splits = {split: self.read_file(path, data) for split, path in paths.items() if path}
        if not splits.get("dev"):
            from kerastune_nlp.data.document_split import split_by_document

            # One file: --split (train/dev[/test]); a train and a test file: 10% of train for dev.
            # By document where the file marks documents, so no article is cut across splits.
            shares = data.split if not splits.get("test") else (0.9, 0.1)
            parts, description = split_by_document(splits["train"], shares, seed, f"the training data {name!r}")
            splits.update(zip(("train", "dev", "test"), parts))
            logger.info("No dev set given: %s.", description)
        if data.quick:
            for split, size in QUICK_SIZES.items():
                if splits.get(split) and len(splits[split]) > size:
                    splits[split] = random.Random(seed).sample(list(splits[split]), size)
        return splits, name

    def read_file(self, path, data: DataConfig) -> list:
        from kerastune_nlp.data import read_conll
        from kerastune_nlp.data.token_rows import is_token_rows_file, read_token_rows

        if is_token_rows_file(path):
            return read_token_rows(path, encoding=data.encoding, tag_scheme=self.config.tag_scheme,
                                   document_column=self.config.document_column)
        if self.config.document_column:
            raise ConfigError(f"`document_column`={self.config.document_column!r} (--document-column) applies to "
                              f"JSON/JSONL rows and hub data; {str(path)!r} is read as CoNLL, which marks "
                              "documents with -DOCSTART- lines. Drop --document-column for CoNLL files.")
        return read_conll(path, encoding=data.encoding, tag_scheme=self.config.tag_scheme)

    def check_examples(self, examples, split_name) -> None:
        from kerastune_nlp.data.labels import LabelMap

        LabelMap(self.labels).check_covers(examples, split_name)

    def check_splits(self, splits) -> None:
        from kerastune_nlp.data.labels import LabelMap

        super().check_splits(splits)
        label_map = LabelMap.from_sentences(splits["train"])
        for name in ("dev", "test"):
            if splits.get(name):
                label_map.check_covers(splits[name], name)

    def fit_state(self, train) -> None:
        from kerastune_nlp.data.labels import LabelMap

        self.state["labels"] = list(LabelMap.from_sentences(train).labels)

    def input_key(self, sentence):
        return tuple(sentence.tokens)

    def example_record(self, sentence):
        return [list(sentence.tokens), list(sentence.tags)]

    @property
    def labels(self) -> tuple[str, ...]:
        if "labels" not in self.state:
            raise LabelError("The NER task has no tag set yet: call fit_state(train) or load a run.")
        return tuple(self.state["labels"])

    # -- model -----------------------------------------------------------------

    def fit_encoding(self, train, max_length: int) -> None:
        """Resolves `context_size` ("auto": max_length // 4 with documents, else 0) into the run's state."""
        documents = len({(s.source, s.document) for s in train if s.document is not None})
        requested = self.config.context_size
        resolved = self.config.resolved_context_size(max_length, documents > 0)
        if requested not in (0, "auto") and not documents:
            logger.warning(
                "context_size=%s asks for document context, but the training data marks no documents "
                "(no -DOCSTART- lines): sentences are encoded without context, as with context_size=0.",
                requested)
        if requested != 0:
            logger.info("document context: context_size=%s -> %d sub-tokens on each side (%d documents in "
                        "the training data, max_length %d)", requested, resolved, documents, max_length)
        self.state["context_size"] = resolved

    def context_size(self, max_length: int, examples=()) -> int:
        """Sub-tokens of document context per side: the run's resolved value, else the config's."""
        if "context_size" in self.state:
            size = int(self.state["context_size"])
        else:
            size = self.config.resolved_context_size(
                max_length, any(getattr(s, "document", None) is not None for s in examples))
        if self.config.context_size == "auto":  # resolved for another max_length (a tuning trial): shrink
            from kerastune_nlp.data.ner_windows import max_context_size

            size = min(size, max_context_size(max_length - 2))
        return size

    @staticmethod
    def document_keys(examples) -> list | None:
        """`((source, document), line)` per sentence (None outside documents); None when none has one."""
        keys = [((s.source, s.document), s.line) if getattr(s, "document", None) is not None else None
                for s in examples]
        return keys if any(k is not None for k in keys) else None

    def _encoder(self, tokenizer, max_length: int, context_size: int = 0):
        from kerastune_nlp.data.ner_windows import WindowEncoder

        return WindowEncoder(
            tokenizer, max_length=max_length, stride=self.config.stride(max_length),
            label_to_id={tag: i for i, tag in enumerate(self.labels)},
            label_all_subtokens=self.config.label_all_subtokens, context_size=context_size,
        )

    def encode(self, tokenizer, examples, max_length, labelled=True) -> EncodedSplit:
        """Windows of sub-tokens; labelled `Sentence`s in documents also read their document's context."""
        if labelled:
            encoder = self._encoder(tokenizer, max_length, self.context_size(max_length, examples))
            windows, stats = encoder.encode([s.tokens for s in examples], [s.tags for s in examples],
                                            documents=self.document_keys(examples))
        else:
            windows, stats = self._encoder(tokenizer, max_length).encode(examples)
        return EncodedSplit(windows, None, _stats_dict(stats))

    def build_model(self, backbone, input_names, *, dropout, initializer_range, seed=None):
        from kerastune_nlp.models.token_classifier import build_token_classifier

        return build_token_classifier(backbone, input_names, len(self.labels), dropout=dropout,
                                      initializer_range=initializer_range, seed=seed)

    def loss_and_metrics(self, train, steps_per_epoch, replicas):
        from kerastune_nlp.models.losses import MaskedAccuracy, MaskedSparseCategoricalCrossentropy

        # Normalised by the mean labelled tokens of a micro-batch on one replica,
        # so per-replica losses sum to the global mean, every token weighs the
        # same whatever batch it lands in, and accumulated micro-batches
        # average to the large batch.
        tokens = train.labelled_positions / steps_per_epoch / replicas
        return MaskedSparseCategoricalCrossentropy(tokens_per_batch=tokens), [MaskedAccuracy()]

    def distillation_loss(self, train, steps_per_epoch, replicas, temperature):
        from kerastune_nlp.models.losses import masked_token_distillation

        return masked_token_distillation(train.labelled_positions / steps_per_epoch / replicas, temperature)

    def dev_score(self, predictor, dev):
        def logs(scores):
            overall = scores["overall"]
            return {"val_entity_precision": overall["precision"], "val_entity_recall": overall["recall"],
                    "val_entity_f1": overall["f1"]}

        return DevScore(lambda: self.evaluate(predictor, dev), logs, "dev entity P/R/F1")

    # -- outputs ---------------------------------------------------------------

    def word_lists(self, inputs) -> list[list[str]]:
        from kerastune_nlp.data.words import split_words

        words = [[w for w, _, _ in split_words(s)] if isinstance(s, str) else list(s) for s in inputs]
        empty = [i for i, w in enumerate(words) if not w]
        if empty:
            raise ConfigError(
                f"Expected sentences with at least one word. Received: empty sentence at index "
                f"{empty[0]}. Remove empty sentences before predicting."
            )
        return words

    def tag_words(self, predictor, word_lists, aggregation: str = "first",
                  documents=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """`(label ids, probabilities)` per sentence: constrained Viterbi over each word's scores.

        Sentences longer than `max_length` sub-tokens are read through
        overlapping windows (`data.ner_windows`), so every word is tagged.
        `aggregation` says how a word's sub-tokens are combined (first, average, max).
        `documents` (see `document_keys`) adds the run's document context.
        """
        from kerastune_nlp.data.ner_windows import gather_word_logits
        from kerastune_nlp.evaluation.iob_decoding import viterbi_decode_batch

        if documents is not None:
            size = self.context_size(predictor.max_length)
            encoder = self._encoder(predictor.tokenizer, predictor.max_length, size)
            rows = encoder.encode(word_lists, documents=documents)[0]
        else:
            rows = self.encode(predictor.tokenizer, word_lists, predictor.max_length, labelled=False).rows
        encoded = EncodedSplit(rows)
        logits = predictor.outputs(encoded.rows)
        word_scores = gather_word_logits(encoded.rows, logits, [len(w) for w in word_lists], aggregation)
        log_probs = [scores - np.logaddexp.reduce(scores, axis=-1, keepdims=True) for scores in word_scores]
        return [(ids, np.exp(sentence[np.arange(len(ids)), ids]))
                for sentence, ids in zip(log_probs, viterbi_decode_batch(log_probs, self.labels))]

    def predict_ids(self, predictor, word_lists) -> list[np.ndarray]:
        return [ids for ids, _ in self.tag_words(predictor, word_lists)]

    def predict_sentences(self, predictor, examples) -> list[list[str]]:
        """Tags of labelled `Sentence`s, read with the run's document context (as training encoded them)."""
        documents = self.document_keys(examples) if self.context_size(predictor.max_length, examples) else None
        tagged = self.tag_words(predictor, [list(s.tokens) for s in examples], documents=documents)
        return [[self.labels[int(i)] for i in ids] for ids, _ in tagged]

    def predict(self, predictor, inputs, **options) -> list[list[str]]:
        """Tags each word. A string is split into words and punctuation (`split_words`); a list is taken as words."""
        word_lists = self.word_lists(inputs)
        return [[self.labels[int(i)] for i in ids] for ids in self.predict_ids(predictor, word_lists)]

    def tag_texts(self, predictor, texts, split, aggregation: str = "first") -> list[dict]:
        """Raw strings -> words with character offsets, tags and tag probabilities."""
        words = [split(self._text(text, i)) for i, text in enumerate(texts)]
        empty = [i for i, w in enumerate(words) if not w]
        if empty:
            raise ConfigError(f"Expected texts with at least one word. Received: a blank text at index "
                              f"{empty[0]}. Remove blank texts before predicting.")
        tagged = self.tag_words(predictor, [[w for w, _, _ in sentence] for sentence in words], aggregation)
        return [{"words": sentence, "label_ids": [int(i) for i in ids],
                 "labels": [self.labels[int(i)] for i in ids], "scores": [float(p) for p in probabilities]}
                for sentence, (ids, probabilities) in zip(words, tagged)]

    @staticmethod
    def _text(text, index: int) -> str:
        if not isinstance(text, str):
            raise ConfigError(f"Expected a string at index {index}. Received: {type(text).__name__}. "
                              "Pass raw texts (entities are found with character offsets).")
        return text

    def entities(self, predictor, texts, aggregation: str = "first") -> list[list[dict]]:
        """Entity spans of raw texts: `{"text", "label", "start", "end", "score"}`, offsets into each text."""
        from kerastune_nlp.data.ner_windows import AGGREGATIONS
        from kerastune_nlp.data.words import entity_spans, split_words

        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"Unknown aggregation. Expected one of {', '.join(AGGREGATIONS)}. "
                              f"Received: aggregation={aggregation!r}.")
        if any(not isinstance(t, str) and hasattr(t, "sentences") for t in texts):
            return self._mixed_entities(predictor, texts, aggregation)
        return [entity_spans(text, tagged["words"], tagged["labels"], tagged["scores"])
                for text, tagged in zip(texts, self.tag_texts(predictor, texts, split_words, aggregation))]

    # -- documents (prediction with the run's document context) ------------------

    def tag_documents(self, predictor, documents, aggregation: str = "first",
                      words_allowed: bool = False) -> list[list[dict]]:
        """Per document, per sentence: `{"text", "start", "end", "words", "labels", "scores"}`.

        Each sentence is read with the run's document context (its
        neighbours in the same document, laid out by the training encoder);
        with `context_size` 0 every sentence is read alone, exactly as
        `tag_texts` reads it. `words` are `(word, start, end)` with offsets
        into the string the caller gave (the document's text, or the sentence).
        """
        from kerastune_nlp.data.documents import Document

        documents = [Document.of(d, i, words_allowed) for i, d in enumerate(documents)]
        word_lists, keys = [], []
        for d, document in enumerate(documents):
            for k, words in enumerate(document.sentence_words()):
                if not words:
                    raise ConfigError(f"Expected sentences with at least one word. Received: an empty sentence "
                                      f"at documents[{d}][{k}]. Remove empty sentences before predicting.")
                word_lists.append(words)
                keys.append(((d,), k))
        context = self.context_size(predictor.max_length)
        tagged = iter(self.tag_words(predictor, [[w for w, _, _ in words] for words in word_lists],
                                     aggregation, documents=keys if context else None) if word_lists else [])
        words = iter(word_lists)
        results = []
        for document in documents:
            sentences = []
            for sentence, start in zip(document.sentences, document.starts):
                ids, probabilities = next(tagged)
                text = sentence if isinstance(sentence, str) else " ".join(sentence)
                sentences.append({"text": text, "start": start, "end": start + len(text), "words": next(words),
                                  "labels": [self.labels[int(i)] for i in ids],
                                  "scores": [float(p) for p in probabilities]})
            results.append(sentences)
        return results

    def predict_documents(self, predictor, documents) -> list[list[list[str]]]:
        """Word tags per sentence of each document (sentences as strings or word lists)."""
        return [[sentence["labels"] for sentence in document]
                for document in self.tag_documents(predictor, documents, words_allowed=True)]

    def document_entities(self, predictor, documents, aggregation: str = "first") -> list[list[dict]]:
        """Per document, per sentence: `{"text", "start", "end", "entities"}`, offsets into the caller's string."""
        from kerastune_nlp.data.documents import Document
        from kerastune_nlp.data.words import entity_spans

        documents = [Document.of(d, i) for i, d in enumerate(documents)]
        results = []
        for document, tagged in zip(documents, self.tag_documents(predictor, documents, aggregation)):
            source = document.text
            results.append([{"text": s["text"], "start": s["start"], "end": s["end"],
                             "entities": entity_spans(source if source is not None else s["text"], s["words"],
                                                      s["labels"], s["scores"])} for s in tagged])
        return results

    def document_json_records(self, predictor, documents, aggregation: str = "first") -> list[list[dict]]:
        """Per document, per sentence: what `json_record` gives a text, plus the sentence's offsets."""
        from kerastune_nlp.data.words import entity_spans

        return [[{"start": s["start"], "end": s["end"],
                  "entities": entity_spans(s["text"], [(w, a - s["start"], b - s["start"]) for w, a, b in s["words"]],
                                           s["labels"], s["scores"]),
                  "words": [w for w, _, _ in s["words"]], "labels": s["labels"]} for s in document]
                for document in self.tag_documents(predictor, documents, aggregation)]

    def _mixed_entities(self, predictor, items, aggregation):
        """Texts and `Document`s in one list (one server batch may hold both): each answered in kind."""
        is_document = [not isinstance(t, str) for t in items]
        documents = iter(self.document_entities(predictor, [t for t, d in zip(items, is_document) if d],
                                                aggregation))
        texts = [t for t, d in zip(items, is_document) if not d]
        spans = iter(self.entities(predictor, texts, aggregation) if texts else [])
        return [next(documents) if d else next(spans) for d in is_document]

    def serve(self, predictor, inputs: dict) -> list[dict]:
        """What the raw-string SavedModel signature returns, per text (the same words, every word covered)."""
        from kerastune_nlp.data.words import split_words

        records = []
        for tagged in self.tag_texts(predictor, inputs["text"], split_words):
            words = tagged.pop("words")
            records.append({"words": [w for w, _, _ in words], **tagged, "start": [s for _, s, _ in words],
                            "end": [e for _, _, e in words], "covered": [True] * len(words),
                            "word_count": len(words)})
        return records

    def json_record(self, predictor, texts, **options) -> list[dict]:
        """One JSON-ready answer per raw text: its entities and the tag of each word."""
        from kerastune_nlp.data.words import entity_spans, split_words

        records = []
        for text, tagged in zip(texts, self.tag_texts(predictor, texts, split_words,
                                                      options.get("aggregation", "first"))):
            records.append({"entities": entity_spans(text, tagged["words"], tagged["labels"], tagged["scores"]),
                            "words": [w for w, _, _ in tagged["words"]], "labels": tagged["labels"]})
        return records

    def evaluate(self, predictor, examples) -> dict:
        from kerastune_nlp.evaluation.ner_metrics import entity_scores

        predicted = self.predict_sentences(predictor, examples)
        return entity_scores([s.tags for s in examples], predicted)

    def write_reports(self, directory, predictor, examples, scores):
        """Entity-level error analysis of `examples` (see `evaluation.ner_errors`)."""
        from kerastune_nlp.evaluation.ner_errors import write_ner_error_reports

        predicted = self.predict_sentences(predictor, examples)
        types = sorted({label[2:] for label in self.labels if label != "O"})
        return list(write_ner_error_reports(directory, examples, predicted, types))

    metric_name = "entity F1"

    def primary_metric(self, scores):
        return float(scores["overall"]["f1"])

    def headline(self, scores):
        o = scores["overall"]
        return f"entity P/R/F1 {o['precision']:.4f}/{o['recall']:.4f}/{o['f1']:.4f}"

    def format_scores(self, scores, title=""):
        from kerastune_nlp.evaluation.ner_metrics import format_report

        return format_report(scores, f"{title}, entity level:" if title else "")

    def format_prediction(self, text, tags):
        from kerastune_nlp.data.words import split_words

        words = [w for w, _, _ in split_words(text)] if isinstance(text, str) else list(text)
        return " ".join(f"{w}/{t}" if t != "O" else w for w, t in zip(words, tags))

    def hf_head(self):
        from kerastune_nlp.tasks.hf_head import WORD_TAGGING_USAGE, HFHead

        decoding = (
            "**Decoding.** kerastune_nlp tags each word at its first sub-token with constrained Viterbi "
            "decoding over the BIO tags (no `I-X` after `O` or after another type). transformers "
            "(`pipeline(\"token-classification\")`, `argmax`) gives the per-token argmax instead, which can "
            "produce invalid tag sequences and slightly different entities and scores: PyTorch users get argmax "
            "unless they add the constrained decoding: "
            "`kerastune_nlp.evaluation.iob_decoding.viterbi_decode(word_logits, labels)` over the logits of each "
            "word's first sub-token (a `[words, labels]` array) reproduces ours.")
        return HFHead(self.labels, WORD_TAGGING_USAGE, token_level=True, pipeline_tag="token-classification",
                      notes=(decoding,), example_dataset="wnut17",
                      config_fields={"decoding": "constrained Viterbi over each word's first sub-token",
                                     "tag_scheme": self.config.tag_scheme})

    def serving_outputs(self, outputs):
        from kerastune_nlp._tf import tf

        probabilities = tf.nn.softmax(outputs, axis=-1)
        ids = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        labels = tf.gather(tf.constant(list(self.labels)), ids)
        return {"label_ids": ids, "labels": labels, "scores": tf.reduce_max(probabilities, axis=-1)}

    def raw_text_inputs(self) -> dict:
        return {"text": "one sentence per example; split into words and punctuation as CoNLL data is"}

    def raw_context_inputs(self) -> dict:
        """Inputs of the `text_with_context` signature (only for runs trained with document context)."""
        if not self.state.get("context_size"):
            return {}
        return {**self.raw_text_inputs(),
                "left_context": "the document's text before the sentence ('' at its start); its last "
                                "context_size sub-tokens are read",
                "right_context": "the document's text after the sentence ('' at its end); its first "
                                 "context_size sub-tokens are read"}

    def raw_context_inputs_of(self, examples) -> dict:
        """`text_with_context` inputs of labelled sentences: their words, and their document's neighbours."""
        size = int(self.state.get("context_size", 0))
        keys = self.document_keys(examples) or [None] * len(examples)
        documents: dict = {}
        for index, key in enumerate(keys):
            if key is not None:
                documents.setdefault(key[0], []).append((key[1], index))
        left, right = [""] * len(examples), [""] * len(examples)
        for members in documents.values():
            members.sort()
            words = [list(examples[i].tokens) for _, i in members]
            for k, (_, index) in enumerate(members):
                # Every word has at least one sub-token: `size` words on each side hold the context.
                before = [w for sentence in words[:k] for w in sentence][-size:] if size else []
                after = [w for sentence in words[k + 1:] for w in sentence][:size]
                left[index], right[index] = " ".join(before), " ".join(after)
        return {"text": [" ".join(s.tokens) for s in examples], "left_context": left, "right_context": right}

    def predict_with_context(self, predictor, inputs: dict) -> list[list[str]]:
        """What `text_with_context` returns, by the Python path: each text with its context strings.

        The context strings are split by the word rule and laid out by the
        training encoder (as a three-sentence document: left, text, right).
        """
        from kerastune_nlp.data.ner_windows import gather_word_logits
        from kerastune_nlp.evaluation.iob_decoding import viterbi_decode_batch
        from kerastune_nlp.data.words import split_words

        texts = self.word_lists(inputs["text"])
        sentences, keys, centres = [], [], []
        for i, words in enumerate(texts):
            for part, value in enumerate((inputs["left_context"][i], None, inputs["right_context"][i])):
                context = [w for w, _, _ in split_words(value)] if value is not None else words
                if context:
                    if value is None:
                        centres.append(len(sentences))
                    sentences.append(context)
                    keys.append(((i,), part))
        encoder = self._encoder(predictor.tokenizer, predictor.max_length, self.context_size(predictor.max_length))
        windows = encoder.encode(sentences, documents=keys)[0]
        position = {sentence: k for k, sentence in enumerate(centres)}
        rows = [dataclasses.replace(w, sentence_index=position[w.sentence_index]) for w in windows
                if w.sentence_index in position]
        scores = gather_word_logits(rows, predictor.outputs(rows), [len(w) for w in texts])
        log_probs = [s - np.logaddexp.reduce(s, axis=-1, keepdims=True) for s in scores]
        return [[self.labels[int(i)] for i in ids] for ids in viterbi_decode_batch(log_probs, self.labels)]

    def raw_inputs_of(self, examples) -> dict:
        return {"text": [" ".join(s.tokens) for s in examples]}

    def from_raw_outputs(self, outputs):
        """Word labels per sentence; None for a sentence longer than `max_length` (not all words tagged)."""
        return [[label.decode() for label in labels[:count]] if flags[:count].all() else None
                for labels, flags, count in zip(outputs["labels"], outputs["covered"], outputs["word_count"])]

    def tokenizer_agreement(self, tokenizer, graph_tokenizer, examples, extra=()):
        from kerastune_nlp.data.graph_tokenizer import agreement

        from kerastune_nlp.data.words import split_words

        # The raw text a client sends is the words joined by spaces; the ids to
        # match are the Python path's on that text, split by the same rule.
        texts = [" ".join(s.tokens) for s in examples] + [" ".join(w) for w in extra]
        sentences = [[w for w, _, _ in split_words(text)] for text in texts]
        windows = self.encode(tokenizer, sentences, graph_tokenizer.max_length, labelled=False).rows
        per_sentence: dict = {}
        for window in windows:
            per_sentence.setdefault(window.sentence_index, []).append(window.input_ids)
        # A sentence that needs several windows is not one model input: the Python path's business.
        reference = [ids[0] if len(ids) == 1 else None for _, ids in sorted(per_sentence.items())]
        return agreement(tokenizer, graph_tokenizer, texts, reference, words=True)

    def serve_raw_text(self, graph_tokenizer, forward, inputs):
        """Per-word labels (constrained Viterbi), scores and character offsets of raw sentences.

        Words whose first sub-token lies past `max_length` are not tagged
        (`covered` False, label "O", score 0); the Python `Predictor` slides
        windows over such sentences instead.
        """
        from kerastune_nlp._tf import tf
        from kerastune_nlp.evaluation.iob_decoding import viterbi_decode_graph

        encoded = graph_tokenizer.encode_words(inputs["text"], inputs.get("left_context"),
                                               inputs.get("right_context"),
                                               self.context_size(graph_tokenizer.max_length))
        logits = forward(encoded["features"])
        word_logits = tf.gather(logits, encoded["first"], batch_dims=1)  # [B, W, labels]
        tagged = encoded["word_mask"] & encoded["covered"]
        ids, scores = viterbi_decode_graph(word_logits, tagged, self.labels)
        outside = self.labels.index("O") if "O" in self.labels else 0
        ids = tf.where(tagged, ids, outside)
        return {
            "words": encoded["words"], "labels": tf.gather(tf.constant(list(self.labels)), ids),
            "label_ids": ids, "scores": tf.where(tagged, scores, 0.0),
            "start": encoded["starts"], "end": encoded["ends"], "covered": encoded["covered"],
            "word_count": tf.reduce_sum(tf.cast(encoded["word_mask"], tf.int32), axis=1),
        }


def _stats_dict(stats) -> dict:
    """The encoding stats; the context counts only when context was used (so runs without it read as before)."""
    values = dataclasses.asdict(stats)
    if not stats.context_size:
        for key in ("context_size", "context_windows", "context_tokens", "context_skipped_split"):
            values.pop(key)
    return values
