"""The run directory: its layout, manifest, staging/resume/commit, and loading.

This package is the only code that knows where files sit in a run
directory; trainers, the CLI and later stages go through it.
"""

from kerastune_nlp.runs.layout import RunLayout

__all__ = ["RunLayout", "load_run"]


def load_run(path, batch_size: int = 32):
    """Loads any finished run directory as a `Predictor` (see `runs.loading`)."""
    from kerastune_nlp.runs.loading import load_run as _load_run

    return _load_run(path, batch_size=batch_size)
