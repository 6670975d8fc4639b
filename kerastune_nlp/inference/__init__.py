"""Inference on any trained or exported model: the PATH resolver, `load_predictor`, `load_run`, the answer cache."""

from kerastune_nlp.inference.predictor import load_predictor, load_run

__all__ = ["load_predictor", "load_run"]
