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

import sys

from kerastune_nlp.cli import train_main


def main(argv=None) -> int:
    return train_main(argv, task="classification", description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
