"""Document context (FLERT, issue 24): WikiGold by article, with and without context.

Trains the bundled all-MiniLM-L6-v2 with the default NER recipe (TrainConfig
defaults: batch 8, learning rate 2e-4, warmup 0.1; `--epochs`, default 2 to
fit a shared 2-core machine) on WikiGold split by article (the package's
document split, 70/15/15, seeded by `--seeds`, so each seed is another split
AND another initialisation), once per `--sizes` value (default "0,auto";
auto is max_length // 4 = 32 sub-tokens per side at max_length 128).

Per run: dev and test entity F1 (dev of the best epoch), the encoded train
split (windows, tokens, context tokens), and training speed as
    centre tok/s  sub-tokens of the sentences themselves (special tokens
                  included, context and padding excluded) x epochs / fit s;
    all tok/s     every real sub-token the encoder reads (context included);
fit s is the whole `model.fit` (epoch-end dev scoring included).

Then WNUT-17 (no documents): every split encoded with context_size 0 and
"auto", compared row by row (ids, labels, scored positions): they must be
identical. A full WNUT training is not needed for that.

    python benchmarks/document_context.py                      # 3 seeds x {0, auto}, 2 epochs
    python benchmarks/document_context.py --seeds 0 --epochs 1 # smoke run
    python benchmarks/document_context.py --only-wnut

Results are appended to `--json-out` after every run, so a stopped run keeps
what it measured; the table is printed at the end (or from the JSON with
--table-only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

WIKIGOLD = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "wikigold" / "wikigold.conll.txt")


def wnut_comparison(max_length: int) -> dict:
    from kerastune_nlp.config import NERDataConfig
    from kerastune_nlp.data import bundled_wnut17, read_conll
    from kerastune_nlp.models import backbones
    from kerastune_nlp.tasks.ner import NERTask

    resolved = backbones.resolve_backbone("all-minilm-l6-v2")
    tokenizer = backbones.load_tokenizer(resolved.directory, backbones.load_config(resolved).vocab_size)
    splits = {name: read_conll(path) for name, path in bundled_wnut17().items()}
    result = {}
    for size in (0, "auto"):
        task = NERTask(NERDataConfig(context_size=size))
        task.fit_state(splits["train"])
        task.fit_encoding(splits["train"], max_length)
        for name, sentences in splits.items():
            encoded = task.encode(tokenizer, sentences, max_length)
            digest = hashlib.sha256()
            for row in encoded.rows:
                for array in (row.input_ids, row.labels, row.scored_positions, row.scored_words, row.scored_ends):
                    digest.update(array.tobytes() + b"|")
            result[f"{name}/{size}"] = {"resolved": task.state["context_size"], "windows": len(encoded.rows),
                                        "tokens": encoded.real_tokens, "sha256": digest.hexdigest()[:16]}
    result["identical"] = all(result[f"{n}/0"] == {**result[f"{n}/auto"], "resolved": 0} for n in splits)
    return result


def one_run(size, seed: int, epochs: int, max_length: int) -> dict:
    import kerastune_nlp as kt
    from kerastune_nlp.config import DataConfig, NERDataConfig, TrainConfig

    with tempfile.TemporaryDirectory() as folder:
        result = kt.train(task="ner", output_dir=Path(folder) / "run", verbose=0,
                          data_config=DataConfig(train=WIKIGOLD, max_length=max_length),
                          task_config=NERDataConfig(context_size=size),
                          train_config=TrainConfig(epochs=epochs, seed=seed))
        manifest = json.loads((result.run_dir / "run_config.json").read_text())
    metrics = result.metrics
    stats = metrics["data"]["train"]
    seconds = metrics["timing"]["train_seconds"]
    all_tokens = metrics["data"]["train_real_tokens"]
    centre = all_tokens - stats.get("context_tokens", 0)
    return {"size": str(size), "max_length": max_length, "resolved": manifest["task_state"]["context_size"], "seed": seed, "epochs": epochs,
            "dev_f1": metrics["dev"]["overall"]["f1"], "test_f1": metrics["test"]["overall"]["f1"],
            "windows": stats["windows"], "all_tokens": all_tokens, "centre_tokens": centre,
            "context_windows": stats.get("context_windows", 0), "fit_seconds": seconds,
            "centre_tok_s": centre * epochs / seconds, "all_tok_s": all_tokens * epochs / seconds,
            "load": os.getloadavg()[0]}


def table(runs: list[dict]) -> str:
    lines = ["| max_length | context | resolved | runs | dev F1 mean ± sd | test F1 mean ± sd | centre tok/s | all tok/s |",
             "|---|---|---|---|---|---|---|---|"]
    for length, size in dict.fromkeys((r.get("max_length", 128), r["size"]) for r in runs):
        group = [r for r in runs if r["size"] == size and r.get("max_length", 128) == length]

        def stat(key):
            values = [r[key] for r in group]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.4f} ± {spread:.4f}"

        lines.append(f"| {length} | {size} | {group[0]['resolved']} | {len(group)} (seeds {','.join(str(r['seed']) for r in group)}) "
                     f"| {stat('dev_f1')} | {stat('test_f1')} | {statistics.mean(r['centre_tok_s'] for r in group):.0f} "
                     f"| {statistics.mean(r['all_tok_s'] for r in group):.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sizes", default="0,auto")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--json-out", default="document_context.json")
    parser.add_argument("--only-wnut", action="store_true")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.json_out)
    report = json.loads(out.read_text()) if out.exists() else {"runs": []}
    if not args.table_only:
        report["wnut17"] = wnut_comparison(args.max_length)
        print("WNUT-17, context 0 vs auto:", json.dumps(report["wnut17"], indent=1), flush=True)
        out.write_text(json.dumps(report, indent=1))
        if not args.only_wnut:
            for seed in (int(s) for s in args.seeds.split(",")):
                for size in args.sizes.split(","):
                    size = size if size == "auto" else int(size)
                    started = time.perf_counter()
                    run = one_run(size, seed, args.epochs, args.max_length)
                    run["wall_seconds"] = round(time.perf_counter() - started, 1)
                    report["runs"].append(run)
                    out.write_text(json.dumps(report, indent=1))
                    print(json.dumps(run), flush=True)
    print(table(report["runs"]) if report["runs"] else "no training runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
