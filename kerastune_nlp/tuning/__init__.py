"""Hyperparameter search over the fine-tuning recipe with KerasTuner (optional extra `tune`).

Example:
>>> from kerastune_nlp.tuning import tune
>>> result = tune("classification", search_dir="saved_models/trec-search", max_trials=10,
...               space={"learning_rate": "1e-5:5e-4:log", "batch_size": [16, 32]})
>>> result.best_hyperparameters
"""

from kerastune_nlp.tuning.search import SearchResult, resolve_objective, tune
from kerastune_nlp.tuning.space import (
    DEFAULT_SPACE,
    Choice,
    Fixed,
    Range,
    SearchSpace,
    build_space,
    parse_overrides,
)

__all__ = ["tune", "SearchResult", "resolve_objective", "DEFAULT_SPACE", "Range", "Choice", "Fixed",
           "SearchSpace", "build_space", "parse_overrides"]
