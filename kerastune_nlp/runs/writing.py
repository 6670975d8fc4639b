"""What every stage that trains writes into a run directory: metrics.json's common sections, then the files.

`train`, `distill` and `prune_run` all end here, so a run directory looks
the same whichever stage wrote it; a stage adds its own metrics section
(`distillation`, `pruning`) to what `run_metrics` returns.
"""

from __future__ import annotations

import time
from pathlib import Path

from kerastune_nlp.runs import staging as run_staging
from kerastune_nlp.runs.layout import RunLayout, write_json


def run_metrics(task, splits: dict, train, scores: dict, *, dev_per_epoch: list, training: dict,
                train_seconds: float, started: float | None, epoch_end: dict | None = None) -> dict:
    """metrics.json of a run directory, whatever stage trained it; a stage adds its own sections after these.

    Args:
        task: the `Task` trained.
        splits: dict. The example lists (`train`, `dev`, `test`).
        train: `EncodedSplit`. The encoded training split (its stats).
        scores: dict. `{"dev": scores, "test": scores or None}` of the final model.
        dev_per_epoch: list of `{"epoch": n, "val_...": value}`.
        training: dict. How it was trained (precision, replicas, updates, ...).
        train_seconds: float. Seconds in `fit`.
        started: float or None. `time.perf_counter()` at the call's start.
        epoch_end: dict or None. What each epoch's end cost (left out when None).
    """
    metrics = {
        "task": task.name,
        "dev": scores["dev"],
        "test": scores["test"],
        "dev_per_epoch": dev_per_epoch,
        "training": training,
        "timing": {"train_seconds": round(train_seconds, 2),
                   "total_seconds": round(time.perf_counter() - (started or time.perf_counter()), 2)},
    }
    if epoch_end is not None:
        metrics["epoch_end"] = epoch_end
    metrics["data"] = {"train": {"examples": len(splits["train"]), **train.stats}, "dev": len(splits["dev"]),
                       "test": len(splits["test"]), "train_real_tokens": train.real_tokens}
    metrics["reports_describe"] = "test" if splits["test"] else "dev"
    return metrics


def write_run(layout: RunLayout, output_dir, predictor, splits: dict, metrics: dict, history: dict, manifest,
              keep_optimizer_state: bool = False) -> None:
    """Writes the reports, curves, metrics.json, history and manifest into the staging folder; commits it.

    The model files must be in `layout` already (`Predictor.save_model_files`).
    """
    from kerastune_nlp.evaluation import reports
    from kerastune_nlp.runs.manifest import write_manifest

    task, report_split = predictor.task, metrics["reports_describe"]
    reports.write_training_curves(layout.root, history, task.monitor)
    task.write_reports(layout.root, predictor, splits[report_split], metrics[report_split])
    write_json(layout / RunLayout.METRICS, metrics)
    write_json(layout / RunLayout.HISTORY, history)
    run_staging.prune(layout, keep_optimizer_state=keep_optimizer_state)
    write_manifest(layout, manifest)
    run_staging.commit(layout, Path(output_dir))
