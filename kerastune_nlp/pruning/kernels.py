"""What pruning zeroes and how: the encoder's Dense kernels under a tfmot pruning wrapper.

Our encoders list their block kernels themselves (`get_prunable_weights`),
so `prune_low_magnitude` wraps the encoder layer as it is. The training
model reuses the run model's own head layers, so the training model and the
plain model share every variable.
"""

from __future__ import annotations

import zlib

from kerastune_nlp.errors import MissingDependencyError
from kerastune_nlp.pruning.schedule import PruningPlan


def gzip_size(path) -> int:
    """Bytes of `path` once gzip-compressed (level 6, streamed: no second copy in memory)."""
    compressor, size = zlib.compressobj(6, zlib.DEFLATED, 31), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            size += len(compressor.compress(chunk))
    return size + len(compressor.flush())


def encoder_kernels(backbone) -> list:
    """The Dense kernels of the backbone's encoder blocks: what pruning zeroes."""
    from kerastune_nlp.backbones import families

    return families.check_own_encoder(backbone).get_prunable_weights()  # exactly what tfmot masks


def kernel_name(variable) -> str:
    """A backbone variable's name without the model instance's scope: "bert/encoder/layer_._0/.../kernel"."""
    return variable.name.split(":")[0].split("/", 1)[-1]


def sparsity_of(variables) -> dict:
    """`kernel_name` -> share of exact zeros."""
    import numpy as np

    return {kernel_name(v): float(np.mean(v.numpy() == 0)) for v in variables}


def import_tfmot():
    """The tfmot module, or a `MissingDependencyError` that says how to install it."""
    from kerastune_nlp._tf import tf  # noqa: F401  (tf_keras must be chosen before tfmot imports)

    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as error:
        raise MissingDependencyError(
            f"Pruning needs tensorflow-model-optimization ({error}). Install it with "
            "`pip install 'kerastune-nlp[export]'`."
        ) from error
    return tfmot


def pruning_model(tfmot, model, backbone, input_names, plan: PruningPlan):
    """A training model sharing `model`'s variables, with the backbone under a pruning wrapper.

    Returns `(training model, the tfmot wrapper)`; the wrapper's `pruning_vars`
    hold `(kernel, mask, threshold)` of every pruned kernel.
    """
    from kerastune_nlp._tf import keras
    from kerastune_nlp.backbones import families

    families.check_own_encoder(backbone)
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in input_names}
    hidden = backbone.output  # the last hidden state: what the run model's head reads
    # tfmot wraps any layer with `get_prunable_weights`, as our encoders have: no adapter layer.
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(backbone, pruning_schedule=plan.schedule(tfmot))
    head = keras.Model(hidden, model.output, name="head")  # the run model's own head layers
    return keras.Model(inputs, head(wrapped(inputs)), name="pruning"), wrapped
