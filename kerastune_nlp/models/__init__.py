"""Backbones, task models, losses, and the NER tagger."""
