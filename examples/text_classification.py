"""Fine-tune a pretrained Transformer for text classification.

With no arguments it runs offline: the bundled all-MiniLM-L6-v2 backbone is
fine-tuned on the bundled TREC question-classification data (Li and Roth,
2002; 6 classes; a stratified 10% of train held out as dev) and prints
accuracy, macro/weighted precision/recall/F1 and a per-class report for the
test set. The run directory gets metrics.json, confusion_matrix.png,
curve_loss.png, curve_accuracy.png and worst_predictions.jsonl.

    python examples/text_classification.py                  # bundled TREC
    python examples/text_classification.py --quick          # a ~2 minute subset
    python examples/text_classification.py --train data.csv --text-column review \
        --label-column stars --class-weights --clean html,urls,whitespace,dedupe
    python examples/text_classification.py --task multilabel --train tags.jsonl
    python examples/text_classification.py --task regression --train scores.tsv --loss mae
"""

import argparse
import sys

from kerastune_nlp.cli import add_ner_train_arguments, add_text_arguments, configure_logging, run_text_training
from kerastune_nlp.errors import KerastuneNLPError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="classification", choices=["classification", "multilabel", "regression"])
    add_ner_train_arguments(parser)
    add_text_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        run_text_training(args)
    except KerastuneNLPError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
