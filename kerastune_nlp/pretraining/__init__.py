"""Domain-adaptive continued pretraining: masked-language-model training of a backbone on in-domain text.

    from kerastune_nlp.pretraining import PretrainConfig, continue_pretraining
    result = continue_pretraining("notes.txt", output_dir="saved_models/minilm-notes",
                                  config=PretrainConfig(epochs=3, whole_word_masking=True))
    # then fine-tune from it as from any backbone:
    kt.train(task="ner", model_config=kt.ModelConfig(backbone=str(result.output_dir)))

Modules: `config` (settings), `corpus` (reading text files and data sets),
`packing` (tokenizing and packing), `masking` (80/10/10 masking in
tf.data), `mlm_model` (the masked-LM model and its trainer), `loop`
(training with crash backups), `output` (staging and commit), `pretrain`
(the entry point). TensorFlow loads only on first use of a name that needs it.
"""

import importlib

from kerastune_nlp.pretraining.config import PretrainConfig

_LAZY = {
    "continue_pretraining": "kerastune_nlp.pretraining.pretrain",
    "PretrainResult": "kerastune_nlp.pretraining.pretrain",
    "load_corpus": "kerastune_nlp.pretraining.corpus",
    "Corpus": "kerastune_nlp.pretraining.corpus",
    "pack": "kerastune_nlp.pretraining.packing",
    "load_mlm_model": "kerastune_nlp.pretraining.mlm_model",
    "is_pretrain_output": "kerastune_nlp.pretraining.output",
}

__all__ = ["PretrainConfig", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerastune_nlp.pretraining' has no attribute {name!r}")
