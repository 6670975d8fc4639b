"""Model server throughput and latency at 32 concurrent clients, with server-side batching off and on.

For one run directory it exports the SavedModel and the dynamic-range int8
TFLite artifact (or takes `--export DIR`, an earlier export holding
`serving/<name>/<version>` and `tflite/model-int8.tflite`), then, for each
artifact, starts `kerastune-nlp serve` in a process of its own twice:

- `one-at-a-time`: max batch 1, each request is its own predictor call;
- `batched`: max batch `--max-batch` (32), merge window `--batch-timeout-ms`;

and drives it with `--clients` threads (32), each with its own REST
`ServingClient`, sending `--requests` (1000) single-text requests of
distinct test texts (distinct, so the server's answer cache never answers).
It prints requests/s and p50/p99 latency per configuration, the ratio
batched / one-at-a-time per artifact, and checks the goal from the issue:
batching raises throughput at 32 clients by at least 3x over one-at-a-time.

The clients run in this process, the server in its own (as in production,
but on the same 2 cores: client-side HTTP work competes with the server).

    .venv/bin/python benchmarks/serving.py --run saved_models/trec
    .venv/bin/python benchmarks/serving.py --export saved_models/trec-export
    .venv/bin/python benchmarks/serving.py          # trains the default TREC classifier first
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GOAL_RATIO = 3.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a run directory (default: train the default TREC classifier)")
    parser.add_argument("--export", help="an export folder to serve as is (skips exporting)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per configuration")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client threads")
    parser.add_argument("--max-batch", type=int, default=32, help="server max batch size when batching")
    parser.add_argument("--batch-timeout-ms", type=float, default=5.0, help="server merge window when batching")
    parser.add_argument("--max-metric-drop", type=float, default=1.0,
                        help="the export gate (points of the task metric the int8 artifact may lose)")
    parser.add_argument("--artifacts", default="savedmodel,tflite-int8", help="which artifacts to serve")
    parser.add_argument("--json-out", default=None, help="write every number here")
    return parser.parse_args(argv)


def export(run: Path, output: Path, formats: list, max_metric_drop: float) -> Path:
    from kerastune_nlp.export.exporter import export_run

    print(f"exporting {run} -> {output} ({', '.join(formats)})", file=sys.stderr)
    export_run(run, output, formats=",".join(formats), measure=False, max_metric_drop=max_metric_drop)
    return output


def artifacts(export_dir: Path, wanted: list) -> dict:
    """Artifact name -> path the server loads: the newest SavedModel version folder, the int8 TFLite file."""
    found = {}
    versions = [p for p in (export_dir / "serving").glob("*/*") if p.name.isdigit()]
    if "savedmodel" in wanted and versions:
        found["savedmodel"] = max(versions, key=lambda p: int(p.name))
    if "tflite-int8" in wanted and (export_dir / "tflite" / "model-int8.tflite").is_file():
        found["tflite-int8"] = export_dir / "tflite" / "model-int8.tflite"
    missing = sorted(set(wanted) - set(found))
    if missing:
        sys.exit(f"{export_dir} lacks {missing}: expected serving/<name>/<version>/ and tflite/model-int8.tflite "
                 "(export with --formats savedmodel,tflite-int8).")
    return found


def test_texts(task: str, count: int) -> list:
    """`count` distinct texts of the bundled data for `task` (test split first)."""
    import kerastune_nlp as kt

    if task == "ner":
        paths = kt.bundled_wnut17()
        texts = [" ".join(s.tokens) for split in ("test", "dev", "train") for s in kt.read_conll(paths[split])]
    else:
        from kerastune_nlp.data.bundled_trec import load_bundled_trec

        splits = load_bundled_trec()
        texts = [e.text for split in ("test", "train") for e in splits[split]]
    texts = list(dict.fromkeys(t for t in texts if t.strip()))
    if len(texts) < count:
        sys.exit(f"only {len(texts)} distinct {task} texts; ask for at most that many --requests")
    return texts[:count]


def drive(url: str, model: str, texts: list, clients: int) -> dict:
    """`clients` threads send one single-text request per text; request/s over the whole run, latency each."""
    from kerastune_nlp.serving.client import ServingClient

    latencies, errors, lock, cursor = [], [], threading.Lock(), iter(range(len(texts)))

    def worker():
        with ServingClient(url, model, timeout=60, retries=0) as client:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                started = time.perf_counter()
                try:
                    client.predict([texts[index]])
                except Exception as error:  # noqa: BLE001  (counted and reported)
                    errors.append(str(error))
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [float("nan")]
    return {"requests": len(texts), "errors": len(errors), "first_error": errors[0] if errors else None,
            "seconds": round(elapsed, 2), "req_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(ordered), 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)}


def serve_and_drive(path: Path, texts: list, warmup: list, args, batched: bool) -> dict:
    """Starts `kerastune-nlp serve` in its own process, warms it up, drives it, stops it."""
    import signal
    import socket
    import subprocess

    from kerastune_nlp.serving.client import ServingClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    batching = ["--max-batch-size", str(args.max_batch), "--batch-timeout-ms", str(args.batch_timeout_ms)] \
        if batched else ["--no-batching"]
    server = subprocess.Popen([sys.executable, "-m", "kerastune_nlp.cli", "serve", str(path), "--port", str(port),
                               "--model-name", "bench", "--poll-seconds", "0", *batching],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        with ServingClient(url, "bench", batch_size=1, concurrency=4, retries=60, backoff=0.5,
                           max_backoff=1.0) as client:
            client.predict(warmup)  # waits for the server, and traces its shapes before the clock starts
        return drive(url, "bench", texts, args.clients)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def markdown(rows: list, ratios: dict, goal: str) -> str:
    lines = ["| artifact | server batching | clients | requests | req/s | p50 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['artifact']} | {row['batching']} | {row['clients']} | {row['requests']} | "
                     f"{row['req_per_s']} | {row['p50_ms']} | {row['p99_ms']} | {row['errors']} |")
    lines.append("")
    lines += [f"- {name}: batched / one-at-a-time throughput = {ratio:.2f}x" for name, ratio in ratios.items()]
    lines.append(f"- goal: {goal}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    wanted = [a.strip() for a in args.artifacts.split(",") if a.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.export:
            export_dir = Path(args.export)
        else:
            run = Path(args.run) if args.run else None
            if run is None:
                from kerastune_nlp.cli import main as cli

                run = scratch / "trec-run"
                if cli(["train", "--task", "classification", "--output", str(run)]) != 0:
                    sys.exit("training the default classifier failed")
            export_dir = export(run, scratch / "export", wanted, args.max_metric_drop)
        found = artifacts(export_dir, wanted)
        from kerastune_nlp.inference import load_predictor

        task = load_predictor(next(iter(found.values()))).task.name
        texts = test_texts(task, args.requests + 64)
        warmup, texts = texts[:64], texts[64:]
        rows, ratios = [], {}
        for name, path in found.items():
            for batched in (False, True):
                label = f"max batch {args.max_batch}, {args.batch_timeout_ms:g} ms" if batched else "off (max batch 1)"
                print(f"serving {name} ({path}), batching {label}", file=sys.stderr)
                row = {"artifact": name, "batching": label, "clients": args.clients,
                       **serve_and_drive(path, texts, warmup, args, batched)}
                rows.append(row)
                if row["errors"]:
                    print(f"  {row['errors']} errors, first: {row['first_error']}", file=sys.stderr)
            ratios[name] = rows[-1]["req_per_s"] / max(rows[-2]["req_per_s"], 1e-9)
    worst = min(ratios.values())
    verdict = "met" if worst >= GOAL_RATIO and not any(r["errors"] for r in rows) else "NOT met"
    goal = (f"batching raises throughput at {args.clients} clients by at least {GOAL_RATIO:g}x over one-at-a-time: "
            f"{verdict} (lowest ratio {worst:.2f}x)")
    print(f"\nServing {task} model from {export_dir if args.export else args.run or 'a fresh TREC run'} on "
          f"{os.cpu_count()} CPUs; server in its own process, {args.clients} client threads in another\n")
    print(markdown(rows, ratios, goal))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"task": task, "rows": rows, "ratios": ratios, "goal": goal},
                                                  indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
