"""What a user reads before shipping: every artifact's size, speed and metric, and the gate's verdict."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclasses.dataclass
class ArtifactReport:
    """One row of the export report."""

    format: str
    path: str
    size_bytes: int
    metric: float | None = None
    metric_change: float | None = None  # points (or % of MAE for regression) against Keras float32
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    throughput_per_s: float | None = None
    max_abs_logit_diff: float | None = None
    status: str = "published"  # published | refused | failed
    reason: str = ""
    extra: dict = dataclasses.field(default_factory=dict)


def directory_size(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure_speed(predictor, rows: Sequence, single_runs: int = 30, batch: int = 32) -> dict:
    """Latency p50/p95 at batch 1 and throughput at batch `batch`, on real encoded rows."""
    singles = [rows[i % len(rows)] for i in range(single_runs)]
    predictor.outputs(singles[:2])  # warm-up: traces, allocations
    latencies = []
    for row in singles:
        started = time.perf_counter()
        predictor.outputs([row])
        latencies.append((time.perf_counter() - started) * 1000)
    block = [rows[i % len(rows)] for i in range(batch)]
    saved, predictor.batch_size = predictor.batch_size, batch
    try:
        predictor.outputs(block)
        started = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            predictor.outputs(block)
        elapsed = time.perf_counter() - started
    finally:
        predictor.batch_size = saved
    return {"latency_p50_ms": round(statistics.median(latencies), 3),
            "latency_p95_ms": round(float(np.percentile(latencies, 95)), 3),
            "throughput_per_s": round(batch * repeats / elapsed, 1)}


def metric_change(task, reference: float, value: float) -> float:
    """Signed loss against the reference: positive means worse.

    Fractions (F1, accuracy) are compared in points; an error metric (MAE)
    in percent of the reference.
    """
    if task.metric_higher_is_better:
        return round((reference - value) * 100, 3)
    return round((value - reference) / max(abs(reference), 1e-12) * 100, 3)


def write_report(directory: Path, header: dict, rows: list[ArtifactReport]) -> tuple[Path, Path]:
    """`export_report.json` and `export_report.md` in `directory`."""
    data = {**header, "artifacts": [dataclasses.asdict(r) for r in rows]}
    json_path = directory / "export_report.json"
    json_path.write_text(json.dumps(data, indent=2, default=str))
    md_path = directory / "export_report.md"
    md_path.write_text(format_markdown(header, rows))
    return json_path, md_path


def _agreement_line(agreement: dict | None) -> list[str]:
    if not agreement:
        return []
    return ["", f"In-graph tokenizer (raw-string signature): the Hugging Face ids on {agreement['identical']} of "
                f"{agreement['sequences']} sequences ({agreement['rate']:.2%}) of {agreement.get('checked_on', 'the data')}."]


def format_markdown(header: dict, rows: list[ArtifactReport]) -> str:
    metric = header["metric_name"]
    change = "change (% of MAE)" if not header.get("higher_is_better", True) else "drop (points)"
    lines = [
        f"# Export report: {header['run']}",
        "",
        f"Task {header['task']}; {metric} on {header['evaluated_on']} ({header['examples']} examples); "
        f"gate: at most {header['max_metric_drop']} {'points' if header.get('higher_is_better', True) else '%'} "
        f"lost. Machine: {header.get('machine', '')}.",
        *_agreement_line(header.get("tokenizer_agreement")),
        "",
        f"| artifact | size MB | {metric} | {change} | p50 ms (batch 1) | p95 ms | rows/s (batch 32) "
        "| max logit diff | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        def fmt(value, pattern="{:.4f}"):
            return pattern.format(value) if value is not None else "-"

        status = r.status + (f": {r.reason}" if r.reason else "")
        lines.append(f"| {r.format} | {r.size_bytes / 1e6:.1f} | {fmt(r.metric)} | {fmt(r.metric_change, '{:+.2f}')} "
                     f"| {fmt(r.latency_p50_ms, '{:.2f}')} | {fmt(r.latency_p95_ms, '{:.2f}')} "
                     f"| {fmt(r.throughput_per_s, '{:.1f}')} | {fmt(r.max_abs_logit_diff, '{:.1e}')} | {status} |")
    notes = header.get("notes") or []
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
