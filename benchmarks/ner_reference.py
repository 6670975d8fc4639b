"""NER fine-tuning side by side: kerastune_nlp against PyTorch + Hugging Face Trainer.

Both fine-tune the same backbone on the same sentences with the same epochs,
batch size, peak learning rate, warmup ratio, weight decay, Adam epsilon,
gradient clipping, max length and seed; both score the dev set each epoch by
entity F1, keep the best epoch, and report entity-level (seqeval) scores on
the test set with every gold word counted. Printed as a table with ratios;
`--json-out` also writes it as JSON.

    python benchmarks/ner_reference.py            # bundled WNUT-17, product defaults
    python benchmarks/ner_reference.py --quick    # the examples' --quick subset

Needs PyTorch and accelerate (benchmarks/requirements.txt); `make bench`
builds that environment apart from the test environment.
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
    from kerastune_nlp.cli import add_ner_train_arguments

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_ner_train_arguments(parser)
    parser.add_argument("--skip-kerastune", action="store_true")
    parser.add_argument("--skip-pytorch", action="store_true")
    parser.add_argument("--json-out", help="write the results here as JSON")
    return parser.parse_args()


def run_kerastune(args, output: Path) -> dict:
    flags = [
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
        "--learning-rate", str(args.learning_rate), "--max-length", str(args.max_length),
        "--seed", str(args.seed), "--backbone", args.backbone, "--output", str(output),
    ]
    for name in ("train", "dev", "test"):
        if getattr(args, name):
            flags += [f"--{name}", getattr(args, name)]
    if args.quick:
        flags.append("--quick")
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ner_conll.py"), *flags],
        capture_output=True, text=True, env=dict(os.environ),
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"kerastune_nlp run failed:\n{completed.stderr[-4000:]}")
    metrics = json.loads((output / "metrics.json").read_text())
    return {
        "test": metrics["test"]["overall"],
        "dev": metrics["dev"]["overall"],
        "train_seconds": metrics["timing"]["train_seconds"],
        "wall_seconds": round(wall, 1),
        "real_tokens": metrics["data"]["train_real_tokens"],
    }


def run_pytorch(args, splits, output: Path) -> dict:
    import numpy as np
    import torch
    from seqeval.metrics import classification_report
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from kerastune_nlp.data import LabelMap
    from kerastune_nlp.models.backbones import resolve_backbone

    started = time.perf_counter()
    set_seed(args.seed)
    label_map = LabelMap.from_sentences(splits["train"])
    directory = str(resolve_backbone(args.backbone).directory)
    tokenizer = AutoTokenizer.from_pretrained(directory, add_prefix_space=True) \
        if "roberta" in directory.lower() else AutoTokenizer.from_pretrained(directory)

    def encode(sentences):
        encoded = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True,
                            truncation=True, max_length=args.max_length)
        rows, word_maps = [], []
        for i, sentence in enumerate(sentences):
            word_ids = encoded.word_ids(i)
            labels, previous = [], None
            for word in word_ids:
                labels.append(-100 if word is None or word == previous else label_map.id(sentence.tags[word]))
                previous = word
            rows.append({"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
                         "labels": labels})
            word_maps.append(word_ids)
        return rows, word_maps

    def word_predictions(logits, word_maps, sentences):
        lost, predicted = 0, []
        for row, word_ids, sentence in zip(logits, word_maps, sentences):
            tags, previous = ["O"] * len(sentence.tokens), None
            seen = set()
            for position, word in enumerate(word_ids):
                if word is not None and word != previous:
                    tags[word] = label_map.tag(int(np.argmax(row[position])))
                    seen.add(word)
                previous = word
            lost += len(sentence.tokens) - len(seen)  # truncated words count as "O"
            predicted.append(tags)
        return predicted, lost

    def scores(sentences, predicted):
        report = classification_report([list(s.tags) for s in sentences], predicted,
                                        output_dict=True, zero_division=0)["micro avg"]
        return {k: float(report[v]) for k, v in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"))}

    train_rows, _ = encode(splits["train"])
    dev_rows, dev_maps = encode(splits["dev"])
    test_rows, test_maps = encode(splits["test"])

    def compute_metrics(prediction):
        predicted, _ = word_predictions(prediction.predictions, dev_maps, splits["dev"])
        return scores(splits["dev"], predicted)

    model = AutoModelForTokenClassification.from_pretrained(
        directory, num_labels=len(label_map),
        id2label=dict(enumerate(label_map.labels)), label2id={t: i for i, t in enumerate(label_map.labels)},
    )
    training_args = TrainingArguments(
        output_dir=str(output), per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=32,
        learning_rate=args.learning_rate, num_train_epochs=args.epochs, weight_decay=0.01,
        warmup_ratio=0.1, lr_scheduler_type="linear", adam_epsilon=1e-6, max_grad_norm=1.0,
        seed=args.seed, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model="f1", greater_is_better=True,
        logging_strategy="epoch", report_to=[], use_cpu=True, disable_tqdm=False,
    )
    trainer = Trainer(
        model=model, args=training_args, train_dataset=train_rows, eval_dataset=dev_rows,
        data_collator=DataCollatorForTokenClassification(tokenizer), compute_metrics=compute_metrics,
    )
    fit_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - fit_started
    dev_logits = trainer.predict(dev_rows).predictions
    test_logits = trainer.predict(test_rows).predictions
    dev_predicted, _ = word_predictions(dev_logits, dev_maps, splits["dev"])
    test_predicted, lost = word_predictions(test_logits, test_maps, splits["test"])
    return {
        "test": scores(splits["test"], test_predicted),
        "dev": scores(splits["dev"], dev_predicted),
        "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "real_tokens": int(sum(len(r["input_ids"]) for r in train_rows)),
        "test_words_lost_to_truncation": lost,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main():
    from kerastune_nlp.cli import configs_from_args, load_ner_splits

    args = parse_args()
    # Resolve defaults (and --quick presets) once, then pass them to both sides.
    train_config = configs_from_args(args)[2]
    args.epochs, args.batch_size = train_config.epochs, train_config.batch_size
    args.learning_rate = train_config.learning_rate
    splits, data_name = load_ner_splits(args)
    results = {"data": data_name, "sizes": {k: len(v) for k, v in splits.items()},
               "settings": {"epochs": args.epochs, "batch_size": args.batch_size,
                            "learning_rate": args.learning_rate, "max_length": args.max_length,
                            "seed": args.seed, "backbone": args.backbone}}
    with tempfile.TemporaryDirectory() as scratch:
        if not args.skip_kerastune:
            results["kerastune_nlp"] = run_kerastune(args, Path(scratch) / "kerastune")
        if not args.skip_pytorch:
            results["pytorch_trainer"] = run_pytorch(args, splits, Path(scratch) / "pytorch")
    print_table(results)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")


def print_table(results):
    print(f"\nNER on {results['data']} {results['sizes']}, settings {results['settings']}")
    print(f"{'':<18}{'test P':>8}{'test R':>8}{'test F1':>9}{'dev F1':>8}{'train s':>9}{'wall s':>8}{'tok/s':>8}")
    for name in ("kerastune_nlp", "pytorch_trainer"):
        if name in results:
            r = results[name]
            t = r["test"]
            rate = r["real_tokens"] * results["settings"]["epochs"] / r["train_seconds"]
            print(f"{name:<18}{t['precision']:>8.4f}{t['recall']:>8.4f}{t['f1']:>9.4f}{r['dev']['f1']:>8.4f}"
                  f"{r['train_seconds']:>9.1f}{r['wall_seconds']:>8.1f}{rate:>8.0f}")
    if "kerastune_nlp" in results and "pytorch_trainer" in results:
        ours, theirs = results["kerastune_nlp"], results["pytorch_trainer"]
        results["ratios"] = {
            "test_f1_difference": round(float(ours["test"]["f1"] - theirs["test"]["f1"]), 4),
            "train_time_pytorch_over_kerastune": round(theirs["train_seconds"] / ours["train_seconds"], 3),
            "wall_time_pytorch_over_kerastune": round(theirs["wall_seconds"] / ours["wall_seconds"], 3),
        }
        print("ratios:", results["ratios"])
        print("(tok/s counts sub-tokens incl. special tokens over all epochs; train s includes per-epoch dev scoring)")


if __name__ == "__main__":
    main()
