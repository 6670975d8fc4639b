"""The steps every fine-tune shares around `model.fit`.

`start` fixes devices, precision, determinism and seeds before any model
exists; `build_scope` is where models are built (under the strategy and the
dtype policy); `compile_for_training` applies freezing / PEFT, builds the
optimizer with layer-wise rates and gradient accumulation, and compiles
(optionally with XLA); `summary` is what metrics.json records about it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math

from kerastune_nlp import config as cfg
from kerastune_nlp.models.lora import count_parameters
from kerastune_nlp.training import devices, finetuning
from kerastune_nlp.training.callbacks import restore_best
from kerastune_nlp.training.optimizer import build_adamw

logger = logging.getLogger("kerastune_nlp.training")

# Padded lengths are rounded up to this multiple: 8 suits tensor cores and
# keeps retracing rare; XLA compiles once per shape, so it gets coarser
# buckets (8 shapes up to 128 instead of 16).
PAD_MULTIPLE = 8
PAD_MULTIPLE_XLA = 16


@dataclasses.dataclass
class TrainingSetup:
    """Devices and precision of one run.

    Args:
        strategy: the `tf.distribute.Strategy` models are built under.
        policy: str. The Keras dtype policy name.
        train_config: the `TrainConfig`.
    """

    strategy: object
    policy: str
    train_config: cfg.TrainConfig
    adaptation: finetuning.Adaptation | None = None
    autocast: object = None  # models.autocast.AutocastDense while training with autocast_bfloat16
    optimizer: object = None
    parameters: dict | None = None

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def is_chief(self) -> bool:
        return devices.is_chief(self.strategy)

    def pad_multiple(self) -> int:
        return PAD_MULTIPLE_XLA if self.train_config.jit_compile else PAD_MULTIPLE

    def summary(self) -> dict:
        config = self.train_config
        return {
            "precision": self.policy,
            "strategy": devices.strategy_name(self.strategy),
            "replicas": self.replicas,
            "global_batch_size": config.batch_size,
            "per_replica_batch_size": config.batch_size // self.replicas,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "examples_per_update": config.batch_size * config.gradient_accumulation_steps,
            "optimizer_updates": int(self.optimizer.iterations.numpy()) if self.optimizer else 0,
            "jit_compile": config.jit_compile,
            "peft": config.peft,
            "parameters": self.parameters,
        }


def start(train_config: cfg.TrainConfig, strategy=None) -> TrainingSetup:
    """Seeds everything and fixes precision for one build, on `strategy` (resolved if None)."""
    from kerastune_nlp._tf import keras

    if strategy is None:
        strategy = devices.resolve_strategy(train_config.strategy)
    devices.check_batch_size(train_config.batch_size, strategy)
    devices.make_deterministic(train_config.deterministic)
    keras.utils.set_random_seed(train_config.seed)
    policy = devices.resolve_precision(train_config.precision, strategy)
    logger.info("training on %d replica(s) (%s), dtype policy %s", strategy.num_replicas_in_sync,
                devices.strategy_name(strategy), policy)
    return TrainingSetup(strategy, policy, train_config)


@contextlib.contextmanager
def build_scope(setup: TrainingSetup):
    """Build and compile models inside this: variables land on every replica."""
    with setup.strategy.scope(), devices.dtype_policy(devices.keras_policy(setup.policy)):
        yield


def compile_for_training(setup: TrainingSetup, model, backbone, backbone_config, *,
                         micro_steps_per_epoch: int, loss, metrics) -> list:
    """Freezes / adapts the backbone, builds the optimizer and compiles `model`.

    Call inside `build_scope`. Returns extra callbacks the options need
    (gradual unfreezing).
    """
    config = setup.train_config
    setup.adaptation = finetuning.adapt_backbone(backbone, backbone_config, config)
    callbacks, group_of, scales = [], None, [1.0]
    if config.layerwise_lr_decay or config.unfreeze_layers_per_epoch:
        layers = finetuning.num_hidden_layers(backbone_config)
        scales = finetuning.layerwise_scales(layers, config.layerwise_lr_decay)

        def group_of(variable):
            return finetuning.variable_group(variable, layers)

        if config.unfreeze_layers_per_epoch:
            unfreezing = finetuning.GradualUnfreezing(None, layers, config.unfreeze_layers_per_epoch, scales)
            scales = unfreezing.scales(0)
            callbacks.append(unfreezing)
    updates = math.ceil(micro_steps_per_epoch * config.epochs / config.gradient_accumulation_steps)
    optimizer = build_adamw(config.learning_rate, updates, config.warmup_ratio, config.weight_decay,
                            accumulation_steps=config.gradient_accumulation_steps,
                            group_of=group_of, group_scales=scales)
    for callback in callbacks:
        callback.optimizer = optimizer
    if setup.policy == "autocast_bfloat16":
        from kerastune_nlp.models.autocast import AutocastDense

        setup.autocast = AutocastDense(model)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=config.jit_compile)
    setup.optimizer = optimizer
    setup.parameters = count_parameters(model)
    logger.info("trainable parameters: %d of %d (%.2f%%)", setup.parameters["trainable"],
                setup.parameters["total"], 100 * setup.parameters["trainable_share"])
    return callbacks


def finish(setup: TrainingSetup, model, best_path, predictor) -> dict:
    """Ends training: returns the run summary, restores the best epoch, plain model.

    The summary is taken first, because the best checkpoint brings back that
    epoch's optimizer state (and update count). Then freezing is undone and
    LoRA adapters are merged, so the saved model is a plain one, and the
    `predictor` drops its traced forward pass,
    which still held the LoRA wrappers.
    """
    summary = setup.summary()
    if best_path is not None:
        restore_best(model, best_path)
    if setup.adaptation is not None:
        setup.adaptation.restore()
    if setup.autocast is not None:  # the returned model runs float32, as it reloads
        setup.autocast.restore()
    predictor.retrace()
    return summary
