"""The distillation block of a student run's metrics.json: teacher and student side by side.

Parameters, weights-file size, CPU latency at batch 1 and the task metric,
measured in one process on the same examples, so the ratios compare like
with like.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Sequence

# Examples timed one at a time for the batch-1 latency (after WARMUP untimed ones).
LATENCY_EXAMPLES = 50
WARMUP = 5


def batch1_latency(predictor, examples: Sequence, limit: int = LATENCY_EXAMPLES) -> dict:
    """Median milliseconds to answer one example: the whole `predict` call, and the model call alone.

    `predict_ms` includes tokenization and decoding (what a caller of
    `Predictor.predict` waits for); `forward_ms` is the model on one padded row.
    """
    from kerastune_nlp.data.batching import pad_rows

    task = predictor.task
    chosen = list(examples)[: limit + WARMUP]
    predict_ms, forward_ms = [], []
    for number, example in enumerate(chosen):
        inputs = task.raw_inputs_of([example])
        started = time.perf_counter()
        task.predict_raw(predictor, inputs)
        predict_seconds = time.perf_counter() - started
        rows = task.encode(predictor.tokenizer, [example], predictor.max_length).rows[:1]
        features = pad_rows(rows, predictor.input_names, predictor.pad_id)
        started = time.perf_counter()
        predictor.run_batch(features)
        forward_seconds = time.perf_counter() - started
        if number >= WARMUP:
            predict_ms.append(1000 * predict_seconds)
            forward_ms.append(1000 * forward_seconds)
    return {"predict_ms": round(statistics.median(predict_ms), 3) if predict_ms else None,
            "forward_ms": round(statistics.median(forward_ms), 3) if forward_ms else None,
            "examples": len(predict_ms)}


def describe_model(predictor, weights_file: Path, scores: dict, latency: dict) -> dict:
    """One side of the comparison."""
    from kerastune_nlp.backbones import families
    from kerastune_nlp.models.lora import count_parameters

    task = predictor.task
    return {
        "blocks": families.num_layers(predictor.backbone_config),
        "parameters": count_parameters(predictor.model)["total"],
        "weights_bytes": Path(weights_file).stat().st_size,
        "latency_batch1_cpu": latency,
        "metric": {split: (task.primary_metric(s) if s else None) for split, s in scores.items()},
    }


def comparison(teacher: dict, student: dict, metric_name: str, higher_is_better: bool) -> dict:
    """Student / teacher ratios: size, parameters, speed-up and the share of the metric kept."""
    def ratio(a, b):
        return round(a / b, 4) if a is not None and b else None

    kept = {}
    for split in ("dev", "test"):
        t, s = teacher["metric"].get(split), student["metric"].get(split)
        kept[split] = (ratio(s, t) if higher_is_better else ratio(t, s)) if t is not None and s is not None else None
    return {
        "metric_name": metric_name,
        "metric_kept": kept,
        "parameters": ratio(student["parameters"], teacher["parameters"]),
        "weights_bytes": ratio(student["weights_bytes"], teacher["weights_bytes"]),
        "speedup_predict": ratio(teacher["latency_batch1_cpu"]["predict_ms"],
                                 student["latency_batch1_cpu"]["predict_ms"]),
        "speedup_forward": ratio(teacher["latency_batch1_cpu"]["forward_ms"],
                                 student["latency_batch1_cpu"]["forward_ms"]),
    }


def format_report(block: dict) -> str:
    """The distillation block as a small table for the CLI."""
    teacher, student, versus = block["teacher"], block["student"], block["student_vs_teacher"]
    name = versus["metric_name"]

    def metric(side, split):
        value = side["metric"].get(split)
        return "-" if value is None else f"{value:.4f}"

    rows = [("", "teacher", "student", "student/teacher"),
            ("encoder blocks", str(teacher["blocks"]), str(student["blocks"]), ""),
            ("parameters", f"{teacher['parameters']:,}", f"{student['parameters']:,}", f"{versus['parameters']:.2f}"),
            ("weights MB", f"{teacher['weights_bytes'] / 1e6:.1f}", f"{student['weights_bytes'] / 1e6:.1f}",
             f"{versus['weights_bytes']:.2f}"),
            ("batch-1 predict ms (CPU)", f"{teacher['latency_batch1_cpu']['predict_ms']:.2f}",
             f"{student['latency_batch1_cpu']['predict_ms']:.2f}", f"{versus['speedup_predict']:.2f}x faster"),
            ("batch-1 model call ms", f"{teacher['latency_batch1_cpu']['forward_ms']:.2f}",
             f"{student['latency_batch1_cpu']['forward_ms']:.2f}", f"{versus['speedup_forward']:.2f}x faster")]
    for split in ("dev", "test"):
        if teacher["metric"].get(split) is not None:
            kept = versus["metric_kept"][split]
            rows.append((f"{split} {name}", metric(teacher, split), metric(student, split),
                         "-" if kept is None else f"{100 * kept:.1f}% kept"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])
                     for row in rows)
