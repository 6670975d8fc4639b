"""Binary sentiment classification on your own CSV/TSV (or a hub data set when online).

    python examples/sentiment.py --train reviews.csv --text-column review --label-column sentiment
    python examples/sentiment.py --train train.tsv --dev dev.tsv --test test.tsv
    python examples/sentiment.py --dataset imdb                 # through `datasets`, needs the hub

With one file it makes a stratified 70/15/15 split (seeded). Prints accuracy,
precision/recall/F1 and ROC-AUC; the run directory gets the confusion matrix,
training curves and the worst-predicted reviews.
"""

import sys

from kerastune_nlp.cli import train_main


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not any(a.startswith(("--train", "--dataset", "--config")) for a in argv) and "-h" not in argv \
            and "--help" not in argv:
        print("error: no data. Pass a labelled CSV/TSV with --train (e.g. --train reviews.csv "
              "--text-column review --label-column sentiment), or --dataset NAME when the hub is "
              "reachable (e.g. --dataset imdb).", file=sys.stderr)
        return 2
    return train_main(argv, task="classification", description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
