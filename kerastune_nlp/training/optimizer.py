"""AdamW with decoupled weight decay and a warmup-then-linear-decay schedule."""

from __future__ import annotations

from kerastune_nlp._tf import keras, tf

# Weight decay on biases and LayerNorm scales only hurts (BERT recipe).
NO_DECAY_NAMES = ["bias", "LayerNorm", "layer_norm", "layernorm"]


@keras.saving.register_keras_serializable(package="kerastune_nlp")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to `peak_learning_rate`, then falls linearly to 0.

    Args:
        peak_learning_rate: float. Rate at the end of warmup.
        total_steps: int. Optimizer steps of the whole run.
        warmup_steps: int. Steps of linear warmup.
    """

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_steps: int):
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak_learning_rate, tf.float32)
        warmup = tf.constant(max(self.warmup_steps, 1), tf.float32)
        decay = tf.constant(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        rising = peak * step / warmup
        falling = peak * tf.maximum(0.0, (self.total_steps - step) / decay)
        return tf.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def build_adamw(
    learning_rate: float,
    total_steps: int,
    warmup_ratio: float = 0.1,
    weight_decay: float = 0.01,
) -> keras.optimizers.Optimizer:
    """AdamW (beta2 0.999, eps 1e-6, clipnorm 1.0) on a warmup/linear-decay schedule.

    Example:
    >>> optimizer = build_adamw(1e-4, total_steps=600)
    """
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(round(total_steps * warmup_ratio)))
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        global_clipnorm=1.0,
    )
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    return optimizer
