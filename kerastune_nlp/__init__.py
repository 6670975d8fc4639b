"""kerastune_nlp: fine-tune pretrained Transformers for NLP with TensorFlow and Keras.

Heavy modules (TensorFlow, transformers) load on first use of a name below,
so `import kerastune_nlp` and `kerastune-nlp --help` stay fast.

Example:
>>> import kerastune_nlp as kt
>>> splits = {name: kt.read_conll(path) for name, path in kt.bundled_wnut17().items()}
>>> result = kt.train_ner(splits["train"], splits["dev"], splits["test"],
...                       output_dir="saved_models/wnut17")
>>> kt.NERTagger.load("saved_models/wnut17").predict(["Paris is lovely"])
"""

import importlib
import os

# The Hugging Face TF classes need Keras 2 (tf_keras); this must be set
# before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from kerastune_nlp import errors  # noqa: E402
from kerastune_nlp.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "read_conll": "kerastune_nlp.data.conll",
    "write_conll": "kerastune_nlp.data.conll",
    "Sentence": "kerastune_nlp.data.conll",
    "LabelMap": "kerastune_nlp.data.labels",
    "bundled_wnut17": "kerastune_nlp.data.bundled",
    "load_hub_conll": "kerastune_nlp.data.hub",
    "resolve_backbone": "kerastune_nlp.models.backbones",
    "KNOWN_BACKBONES": "kerastune_nlp.models.backbones",
    "NERTagger": "kerastune_nlp.models.ner_tagger",
    "build_token_classifier": "kerastune_nlp.models.token_classifier",
    "train_ner": "kerastune_nlp.training.ner_trainer",
    "entity_scores": "kerastune_nlp.evaluation.ner_metrics",
}

__all__ = ["errors", "DataConfig", "ModelConfig", "TrainConfig", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerastune_nlp' has no attribute {name!r}")
