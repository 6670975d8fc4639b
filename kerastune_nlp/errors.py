"""The one error hierarchy of kerastune_nlp.

Every class also inherits the matching built-in, so callers that already catch
`ValueError`, `FileNotFoundError` or `ImportError` keep working. Messages say
what was expected, what was received, and how to fix it; file errors name the
path and the line (and column where it helps).
"""

from __future__ import annotations


class KerastuneNLPError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(KerastuneNLPError, ValueError):
    """An argument or setting is invalid (names the argument and its value)."""


class DataFormatError(KerastuneNLPError, ValueError):
    """A data file is malformed (names the file, line and, where known, column)."""


class DataFileNotFoundError(KerastuneNLPError, FileNotFoundError):
    """A data file or directory does not exist."""


class LabelError(KerastuneNLPError, ValueError):
    """Labels are inconsistent across splits or with a saved label map."""


class BackboneError(KerastuneNLPError, ValueError):
    """A pretrained backbone cannot be resolved or loaded."""


class UnsafeCheckpointError(BackboneError):
    """A checkpoint would need unpickling, which is refused unless opted in."""


class HubUnavailableError(KerastuneNLPError, ConnectionError):
    """The Hugging Face hub (models or data sets) cannot be reached."""


class RunDirectoryError(KerastuneNLPError, RuntimeError):
    """A run directory is missing, incomplete, or would be overwritten."""


class TrainingError(KerastuneNLPError, RuntimeError):
    """Training cannot go on (for example the loss became NaN)."""


class MissingDependencyError(KerastuneNLPError, ImportError):
    """An optional dependency is not installed (says which extra to install)."""


class ExportError(KerastuneNLPError, RuntimeError):
    """An export cannot be published (a parity check or the accuracy gate failed)."""


class ServingError(KerastuneNLPError, RuntimeError):
    """A model server refused or failed a request, or could not be reached (says which and why)."""
