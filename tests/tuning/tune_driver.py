"""A user's search script, run as a subprocess by the kill-and-resume and the chief/worker tests.

Searches classification on 64 bundled TREC questions with a given backbone;
each finished batch is appended to --progress-file as a JSON line (pid,
trial folder, epoch, batch), so a test can kill the process mid-trial.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--search-dir", required=True)
    parser.add_argument("--tuner", default="random")
    parser.add_argument("--max-trials", type=int, default=2)
    parser.add_argument("--epochs", default="2")
    parser.add_argument("--sleep-per-batch", type=float, default=0.0)
    parser.add_argument("--progress-file")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from kerastune_nlp._tf import keras
    from kerastune_nlp.config import DataConfig, ModelConfig, TrainConfig
    from kerastune_nlp.data.bundled_trec import load_bundled_trec
    from kerastune_nlp.tuning import tune

    class Progress(keras.callbacks.Callback):
        """Slows each batch down (so a test can kill mid-trial) and logs it."""

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if args.sleep_per_batch:
                time.sleep(args.sleep_per_batch)
            if args.progress_file:
                with open(args.progress_file, "a") as handle:
                    handle.write(json.dumps({"pid": os.getpid(), "epoch": int(self._epoch), "batch": int(batch),
                                             "tuner": os.environ.get("KERASTUNER_TUNER_ID", "tuner0")}) + "\n")

    train = load_bundled_trec()["train"]
    known = {e.label for e in train[:64]}
    dev = [e for e in train[64:96] if e.label in known][:24]
    result = tune("classification", train[:64], dev, search_dir=args.search_dir, tuner=args.tuner,
                  max_trials=args.max_trials, space={"epochs": args.epochs, "batch_size": 8},
                  model_config=ModelConfig(backbone=args.backbone), data_config=DataConfig(max_length=32),
                  train_config=TrainConfig(learning_rate=1e-3, checkpoint_every_steps=2),
                  early_stop="none", callbacks=[Progress()])
    print(json.dumps({"trials": [{k: t.get(k) for k in ("trial_id", "status", "resumed", "epochs_run")}
                                 for t in result.trials], "files": result.files}))


if __name__ == "__main__":
    main()
