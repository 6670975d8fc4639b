"""The pruning schedule fitted to a run's optimizer steps, and the settings `prune_run` accepts.

Pure Python: the CLI checks the settings with it before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from kerastune_nlp.errors import ConfigError

SCHEDULES = ("polynomial", "constant")
# A kernel may fall short of the target by at most this much (1 point).
TOLERANCE = 0.01
# Share of the steps over which sparsity rises, and mask updates in it.
PRUNING_SHARE = 2 / 3
MASK_UPDATES = 10
# Default fine-tuning rate: this share of the run's own peak rate.
LEARNING_RATE_SHARE = 0.5

QAT_NOTE = (
    "Quantization-aware training is not offered: tensorflow-model-optimization 0.8 cannot quantize the "
    "encoder (quantize_model annotates only the built-in layers of a model that is Sequential or "
    "Functional all the way down, and our encoder is one custom layer, neither Sequential nor "
    "Functional inside; tried on our BERT encoder, tfmot's QuantizeLayer fails on the int32 token ids). "
    "Use post-training quantization "
    "(TFLite dynamic-range int8, ONNX Runtime int8) from `kerastune-nlp export` instead."
)


@dataclasses.dataclass(frozen=True)
class PruningPlan:
    """When the masks change, fitted to the optimizer steps of one pruning run.

    Args:
        kind: str. "polynomial" (sparsity rises from 0 with a cubic
            decay, as in Zhu & Gupta 2017) or "constant" (the target from the first update).
        target: float. Final sparsity of every pruned kernel.
        total_steps: int. Optimizer steps of the whole fine-tune.
        begin_step, end_step: int. First and last step that updates masks.
        frequency: int. Steps between mask updates.
    """

    kind: str
    target: float
    total_steps: int
    begin_step: int
    end_step: int
    frequency: int

    def schedule(self, tfmot):
        """The tfmot `PruningSchedule`."""
        sparsity = tfmot.sparsity.keras
        if self.kind == "constant":
            return sparsity.ConstantSparsity(self.target, self.begin_step, self.end_step, self.frequency)
        return sparsity.PolynomialDecay(0.0, self.target, self.begin_step, self.end_step, frequency=self.frequency)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fit_schedule(total_steps: int, sparsity: float, kind: str = "polynomial") -> PruningPlan:
    """Fits begin/end step and frequency to a run of `total_steps` optimizer steps.

    The end step is a multiple of the frequency, so the last update lands on
    it and reaches the target exactly.

    Example:
    >>> fit_schedule(100, 0.9)
    PruningPlan(kind='polynomial', target=0.9, total_steps=100, begin_step=0, end_step=66, frequency=6)
    """
    check_settings(sparsity, 1, None, kind)
    if total_steps < 2:
        raise ConfigError(
            f"Expected at least 2 optimizer steps to prune gradually and then fine-tune. Received: "
            f"{total_steps} step(s) (training rows / batch size x epochs). Pass more --epochs."
        )
    end = max(1, math.floor(total_steps * PRUNING_SHARE))
    frequency = max(1, end // MASK_UPDATES)
    return PruningPlan(kind, float(sparsity), int(total_steps), 0, end - end % frequency, frequency)


def check_settings(sparsity: float, epochs: int, learning_rate: float | None, schedule: str) -> None:
    """Raises `ConfigError` for settings `prune_run` cannot use (pure Python: before TensorFlow)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 < sparsity < 1.0:
        raise ConfigError(
            f"Expected a target sparsity strictly between 0 and 1 (the share of each encoder kernel set to "
            f"zero). Received: `sparsity`={sparsity!r}. Pass e.g. 0.5, 0.7 or 0.9."
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"Expected `epochs` to be an int >= 1. Received: `epochs`={epochs!r}. Pass e.g. 1.")
    if learning_rate is not None and not 0.0 < learning_rate < 1.0:
        raise ConfigError(f"Expected `learning_rate` in (0, 1). Received: `learning_rate`={learning_rate!r}. "
                          "Leave it out to use half the run's own rate.")
    if schedule not in SCHEDULES:
        raise ConfigError(f"Unknown pruning schedule. Expected one of {list(SCHEDULES)}. "
                          f"Received: `schedule`={schedule!r}.")


def default_output(run_dir, sparsity: float) -> Path:
    """`<run>-pruned<percent>` beside the run, e.g. saved_models/wnut17-pruned90."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f"{run_dir.name}-pruned{round(100 * sparsity)}")
