"""Binary sentiment classification on your own CSV/TSV (or a hub data set when online).

    python examples/sentiment.py --train reviews.csv --text-column review --label-column sentiment
    python examples/sentiment.py --train train.tsv --dev dev.tsv --test test.tsv
    python examples/sentiment.py --dataset imdb                 # through `datasets`, needs the hub

With one file it makes a stratified 70/15/15 split (seeded). Prints accuracy,
precision/recall/F1 and ROC-AUC; the run directory gets the confusion matrix,
training curves and the worst-predicted reviews.
"""

import argparse
import sys

from kerastune_nlp.cli import add_ner_train_arguments, add_text_arguments, configure_logging, run_text_training
from kerastune_nlp.errors import KerastuneNLPError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_ner_train_arguments(parser)
    add_text_arguments(parser)
    args = parser.parse_args(argv)
    args.task = "classification"
    configure_logging()
    if not args.train and not args.dataset:
        print("error: no data. Pass a labelled CSV/TSV with --train (e.g. --train reviews.csv "
              "--text-column review --label-column sentiment), or --dataset NAME when the hub is "
              "reachable (e.g. --dataset imdb).", file=sys.stderr)
        return 2
    try:
        result = run_text_training(args)
    except KerastuneNLPError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(result.classifier.label_names) != 2:
        print(f"note: {len(result.classifier.label_names)} classes found; sentiment here usually means 2.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
