"""`NERTagger`: a token-classification model with everything needed to use it.

It bundles the Keras model, the tokenizer, the label map and the window
encoder, predicts one tag per input word, scores against gold tags, and
saves to / loads from the files of a run directory.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from kerastune_nlp._tf import tf
from kerastune_nlp.data.batching import make_eval_dataset
from kerastune_nlp.data.labels import LabelMap
from kerastune_nlp.data.ner_windows import WindowEncoder, gather_word_logits
from kerastune_nlp.errors import ConfigError, RunDirectoryError
from kerastune_nlp.evaluation.iob_decoding import viterbi_decode
from kerastune_nlp.evaluation.ner_metrics import entity_scores
from kerastune_nlp.models import backbones
from kerastune_nlp.models.token_classifier import build_token_classifier

logger = logging.getLogger("kerastune_nlp.models")

WEIGHTS_FILE = "model.weights.h5"
BACKBONE_CONFIG_DIR = "backbone_config"
TOKENIZER_DIR = "tokenizer"
LABELS_FILE = "label_map.json"
TAGGER_FILE = "tagger.json"


class NERTagger:
    """Predicts one IOB2 tag per word.

    Args:
        model: the Keras token classifier.
        tokenizer: its Hugging Face fast tokenizer.
        label_map: `LabelMap` of the tags.
        backbone_config: the backbone's `PretrainedConfig` (saved with runs).
        max_length: int. Sub-tokens per window. Defaults to 128.
        window_stride: int. Overlap of windows of long sentences. Defaults to 32.
        label_all_subtokens: bool. How training labels are laid out.
        batch_size: int. Windows per prediction batch. Defaults to 32.
        constrained_decoding: bool. Decode the best valid IOB2 sequence
            (Viterbi) instead of each word's argmax. Defaults to True.

    Example:
    >>> tagger = NERTagger.load("saved_models/wnut17")
    >>> tagger.predict([["Empire", "State", "Building", "is", "tall"]])
    [['B-location', 'I-location', 'I-location', 'O', 'O']]
    """

    def __init__(
        self,
        model,
        tokenizer,
        label_map: LabelMap,
        backbone_config,
        max_length: int = 128,
        window_stride: int = 32,
        label_all_subtokens: bool = False,
        batch_size: int = 32,
        constrained_decoding: bool = True,
    ):
        self.model = model
        self.constrained_decoding = constrained_decoding
        self.tokenizer = tokenizer
        self.label_map = label_map
        self.backbone_config = backbone_config
        self.max_length = max_length
        self.window_stride = window_stride
        self.label_all_subtokens = label_all_subtokens
        self.batch_size = batch_size
        self.input_names = list(tokenizer.model_input_names)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.encoder = WindowEncoder(
            tokenizer,
            max_length=max_length,
            stride=window_stride,
            label_to_id={tag: i for i, tag in enumerate(label_map.labels)},
            label_all_subtokens=label_all_subtokens,
        )
        self.retrace()

    def retrace(self) -> None:
        """Drops the traced forward pass; needed after the model's layers change (LoRA merge)."""
        self._forward = tf.function(
            lambda features: self.model(features, training=False), reduce_retracing=True
        )

    def predict(self, sentences: Sequence[Sequence[str] | str], progress: bool = False) -> list[list[str]]:
        """Tags each word. A string is split on whitespace; a list is taken as words."""
        word_lists = [s.split() if isinstance(s, str) else list(s) for s in sentences]
        empty = [i for i, words in enumerate(word_lists) if not words]
        if empty:
            raise ConfigError(
                f"Expected sentences with at least one word. Received: empty sentence at "
                f"index {empty[0]}. Remove empty sentences before predicting."
            )
        ids = self.predict_ids(word_lists, progress=progress)
        return [[self.label_map.tag(int(i)) for i in sentence] for sentence in ids]

    def predict_ids(self, word_lists, progress: bool = False) -> list[np.ndarray]:
        windows, _ = self.encoder.encode(word_lists)
        dataset, order = make_eval_dataset(windows, self.input_names, self.pad_id, self.batch_size)
        logits = [None] * len(windows)
        row = 0
        batches = tqdm(dataset, desc="predict", disable=not progress, leave=False,
                       total=int(np.ceil(len(windows) / self.batch_size)))
        for features in batches:
            batch_logits = self._forward(features).numpy()
            for window_logits in batch_logits:
                logits[order[row]] = window_logits
                row += 1
        word_logits = gather_word_logits(windows, logits, [len(words) for words in word_lists])
        if not self.constrained_decoding:
            return [scores.argmax(axis=-1) for scores in word_logits]
        return [viterbi_decode(scores, self.label_map.labels) for scores in word_logits]

    def evaluate(self, sentences, progress: bool = False) -> dict:
        """Entity-level scores of the predictions against `sentences`' gold tags."""
        predicted = self.predict([s.tokens for s in sentences], progress=progress)
        return entity_scores([s.tags for s in sentences], predicted)

    # -- run directory files ------------------------------------------------

    def save(self, directory) -> None:
        """Writes weights, tokenizer, backbone config, labels and settings into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(str(directory / WEIGHTS_FILE))
        self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        self.backbone_config.save_pretrained(str(directory / BACKBONE_CONFIG_DIR))
        self.label_map.save(directory / LABELS_FILE)
        settings = {
            "task": "ner",
            "max_length": self.max_length,
            "window_stride": self.window_stride,
            "label_all_subtokens": self.label_all_subtokens,
            "input_names": self.input_names,
        }
        (directory / TAGGER_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def load(cls, directory, batch_size: int = 32) -> "NERTagger":
        """Rebuilds a tagger from a run directory; needs no pretrained backbone files."""
        directory = Path(directory)
        required = [WEIGHTS_FILE, TOKENIZER_DIR, BACKBONE_CONFIG_DIR, LABELS_FILE, TAGGER_FILE]
        missing = [name for name in required if not (directory / name).exists()]
        if missing:
            raise RunDirectoryError(
                f"{str(directory)!r} is not a complete NER run directory: missing {missing}. "
                "Pass the folder that `kerastune-nlp train` (or examples/ner_conll.py) wrote."
            )
        settings = json.loads((directory / TAGGER_FILE).read_text())
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(directory / BACKBONE_CONFIG_DIR))
        tokenizer = backbones.load_tokenizer(directory / TOKENIZER_DIR)
        label_map = LabelMap.load(directory / LABELS_FILE)
        model = build_token_classifier(
            backbones.build_backbone_model(config),
            settings["input_names"],
            len(label_map),
            dropout=backbones.hidden_dropout(config),
        )
        model.load_weights(str(directory / WEIGHTS_FILE))
        return cls(
            model,
            tokenizer,
            label_map,
            config,
            max_length=settings["max_length"],
            window_stride=settings["window_stride"],
            label_all_subtokens=settings["label_all_subtokens"],
            batch_size=batch_size,
        )
