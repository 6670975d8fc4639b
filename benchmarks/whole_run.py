"""The whole NER run, as a user waits for it: kerastune_nlp against PyTorch + Hugging Face Trainer.

Both sides do the same work on the same CoNLL files, backbone (bundled
all-MiniLM-L6-v2), epochs, batch size, learning rate, warmup, weight decay,
AdamW eps 1e-6, clipping at 1.0, max length and seed (the product defaults):
read the files, tokenize, fine-tune, score dev by entity F1 at every epoch
end and save a checkpoint there, bring back the best epoch at the end, score
test, and write the trained model to an output folder.

    kerastune  `examples/ner_conll.py --train --dev --test --output RUN`, as a
               user runs it (best checkpoint model-only, crash backups every
               10 minutes and at epoch ends, the full run directory: weights,
               tokenizer, reports, metrics.json).
    pytorch    `AutoModelForTokenClassification` + `Trainer` with
               `eval_strategy="epoch"`, `save_strategy="epoch"`,
               `load_best_model_at_end=True`, `metric_for_best_model="f1"`
               (entity F1 by the same scorer), `DataCollatorForTokenClassification`
               (dynamic padding); test scored with `trainer.predict`, then
               `trainer.save_model` and the tokenizer into the output folder.
               `--hf-group-by-length` samples with `train_sampling_strategy="group_by_length"` (less padding).

Each side runs in its own subprocess, one after the other, with the same
thread settings. Measured per side:

    process s   the subprocess's wall time: interpreter, imports, everything.
    run s       from before reading the files to the output folder written.
    train s     the training steps only (every epoch's end taken out).
    epoch end   mean seconds per epoch of dev scoring + checkpoint (+ crash backup).
    MB written  checkpoints and backups written during training, plus the output.

    python benchmarks/whole_run.py                          # bundled WNUT-17, 3 epochs
    python benchmarks/whole_run.py --repeat-train 5 --epochs 1   # 16,970 sentences
    python benchmarks/whole_run.py --limit 200 --epochs 1   # smoke run

The larger set is WNUT-17 train repeated `--repeat-train` times (dev and test
unchanged): the package ships no larger tagged corpus, and timing needs
sentences of the real length distribution more than new ones. Run on a
quiet machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from kerastune_nlp import config as cfg  # light: no TensorFlow
from flops import cpu_peak, describe_peak, training_flops  # benchmarks/flops.py, beside this script
from hf_token_classification import encode_first_subtoken, first_subtoken_tags  # beside this script
from streaming import run_streaming  # benchmarks/streaming.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ner_conll.py"
SIDES = ("kerastune", "pytorch")
GOAL = 1.3  # PyTorch's whole-run seconds over kerastune's, at least
ADAM_EPSILON, MAX_GRAD_NORM, EVAL_BATCH_SIZE = 1e-6, 1.0, 32  # as kerastune's optimizer / predictor
THREADS = os.cpu_count() or 1
PRECISIONS = ("float32", "mixed_bfloat16", "autocast_bfloat16")


def parse_args(argv=None) -> argparse.Namespace:
    train = cfg.TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=train.epochs, help=f"default {train.epochs}")
    parser.add_argument("--repeat-train", type=int, default=1,
                        help="train on WNUT-17 train repeated K times (default 1; 5 gives 16,970 sentences)")
    parser.add_argument("--limit", type=int,
                        help="smoke run: the first N train sentences and N/3 dev and test sentences")
    parser.add_argument("--hf-group-by-length", action="store_true",
                        help="PyTorch side: train_sampling_strategy=\"group_by_length\" (batches of similar lengths)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="float32 on both sides (default); mixed_bfloat16 or autocast_bfloat16: kerastune "
                             "`--precision` that, PyTorch `TrainingArguments(bf16=True)` (bfloat16 autocast)")
    parser.add_argument("--only", action="append", choices=SIDES, help="run only this side (repeatable)")
    parser.add_argument("--json-out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--worker", choices=["pytorch"], help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeat_train < 1 or (args.limit is not None and args.limit < 3):
        parser.error(f"--epochs and --repeat-train must be at least 1, --limit at least 3. Received: "
                     f"--epochs={args.epochs} --repeat-train={args.repeat_train} --limit={args.limit}")
    return args


def write_data(args, folder: Path) -> dict:
    """The CoNLL files both sides read: bundled WNUT-17, train repeated or cut as asked."""
    from kerastune_nlp.data import bundled_wnut17, read_conll, write_conll

    folder.mkdir(parents=True, exist_ok=True)
    files, sizes = {}, {}
    for split, path in bundled_wnut17().items():
        sentences = read_conll(path)
        if args.limit:
            sentences = sentences[: args.limit if split == "train" else max(1, args.limit // 3)]
        if split == "train":
            sentences = sentences * args.repeat_train
        files[split] = folder / f"{split}.conll"
        write_conll(files[split], [s.tokens for s in sentences], [s.tags for s in sentences])
        sizes[split] = len(sentences)
    return {"files": {k: str(v) for k, v in files.items()}, "sentences": sizes}


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).exists() else 0


# -- kerastune_nlp: the example, as a user runs it ------------------------------------------------


def run_kerastune(args, data: dict, output: Path) -> dict:
    files = data["files"]
    command = [sys.executable, str(EXAMPLE), "--epochs", str(args.epochs), "--output", str(output),
               "--train", files["train"], "--dev", files["dev"], "--test", files["test"],
               "--precision", args.precision]
    finished = run_streaming(command, worker_env("kerastune"), ROOT, tail_chars=3000)
    metrics_file = output / "metrics.json"
    if finished.returncode != 0 or not metrics_file.is_file():
        return {"error": f"examples/ner_conll.py exited with {finished.returncode}. Last output:\n{finished.tail}"}
    metrics = json.loads(metrics_file.read_text())
    epochs = metrics["epoch_end"]["per_epoch"]
    return {
        "process_seconds": finished.wall_seconds, "process_cpu_seconds": finished.cpu_seconds,
        "run_seconds": metrics["timing"]["total_seconds"],
        "train_seconds": sum(e["train_seconds"] for e in epochs),
        "fit_seconds": metrics["timing"]["train_seconds"],
        "epoch_end": [{"seconds": e["epoch_end_seconds"], "dev_scoring": e.get("dev_scoring_seconds", 0.0),
                       "decoding": e.get("decoding_seconds", 0.0),
                       "checkpoint": e.get("checkpoint_seconds", 0.0) + e.get("backup_seconds", 0.0),
                       "bytes": e["bytes_written"], "share": e["epoch_end_share"]} for e in epochs],
        "bytes_written": sum(e["bytes_written"] for e in epochs) + folder_bytes(output),
        "output_bytes": folder_bytes(output),
        "dev_f1": metrics["dev"]["overall"]["f1"], "test_f1": metrics["test"]["overall"]["f1"],
        "best_epoch": max(metrics["dev_per_epoch"], key=lambda e: e.get("val_entity_f1", -1))["epoch"],
        "train_real_tokens": metrics["data"]["train_real_tokens"],
    }


# -- PyTorch + Hugging Face Trainer (a worker subprocess) -----------------------------------------


def run_pytorch_worker(args) -> dict:
    """The whole run in this process; returns what `run_pytorch` reports."""
    started = time.perf_counter()
    import torch

    torch.set_num_threads(THREADS)
    import transformers
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainerCallback, TrainingArguments, set_seed)

    from kerastune_nlp.data import LabelMap, read_conll
    from kerastune_nlp.evaluation.ner_metrics import entity_scores
    from kerastune_nlp.models.backbones import resolve_backbone

    imported = time.perf_counter()
    transformers.utils.logging.set_verbosity_error()
    files = json.loads(args.files.read_text())["files"]
    splits = {split: read_conll(path) for split, path in files.items()}
    train_config, max_length = cfg.TrainConfig(), cfg.DataConfig().max_length
    set_seed(train_config.seed)
    label_map = LabelMap.from_sentences(splits["train"])
    directory = str(resolve_backbone(cfg.DEFAULT_BACKBONE).directory)
    tokenizer = AutoTokenizer.from_pretrained(directory, use_fast=True)

    def f1(sentences, logits, word_maps):
        """Entity F1 from each word's first sub-token (argmax); words cut off by truncation are O."""
        predicted = first_subtoken_tags(logits, word_maps, sentences, label_map)
        return float(entity_scores([s.tags for s in sentences], predicted)["overall"]["f1"])

    encoded = {split: encode_first_subtoken(tokenizer, sentences, label_map, max_length)
               for split, sentences in splits.items()}

    class EpochEndClock(TrainerCallback):
        """Seconds of each epoch end: from the last step through evaluation to the saved checkpoint."""

        def __init__(self):
            self.epochs, self._marks = [], {}

        def on_epoch_begin(self, args, state, control, **kwargs):
            self._marks = {"begin": time.perf_counter()}

        def on_epoch_end(self, args, state, control, **kwargs):
            self._marks["end"] = time.perf_counter()

        def on_evaluate(self, args, state, control, **kwargs):
            self._marks["evaluated"] = time.perf_counter()

        def on_save(self, args, state, control, **kwargs):
            m, now = self._marks, time.perf_counter()
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.epochs.append({"train_seconds": m["end"] - m["begin"], "seconds": now - m["end"],
                                "dev_scoring": m["evaluated"] - m["end"], "checkpoint": now - m["evaluated"],
                                "bytes": folder_bytes(checkpoint)})

    model = AutoModelForTokenClassification.from_pretrained(
        directory, num_labels=len(label_map), id2label=dict(enumerate(label_map.labels)),
        label2id={t: i for i, t in enumerate(label_map.labels)})
    clock = EpochEndClock()
    checkpoints = args.output / "checkpoints"
    training_args = TrainingArguments(
        output_dir=str(checkpoints), num_train_epochs=args.epochs,
        per_device_train_batch_size=train_config.batch_size, per_device_eval_batch_size=EVAL_BATCH_SIZE,
        learning_rate=train_config.learning_rate, lr_scheduler_type="linear",
        warmup_steps=train_config.warmup_ratio, weight_decay=train_config.weight_decay,  # ratio (< 1)
        adam_epsilon=ADAM_EPSILON, max_grad_norm=MAX_GRAD_NORM, seed=train_config.seed,
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
        metric_for_best_model="f1", greater_is_better=True,
        train_sampling_strategy="group_by_length" if args.hf_group_by_length else "random",
        logging_strategy="epoch", report_to=[], use_cpu=True, dataloader_num_workers=0,
        bf16=args.precision != "float32")
    trainer = Trainer(model=model, args=training_args, train_dataset=encoded["train"][0],
                      eval_dataset=encoded["dev"][0], data_collator=DataCollatorForTokenClassification(tokenizer),
                      compute_metrics=lambda p: {"f1": f1(splits["dev"], p.predictions, encoded["dev"][1])},
                      callbacks=[clock])
    fit_started = time.perf_counter()
    trainer.train()
    fit_seconds = time.perf_counter() - fit_started
    evaluations = [e for e in trainer.state.log_history if "eval_f1" in e]
    best = max(evaluations, key=lambda e: e["eval_f1"])  # the first of equals, as the Trainer keeps it
    dev_f1, best_epoch = best["eval_f1"], round(best["epoch"])
    test_f1 = f1(splits["test"], trainer.predict(encoded["test"][0]).predictions, encoded["test"][1])
    model_dir = args.output / "model"
    trainer.save_model(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    (model_dir / "metrics.json").write_text(json.dumps({"dev_f1": dev_f1, "test_f1": test_f1}) + "\n")
    return {"run_seconds": time.perf_counter() - imported, "import_seconds": imported - started,
            "train_seconds": sum(e["train_seconds"] for e in clock.epochs), "fit_seconds": fit_seconds,
            "epoch_end": clock.epochs, "output_bytes": folder_bytes(model_dir),
            "bytes_written": sum(e["bytes"] for e in clock.epochs) + folder_bytes(model_dir),
            "dev_f1": dev_f1, "test_f1": test_f1,
            "best_epoch": best_epoch,
            "train_real_tokens": int(sum(len(r["input_ids"]) for r in encoded["train"][0])),
            # Model FLOPs of one epoch (benchmarks/flops.py); kerastune encodes the same sentences
            # with the same tokenizer, so the parent uses it for both sides when the token counts agree.
            "train_flops_per_epoch": training_flops([len(r["input_ids"]) for r in encoded["train"][0]],
                                                    model.config.to_dict(), len(label_map)),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}


def run_pytorch(args, data_file: Path, output: Path, result: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "pytorch", "--files", str(data_file),
               "--output", str(output), "--epochs", str(args.epochs)]
    command += ["--hf-group-by-length"] if args.hf_group_by_length else []
    command += ["--precision", args.precision]
    finished = run_streaming(command + ["--json-out", str(result)], worker_env("pytorch"), ROOT, tail_chars=3000)
    if finished.returncode != 0 or not result.is_file():
        return {"error": f"the PyTorch worker exited with {finished.returncode}. Last output:\n{finished.tail}"}
    return {**json.loads(result.read_text()), "process_seconds": finished.wall_seconds,
            "process_cpu_seconds": finished.cpu_seconds}


def worker_env(side: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("USE_TF", "USE_TORCH")}
    env.update(HF_HUB_OFFLINE="1", TF_USE_LEGACY_KERAS="1", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    # Keep the other framework out of each process (transformers imports both when present).
    env["USE_TF" if side == "pytorch" else "USE_TORCH"] = "0"
    return env


# -- report ----------------------------------------------------------------------------------------


def add_flops(results: dict) -> None:
    """Achieved model FLOP/s of the training steps and MFU, on the PyTorch side's FLOP count."""
    sides = results["sides"]
    per_epoch = sides.get("pytorch", {}).get("train_flops_per_epoch")
    if per_epoch is None:
        return
    peak = cpu_peak()
    results["machine"]["peak"] = peak
    for name, side in sides.items():
        if "train_seconds" not in side:
            continue
        if side["train_real_tokens"] != sides["pytorch"]["train_real_tokens"]:
            side.setdefault("notes", []).append(
                f"{side['train_real_tokens']} real training tokens per epoch against PyTorch's "
                f"{sides['pytorch']['train_real_tokens']}: FLOPs scaled by their ratio")
        flops = per_epoch * side["train_real_tokens"] / sides["pytorch"]["train_real_tokens"]
        side["flops_per_second"] = flops * len(side["epoch_end"]) / side["train_seconds"]
        side["mfu"] = side["flops_per_second"] / peak["peak_flops"]


def summarize(side: dict) -> None:
    ends = side["epoch_end"]
    side["epoch_end_mean"] = {key: sum(e[key] for e in ends) / len(ends) for key in ("seconds", "dev_scoring",
                                                                                    "checkpoint", "bytes")}
    per_epoch_train = side["train_seconds"] / len(ends)
    side["epoch_end_share"] = side["epoch_end_mean"]["seconds"] / (per_epoch_train + side["epoch_end_mean"]["seconds"])
    side["train_tokens_per_second"] = side["train_real_tokens"] * len(ends) / side["train_seconds"]


def format_table(results: dict) -> str:
    s = results["settings"]
    lines = ["", (f"Whole NER run, {s['backbone']} on {s['data']} (sentences: "
                  + ", ".join(f"{k} {v}" for k, v in s["sentences"].items())
                  + f"), epochs {s['epochs']}, batch {s['batch_size']}, lr {s['learning_rate']}, seed {s['seed']}, "
                  f"{s['precision']}, {THREADS} threads"), "",
             f"{'':<11}{'process s':>10}{'run s':>8}{'train s':>9}{'tok/s':>7}{'end s/ep':>9}{'end %':>7}"
             f"{'MB written':>11}{'dev F1':>8}{'test F1':>8}{'CPU s':>7}{'MFU %':>7}"]
    for name, side in results["sides"].items():
        if "error" in side:
            said = [line for line in side["error"].splitlines() if line.strip()]
            lines.append(f"{name:<11}FAILED: {said[0]} ... {said[-1][:160]}")
            continue
        lines.append(f"{name:<11}{side['process_seconds']:>10.1f}{side['run_seconds']:>8.1f}"
                     f"{side['train_seconds']:>9.1f}{side['train_tokens_per_second']:>7.0f}"
                     f"{side['epoch_end_mean']['seconds']:>9.2f}{100 * side['epoch_end_share']:>7.1f}"
                     f"{side['bytes_written'] / 1e6:>11.0f}{side['dev_f1']:>8.4f}{side['test_f1']:>8.4f}"
                     f"{side['process_cpu_seconds']:>7.0f}{100 * side.get('mfu', float('nan')):>7.1f}")
        mean = side["epoch_end_mean"]
        lines.append(f"{'':<11}epoch end per epoch: dev scoring {mean['dev_scoring']:.2f} s"
                     + (f" (decoding {sum(e['decoding'] for e in side['epoch_end']) / len(side['epoch_end']):.2f} s)"
                        if "decoding" in side["epoch_end"][0] else "")
                     + f", checkpoints {mean['checkpoint']:.2f} s, {mean['bytes'] / 1e6:.0f} MB; "
                     f"best epoch {side['best_epoch']}")
        lines += [f"{'':<11}note: {note}" for note in side.get("notes", [])]
    if results.get("ratios"):
        r = results["ratios"]
        lines += ["", f"PyTorch / kerastune: process {r['process']:.2f}x, run {r['run']:.2f}x, train steps "
                      f"{r['train']:.2f}x (goal on the whole run >= {GOAL}x: {'met' if r['met'] else 'not met'})"]
    m = results["machine"]
    lines += ["", "process s: the whole subprocess (imports included); run s: reading the files to the output "
                  "written; train s: training steps only; end: per-epoch dev scoring + checkpoints;",
              "MB written: checkpoints and backups during training plus the final output folder.",
              "MFU: model FLOPs of the real training tokens (benchmarks/flops.py) / train s / peak, "
              + (describe_peak(results["machine"]["peak"]) if "peak" in results["machine"] else "n/a") + ".",
              f"1-minute load average {m['load_average_1m_start']} at the start, {m['load_average_1m_end']} at the "
              f"end on {THREADS} CPUs (one side at a time adds about {THREADS})."]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = run_pytorch_worker(args)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    train_config = cfg.TrainConfig()
    results = {"machine": {"cpus": os.cpu_count(), "load_average_1m_start": round(os.getloadavg()[0], 2)},
               "sides": {}}
    with tempfile.TemporaryDirectory(prefix="whole-run-") as scratch:
        scratch = Path(scratch)
        data = write_data(args, scratch / "data")
        data_file = scratch / "data.json"
        data_file.write_text(json.dumps(data))
        results["settings"] = {
            "backbone": cfg.DEFAULT_BACKBONE, "epochs": args.epochs, "batch_size": train_config.batch_size,
            "learning_rate": train_config.learning_rate, "seed": train_config.seed, "threads": THREADS,
            "data": "WNUT-17" + (f", train x{args.repeat_train}" if args.repeat_train > 1 else "")
                    + (f", first {args.limit}" if args.limit else ""),
            "sentences": data["sentences"], "hf_group_by_length": args.hf_group_by_length,
            "precision": args.precision}
        for side in SIDES:  # one after the other: never two sides competing for the cores
            if args.only and side not in args.only:
                continue
            print(f"[{side}] starting", file=sys.stderr, flush=True)
            if side == "kerastune":
                results["sides"][side] = run_kerastune(args, data, scratch / "kerastune-run")
            else:
                results["sides"][side] = run_pytorch(args, data_file, scratch / "pytorch-run",
                                                     scratch / "pytorch.json")
            if "error" not in results["sides"][side]:
                summarize(results["sides"][side])
    results["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    add_flops(results)
    ours, theirs = results["sides"].get("kerastune", {}), results["sides"].get("pytorch", {})
    if "run_seconds" in ours and "run_seconds" in theirs:
        ratios = {key: theirs[f"{key}_seconds"] / ours[f"{key}_seconds"] for key in ("process", "run", "train")}
        results["ratios"] = {**{k: round(v, 3) for k, v in ratios.items()}, "goal": GOAL,
                             "met": ratios["process"] >= GOAL}
    print(format_table(results), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any("error" in side for side in results["sides"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
