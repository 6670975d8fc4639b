"""Optimizers, callbacks, trainers and run directories."""
