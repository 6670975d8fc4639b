"""LoRA (Hu et al. 2021, arXiv:2106.09685) for our encoders.

`add_lora` swaps chosen attention projections of a built encoder for
`LoRADense` wrappers (our attention layers look their Dense attributes up at
call time) and freezes every other backbone weight, so only the low-rank
pairs (a few % of the weights) train. `merge_lora` folds the pairs
back into the original kernels and restores the original layer structure, so
weights saved afterwards load into a plain, un-wrapped model.
"""

from __future__ import annotations

from collections.abc import Sequence

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.backbones import families
from kerastune_nlp.config import LORA_TARGETS
from kerastune_nlp.errors import ConfigError

# Set on each layer add_lora freezes: its `trainable` flag before freezing.
_FLAG = "_kerastune_lora_was_trainable"


@keras.saving.register_keras_serializable(package="kerastune_nlp")
class LoRADense(keras.layers.Layer):
    """A frozen `Dense` plus a trainable low-rank update: `base(x) + x A B * alpha / rank`.

    `A` starts Kaiming-uniform and `B` at zero, as in the paper, so right after
    wrapping the output equals the base layer's output exactly.

    Args:
        base: keras.layers.Dense. The layer to adapt; its weights are frozen.
        rank: int. Inner dimension of the update. Defaults to 8.
        alpha: float. Scale; the update is multiplied by `alpha / rank`, so the
            learning rate need not change with the rank. Defaults to 16.0.
        dropout: float. Dropout on the input of the low-rank path only.
            Defaults to 0.0.
        seed: int or None. Seeds `A` and the dropout. Defaults to None.
        **kwargs: passed to `keras.layers.Layer` (for example `name`).
    """

    def __init__(self, base, rank=8, alpha=16.0, dropout=0.0, seed=None, **kwargs):
        # Compute in the base layer's dtype policy (float32 variables, maybe
        # bfloat16/float16 compute under mixed precision).
        kwargs.setdefault("dtype", base.dtype_policy)
        kwargs.setdefault("name", f"{base.name}_lora")
        super().__init__(**kwargs)
        _check_hyperparameters(rank, alpha, dropout)
        self.base = base
        self.base.trainable = False
        self.rank, self.alpha, self.dropout, self.seed = int(rank), float(alpha), float(dropout), seed
        self.scale = self.alpha / self.rank
        self.lora_dropout = keras.layers.Dropout(self.dropout, seed=seed)

    def build(self, input_shape):
        if not self.base.built:
            self.base.build(input_shape)
        in_dim, out_dim = self.base.kernel.shape
        # PyTorch's kaiming_uniform_(a=sqrt(5)) as used by the paper's code:
        # bound = 1 / sqrt(fan_in), i.e. VarianceScaling(1/3, fan_in, uniform).
        self.lora_a = self.add_weight(
            "lora_A", shape=(in_dim, self.rank), trainable=True,
            initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform", seed=self.seed),
        )
        self.lora_b = self.add_weight("lora_B", shape=(self.rank, out_dim), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs, training=None):
        update = self.lora_dropout(inputs, training=training)
        update = tf.tensordot(update, tf.cast(self.lora_a, inputs.dtype), axes=1)
        update = tf.tensordot(update, tf.cast(self.lora_b, inputs.dtype), axes=1)
        return self.base(inputs) + update * tf.cast(self.scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return self.base.compute_output_shape(input_shape)

    def delta(self):
        """The float32 kernel update `A @ B * alpha / rank`, shape `[in, out]`."""
        return tf.matmul(tf.convert_to_tensor(self.lora_a), tf.convert_to_tensor(self.lora_b)) * self.scale

    def get_config(self):
        config = super().get_config()
        config.update(
            base=keras.layers.serialize(self.base), rank=self.rank, alpha=self.alpha,
            dropout=self.dropout, seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.layers.deserialize(config.pop("base")), **config)


def add_lora(
    backbone,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    targets: str | Sequence[str] = ("query", "value"),
    seed: int | None = None,
) -> int:
    """Wraps the backbone's target projections in `LoRADense` and freezes the rest.

    Call it on the backbone (not on a task model: its head would be frozen
    too), before `compile()`, since Keras fixes the trainable set when it traces
    the train step.

    Args:
        backbone: a built encoder of ours (`TransformerEncoder`, `DebertaV2Encoder`).
        rank: int. LoRA rank. Defaults to 8.
        alpha: float. LoRA scale numerator. Defaults to 16.0.
        dropout: float in [0, 1). Dropout on the LoRA input. Defaults to 0.0.
        targets: sequence of str, from "query", "key", "value", "output".
            Defaults to ("query", "value"), the paper's choice.
        seed: int or None. Seeds the `A` matrices (layer i gets `seed + i`).
            Defaults to None.

    Returns:
        The number of `Dense` layers wrapped.

    Example:
    >>> backbone = backbones.load_pretrained_backbone(resolved)
    >>> add_lora(backbone, rank=8, targets=("query", "value"))
    12
    """
    _check_hyperparameters(rank, alpha, dropout)
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown or not targets:
        raise ConfigError(
            f"`targets` must be a non-empty subset of {sorted(LORA_TARGETS)}. Received: `targets`={targets!r}. "
            "Drop the unknown names."
        )
    # dict.fromkeys: a target named twice is wrapped once.
    projections = families.attention_projections(backbone, tuple(dict.fromkeys(targets)))
    if any(isinstance(layer, LoRADense) for layer in backbone._flatten_layers(include_self=True)):
        raise ConfigError("The backbone already has LoRA layers. Call `merge_lora(backbone)` before `add_lora` again.")
    unbuilt = next((base for _, _, base in projections if not base.built), None)
    if unbuilt is not None:
        raise ConfigError(
            f"`backbone` is not built ({unbuilt.name!r} has no kernel yet). Build it before `add_lora`: "
            "`kerastune_nlp.backbones.encoder.ensure_built(backbone)`, or load it with weights (`load_encoder`)."
        )
    for index, (attention, attribute, base) in enumerate(projections):
        wrapper = LoRADense(base, rank, alpha, dropout, seed=None if seed is None else seed + index)
        _set_flag(base, True)  # the wrapper froze it; merge_lora unfreezes it
        # Name A and B next to the base kernel (".../query/lora_A:0"): unique
        # names keep h5 saving of the wrapped model working.
        with tf.name_scope(base.kernel.name.rsplit("/", 1)[0] + "/"):
            wrapper.build(tf.TensorShape([None, base.kernel.shape[0]]))
        _replace_attribute(attention, attribute, wrapper)
    _freeze_all_but_lora(backbone)
    return len(projections)


def merge_lora(backbone) -> int:
    """Folds every LoRA update into its base kernel and restores the original layers.

    Afterwards the backbone has its original structure, weight order and
    trainable flags, so `save_weights(...h5)` loads into a freshly built model.

    Args:
        backbone: a backbone `add_lora` was applied to.

    Returns:
        The number of `LoRADense` layers merged (0 if there were none).
    """
    merged = 0
    for layer in list(backbone._flatten_layers(include_self=True)):
        for attribute, value in list(layer.__dict__.items()):
            if isinstance(value, LoRADense):
                value.base.kernel.assign_add(tf.cast(value.delta(), value.base.kernel.dtype))
                _replace_attribute(layer, attribute, value.base)
                merged += 1
    # Parents come before children in _flatten_layers, and the `trainable`
    # setter recurses, so restoring in this order leaves every layer with
    # exactly the flag it had before add_lora.
    for layer in backbone._flatten_layers(include_self=True):
        if _FLAG in layer.__dict__:
            layer.trainable = layer.__dict__[_FLAG]
            object.__delattr__(layer, _FLAG)
    return merged


def count_parameters(model) -> dict:
    """Trainable and total scalar parameter counts (shared variables counted once).

    Args:
        model: a Keras layer or model.

    Returns:
        `{"trainable": int, "total": int, "trainable_share": float}`.
    """

    def count(weights):
        return sum(w.shape.num_elements() for w in {id(w): w for w in weights}.values())

    trainable, total = count(model.trainable_weights), count(model.weights)
    share = round(trainable / total, 6) if total else 0.0
    return {"trainable": trainable, "total": total, "trainable_share": share}


def _check_hyperparameters(rank, alpha, dropout) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ConfigError(f"`rank` must be an int >= 1. Received: `rank`={rank!r}. Use e.g. rank=8.")
    if not alpha > 0:
        raise ConfigError(f"`alpha` must be > 0. Received: `alpha`={alpha!r}. Use e.g. alpha=2 * rank.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"`dropout` must be in [0, 1). Received: `dropout`={dropout!r}. Use e.g. 0.05.")


def _set_flag(layer, was_trainable: bool) -> None:
    # object.__setattr__ skips Keras attribute tracking: it is a plain marker.
    if _FLAG not in layer.__dict__:
        object.__setattr__(layer, _FLAG, was_trainable)


def _freeze_all_but_lora(backbone) -> None:
    """Freezes each layer that owns weights itself, never a LoRA wrapper.

    A container with `trainable=False` hides all its children's weights in
    tf_keras, so freezing a parent of a `LoRADense` would hide `A` and `B` too.
    In our encoders only leaf layers own weights (the encoder, blocks and
    attention layers hold none of their own), so no parent is frozen.
    """
    for layer in backbone._flatten_layers(include_self=True):
        if isinstance(layer, LoRADense) or not layer.trainable or not layer._trainable_weights:
            continue
        for sub in layer._flatten_layers(include_self=True):
            _set_flag(sub, sub.trainable)
        layer.trainable = False


def _replace_attribute(owner, attribute: str, new) -> None:
    """`setattr`, keeping `new` at the old layer's place among the tracked sublayers.

    tf_keras drops the old layer from `_self_tracked_trackables` and appends
    the new one, which would reorder `weights` (query, key, value -> key,
    query, value after a merge); h5 weight files are matched by position.
    """
    old = owner.__dict__[attribute]
    index = next((i for i, t in enumerate(owner._self_tracked_trackables) if t is old), None)
    setattr(owner, attribute, new)
    tracked = owner._self_tracked_trackables  # __delattr__ rebuilt the list
    position = next((i for i, t in enumerate(tracked) if t is new), None)
    if index is not None and position is not None:
        tracked.insert(index, tracked.pop(position))
