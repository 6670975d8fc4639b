"""Domain-adaptive continued pretraining on WNUT-17 text, then NER fine-tuning from the adapted backbone.

1. The text of the bundled WNUT-17 training set (each sentence's words
   joined by spaces, one sentence per line; no labels, no dev or test text)
   is the in-domain corpus.
2. The bundled all-MiniLM-L6-v2 (a sentence-transformers BertModel: no MLM
   head, so one is created) continues masked-LM pretraining on it; the
   held-out masked-token accuracy and perplexity (a seeded 10% of the lines,
   masked the same way before and after) are printed.
3. NER is fine-tuned from the adapted backbone with the default recipe
   (`kt.train(task="ner")`: bundled WNUT-17, 3 epochs, seed 42) and its test
   entity F1 compared with the unadapted backbone's: 0.4265 from `make demo`
   on this kind of machine, or measured in the same run with --with-baseline.

    .venv/bin/python benchmarks/domain_pretraining.py                 # ~15 min on 2 cores
    .venv/bin/python benchmarks/domain_pretraining.py --skip-finetune # pretraining only
    .venv/bin/python benchmarks/domain_pretraining.py --epochs 5 --whole-word-masking --json-out r.json

On a shared machine, start it with `nice -n 10`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

# The unadapted backbone's test entity F1 with the default recipe (`make demo`, 3 epochs, seed 42).
BASELINE_TEST_F1 = 0.4265


def write_corpus(path: Path) -> int:
    """The words of each WNUT-17 training sentence, joined by spaces, one sentence per line."""
    import kerastune_nlp as kt

    sentences = kt.read_conll(kt.bundled_wnut17()["train"])
    path.write_text("\n".join(" ".join(s.tokens) for s in sentences) + "\n", encoding="utf-8")
    return len(sentences)


def fine_tune(backbone: str, output: Path) -> dict:
    import kerastune_nlp as kt

    started = time.perf_counter()
    result = kt.train(task="ner", output_dir=output, model_config=kt.ModelConfig(backbone=backbone), verbose=2)
    overall = result.metrics["test"]["overall"]
    return {"backbone": backbone, "run_dir": str(result.run_dir), "test_f1": round(overall["f1"], 4),
            "test_precision": round(overall["precision"], 4), "test_recall": round(overall["recall"], 4),
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-root", default="saved_models/bench-domain-pretraining",
                        help="where the corpus, the adapted backbone and the NER runs go (made fresh: must not exist)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--mlm-probability", type=float, default=0.15)
    parser.add_argument("--whole-word-masking", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-finetune", action="store_true", help="stop after the pretraining numbers")
    parser.add_argument("--with-baseline", action="store_true",
                        help=f"also fine-tune the unadapted backbone here (else compare with {BASELINE_TEST_F1})")
    parser.add_argument("--json-out", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    from kerastune_nlp.cli import console

    console.configure(False)
    logging.getLogger("kerastune_nlp").setLevel(logging.INFO)
    from kerastune_nlp.pretraining import PretrainConfig, continue_pretraining

    root = Path(args.output_root)
    if root.exists():
        print(f"error: {root} exists; pass a new --output-root", file=sys.stderr)
        return 2
    root.mkdir(parents=True)
    corpus = root / "wnut17_train.txt"
    lines = write_corpus(corpus)
    print(f"Corpus: {lines} WNUT-17 training sentences -> {corpus}", flush=True)
    config = PretrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length,
                            learning_rate=args.learning_rate, mlm_probability=args.mlm_probability,
                            whole_word_masking=args.whole_word_masking, seed=args.seed)
    pretrained = continue_pretraining(corpus, output_dir=root / "minilm-wnut17", backbone="all-minilm-l6-v2",
                                      config=config, verbose=2)
    report = pretrained.report
    before, after = report["eval"]["before"], report["eval"]["after"]
    results = {"pretraining": {"settings": report["settings"], "mlm_head": report["mlm_head"],
                               "corpus": report["corpus"], "before": before, "after": after,
                               "history": report["history"], "timing": report["timing"]}}
    print(f"\nMLM head: {report['mlm_head']}; {report['corpus']['train']['tokens']:,} training tokens, "
          f"{after['masked_tokens']} held-out masked tokens")
    print(f"held-out masked-token accuracy: {before['masked_accuracy']:.4f} -> {after['masked_accuracy']:.4f}")
    print(f"held-out perplexity:            {before['perplexity']:.2f} -> {after['perplexity']:.2f}")
    print(f"pretraining: {report['timing']['train_seconds']:.0f}s training, {report['timing']['total_seconds']:.0f}s "
          f"in all, {report['timing']['tokens_per_second']:.0f} tokens/s", flush=True)
    if not args.skip_finetune:
        adapted = fine_tune(str(pretrained.output_dir), root / "ner-adapted")
        baseline = (fine_tune("all-minilm-l6-v2", root / "ner-baseline") if args.with_baseline
                    else {"test_f1": BASELINE_TEST_F1, "source": "make demo (3 epochs, seed 42)"})
        results["ner"] = {"adapted": adapted, "baseline": baseline,
                          "change_points": round(100 * (adapted["test_f1"] - baseline["test_f1"]), 2)}
        print(f"\nNER test entity F1: adapted {adapted['test_f1']:.4f} vs unadapted {baseline['test_f1']:.4f} "
              f"({results['ner']['change_points']:+.2f} points); fine-tune {adapted['seconds']:.0f}s")
    text = json.dumps(results, indent=2)
    (root / "benchmark.json").write_text(text + "\n")
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
