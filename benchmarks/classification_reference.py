"""Text classification side by side: kerastune_nlp against PyTorch + Hugging Face Trainer.

Same backbone, same examples (the bundled TREC by default: train with a
stratified, seeded 10% dev hold-out, and the official test set), same epochs,
batch size, peak learning rate, warmup ratio, weight decay, Adam epsilon,
gradient clipping, max length and seed. Both keep the epoch with the best dev
accuracy and report test accuracy and macro F1.

    python benchmarks/classification_reference.py          # bundled TREC, product defaults
    python benchmarks/classification_reference.py --quick  # the examples' --quick subset
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    from kerastune_nlp.cli.flags import add_train_arguments

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_train_arguments(parser, default_task="classification")
    parser.add_argument("--skip-kerastune", action="store_true")
    parser.add_argument("--skip-pytorch", action="store_true")
    parser.add_argument("--json-out")
    return parser.parse_args()


def run_kerastune(args, output: Path) -> dict:
    flags = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
             "--learning-rate", str(args.learning_rate), "--max-length", str(args.max_length),
             "--seed", str(args.seed), "--backbone", args.backbone, "--output", str(output)]
    for name in ("train", "dev", "test"):
        if getattr(args, name):
            flags += [f"--{name}", getattr(args, name)]
    if args.quick:
        flags.append("--quick")
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, str(ROOT / "examples" / "text_classification.py"), *flags],
                               capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"kerastune_nlp run failed:\n{completed.stderr[-4000:]}")
    metrics = json.loads((output / "metrics.json").read_text())
    return {"test_accuracy": metrics["test"]["accuracy"], "test_macro_f1": metrics["test"]["macro"]["f1"],
            "dev_accuracy": metrics["dev"]["accuracy"], "train_seconds": metrics["timing"]["train_seconds"],
            "wall_seconds": round(wall, 1), "real_tokens": metrics["data"]["train_real_tokens"]}


def run_pytorch(args, splits, output: Path) -> dict:
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments, set_seed)

    from kerastune_nlp.models.backbones import resolve_backbone
    from kerastune_nlp.tasks import get_task

    started = time.perf_counter()
    set_seed(args.seed)
    names = get_task("classification")().label_set(splits["train"])
    index = {n: i for i, n in enumerate(names)}
    directory = str(resolve_backbone(args.backbone).directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)

    def encode(examples):
        encoded = tokenizer([e.text for e in examples], truncation=True, max_length=args.max_length)
        return [{"input_ids": ids, "attention_mask": mask, "labels": index[e.label]}
                for ids, mask, e in zip(encoded["input_ids"], encoded["attention_mask"], examples)]

    train_rows, dev_rows, test_rows = (encode(splits[s]) for s in ("train", "dev", "test"))

    def compute_metrics(prediction):
        return {"accuracy": accuracy_score(prediction.label_ids, prediction.predictions.argmax(-1))}

    model = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=len(names))
    training_args = TrainingArguments(
        output_dir=str(output), per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=32,
        learning_rate=args.learning_rate, num_train_epochs=args.epochs, weight_decay=0.01,
        warmup_steps=0.1,  # a float below 1 is a ratio of the steps (transformers 5 dropped warmup_ratio)
        lr_scheduler_type="linear", adam_epsilon=1e-6, max_grad_norm=1.0, seed=args.seed,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
        metric_for_best_model="accuracy", greater_is_better=True, logging_strategy="epoch",
        report_to=[], use_cpu=True,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=train_rows, eval_dataset=dev_rows,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)
    fit_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - fit_started
    test = trainer.predict(test_rows)
    dev = trainer.predict(dev_rows)
    predicted = test.predictions.argmax(-1)
    return {"test_accuracy": float(accuracy_score(test.label_ids, predicted)),
            "test_macro_f1": float(f1_score(test.label_ids, predicted, average="macro")),
            "dev_accuracy": float(accuracy_score(dev.label_ids, dev.predictions.argmax(-1))),
            "train_seconds": round(train_seconds, 1), "wall_seconds": round(time.perf_counter() - started, 1),
            "real_tokens": int(sum(len(r["input_ids"]) for r in train_rows))}


def main():
    from kerastune_nlp.cli.flags import settings_from_args
    from kerastune_nlp.tasks import get_task

    args = parse_args()
    settings = settings_from_args(args)
    train_config = settings.train
    args.epochs, args.batch_size = train_config.epochs, train_config.batch_size
    args.learning_rate, args.seed = train_config.learning_rate, train_config.seed
    args.max_length, args.backbone = settings.data.max_length, settings.model.backbone
    args.quick = settings.data.quick
    args.train, args.dev, args.test = settings.data.train, settings.data.dev, settings.data.test
    splits, name = get_task(settings.task)(settings.task_config).load_splits(settings.data, train_config.seed)
    results = {"data": name, "sizes": {k: len(v) for k, v in splits.items()},
               "settings": {"epochs": args.epochs, "batch_size": args.batch_size,
                            "learning_rate": args.learning_rate, "max_length": args.max_length,
                            "seed": args.seed, "backbone": args.backbone}}
    with tempfile.TemporaryDirectory() as scratch:
        if not args.skip_kerastune:
            results["kerastune_nlp"] = run_kerastune(args, Path(scratch) / "kerastune")
        if not args.skip_pytorch:
            results["pytorch_trainer"] = run_pytorch(args, splits, Path(scratch) / "pytorch")
    print(f"\nText classification on {name} {results['sizes']}, settings {results['settings']}")
    print(f"{'':<18}{'test acc':>9}{'macro F1':>9}{'dev acc':>9}{'train s':>9}{'wall s':>8}{'tok/s':>8}")
    for side in ("kerastune_nlp", "pytorch_trainer"):
        if side in results:
            r = results[side]
            rate = r["real_tokens"] * args.epochs / r["train_seconds"]
            print(f"{side:<18}{r['test_accuracy']:>9.4f}{r['test_macro_f1']:>9.4f}{r['dev_accuracy']:>9.4f}"
                  f"{r['train_seconds']:>9.1f}{r['wall_seconds']:>8.1f}{rate:>8.0f}")
    if "kerastune_nlp" in results and "pytorch_trainer" in results:
        ours, theirs = results["kerastune_nlp"], results["pytorch_trainer"]
        results["ratios"] = {
            "test_accuracy_difference": round(ours["test_accuracy"] - theirs["test_accuracy"], 4),
            "train_time_pytorch_over_kerastune": round(theirs["train_seconds"] / ours["train_seconds"], 3),
            "wall_time_pytorch_over_kerastune": round(theirs["wall_seconds"] / ours["wall_seconds"], 3),
        }
        print("ratios:", results["ratios"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
