"""Knowledge distillation: a fine-tuned teacher run into a smaller student run.

>>> from kerastune_nlp.distillation import DistillConfig, distill
>>> distill("saved_models/wnut17", "saved_models/wnut17-half", config=DistillConfig(student_layers=3))
"""

from kerastune_nlp.distillation.distill import DistillConfig, distill, student_train_config

__all__ = ["DistillConfig", "distill", "student_train_config"]
