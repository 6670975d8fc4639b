"""Which weights train, and how fast: freezing, BitFit, LoRA, layer-wise rates, unfreezing.

Variables fall into groups by depth: 0 the embeddings, 1..L the encoder
layers bottom to top, L+1 everything else (the task head, final norms).
Layer-wise learning-rate decay and gradual unfreezing are per-group scales
on the learning rate (see `FineTuneAdamW`); freezing, BitFit and LoRA change
which variables are trainable at all, and are undone by `restore()` before
the model is saved, so a run directory always holds a plain model.

Where each family keeps those parts (and which variable belongs to which
group) is `kerastune_nlp.backbones.families`' business; this module only
decides what to do with them.
"""

from __future__ import annotations

import dataclasses
import logging

from kerastune_nlp._tf import keras
from kerastune_nlp.backbones import families
from kerastune_nlp.errors import ConfigError

logger = logging.getLogger("kerastune_nlp.training")


def num_hidden_layers(backbone_config) -> int:
    """Number of encoder blocks from the config (`n_layers` for DistilBERT)."""
    return families.num_layers(backbone_config)


def variable_group(variable, num_layers: int) -> int:
    """0 embeddings, 1..num_layers encoder layers (bottom up), num_layers+1 the rest.

    Family-specific parts outside the blocks (ELECTRA's embeddings_project,
    DeBERTa-v2's relative embeddings) are placed as `families` documents.
    """
    return families.variable_group(variable.name, num_layers)


def layerwise_scales(num_layers: int, decay: float | None) -> list[float]:
    """Head 1, top layer decay, next decay^2 ..., embeddings decay^(L+1)."""
    decay = 1.0 if decay is None else decay
    return [decay ** (num_layers + 1 - group) for group in range(num_layers + 2)]


def unfrozen_mask(num_layers: int, layers_per_epoch: int | None, epoch: int) -> list[float]:
    """1.0 for groups that train in `epoch` (0-based) under gradual unfreezing."""
    if not layers_per_epoch:
        return [1.0] * (num_layers + 2)
    # Backbone groups counted from the top: layer L-1 first, the embeddings last.
    open_groups = layers_per_epoch * (epoch + 1)
    mask = [0.0] * (num_layers + 2)
    mask[num_layers + 1] = 1.0
    for depth in range(min(open_groups, num_layers + 1)):
        mask[num_layers - depth] = 1.0
    return mask


class GradualUnfreezing(keras.callbacks.Callback):
    """Opens `layers_per_epoch` more backbone groups to training at each epoch start.

    Frozen groups get a learning rate of 0 (so neither the Adam update nor
    weight decay moves them) while the graph stays the same, so nothing
    recompiles between epochs.
    """

    def __init__(self, optimizer, num_layers: int, layers_per_epoch: int, base_scales):
        super().__init__()
        self.optimizer = optimizer
        self.num_layers = num_layers
        self.layers_per_epoch = layers_per_epoch
        self.base_scales = list(base_scales)

    def scales(self, epoch: int) -> list[float]:
        mask = unfrozen_mask(self.num_layers, self.layers_per_epoch, epoch)
        return [s * m for s, m in zip(self.base_scales, mask)]

    def on_epoch_begin(self, epoch, logs=None):
        scales = self.scales(epoch)
        if getattr(self.optimizer, "_finetune_built", False):
            self.optimizer.set_group_scales(scales)
        logger.info("epoch %d: training groups %s (0 embeddings .. %d head)", epoch + 1,
                    [g for g, s in enumerate(scales) if s > 0], self.num_layers + 1)


@dataclasses.dataclass
class Adaptation:
    """What `adapt_backbone` changed, so `restore()` can put a plain model back."""

    backbone: object
    frozen_layers: list = dataclasses.field(default_factory=list)
    moved_variables: list = dataclasses.field(default_factory=list)
    lora_layers: int = 0

    def restore(self) -> None:
        """Merges LoRA adapters and makes every weight trainable in its original order."""
        if self.lora_layers:
            from kerastune_nlp.models.lora import merge_lora

            merge_lora(self.backbone)
            self.lora_layers = 0
        for layer, variable, index in reversed(self.moved_variables):
            _remove_by_identity(layer._non_trainable_weights, variable)
            layer._trainable_weights.insert(index, variable)
        self.moved_variables.clear()
        for layer in self.frozen_layers:
            layer.trainable = True
        self.frozen_layers.clear()


def adapt_backbone(backbone, backbone_config, train_config) -> Adaptation:
    """Applies freezing, BitFit or LoRA from `train_config` to a loaded backbone."""
    adaptation = Adaptation(backbone)
    if train_config.peft == "lora":
        from kerastune_nlp.models.lora import add_lora

        adaptation.lora_layers = add_lora(
            backbone, rank=train_config.lora_rank, alpha=train_config.lora_alpha,
            dropout=train_config.lora_dropout, targets=train_config.lora_targets, seed=train_config.seed,
        )
    elif train_config.peft == "bitfit":
        _keep_only_biases(backbone, adaptation)
    frozen_parts = []
    if train_config.freeze_embeddings:
        # Everything in depth group 0, so freezing matches what layer-wise
        # decay calls the embeddings (DeBERTa-v2's relative table included).
        frozen_parts.extend(families.embedding_parts(backbone))
    if train_config.freeze_layers:
        layers = encoder_layers(backbone)
        if train_config.freeze_layers > len(layers):
            raise ConfigError(
                f"Expected `freeze_layers` <= the backbone's {len(layers)} layers. "
                f"Received: `freeze_layers`={train_config.freeze_layers}."
            )
        adaptation.frozen_layers.extend(layers[: train_config.freeze_layers])
        frozen_parts.extend(families.first_layer_extras(backbone))  # e.g. DeBERTa-v2's conv
    for owner, _, part in frozen_parts:
        if isinstance(part, keras.layers.Layer):
            adaptation.frozen_layers.append(part)
        else:
            # A weight its owner holds directly (rel_embeddings in the encoder):
            # freezing the owner would freeze every block too.
            _freeze_variable(owner, part, adaptation)
    for layer in adaptation.frozen_layers:
        layer.trainable = False
    return adaptation


def encoder_layers(backbone) -> list:
    """The backbone's Transformer blocks, bottom first (BERT, RoBERTa, DistilBERT, ...)."""
    return families.encoder_layers(backbone)


def _keep_only_biases(backbone, adaptation: Adaptation) -> None:
    """BitFit (Ben Zaken et al., 2022): every bias (and LayerNorm shift) trains, nothing else."""
    if not any(families.is_bias(variable.name) for variable in backbone.trainable_weights):
        # ModernBERT as released (norm_bias, attention_bias, mlp_bias all false): BitFit
        # would freeze the whole backbone and train only the head.
        raise ConfigError(
            f"BitFit trains the backbone's biases, but this {getattr(backbone, 'model_type', '')} "
            "backbone has none (its config turns every bias off). Received: `peft`='bitfit'. Use "
            "`peft`='lora' or full fine-tuning (`peft`='none')."
        )
    for layer in backbone._flatten_layers(include_self=False):
        for variable in list(layer._trainable_weights):
            if not families.is_bias(variable.name):
                _freeze_variable(layer, variable, adaptation)


def _freeze_variable(layer, variable, adaptation: Adaptation) -> None:
    """Moves one weight to `layer`'s non-trainable list; `restore()` moves it back."""
    if not any(v is variable for v in layer._trainable_weights):
        return  # already frozen (e.g. by BitFit)
    index = _remove_by_identity(layer._trainable_weights, variable)
    layer._non_trainable_weights.append(variable)
    adaptation.moved_variables.append((layer, variable, index))


def _remove_by_identity(variables: list, variable) -> int:
    # `==` on tf.Variables compares values element-wise, so list.remove cannot be used.
    index = next(i for i, v in enumerate(variables) if v is variable)
    del variables[index]
    return index
