"""ModernBERT beside the bundled MiniLM: training tokens/s and batch-1 latency, and one 2,048-token forward.

No pretrained ModernBERT weights can be obtained offline here (no internet;
no PyPI package carries them), so the ModernBERT side is RANDOM weights:

1. Side by side on bundled WNUT-17 (NER) and TREC (classification), each
   trained the same way (1 epoch, batch 16, lr 5e-5, max_length 64 (the fixture has 64 positions), the
   first `--limit` training examples): the tiny random ModernBERT of the
   tests (tests/fixtures/encoders/modernbert: 4 layers, hidden 32, its
   byte-level BPE tokenizer of 320 entries, which splits words into many
   more tokens than MiniLM's WordPiece) against the bundled all-MiniLM-L6-v2
   (6 layers, hidden 384, pretrained). Printed: training real tokens/s
   (real sub-tokens trained / `model.fit` training seconds, from the run's
   metrics.json), tokens per example, batch-1 latency (median of the
   `Predictor.predict` call and of the model call alone, on test examples)
   and the dev/test metric, which for the random tiny model means nothing.
   The two models differ in size by ~100x: these rows show that the
   ModernBERT path trains and serves, not how a real ModernBERT compares.
2. A ModernBERT with the ModernBERT-base shape (22 layers, hidden 768, 12
   heads, intermediate 1152, vocab 50368, local window 128, global every 3rd
   layer), random weights, in a child process: one forward pass of a batch
   of 1 x 2,048 tokens (eager Keras call, float32, CPU): build time, the
   first call and the median of the next calls, and the peak RSS of that
   process (VmHWM: TensorFlow's runtime included) at start, after building
   and after the forwards.

    python benchmarks/modernbert.py                 # --limit 600 training examples per task
    python benchmarks/modernbert.py --limit 0       # the whole training splits
    python benchmarks/modernbert.py --only long     # part 2 alone

The machine may be shared: the load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_MODERNBERT = REPO / "tests" / "fixtures" / "encoders" / "modernbert"
BASE_SHAPE = dict(model_type="modernbert", vocab_size=50368, hidden_size=768, num_hidden_layers=22,
                  num_attention_heads=12, intermediate_size=1152, local_attention=128,
                  global_attn_every_n_layers=3, max_position_embeddings=8192, pad_token_id=50283)
NO_WEIGHTS = ("No pretrained ModernBERT weights are obtainable offline here: every ModernBERT number below is "
              "for RANDOM weights (speed and memory only; its task metrics mean nothing).")


def _rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (ru_maxrss would carry the parent's peak across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _data(task: str, limit: int):
    import kerastune_nlp as kt

    if task == "ner":
        paths = kt.bundled_wnut17()
        train, dev, test = (kt.read_conll(paths[name]) for name in ("train", "dev", "test"))
    else:
        from kerastune_nlp.data.bundled_trec import load_bundled_trec

        splits = load_bundled_trec()
        train, test = splits["train"], splits["test"]
        dev = train[-500:]
        train = train[:-500]
    if limit:
        train = train[:limit]
        labels = {e.label for e in train} if task == "classification" else None
        if labels is not None:
            dev, test = [e for e in dev if e.label in labels], [e for e in test if e.label in labels]
    return train, dev[:200], test


def run_side(task: str, backbone: str, limit: int, output: Path) -> dict:
    """Trains one (task, backbone) for 1 epoch; tokens/s, latency and metric."""
    import kerastune_nlp as kt
    from kerastune_nlp.distillation.report import batch1_latency

    train, dev, test = _data(task, limit)
    started = time.perf_counter()
    result = kt.train(task, train, dev, test, output_dir=output, overwrite=True, verbose=0,
                      model_config=kt.ModelConfig(backbone=backbone), data_config=kt.DataConfig(max_length=64),
                      train_config=kt.TrainConfig(epochs=1, batch_size=16, learning_rate=5e-5))
    wall = time.perf_counter() - started
    metrics = result.metrics
    real = metrics["data"]["train_real_tokens"]
    seconds = metrics["timing"]["train_seconds"]
    latency = batch1_latency(result.predictor, test, limit=30)
    return {"task": task, "backbone": backbone, "train_examples": len(train), "train_real_tokens": real,
            "tokens_per_example": round(real / len(train), 1), "train_seconds": seconds,
            "tokens_per_second": round(real / seconds, 1), "run_seconds": round(wall, 1),
            "predict_ms": latency["predict_ms"], "forward_ms": latency["forward_ms"],
            "metric": result.predictor.task.metric_name,
            "test": result.predictor.task.primary_metric(metrics["test"])}


def long_forward(length: int, repeats: int) -> dict:
    """Child process: the ModernBERT-base shape, random weights, forward passes of 1 x `length` tokens."""
    import numpy as np

    from kerastune_nlp.backbones.encoder import build_encoder

    baseline = _rss_mb()
    started = time.perf_counter()
    encoder = build_encoder(dict(BASE_SHAPE), seed=0)
    build_seconds = time.perf_counter() - started
    after_build = _rss_mb()
    parameters = int(sum(np.prod(w.shape) for w in encoder.weights))
    ids = np.random.default_rng(0).integers(5, 50000, size=(1, length)).astype("int32")
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    times = []
    for _ in range(1 + repeats):
        started = time.perf_counter()
        output = encoder(inputs, training=False).numpy()
        times.append(time.perf_counter() - started)
    assert output.shape == (1, length, 768) and np.isfinite(output).all()
    return {"shape": "ModernBERT-base (22 layers, hidden 768, 12 heads, intermediate 1152, window 128, "
                     "global every 3rd), random weights",
            "parameters": parameters, "tokens": length, "build_seconds": round(build_seconds, 1),
            "first_forward_seconds": round(times[0], 2),
            "forward_seconds_median": round(statistics.median(times[1:]), 2) if repeats else None,
            "forward_seconds_all": [round(t, 2) for t in times],
            "tokens_per_second": round(length / min(times[1:] or times), 1),
            "peak_rss_mb_before": round(baseline, 0), "peak_rss_mb_after_build": round(after_build, 0),
            "peak_rss_mb_after_forward": round(_rss_mb(), 0)}


def table(rows) -> str:
    lines = ["| task | backbone | train ex | tok/ex | train tok/s | train s | predict ms (b1) | forward ms (b1) "
             "| test metric |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "MiniLM-L6 (pretrained)" if "minilm" in r["backbone"] else "tiny ModernBERT (RANDOM)"
        lines.append(f"| {r['task']} | {name} | {r['train_examples']} | {r['tokens_per_example']} | "
                     f"{r['tokens_per_second']} | {r['train_seconds']} | {r['predict_ms']} | {r['forward_ms']} | "
                     f"{r['metric']} {r['test']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=600, help="training examples per task (0: all)")
    parser.add_argument("--only", choices=("side", "long"), help="run one part only")
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2, help="timed forwards after the first")
    parser.add_argument("--output", default=None, help="folder for runs and modernbert.json (default: a temp dir)")
    parser.add_argument("--child-long", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_long:
        print(json.dumps(long_forward(args.length, args.repeats)))
        return 0
    print(NO_WEIGHTS)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()} (shared machine: "
          "other work stretches wall times)", flush=True)
    output = Path(args.output or tempfile.mkdtemp(prefix="modernbert-bench-"))
    output.mkdir(parents=True, exist_ok=True)
    results: dict = {"note": NO_WEIGHTS}
    if args.only in (None, "side"):
        rows = []
        for task in ("ner", "classification"):
            for backbone in ("all-minilm-l6-v2", str(TINY_MODERNBERT)):
                row = run_side(task, backbone, args.limit, output / f"{task}-{Path(backbone).name}")
                rows.append(row)
                print(json.dumps(row), flush=True)
        results["side_by_side"] = rows
        print(table(rows))
    if args.only in (None, "long"):
        completed = subprocess.run([sys.executable, __file__, "--child-long", "--length", str(args.length),
                                    "--repeats", str(args.repeats)], capture_output=True, text=True,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if completed.returncode != 0:
            print(completed.stderr[-3000:])
            return 1
        long = json.loads(completed.stdout.strip().splitlines()[-1])
        results["long_forward"] = long
        print(f"ModernBERT-base shape, RANDOM weights, {long['parameters'] / 1e6:.1f}M parameters, batch 1 x "
              f"{long['tokens']} tokens: build {long['build_seconds']} s; first forward {long['first_forward_seconds']}"
              f" s, then {long['forward_seconds_all'][1:]} s ({long['tokens_per_second']} tokens/s); peak RSS "
              f"{long['peak_rss_mb_before']:.0f} MB after importing TensorFlow, {long['peak_rss_mb_after_build']:.0f} MB after build, {long['peak_rss_mb_after_forward']:.0f} MB "
              "after the forwards")
    results["load_average_after"] = os.getloadavg()
    (output / "modernbert.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {output / 'modernbert.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
