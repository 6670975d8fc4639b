"""AdamW for fine-tuning: warmup/linear decay, per-layer rates, gradient accumulation.

`FineTuneAdamW` is Keras' AdamW with two additions that need to live inside
the optimizer to stay correct under a distribution strategy:

- a learning-rate scale per variable group (layer-wise decay, and 0 for the
  groups that gradual unfreezing still holds back), read from one
  non-trainable vector a callback may change between epochs;
- gradient accumulation: every micro-step adds its (all-reduced) gradient
  into a buffer; every N-th micro-step clips the mean, applies weight decay
  and the Adam update, and clears the buffer. `iterations` counts updates, so
  the schedule and Adam's bias correction see updates, not micro-steps.
"""

from __future__ import annotations

from typing import Callable, Sequence

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


class FineTuneAdamW(keras.optimizers.AdamW):
    """AdamW with per-group learning-rate scales and gradient accumulation.

    Args:
        accumulation_steps: int. Micro-steps per update. Defaults to 1.
        group_of: callable or None. Maps a variable to its group index
            (`0 .. len(group_scales) - 1`). None puts every variable in group 0.
        group_scales: sequence of float. Initial learning-rate scale of each
            group. Defaults to (1.0,).
        **kwargs: passed to `keras.optimizers.AdamW`.
    """

    def __init__(
        self,
        accumulation_steps: int = 1,
        group_of: Callable | None = None,
        group_scales: Sequence[float] = (1.0,),
        **kwargs,
    ):
        # The whole train step is compiled by `fit(jit_compile=...)` when asked;
        # the optimizer's own per-variable XLA path would bypass our update.
        kwargs["jit_compile"] = False
        super().__init__(**kwargs)
        self.accumulation_steps = int(accumulation_steps)
        self._group_of = group_of or (lambda variable: 0)
        self._initial_scales = [float(s) for s in group_scales]

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_finetune_built", False):
            return
        self._finetune_built = True
        self.group_scales = self.add_variable(shape=(len(self._initial_scales),), dtype=tf.float32,
                                              name="group_scales")
        self.group_scales.assign(self._initial_scales)
        self._group_index = {self._var_key(v): int(self._group_of(v)) for v in var_list}
        self._accumulators = []
        if self.accumulation_steps > 1:
            self.micro_steps = self.add_variable(shape=(), dtype=tf.int64, name="micro_steps")
            self._accumulators = [self.add_variable_from_reference(v, "accumulator") for v in var_list]

    def set_group_scales(self, scales: Sequence[float]) -> None:
        """Changes the per-group learning-rate scales (e.g. from a callback)."""
        self.group_scales.assign([float(s) for s in scales])

    # Clipping and weight decay move into the update itself: with accumulation
    # they must act on the summed gradient, once per update.
    def _clip_gradients(self, grads):
        return grads

    def _apply_weight_decay(self, variables):
        return

    def _distributed_apply_gradients_fn(self, distribution, grads_and_vars, **kwargs):
        if self.accumulation_steps == 1:
            # Gradients arrive all-reduced (identical on every replica): any
            # replica's copy gives the global norm.
            scale = self._clip_scale([distribution.experimental_local_results(g)[0] for g, _ in grads_and_vars])
            for grad, var in grads_and_vars:
                distribution.extended.update(var, self._apply_update, args=(grad, scale), group=False)
            return self.iterations.assign_add(1)

        for grad, var in grads_and_vars:
            distribution.extended.update(self._accumulator(var), _add, args=(grad,), group=False)
        micro = self.micro_steps.assign_add(1)
        apply_now = tf.equal(micro % self.accumulation_steps, 0)
        means = [self._accumulator(v) / self.accumulation_steps for _, v in grads_and_vars]
        scale = self._clip_scale(means)

        def update_and_clear(var, accumulator):
            def update():
                self._apply_update(var, accumulator / self.accumulation_steps, scale)
                accumulator.assign(tf.zeros_like(accumulator))
                return tf.constant(True)

            return tf.cond(apply_now, update, lambda: tf.constant(False))

        for _, var in grads_and_vars:
            distribution.extended.update(var, update_and_clear, args=(self._accumulator(var),), group=False)
        return self.iterations.assign_add(tf.cast(apply_now, self.iterations.dtype))

    def _accumulator(self, var):
        return self._accumulators[self._index_dict[self._var_key(var)]]

    def _clip_scale(self, grads):
        if not self.global_clipnorm:
            return tf.constant(1.0)
        norm = tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads])
        return tf.minimum(1.0, self.global_clipnorm / tf.maximum(norm, 1e-12))

    def _apply_update(self, variable, gradient, clip_scale):
        """One AdamW step on `variable` at its group's learning rate."""
        dtype = variable.dtype
        # Embedding gradients come as IndexedSlices; the moments are dense anyway.
        gradient = tf.convert_to_tensor(gradient)
        group = self._group_index[self._var_key(variable)]
        lr = tf.cast(self.learning_rate * self.group_scales[group], dtype)
        gradient = tf.cast(gradient, dtype) * tf.cast(clip_scale, dtype)
        if self.weight_decay and self._use_weight_decay(variable):
            variable.assign_sub(variable * tf.cast(self.weight_decay, dtype) * lr)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        # The fused kernel makes one pass over weight, moments and gradient
        # where the composed ops make about ten; with 22M weights that is most
        # of a short-sequence step on a CPU. Same formula as Keras' Adam:
        # var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(beta_1, local_step), beta2_power=tf.pow(beta_2, local_step),
            lr=lr, beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=gradient,
            use_locking=False,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"accumulation_steps": self.accumulation_steps, "group_scales": self._initial_scales})
        return config


def _add(accumulator, grad):
    return accumulator.assign_add(tf.cast(tf.convert_to_tensor(grad), accumulator.dtype))


def build_adamw(
    learning_rate: float,
    total_steps: int,
    warmup_ratio: float = 0.1,
    weight_decay: float = 0.01,
    accumulation_steps: int = 1,
    group_of: Callable | None = None,
    group_scales: Sequence[float] = (1.0,),
) -> FineTuneAdamW:
    """AdamW (beta2 0.999, eps 1e-6, global clipnorm 1.0) on a warmup/linear-decay schedule.

    Args:
        learning_rate: float. Peak rate.
        total_steps: int. Optimizer updates of the whole run (micro-steps
            divided by `accumulation_steps`).
        warmup_ratio: float. Share of updates with linear warmup. Defaults to 0.1.
        weight_decay: float. Decoupled decay, except biases and LayerNorm.
            Defaults to 0.01.
        accumulation_steps: int. Micro-steps per update. Defaults to 1.
        group_of, group_scales: per-group learning-rate scales, see
            `FineTuneAdamW`.

    Example:
    >>> optimizer = build_adamw(1e-4, total_steps=600)
    """
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(round(total_steps * warmup_ratio)))
    optimizer = FineTuneAdamW(
        accumulation_steps=accumulation_steps,
        group_of=group_of,
        group_scales=group_scales,
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        global_clipnorm=1.0,
    )
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    return optimizer
