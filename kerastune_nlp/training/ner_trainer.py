"""`train_ner`: the NER entry point of earlier releases, now a thin wrapper of `train`."""

from __future__ import annotations

from typing import Sequence

from kerastune_nlp import config as cfg
from kerastune_nlp.training.trainer import RunResult, train


def train_ner(train_sentences: Sequence, dev: Sequence, test: Sequence | None = None, *, output_dir,
              model_config: cfg.ModelConfig | None = None, data_config: cfg.DataConfig | None = None,
              ner_config: cfg.NERDataConfig | None = None, train_config: cfg.TrainConfig | None = None,
              overwrite: bool = False, extra_callbacks: Sequence = (), strategy=None,
              verbose: int | str = "auto") -> RunResult:
    """Fine-tunes a backbone for NER: `train(task="ner", ...)`.

    Example:
    >>> splits = {k: read_conll(p) for k, p in bundled_wnut17().items()}
    >>> result = train_ner(splits["train"], splits["dev"], splits["test"], output_dir="saved_models/wnut17")
    >>> result.metrics["test"]["overall"]["f1"]
    """
    return train("ner", train_sentences, dev, test, output_dir=output_dir, data_config=data_config,
                 model_config=model_config, train_config=train_config, task_config=ner_config,
                 strategy=strategy, overwrite=overwrite, callbacks=extra_callbacks, verbose=verbose)
