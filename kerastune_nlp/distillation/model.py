"""The model `fit` trains during distillation, and the `Trainer` hook that builds it.

`DistillingModel` is a functional Keras model over the student's own layers
(so best checkpoints and crash backups hold exactly the student's weights and
load into the plain student) whose training loss adds the teacher's term:

    loss = alpha * hard_loss(labels, student) + (1 - alpha) * soft_loss(student, teacher)

The teacher runs forward on each training batch inside the same train step,
so its outputs are computed once per epoch pass, on the training device, and
never stored for the whole data set. The teacher is held outside Keras'
tracking: it is neither trained nor checkpointed. The logged `loss` and
`val_loss` are the hard-label loss, as in any run (so a best epoch picked on
`val_loss` means the same); `soft_loss` / `val_soft_loss` log the teacher's
term.
"""

from __future__ import annotations

import logging

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.training.trainer import PretrainedModel

logger = logging.getLogger("kerastune_nlp.distillation")


class _Frozen:
    """Holds the teacher where Keras' attribute tracking does not look (not a Layer, not a Trackable)."""

    def __init__(self, model):
        self.model = model


class DistillingModel(keras.Model):
    """The student's graph, trained against hard labels and a teacher's softened outputs.

    Args:
        student: the student's functional Keras model (its layers are reused).
        teacher: the teacher's Keras model (same inputs, same output shape).
        soft_loss: callable `(y_true, student_outputs, teacher_outputs) -> scalar`
            (`Task.distillation_loss`).
        alpha: float. Weight of the hard-label loss; 1 - alpha weighs the teacher's.
    """

    def __init__(self, student, teacher, soft_loss, alpha: float):
        super().__init__(inputs=student.inputs, outputs=student.outputs, name=f"distilling_{student.name}")
        self._teacher = _Frozen(teacher)
        self._soft_loss = soft_loss
        self.alpha = float(alpha)
        self._in_train_step = False
        if self.alpha < 1.0:
            # Logged as `soft_loss` / `val_soft_loss`; Keras' own `loss` stays the hard-label loss.
            self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")

    def train_step(self, data):
        # Read while tracing: the train function gets the teacher's term, the test function not.
        self._in_train_step = True
        try:
            return super().train_step(data)
        finally:
            self._in_train_step = False

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        hard = super().compute_loss(x, y, y_pred, sample_weight)
        if self.alpha >= 1.0:  # hard labels only: no teacher pass at all
            return hard
        teacher_outputs = tf.stop_gradient(self._teacher.model(x, training=False))
        # Keras divides the hard loss by the replica count; this term likewise.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        soft = tf.cast(self._soft_loss(y, y_pred, teacher_outputs), hard.dtype) / replicas
        self.soft_loss_tracker.update_state(soft * replicas)
        if not self._in_train_step:
            return hard
        return self.alpha * hard + (1.0 - self.alpha) * soft


class StudentMaker(PretrainedModel):
    """Builds the teacher (frozen), the student backbone and its first weights for `Trainer.build_and_compile`.

    Args:
        plan: the `StudentPlan`.
        teacher_run: Path. The teacher's run directory.
        teacher_manifest: its `Manifest`.
        temperature, alpha: the distillation settings.
    """

    def __init__(self, plan, teacher_run, teacher_manifest, temperature: float, alpha: float):
        self.plan, self.teacher_run, self.teacher_manifest = plan, teacher_run, teacher_manifest
        self.temperature, self.alpha = temperature, alpha
        self.teacher = None  # the teacher's Predictor, once built

    def backbone(self, prepared):
        from kerastune_nlp.distillation.students import build_subset_backbone
        from kerastune_nlp.models import backbones
        from kerastune_nlp.inference.predictor import rebuild_model

        # Built here, inside the strategy and dtype scope, so a mirrored run mirrors the teacher too.
        self.teacher, teacher_backbone = rebuild_model(prepared.task, self.teacher_manifest, self.teacher_run,
                                                       batch_size=32)
        self.teacher.model.trainable = False
        if self.plan.kind == "backbone":
            return backbones.load_pretrained_backbone(self.plan.resolved)
        source = (teacher_backbone if self.plan.init == "teacher"
                  else backbones.load_pretrained_backbone(self.plan.resolved))
        return build_subset_backbone(source, self.plan.config, self.plan.layers)

    def initialise(self, model, backbone) -> None:
        from kerastune_nlp.distillation.students import copy_head

        if self.plan.kind == "layers" and self.plan.init == "teacher":
            copied = copy_head(self.teacher.model, model, backbone)
            logger.info("student head %s copied from the teacher", copied)

    def training_model(self, model, prepared, steps_per_epoch, replicas):
        soft_loss = prepared.task.distillation_loss(prepared.encoded["train"], steps_per_epoch, replicas,
                                                    self.temperature)
        return DistillingModel(model, self.teacher.model, soft_loss, self.alpha)
