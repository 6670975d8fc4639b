"""Metrics and reports: entity-level NER scores, classification and regression metrics, plots."""
