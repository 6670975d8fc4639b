"""Inference side by side: the Keras model, every exported artifact and PyTorch eager, on the same inputs.

For each run directory (the bundled NER model and a TREC classifier by
default) it exports every format with `kerastune_nlp.export.export_run`
(which scores each artifact's task metric on the run's test split and
gates it), then times, in this one process, on the same encoded test
rows:

- `keras-float32`: the run's Keras model (`Predictor`, one traced graph);
- `savedmodel-ids`: the SavedModel's `ids` signature;
- `savedmodel-raw`: the `serving_default` signature on raw strings, which
  also tokenizes (in the graph) and decodes (NER: Viterbi, spans), so it
  does more work than the rows above;
- each TFLite variant (LiteRT) and ONNX Runtime float32 / int8;
- `pytorch-eager`: the same trained weights copied into the Transformers
  PyTorch model plus a `torch.nn.Linear` head, float32, `torch.no_grad()`.

Latency is batch 1 over `--latency-rows` test rows (p50/p95); throughput is
rows per second over `--throughput-rows` rows in batches of 32, length
sorted as the `Predictor` batches. Every engine gets the machine's cores.
Goals checked at the end (from the issue): an int8 artifact at least 4x
faster than the float32 SavedModel at batch 1, at most 25% of its size,
losing at most 0.5 points, and at least 3x faster than PyTorch eager.

    make bench-venv   # once: .venv-bench with torch
    .venv-bench/bin/python benchmarks/inference.py --ner-run saved_models/wnut17 --classifier-run saved_models/trec
    .venv-bench/bin/python benchmarks/inference.py            # trains both (default recipes) first

Needs torch (benchmarks/requirements.txt) and the export extras.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMATS = ("savedmodel", "tflite-float32", "tflite-float16", "tflite-int8", "tflite-int8-full", "onnx", "onnx-int8")
INT8 = ("tflite-int8", "onnx-int8")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ner-run", help="an NER run directory (default: train the default recipe on WNUT-17)")
    parser.add_argument("--classifier-run", help="a classification run directory (default: train on TREC)")
    parser.add_argument("--output", default=None, help="export folder (default: a temporary folder)")
    parser.add_argument("--latency-rows", type=int, default=200)
    parser.add_argument("--throughput-rows", type=int, default=512)
    parser.add_argument("--json-out", default=None, help="write every number here")
    return parser.parse_args(argv)


def train_default(task: str, output: Path) -> Path:
    from kerastune_nlp.cli import main as cli

    if cli(["train", "--task", task, "--output", str(output)]) != 0:
        sys.exit(f"training the {task} run failed")
    return output


# --- engines: each maps padded int32 features (dict of numpy) to float32 outputs ---


def torch_twin(predictor):
    """The run's trained weights in the Transformers PyTorch model plus a Linear head.

    Our encoder is written as a PyTorch-named checkpoint (`save_checkpoint`)
    and read back by transformers' `AutoModel`, as a PyTorch user would.
    """
    import torch
    from transformers import AutoModel

    from kerastune_nlp._tf import keras
    from kerastune_nlp.backbones import families
    from kerastune_nlp.backbones.encoder import save_checkpoint

    backbone = next(layer for layer in predictor.model.layers if families.is_own_encoder(layer))
    head = [layer for layer in predictor.model.layers if isinstance(layer, keras.layers.Dense)][-1]
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(backbone, predictor.backbone_config, folder)
        body = AutoModel.from_pretrained(folder, add_pooling_layer=False).eval()
    kernel, bias = (w.numpy() for w in head.weights)
    linear = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
        linear.bias.copy_(torch.from_numpy(bias))
    sequence_level = any(layer.name == "first_token" for layer in predictor.model.layers)

    def run(features: dict):
        with torch.no_grad():
            hidden = body(**{k: torch.from_numpy(v.astype("int64")) for k, v in features.items()}).last_hidden_state
            if sequence_level:
                hidden = hidden[:, 0, :]
            return linear(hidden).numpy()

    return run


def latest_version(export_dir: Path) -> Path | None:
    versions = [p for p in (export_dir / "serving").glob("*/*") if p.name.isdigit()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def engines(predictor, export_dir: Path, threads: int) -> dict:
    from kerastune_nlp.inference.runners import OnnxRunner, SavedModelRunner, TFLiteRunner

    found = {"keras-float32": predictor.run_batch}
    saved = latest_version(export_dir)
    if saved:
        found["savedmodel-ids"] = SavedModelRunner(saved)
    for variant in ("float32", "float16", "int8", "int8-full"):
        path = export_dir / "tflite" / f"model-{variant}.tflite"
        if path.is_file():
            found[f"tflite-{variant}"] = TFLiteRunner(path, threads=threads)
    for name, file in (("onnx", "model.onnx"), ("onnx-int8", "model-int8.onnx")):
        if (export_dir / "onnx" / file).is_file():
            found[name] = OnnxRunner(export_dir / "onnx" / file, threads=threads)
    found["pytorch-eager"] = torch_twin(predictor)
    return found


def timed(run, singles: list, batches: list, rows: int) -> dict:
    """p50/p95 ms of `run` over `singles` (batch 1) and rows/s over `batches`, after a warm-up."""
    import numpy as np

    for single in singles[:5]:
        run(single)
    latencies = []
    for single in singles:
        started = time.perf_counter()
        run(single)
        latencies.append((time.perf_counter() - started) * 1000)
    run(batches[-1])
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    elapsed = time.perf_counter() - started
    return {"p50_ms": round(statistics.median(latencies), 2), "p95_ms": round(float(np.percentile(latencies, 95)), 2),
            "rows_per_s": round(rows / elapsed, 1)}


def time_engine(run, rows, input_names, pad_id, latency_rows: int, throughput_rows: int) -> dict:
    """Batch-1 latency and batch-32 throughput (length-sorted batches) on the same encoded rows."""
    import numpy as np

    from kerastune_nlp.data.batching import pad_rows

    singles = [pad_rows([rows[i % len(rows)]], input_names, pad_id) for i in range(latency_rows)]
    block = [rows[i % len(rows)] for i in range(throughput_rows)]
    order = np.argsort([len(r.input_ids) for r in block], kind="stable")
    batches = [pad_rows([block[i] for i in order[b: b + 32]], input_names, pad_id) for b in range(0, len(block), 32)]
    return timed(run, singles, batches, len(block))


def time_raw_signature(export_dir: Path, task, examples, latency_rows: int, throughput_rows: int) -> dict | None:
    """The raw-string signature, end to end (in-graph tokenization, model, decoding)."""
    from kerastune_nlp._tf import tf
    from kerastune_nlp.inference.runners import load_saved_model
    from kerastune_nlp.inference.artifacts import RAW_SIGNATURE

    saved = latest_version(export_dir)
    if not saved:
        return None
    loaded = load_saved_model(saved)
    if RAW_SIGNATURE not in loaded.signatures:
        return None
    signature = loaded.signatures[RAW_SIGNATURE]
    inputs = task.raw_inputs_of(examples)

    def strings(indices) -> dict:
        return {k: tf.constant([v[i % len(examples)] for i in indices]) for k, v in inputs.items()}

    singles = [strings([i]) for i in range(latency_rows)]
    batches = [strings(range(b, min(b + 32, throughput_rows))) for b in range(0, throughput_rows, 32)]
    return timed(lambda features: signature(**features), singles, batches, throughput_rows)


def benchmark_run(label: str, run_dir: Path, export_dir: Path, args, threads: int) -> dict:
    import numpy as np

    import kerastune_nlp as kt
    from kerastune_nlp.export.exporter import export_run
    from kerastune_nlp.export.exporter import check_run, evaluation_examples
    from kerastune_nlp.inference.predictor import ArtifactPredictor

    print(f"[{label}] exporting {run_dir} -> {export_dir}", file=sys.stderr)
    result = export_run(run_dir, export_dir, formats=FORMATS, measure=False, overwrite=True)
    predictor = kt.load_run(run_dir)
    task = predictor.task
    examples, evaluated_on = evaluation_examples(task, check_run(run_dir))
    rows = task.encode(predictor.tokenizer, examples, predictor.max_length).rows
    found = engines(predictor, export_dir, threads)

    metrics = {a.format: a for a in result.artifacts}
    keras_metric = metrics["keras-float32"].metric
    twin = ArtifactPredictor(task, found["pytorch-eager"], predictor.tokenizer, predictor.backbone_config,
                             predictor.max_length)
    torch_metric = float(task.primary_metric(twin.evaluate(examples)))
    sample = task.encode(predictor.tokenizer, examples[:64], predictor.max_length).rows
    torch_diff = float(max(np.max(np.abs(a - b)) for a, b in zip(predictor.outputs(sample), twin.outputs(sample))))

    table = []
    for name, run in found.items():
        artifact = metrics.get(name.removesuffix("-ids"))
        if name == "pytorch-eager":
            metric, status, size = torch_metric, f"same weights, max logit diff {torch_diff:.1e}", None
        else:
            metric, status, size = artifact.metric, artifact.status, artifact.size_bytes
        print(f"[{label}] timing {name}", file=sys.stderr)
        speed = time_engine(run, rows, predictor.input_names, predictor.pad_id, args.latency_rows,
                            args.throughput_rows)
        table.append({"engine": name, "size_mb": size and round(size / 1e6, 1), "metric": metric,
                      "drop_points": None if metric is None else round((keras_metric - metric) * 100, 2),
                      "status": status, **speed})
    raw = time_raw_signature(export_dir, task, examples, args.latency_rows, args.throughput_rows)
    if raw:
        saved = metrics["savedmodel"]
        table.insert(2, {"engine": "savedmodel-raw", "size_mb": round(saved.size_bytes / 1e6, 1),
                         "metric": saved.metric, "drop_points": round((keras_metric - saved.metric) * 100, 2),
                         "status": "raw strings in, tokenizes and decodes in the graph", **raw})
    return {"run": str(run_dir), "task": task.name, "metric_name": task.metric_name, "evaluated_on": evaluated_on,
            "examples": len(examples), "rows": table, "goals": goals(table)}


def goals(table: list[dict]) -> dict:
    """The issue's targets for the best int8 artifact."""
    by_name = {row["engine"]: row for row in table}
    saved, torch_row = by_name.get("savedmodel-ids"), by_name["pytorch-eager"]
    verdicts = {}
    for name in INT8:
        row = by_name.get(name)
        if not row or not saved or row["status"] != "published":
            continue
        verdicts[name] = {
            "speedup_vs_savedmodel_batch1": round(saved["p50_ms"] / row["p50_ms"], 2),
            "size_share_of_savedmodel": round(row["size_mb"] / saved["size_mb"], 3),
            "drop_points": row["drop_points"],
            "speedup_vs_pytorch_batch1": round(torch_row["p50_ms"] / row["p50_ms"], 2),
            "throughput_vs_pytorch": round(row["rows_per_s"] / torch_row["rows_per_s"], 2),
        }
        v = verdicts[name]
        v["meets_all"] = (v["speedup_vs_savedmodel_batch1"] >= 4 and v["size_share_of_savedmodel"] <= 0.25
                          and v["drop_points"] <= 0.5 and v["speedup_vs_pytorch_batch1"] >= 3)
    return verdicts


def markdown(result: dict) -> str:
    metric = result["metric_name"]
    lines = [f"### {result['task']}: {result['run']} ({metric} on {result['evaluated_on']}, {result['examples']} examples)",
             "", f"| engine | size MB | {metric} | drop (points) | p50 ms batch 1 | p95 ms | rows/s batch 32 | status |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        metric_text = f"{r['metric']:.4f}" if r["metric"] is not None else "-"
        drop = f"{r['drop_points']:+.2f}" if r["drop_points"] is not None else "-"
        size = f"{r['size_mb']:.1f}" if r["size_mb"] is not None else "-"
        lines.append(f"| {r['engine']} | {size} | {metric_text} | {drop} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                     f"{r['rows_per_s']:.1f} | {r['status']} |")
    for name, v in result["goals"].items():
        lines.append(f"\n{name}: {v['speedup_vs_savedmodel_batch1']}x faster than the SavedModel at batch 1 (goal 4x), "
                     f"{v['size_share_of_savedmodel']:.1%} of its size (goal <= 25%), drop {v['drop_points']:+.2f} "
                     f"points (goal <= 0.5), {v['speedup_vs_pytorch_batch1']}x faster than PyTorch eager at batch 1 "
                     f"(goal 3x), {v['throughput_vs_pytorch']}x its batch-32 throughput: "
                     f"{'all goals met' if v['meets_all'] else 'not all goals met'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        output = Path(args.output) if args.output else scratch / "exports"
        runs = {"ner": Path(args.ner_run) if args.ner_run else train_default("ner", scratch / "ner-run"),
                "classification": (Path(args.classifier_run) if args.classifier_run
                                   else train_default("classification", scratch / "trec-run"))}
        results = []
        for label, run in runs.items():
            results.append(benchmark_run(label, run, output / label, args, threads))
            if args.json_out:  # kept as it goes: a later failure loses nothing measured
                Path(args.json_out).write_text(json.dumps({"results": results}, indent=2))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    print(f"\nInference on {cpu}, {threads} threads per engine; torch {torch.__version__}\n")
    for result in results:
        print(markdown(result) + "\n")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"cpu": cpu, "threads": threads, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
