"""The export gate: one artifact scored against the float32 Keras model (logit parity, task metric, speed)."""

from __future__ import annotations

import dataclasses

import numpy as np

from kerastune_nlp.export import report as reporting
from kerastune_nlp.export.report import ArtifactReport

# Largest logit difference accepted for float32 artifacts (ONNX and SavedModel
# match to ~1e-6 here; 1e-4 is the bar the issue sets for ONNX).
FLOAT_PARITY = 1e-4


@dataclasses.dataclass
class ScoringContext:
    task: object
    predictor: object
    examples: list
    rows: list
    reference_outputs: list
    reference_metric: float
    max_metric_drop: float
    measure: bool
    parity: float = FLOAT_PARITY


def score_artifact(context: ScoringContext, runner, row: ArtifactReport, parity: float | None) -> ArtifactReport:
    """Logit parity, metric and speed of one artifact; marks it refused when the gate says so."""
    from kerastune_nlp.inference.predictor import ArtifactPredictor

    p = context.predictor
    artifact = ArtifactPredictor(context.task, runner, p.tokenizer, p.backbone_config, p.max_length, p.batch_size)
    outputs = artifact.outputs(context.rows)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(outputs, context.reference_outputs))
    row.max_abs_logit_diff = diff
    if parity is not None and diff > parity:
        row.status, row.reason = "failed", f"logits differ from Keras by {diff:.2e} (> {parity:.0e})"
        return row
    row.metric = round(context.task.primary_metric(context.task.evaluate(artifact, context.examples)), 6)
    row.metric_change = reporting.metric_change(context.task, context.reference_metric, row.metric)
    if context.measure:
        row.__dict__.update(reporting.measure_speed(artifact, context.rows))
    if row.metric_change > context.max_metric_drop:
        unit = "points" if context.task.metric_higher_is_better else "% of the Keras MAE"
        row.status = "refused"
        row.reason = (f"loses {row.metric_change:.2f} {unit} of {context.task.metric_name} "
                      f"(allowed {context.max_metric_drop})")
    return row
