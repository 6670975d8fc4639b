"""Inference on any trained or exported model: `load_predictor`, entity spans, the answer cache."""

from kerastune_nlp.inference.loading import load_predictor

__all__ = ["load_predictor"]
