"""`train_text_classifier`: the sequence-task entry point of earlier releases, a thin wrapper of `train`."""

from __future__ import annotations

from typing import Sequence

from kerastune_nlp import config as cfg
from kerastune_nlp.tasks import get_task
from kerastune_nlp.training.trainer import RunResult, train


def train_text_classifier(train_examples: Sequence, dev: Sequence, test: Sequence | None = None, *,
                          task: str = "classification", output_dir,
                          model_config: cfg.ModelConfig | None = None,
                          data_config: cfg.DataConfig | None = None,
                          train_config: cfg.TrainConfig | None = None, task_config=None,
                          overwrite: bool = False, strategy=None, verbose: int | str = "auto") -> RunResult:
    """Fine-tunes a backbone for classification, multilabel or regression: `train(task=..., ...)`.

    Args:
        task_config: the task's settings (`ClassificationConfig(class_weights=True)`,
            `RegressionConfig(loss="mae")`, `TextDataConfig()`); defaults to the task's own.

    Example:
    >>> result = train_text_classifier(train, dev, test, task="classification", output_dir="saved_models/trec")
    """
    return train(get_task(task)(task_config), train_examples, dev, test, output_dir=output_dir,
                 data_config=data_config, model_config=model_config, train_config=train_config,
                 strategy=strategy, overwrite=overwrite, verbose=verbose)
