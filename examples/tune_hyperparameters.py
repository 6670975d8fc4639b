"""Search the fine-tuning recipe (learning rate, batch size, epochs, ...) with KerasTuner.

With no arguments it runs offline: the bundled all-MiniLM-L6-v2 backbone on
the bundled TREC question-classification data, 10 RandomSearch trials over
the default space. The search folder gets trials.csv, trials.md, two plots,
best_hyperparameters.json and best_config.yaml, which
`kerastune-nlp train --config` reads. Rerun the same command to resume an
interrupted search.

    python examples/tune_hyperparameters.py --quick            # 4 short trials on a subset, a few minutes
    python examples/tune_hyperparameters.py --tuner hyperband --max-trials 20
    python examples/tune_hyperparameters.py --task ner --space learning_rate=1e-5:1e-3:log \
        --space batch_size=16,32 --space epochs=3 --retrain-best --output saved_models/wnut17-best
    python examples/tune_hyperparameters.py --objective val_loss:min --keep none
"""

import sys

from kerastune_nlp.cli.tune import tune_main


def main(argv=None) -> int:
    return tune_main(argv, task="classification", description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
