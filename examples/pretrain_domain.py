"""Adapt a backbone to your domain with masked-language-model pretraining, then fine-tune NER from it.

With no arguments it runs offline: the bundled all-MiniLM-L6-v2 continues
pretraining on the text of the bundled WNUT-17 training set (tweets; the
words of each sentence, one sentence per line - labels unused), and NER is
then fine-tuned from the adapted backbone.

    python examples/pretrain_domain.py                                 # bundled text, then NER
    python examples/pretrain_domain.py --corpus notes.txt --epochs 3   # your own text, one line each
    python examples/pretrain_domain.py --whole-word-masking --skip-finetune

The same from the command line:

    kerastune-nlp pretrain --corpus notes.txt --output saved_models/minilm-notes --epochs 3
    kerastune-nlp train --backbone saved_models/minilm-notes --train train.conll ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import kerastune_nlp as kt
from kerastune_nlp.pretraining import PretrainConfig, continue_pretraining


def bundled_tweets(path: Path) -> Path:
    """The WNUT-17 training sentences as plain text, one per line."""
    sentences = kt.read_conll(kt.bundled_wnut17()["train"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(s.tokens) for s in sentences) + "\n", encoding="utf-8")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", help="text file, one document or sentence per line (default: WNUT-17 text)")
    parser.add_argument("--backbone", default="all-minilm-l6-v2")
    parser.add_argument("--output", default="saved_models/minilm-domain")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--whole-word-masking", action="store_true")
    parser.add_argument("--skip-finetune", action="store_true", help="stop after pretraining")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output of this example")
    args = parser.parse_args(argv)

    from kerastune_nlp.cli import console

    console.configure(False)
    corpus = Path(args.corpus) if args.corpus else bundled_tweets(Path(args.output + "-corpus") / "wnut17_train.txt")
    result = continue_pretraining(corpus, output_dir=args.output, backbone=args.backbone, overwrite=args.overwrite,
                                  config=PretrainConfig(epochs=args.epochs, learning_rate=1e-4,
                                                        whole_word_masking=args.whole_word_masking),
                                  verbose=console.fit_verbosity())
    report = result.report
    before, after = report["eval"]["before"], report["eval"]["after"]
    print(f"MLM head {report['mlm_head']}; held-out masked-token accuracy {before['masked_accuracy']:.3f} -> "
          f"{after['masked_accuracy']:.3f}, perplexity {before['perplexity']:.1f} -> {after['perplexity']:.1f}")
    print(f"Adapted backbone: {result.output_dir}")
    if args.skip_finetune:
        return 0
    # Fine-tune from the adapted backbone exactly as from any other (bundled WNUT-17 by default).
    run = kt.train(task="ner", output_dir=f"{args.output}-ner", overwrite=args.overwrite,
                   model_config=kt.ModelConfig(backbone=str(result.output_dir)),
                   verbose=console.fit_verbosity())
    print(f"NER test entity F1 from the adapted backbone: {run.metrics['test']['overall']['f1']:.4f} "
          f"(run directory {run.run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
