"""The run directory: its layout, manifest, staging/resume/commit, and its weights file.

This package is the only code that knows where files sit in a run
directory; trainers, the CLI and later stages go through it. Loading a run
as a `Predictor` is `kerastune_nlp.inference.load_run` (a layer above).
"""

from kerastune_nlp.runs.layout import RunLayout

__all__ = ["RunLayout"]
