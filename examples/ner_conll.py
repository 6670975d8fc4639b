"""Fine-tune a pretrained Transformer for named-entity recognition (NER).

With no arguments it runs offline: the bundled all-MiniLM-L6-v2 backbone is
fine-tuned on the bundled WNUT-17 data set (CC BY 4.0, Derczynski et al.
2017) and an entity-level precision/recall/F1 report is printed per entity
type for the test split.

    python examples/ner_conll.py                      # bundled data and weights
    python examples/ner_conll.py --quick              # a ~2 minute subset
    python examples/ner_conll.py --train train.conll --dev dev.conll \
        --test test.conll --backbone path/to/model --epochs 5
    python examples/ner_conll.py --dataset conll2003  # needs the hub

The run directory (saved_models/... by default) holds the weights, tokenizer,
label map and metrics.json; reuse it with
`kerastune-nlp evaluate RUN --test FILE` or `kerastune-nlp predict RUN "text"`.
"""

import sys

from kerastune_nlp.cli import train_main


def main(argv=None) -> int:
    return train_main(argv, task="ner", description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
