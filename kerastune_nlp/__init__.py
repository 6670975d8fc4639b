"""kerastune_nlp: fine-tune pretrained Transformers for NLP with TensorFlow and Keras.

Heavy modules (TensorFlow, transformers) load on first use of a name below,
so `import kerastune_nlp` and `kerastune-nlp --help` stay fast.

Example:
>>> import kerastune_nlp as kt
>>> result = kt.train(task="ner", output_dir="saved_models/wnut17")   # bundled WNUT-17
>>> kt.load_run("saved_models/wnut17").predict(["Paris is lovely"])
"""

import importlib
import os

# Our encoders and tfmot use Keras 2 (tf_keras); this must be set before
# TensorFlow is first imported (see _tf.py).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from kerastune_nlp import noise  # noqa: E402

# Quiet by default: TensorFlow's native start-up lines and transformers' advice
# stay hidden unless KERASTUNE_NLP_VERBOSE=1 (see noise.py); set before either loads.
noise.configure()

from kerastune_nlp import errors  # noqa: E402
from kerastune_nlp.config import (  # noqa: E402
    ClassificationConfig,
    DataConfig,
    ModelConfig,
    NERDataConfig,
    RegressionConfig,
    TextDataConfig,
    TrainConfig,
)

from kerastune_nlp.version import __version__  # noqa: E402  (re-exported)

_LAZY = {
    "train": "kerastune_nlp.training.trainer",
    "Trainer": "kerastune_nlp.training.trainer",
    "RunResult": "kerastune_nlp.training.trainer",
    "load_run": "kerastune_nlp.inference",
    "Predictor": "kerastune_nlp.inference.predictor",
    "load_predictor": "kerastune_nlp.inference",
    "Task": "kerastune_nlp.tasks",
    "register_task": "kerastune_nlp.tasks",
    "get_task": "kerastune_nlp.tasks",
    "task_names": "kerastune_nlp.tasks",
    "read_conll": "kerastune_nlp.data.conll",
    "write_conll": "kerastune_nlp.data.conll",
    "Sentence": "kerastune_nlp.data.conll",
    "TextExample": "kerastune_nlp.data.text_examples",
    "read_text_file": "kerastune_nlp.tasks.readers",
    "LabelMap": "kerastune_nlp.data.labels",
    "bundled_wnut17": "kerastune_nlp.data.bundled",
    "load_hub_conll": "kerastune_nlp.data.hub",
    "resolve_backbone": "kerastune_nlp.models.backbones",
    "KNOWN_BACKBONES": "kerastune_nlp.models.backbones",
    "train_ner": "kerastune_nlp.training.ner_trainer",
    "train_text_classifier": "kerastune_nlp.training.text_trainer",
    "entity_scores": "kerastune_nlp.evaluation.ner_metrics",
}

__all__ = ["errors", "DataConfig", "NERDataConfig", "TextDataConfig", "ClassificationConfig",
           "RegressionConfig", "ModelConfig", "TrainConfig", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerastune_nlp' has no attribute {name!r}")
