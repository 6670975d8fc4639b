"""A user's training script, run as a subprocess by the distribution and resume tests.

Trains NER on the first 60 WNUT-17 sentences with a given backbone and
options; what a test needs to see is written to --progress-file (one JSON
line per finished batch) and the run directory.
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
    parser.add_argument("--output", required=True)
    parser.add_argument("--strategy", default="none")
    parser.add_argument("--logical-cpus", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sentences", type=int, default=60)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--sleep-per-batch", type=float, default=0.0)
    parser.add_argument("--progress-file")
    args = parser.parse_args()

    from kerastune_nlp._tf import keras, tf

    if args.logical_cpus:
        # Must happen before TensorFlow initialises its devices.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(args.logical_cpus)])

    from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig
    from kerastune_nlp.data import bundled_wnut17, read_conll
    from kerastune_nlp.training.ner_trainer import train_ner

    class Progress(keras.callbacks.Callback):
        """Slows each batch down (so a test can kill mid-epoch) and logs it."""

        def on_train_batch_end(self, batch, logs=None):
            if args.sleep_per_batch:
                time.sleep(args.sleep_per_batch)
            if args.progress_file:
                with open(args.progress_file, "a") as handle:
                    handle.write(json.dumps({"pid": os.getpid(), "epoch": int(self._epoch), "batch": int(batch)}) + "\n")

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

    paths = bundled_wnut17()
    train = read_conll(paths["train"])[: args.sentences]
    dev = read_conll(paths["dev"])[:20]
    result = train_ner(
        train, dev, output_dir=args.output,
        model_config=ModelConfig(backbone=args.backbone, dropout=0.0),
        data_config=DataConfig(max_length=32), ner_config=NERDataConfig(window_stride=4),
        train_config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3,
                                 strategy=args.strategy, checkpoint_every_steps=args.checkpoint_every),
        extra_callbacks=[Progress()], verbose=0,
    )
    print(json.dumps({"training": result.metrics["training"], "run_dir": str(result.run_dir)}))


if __name__ == "__main__":
    main()
