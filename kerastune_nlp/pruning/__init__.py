"""Magnitude pruning: a finished run into a new run directory whose encoder kernels are sparse.

A training stage beside distillation: it fine-tunes and writes a run
directory (`load_run`, `evaluate`, `export` read it), not an artifact.

>>> from kerastune_nlp.pruning import prune_run
>>> prune_run("saved_models/wnut17", sparsity=0.9).metrics["pruning"]["overall_sparsity"]
0.9
"""

from kerastune_nlp.pruning.kernels import encoder_kernels, gzip_size, import_tfmot, pruning_model, sparsity_of
from kerastune_nlp.pruning.prune import prune_run
from kerastune_nlp.pruning.schedule import (MASK_UPDATES, QAT_NOTE, SCHEDULES, TOLERANCE, PruningPlan,
                                            check_settings, default_output, fit_schedule)

__all__ = ["MASK_UPDATES", "QAT_NOTE", "SCHEDULES", "TOLERANCE", "PruningPlan", "check_settings", "default_output",
           "encoder_kernels", "fit_schedule", "gzip_size", "import_tfmot", "prune_run", "pruning_model",
           "sparsity_of"]
