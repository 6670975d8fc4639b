"""The Hugging Face export round trip: our runs exported with `--formats hf`, loaded by transformers (PyTorch).

    PYTHONPATH=. .venv-bench/bin/python benchmarks/hf_export.py \
        [--families bert,roberta,...] [--tasks ner,classification,...] [--wnut-run saved_models/wnut17] \
        [--output benchmarks/results/hf_export.json]

Run in the benchmark environment (torch 2.13 + transformers 5.24).

1. Tiny runs: for each family, a random-init 2-layer backbone (the test
   suite's `make_tiny_backbone`) fine-tuned for one epoch on the test
   harness's small data set of each task; exported with `export_run(...,
   formats="hf")`, which loads the folder with `AutoModelFor*Classification
   .from_pretrained` (missing / unexpected keys are an error) and compares its
   logits with the run's Keras Predictor: max abs difference per family and task.
2. The WNUT-17 run (`--wnut-run`, trained with `python examples/ner_conll.py`):
   exported the same way, then scored on the WNUT-17 test split in PyTorch:
   entity F1 with argmax over each word's first sub-token (what a
   transformers user gets) and with our constrained Viterbi over the same
   PyTorch logits, beside our Predictor's F1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).parents[1]
FAMILIES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "deberta-v2", "modernbert")
TASKS = ("ner", "classification", "multilabel", "regression")


def _load(name: str, path: Path):
    """Loads a test helper module without pytest installed (its decorators become no-ops)."""
    if "pytest" not in sys.modules:
        stub = types.ModuleType("pytest")
        stub.fixture = lambda *a, **k: a[0] if a and callable(a[0]) else (lambda f: f)
        stub.mark = type("Mark", (), {"__getattr__": lambda self, _: lambda *a, **k: (lambda f: f)})()
        sys.modules["pytest"] = stub
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_round_trips(families, tasks, workdir: Path) -> list[dict]:
    import kerastune_nlp as kt
    from kerastune_nlp.export.exporter import export_run

    conftest = _load("tests_conftest", ROOT / "tests" / "conftest.py")
    harness = _load("harness", ROOT / "tests" / "tasks" / "test_harness.py")
    rows = []
    for family in families:
        backbone = conftest.make_tiny_backbone(workdir / "backbones" / family, family, seed=0)
        for task in tasks:
            train, dev = harness.TASK_DATA[task]()
            started = time.time()
            run = kt.train(task, train, dev, dev, output_dir=workdir / "runs" / f"{family}-{task}", verbose=0,
                           model_config=kt.ModelConfig(backbone=str(backbone)),
                           data_config=kt.DataConfig(max_length=32),
                           train_config=kt.TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3)).run_dir
            result = export_run(run, workdir / "exports" / f"{family}-{task}", formats="hf", examples=dev,
                                measure=False, raw_strings="skip", max_metric_drop=100)
            artifact = result.artifact("hf")
            config = json.loads((Path(artifact.path) / "config.json").read_text())
            row = {"family": family, "task": task, "class": config["architectures"][0],
                   "max_abs_logit_diff": artifact.max_abs_logit_diff, "metric": artifact.metric,
                   "metric_change": artifact.metric_change, "status": artifact.status,
                   "checked_with": artifact.extra.get("checked_with"), "seconds": round(time.time() - started, 1)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def wnut_round_trip(run_dir: Path, workdir: Path) -> dict:
    """Exports the WNUT-17 run and scores the PyTorch model on the WNUT-17 test split."""
    import numpy as np
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    import kerastune_nlp as kt
    from kerastune_nlp.evaluation.iob_decoding import viterbi_decode
    from kerastune_nlp.evaluation.ner_metrics import entity_scores
    from kerastune_nlp.export.exporter import export_run

    test = kt.read_conll(kt.bundled_wnut17()["test"])
    result = export_run(run_dir, workdir / "wnut-export", formats="hf", examples=test, measure=False,
                        raw_strings="skip")
    artifact, keras = result.artifact("hf"), result.artifact("keras-float32")
    folder = Path(artifact.path)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    max_length = model.config.kerastune_nlp["max_length"]
    gold, argmax, viterbi, cut = [], [], [], 0
    started = time.time()
    for example in test:
        words = list(example.tokens)
        batch = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits[0].numpy()
        word_ids = batch.word_ids()
        first = {}
        for position, word in enumerate(word_ids):
            if word is not None and word not in first:
                first[word] = position
        if len(first) < len(words):
            cut += 1  # words past max_length: tagged O (our Predictor uses sliding windows instead)
        word_logits = np.stack([logits[first[i]] if i in first else np.eye(len(labels))[0] * 50
                                for i in range(len(words))])
        gold.append(list(example.tags))
        argmax.append([labels[i] for i in word_logits.argmax(-1)])
        viterbi.append([labels[i] for i in viterbi_decode(word_logits, labels)])
    seconds = time.time() - started
    scores = {"argmax": entity_scores(gold, argmax)["overall"], "viterbi": entity_scores(gold, viterbi)["overall"]}
    invalid = sum(any(t.startswith("I-") and (i == 0 or s[i - 1][2:] != t[2:]) for i, t in enumerate(s))
                  for s in argmax)
    return {"run": str(run_dir), "test_sentences": len(test), "sentences_cut_by_max_length": cut,
            "export_max_abs_logit_diff": artifact.max_abs_logit_diff, "checked_with": artifact.extra["checked_with"],
            "ours_predictor_entity_f1": keras.metric, "hf_export_entity_f1_in_export_check": artifact.metric,
            "pytorch_argmax": scores["argmax"], "pytorch_viterbi": scores["viterbi"],
            "argmax_sentences_with_invalid_bio": invalid, "pytorch_seconds": round(seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--wnut-run", type=Path, help="a WNUT-17 NER run directory (skipped when absent)")
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "hf_export.json")
    args = parser.parse_args(argv)
    import torch  # noqa: F401  (the point of the benchmark)

    result = {}
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if not args.skip_tiny:
            result["tiny_runs"] = tiny_round_trips(args.families.split(","), args.tasks.split(","), workdir)
        if args.wnut_run:
            result["wnut17"] = wnut_round_trip(args.wnut_run, workdir)
            print(json.dumps(result["wnut17"], indent=1), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
