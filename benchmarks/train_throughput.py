"""NER training throughput: kerastune_nlp's default pipeline against the naive one and PyTorch.

One backbone (the bundled all-MiniLM-L6-v2), one data set (bundled WNUT-17
train; dev for the score), the same epochs, batch size, learning rate,
warmup, weight decay, AdamW eps 1e-6, clipping at 1.0 and seed, trained
three ways, one after another, each in its own subprocess with the same
thread settings (all cores):

    default    `train_ner` with `DataConfig()`: length-bucketed batches padded
               to their own longest window (rounded up to a multiple of 8).
    naive-128  `train_ner` with `DataConfig(padding="max_length")`: every
               window padded to 128, no length grouping (the tutorial way).
    pytorch    `AutoModelForTokenClassification` + HF `Trainer`,
               `DataCollatorForTokenClassification` (dynamic padding), no
               evaluation during training, dev scored once at the end.

Measured per row:
    real tok/s  real training sub-tokens (special tokens included, padding
                excluded) x epochs / train s.
    waste       1 - real / processed; processed sums rows x padded length over
                every training batch: kerastune's comes from a twin of the
                dataset `train_ner` builds (same `make_train_dataset` call,
                iterated once per epoch before `fit`, untimed), PyTorch's from
                a wrapper counting the Trainer's own collated batches.
    train s     kerastune: `model.fit`'s training steps (each epoch from its
                start to its last batch: the epoch-end dev scoring and
                checkpoint of `train_ner` are left out, as PyTorch evaluates
                nothing during training); PyTorch: `trainer.train()`.
    fit s       the whole `model.fit` call; the ratios are also given on it.
    dev F1      entity F1 on WNUT-17 dev (seqeval, conlleval-style); kerastune
                from `train_ner`'s metrics (best epoch, Viterbi decoding),
                PyTorch from the final weights, argmax at each word's first
                sub-token, words cut off by truncation scored as O.

    python benchmarks/train_throughput.py                         # full: 3394 sentences, 1 epoch
    python benchmarks/train_throughput.py --limit 150             # smoke run
    python benchmarks/train_throughput.py --only pytorch --json-out pt.json

Run it on a quiet machine (the load average is printed): other work
stretches wall times, and only ratios from a quiet run mean much.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from kerastune_nlp import config as cfg  # light: no TensorFlow
from flops import cpu_peak, describe_peak, training_flops  # benchmarks/flops.py, beside this script
from streaming import run_streaming  # benchmarks/streaming.py, beside this script
from hf_token_classification import encode_first_subtoken, first_subtoken_tags  # beside this script

ROOT = Path(__file__).resolve().parents[1]
LABELS = {"kerastune": "default", "naive": "naive-128", "pytorch": "pytorch"}
NAIVE_LENGTH = 128
GOALS = (("pytorch", 1.5), ("naive", 2.0))  # default's tok/s over that row's, at least
ADAM_EPSILON, MAX_GRAD_NORM, EVAL_BATCH_SIZE = 1e-6, 1.0, 32  # as kerastune's optimizer / tagger
THREADS = os.cpu_count() or 1


def parse_args(argv=None) -> argparse.Namespace:
    train = cfg.TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="default 1")
    parser.add_argument("--batch-size", type=int, default=train.batch_size, help=f"default {train.batch_size}")
    parser.add_argument("--learning-rate", type=float, default=train.learning_rate,
                        help=f"default {train.learning_rate}")
    parser.add_argument("--limit", type=int, help="use only the first N training sentences (default all)")
    parser.add_argument("--only", action="append", choices=list(LABELS),
                        help="run only this row (repeatable; for debugging)")
    parser.add_argument("--json-out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--worker", choices=list(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        parser.error(f"--epochs, --batch-size and --limit must be at least 1. Received: --epochs={args.epochs} "
                     f"--batch-size={args.batch_size} --limit={args.limit}")
    return args


def load_splits(limit):
    from kerastune_nlp.data import bundled_wnut17, read_conll

    paths = bundled_wnut17()
    train, dev = read_conll(paths["train"]), read_conll(paths["dev"])
    return (train[:limit] if limit else train), dev


def model_flops(lengths) -> float:
    """Training model FLOPs of one pass over sequences of these real lengths (benchmarks/flops.py)."""
    from kerastune_nlp.data import LabelMap
    from kerastune_nlp.models.backbones import resolve_backbone

    config = json.loads((Path(resolve_backbone(cfg.DEFAULT_BACKBONE).directory) / "config.json").read_text())
    labels = len(LabelMap.from_sentences(load_splits(None)[0]))
    return training_flops(lengths, config, labels)


# -- kerastune_nlp (runs in a worker subprocess) -------------------------------------------------


def run_kerastune(args, naive: bool) -> dict:
    from kerastune_nlp._tf import keras, tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    from kerastune_nlp.training import ner_trainer

    train, dev = load_splits(args.limit)
    data_config = cfg.DataConfig(padding="max_length") if naive else cfg.DataConfig()
    train_config = cfg.TrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                                   learning_rate=args.learning_rate)
    counted = {}
    real_make = ner_trainer.make_train_dataset

    def counting_make(windows, input_names, pad_id, batch_size, seed, *rest, **kwargs):
        # The same call on the same (already seeded) state gives the same batch
        # shapes; iterate that twin once per epoch here, before fit, untimed.
        probe = real_make(windows, input_names, pad_id, batch_size, seed, *rest, **kwargs)
        processed = batches = 0
        for _ in range(args.epochs):
            for features, _labels in probe:
                rows, width = features["input_ids"].shape
                processed, batches = processed + rows * width, batches + 1
        counted["train_flops"] = model_flops([len(w) for w in windows]) * args.epochs
        counted.update(real_tokens=sum(len(w) for w in windows) * args.epochs, processed_tokens=processed,
                       batches=batches, windows=len(windows), batch_size=batch_size,
                       fixed_length=kwargs.get("fixed_length"))
        return real_make(windows, input_names, pad_id, batch_size, seed, *rest, **kwargs)

    class StepTimer(keras.callbacks.Callback):
        """Seconds from each epoch's start to its last batch: epoch-end dev scoring left out."""

        def __init__(self):
            super().__init__()
            self.seconds, self._start, self._last = 0.0, None, None

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._last = time.perf_counter(), None

        def on_train_batch_end(self, batch, logs=None):
            self._last = time.perf_counter()  # after StopOnNonFiniteLoss has read the loss (a sync)

        def on_epoch_end(self, epoch, logs=None):
            if self._last is not None:
                self.seconds += self._last - self._start

    timer = StepTimer()
    ner_trainer.make_train_dataset = counting_make
    try:
        with tempfile.TemporaryDirectory(prefix="throughput-") as scratch:
            result = ner_trainer.train_ner(train, dev, None, output_dir=Path(scratch) / "run",
                                           model_config=cfg.ModelConfig(), data_config=data_config,
                                           train_config=train_config, extra_callbacks=[timer])
    finally:
        ner_trainer.make_train_dataset = real_make
    metrics = result.metrics
    notes = []
    if not counted:  # a refactor moved the call: say so rather than print a wrong waste figure
        raise RuntimeError("train_ner no longer calls ner_trainer.make_train_dataset; the padded-token "
                           "count cannot follow it. Update counting_make in benchmarks/train_throughput.py.")
    if naive and counted["fixed_length"] != NAIVE_LENGTH:
        notes.append(f"DataConfig(padding='max_length') reached make_train_dataset as fixed_length="
                     f"{counted['fixed_length']}, not {NAIVE_LENGTH}: this row did not train the naive way")
    logged_real = metrics.get("data", {}).get("train_real_tokens")
    if logged_real is not None and logged_real * args.epochs != counted["real_tokens"]:
        notes.append(f"metrics.json counts {logged_real} real tokens per epoch, the dataset "
                     f"{counted['real_tokens'] // args.epochs}")
    return {**counted, "train_seconds": timer.seconds,
            "fit_seconds": float(metrics["timing"]["train_seconds"]),
            "dev_f1": float(metrics["dev"]["overall"]["f1"]), "notes": notes,
            "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                        "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
            "versions": {"tensorflow": tf.__version__}}


# -- PyTorch + Hugging Face Trainer (runs in a worker subprocess) -------------------------------


def run_pytorch(args) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(THREADS)
    import transformers
    from transformers import (
        AutoModelForTokenClassification,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from kerastune_nlp.data import LabelMap
    from kerastune_nlp.evaluation.ner_metrics import entity_scores
    from kerastune_nlp.models.backbones import load_tokenizer, resolve_backbone

    transformers.utils.logging.set_verbosity_error()
    train, dev = load_splits(args.limit)
    seed, max_length = cfg.TrainConfig().seed, cfg.DataConfig().max_length
    set_seed(seed)
    label_map = LabelMap.from_sentences(train)
    label_map.check_covers(dev, "dev")
    directory = str(resolve_backbone(cfg.DEFAULT_BACKBONE).directory)
    tokenizer = load_tokenizer(directory)  # the fast tokenizer kerastune uses

    train_rows, _ = encode_first_subtoken(tokenizer, train, label_map, max_length)
    dev_rows, dev_maps = encode_first_subtoken(tokenizer, dev, label_map, max_length)
    collate = DataCollatorForTokenClassification(tokenizer)
    counted = {"processed_tokens": 0, "batches": 0, "on": True}

    def counting_collator(features):
        batch = collate(features)
        if counted["on"]:
            counted["processed_tokens"] += int(batch["input_ids"].numel())
            counted["batches"] += 1
        return batch

    model = AutoModelForTokenClassification.from_pretrained(
        directory, num_labels=len(label_map), id2label=dict(enumerate(label_map.labels)),
        label2id={t: i for i, t in enumerate(label_map.labels)})
    train_config = cfg.TrainConfig()
    with tempfile.TemporaryDirectory(prefix="throughput-") as scratch:
        training_args = TrainingArguments(
            output_dir=scratch, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=EVAL_BATCH_SIZE, learning_rate=args.learning_rate,
            lr_scheduler_type="linear", warmup_steps=train_config.warmup_ratio,
            weight_decay=train_config.weight_decay, adam_epsilon=ADAM_EPSILON, max_grad_norm=MAX_GRAD_NORM,
            seed=seed, fp16=False, bf16=False, use_cpu=True, eval_strategy="no", save_strategy="no",
            logging_strategy="epoch", report_to=[], dataloader_num_workers=0)
        trainer = Trainer(model=model, args=training_args, train_dataset=train_rows,
                          data_collator=counting_collator)
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
        counted["on"] = False
        dev_logits = trainer.predict(dev_rows).predictions
    predicted = first_subtoken_tags(dev_logits, dev_maps, dev, label_map)
    dev_f1 = entity_scores([s.tags for s in dev], predicted)["overall"]["f1"]
    expected_batches = math.ceil(len(train_rows) / args.batch_size) * args.epochs
    notes = [] if counted["batches"] == expected_batches else [
        f"the collator built {counted['batches']} training batches, expected {expected_batches}"]
    return {"real_tokens": sum(len(r["input_ids"]) for r in train_rows) * args.epochs,
            "train_flops": model_flops([len(r["input_ids"]) for r in train_rows]) * args.epochs,
            "processed_tokens": counted["processed_tokens"], "batches": counted["batches"],
            "windows": len(train_rows), "train_seconds": train_seconds, "fit_seconds": train_seconds,
            "dev_f1": float(dev_f1), "notes": notes,
            "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}


# -- the parent: one subprocess per row, one after another --------------------------------------


def run_worker(mode: str, args, result_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("USE_TF", "USE_TORCH")}
    env.update(HF_HUB_OFFLINE="1", TF_USE_LEGACY_KERAS="1", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    # Keep the other framework out of each process (transformers imports both when present).
    env["USE_TF" if mode == "pytorch" else "USE_TORCH"] = "0"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--result", str(result_path),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--learning-rate", repr(args.learning_rate)] + (["--limit", str(args.limit)] if args.limit else [])
    print(f"[{LABELS[mode]}] {' '.join(command)}", file=sys.stderr, flush=True)
    finished = run_streaming(command, env, ROOT, tail_chars=3000)
    if finished.returncode != 0 or not result_path.is_file():
        return {"error": f"worker exited with {finished.returncode}. Last output:\n{finished.tail}"}
    side = json.loads(result_path.read_text())
    side["process_cpu_seconds"] = round(finished.cpu_seconds, 1)
    side["tokens_per_second"] = side["real_tokens"] / side["train_seconds"]
    side["tokens_per_second_fit"] = side["real_tokens"] / side["fit_seconds"]
    side["padded_waste"] = 1.0 - side["real_tokens"] / side["processed_tokens"]
    side["flops_per_second"] = side["train_flops"] / side["train_seconds"]
    side["mfu"] = side["flops_per_second"] / cpu_peak()["peak_flops"]
    return side


def format_table(results: dict) -> str:
    s, rows = results["settings"], results["rows"]
    lines = ["", (f"NER training throughput, {s['backbone']} on WNUT-17 train ({s['train_sentences']} sentences), "
                  f"epochs {s['epochs']}, batch {s['batch_size']}, lr {s['learning_rate']}, seed {s['seed']}, "
                  f"{THREADS} threads"), "",
             f"{'':<11}{'real tok/s':>11}{'waste %':>9}{'train s':>9}{'fit s':>9}{'dev F1':>8}{'CPU s':>8}"
             f"{'GFLOP/s':>9}{'MFU %':>7}"]
    for mode, side in rows.items():
        if "error" in side:
            said = [line for line in side["error"].splitlines() if line.strip()]
            lines.append(f"{LABELS[mode]:<11}FAILED: {said[0]} ... {said[-1][:160]}")
            continue
        lines.append(f"{LABELS[mode]:<11}{side['tokens_per_second']:>11.0f}{100 * side['padded_waste']:>9.1f}"
                     f"{side['train_seconds']:>9.1f}{side['fit_seconds']:>9.1f}{side['dev_f1']:>8.4f}"
                     f"{side['process_cpu_seconds']:>8.0f}{side['flops_per_second'] / 1e9:>9.1f}"
                     f"{100 * side['mfu']:>7.1f}")
        lines += [f"  note ({LABELS[mode]}): {note}" for note in side.get("notes", [])]
    lines += [""] if results["ratios"] else []
    for key, ratio in results["ratios"].items():
        lines.append(f"tokens/s {key}: {ratio['value']:.2f}x (goal >= {ratio['goal']}x: "
                     f"{'met' if ratio['met'] else 'not met'}); on fit s: {ratio['value_on_fit_seconds']:.2f}x")
    m = results["machine"]
    lines += ["", ("train s: kerastune = fit's training steps (epoch-end dev scoring and checkpoints left out), "
                   "PyTorch = trainer.train(); fit s: the whole fit call;"),
              "waste: 1 - real / processed sub-tokens; CPU s: the whole subprocess, imports included.",
              "GFLOP/s: model FLOPs of the real tokens (benchmarks/flops.py: matmuls, 3x forward) / train s;",
              f"MFU: that over the peak, {describe_peak(cpu_peak())}.",
              (f"1-minute load average {m['load_average_1m_start']} at the start, {m['load_average_1m_end']} at "
               f"the end on {THREADS} CPUs (one row at a time adds about {THREADS}; more means other work).")]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        side = run_pytorch(args) if args.worker == "pytorch" else run_kerastune(args, args.worker == "naive")
        args.result.write_text(json.dumps(side, indent=2) + "\n")
        return 0
    modes = [m for m in LABELS if not args.only or m in args.only]
    train, _ = load_splits(args.limit)
    results = {"settings": {"backbone": cfg.DEFAULT_BACKBONE, "train_sentences": len(train), "epochs": args.epochs,
                            "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                            "seed": cfg.TrainConfig().seed, "threads": THREADS},
               "machine": {"cpus": os.cpu_count(), "load_average_1m_start": round(os.getloadavg()[0], 2),
                           "peak": cpu_peak()},
               "rows": {}, "ratios": {}}
    with tempfile.TemporaryDirectory(prefix="throughput-results-") as scratch:
        for mode in modes:  # sequentially: never two rows competing for the cores
            results["rows"][mode] = run_worker(mode, args, Path(scratch) / f"{mode}.json")
    results["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    ours = results["rows"].get("kerastune", {})
    for other, goal in GOALS:
        theirs = results["rows"].get(other, {})
        if "tokens_per_second" in ours and "tokens_per_second" in theirs:
            value = ours["tokens_per_second"] / theirs["tokens_per_second"]
            on_fit = ours["tokens_per_second_fit"] / theirs["tokens_per_second_fit"]
            results["ratios"][f"default/{other}"] = {"value": round(value, 3), "goal": goal, "met": value >= goal,
                                                     "value_on_fit_seconds": round(on_fit, 3)}
    print(format_table(results), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any("error" in side for side in results["rows"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
