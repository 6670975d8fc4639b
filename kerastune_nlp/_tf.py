"""Imports TensorFlow with Keras 2 (`tf_keras`), which our encoders and tfmot use.

Every module that touches TensorFlow imports `tf` and `keras` from here, so the
`TF_USE_LEGACY_KERAS` switch is set before TensorFlow is first imported and
Keras 3 objects never mix with Keras 2 ones in a model.

The first import is also where start-up time and noise are decided:

- TensorFlow's native start-up lines are hidden unless asked for (see
  `kerastune_nlp.noise`); the device probe that prints "failed call to
  cuInit" runs inside that window too.
- Optional libraries that TensorFlow and tf_keras import eagerly but use only
  for features this package never touches (pandas for `fit` on DataFrames,
  scipy for sparse matrices and image transforms, dill for
  `multi_process_runner`) load on first use instead: about 0.5 s of CPU at
  every start (2.8 -> 2.1 s for `import tensorflow` on a 2-core machine).
  See `_DEFERRED`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import os
import sys
import types

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from kerastune_nlp import noise  # noqa: E402

# The optional imports seen while TensorFlow 2.21 and tf_keras 2.21 load, and
# how each importer gets its dependency back lazily: (importer module,
# attribute it binds, what to put there). Checked by tests/test_quiet_start.py;
# other TensorFlow versions import everything eagerly, as before.
_VERIFIED_TF = ("2.21.",)
_LAZY_MODULE, _LAZY_ISSPARSE = "module", "issparse"
_DEFERRED = {
    ("pandas", "tf_keras.src.engine.data_adapter"): ("pd", _LAZY_MODULE),
    ("dill", "tensorflow.python.distribute.multi_process_runner"): ("dill", _LAZY_MODULE),
    ("scipy", "tf_keras.src.preprocessing.image"): ("scipy", _LAZY_MODULE),
    ("scipy", "tf_keras.src.engine.training_v1"): ("issparse", _LAZY_ISSPARSE),
    ("scipy", "tf_keras.src.engine.training_arrays_v1"): ("issparse", _LAZY_ISSPARSE),
    ("scipy", "tensorflow.python.keras.engine.training_v1"): ("issparse", _LAZY_ISSPARSE),
    ("scipy", "tensorflow.python.keras.engine.training_arrays_v1"): ("issparse", _LAZY_ISSPARSE),
}
# (top-level name, importer) of every deferred import attempt, for the tests.
deferred_attempts: list[tuple[str, str]] = []


class _LazyModule(types.ModuleType):
    """Stands for a module not imported yet; the first attribute access imports it."""

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self.__name__), attribute)


def _lazy_issparse(value) -> bool:
    from scipy.sparse import issparse

    return issparse(value)


class _Deferrer(importlib.abc.MetaPathFinder):
    """Refuses the deferred top-level modules (ModuleNotFoundError, as if not installed); records who asked."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top not in self.names:
            return None
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                     or "importlib" in frame.f_code.co_filename):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "?") if frame is not None else "?"
        deferred_attempts.append((top, importer))
        raise ModuleNotFoundError(f"{name} is imported on first use (kerastune_nlp._tf)", name=name)


def _tensorflow_version() -> str | None:
    from importlib import metadata

    for distribution in ("tensorflow", "tensorflow-cpu"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def _import_tensorflow():
    """Imports tensorflow and tf_keras, with the optional imports of `_DEFERRED` made lazy."""
    names = {top for top, _ in _DEFERRED} - set(sys.modules)
    version = _tensorflow_version() if "tensorflow" not in sys.modules else None
    if not names or version is None or not version.startswith(_VERIFIED_TF):
        import tensorflow
        import tf_keras

        return tensorflow, tf_keras
    deferrer = _Deferrer(names)
    sys.meta_path.insert(0, deferrer)
    try:
        import tensorflow
        import tf_keras
    finally:
        sys.meta_path.remove(deferrer)
    for top, importer in deferred_attempts:
        attribute, kind = _DEFERRED.get((top, importer), (None, None))
        module = sys.modules.get(importer)
        if attribute is None or module is None or getattr(module, attribute, None) is not None:
            continue
        setattr(module, attribute, _lazy_issparse if kind == _LAZY_ISSPARSE else _LazyModule(top))
    return tensorflow, tf_keras


noise.configure()
if "tensorflow" in sys.modules:  # imported by the caller already: nothing left to hide or defer
    tf, keras = _import_tensorflow()
else:
    with noise.native_startup_hidden():
        tf, keras = _import_tensorflow()
        # Probes CUDA now, inside the window ("failed call to cuInit"); physical devices only, so
        # logical devices can still be configured afterwards.
        tf.config.list_physical_devices()

__all__ = ["tf", "keras"]
