"""Quiet by default, in every entry point: TensorFlow's native start-up lines, transformers' advice, progress bars.

One mechanism for the command line and the Python API (`import kerastune_nlp`):

- `configure(verbose)` sets the environment defaults TensorFlow and
  transformers read when they are first imported (`TF_CPP_MIN_LOG_LEVEL=2`,
  `TRANSFORMERS_VERBOSITY=error`, `TRANSFORMERS_NO_ADVISORY_WARNINGS=1`),
  never overriding a value already set. The CLI calls it with `--verbose`;
  the package calls it on import with `KERASTUNE_NLP_VERBOSE`.
- `native_startup_hidden()` wraps the first import of TensorFlow (see
  `kerastune_nlp/_tf.py`): TF 2.21 writes its start-up lines ("Could not find
  cuda drivers", "failed call to cuInit ... (303)", oneDNN notes) through absl
  before any log level applies, so they are caught on file descriptor 2 while
  TensorFlow loads and probes its devices, and every other line written then
  is passed on. After that, `TF_CPP_MIN_LOG_LEVEL` governs TensorFlow's logs.
- `fit_verbosity("auto")`: a Keras progress bar on a terminal, one line per
  epoch when stdout is a file or a pipe (a `\\r` bar there is one long line).
- `quiet(...)` wraps the noisy libraries a stage runs (export: the TFLite
  converter, tf2onnx, ONNX Runtime's quantizer, LiteRT's delegate line).

Turn the noise back on with `KERASTUNE_NLP_VERBOSE=1` in the environment
(before `import kerastune_nlp`), `kerastune-nlp --verbose`, the
`kerastune_nlp` logger at DEBUG (what `--verbose` sets; from Python
`logging.getLogger("kerastune_nlp").setLevel(logging.DEBUG)`), or, for the
progress bar alone, `kt.train(..., verbose=1)`. Setting
`TF_CPP_MIN_LOG_LEVEL=0` yourself also shows TensorFlow's start-up lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys

VERBOSE_VARIABLE = "KERASTUNE_NLP_VERBOSE"

# Lines TensorFlow's C++ runtime writes to stderr at start-up on a CPU-only
# machine: absl-formatted info, warning and error lines (I0000/W0000/E0000 ...;
# "failed call to cuInit" is an error line) plus absl's own preamble. Fatal
# lines (F0000 ...) are never hidden: they explain a crash.
# LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." too.
NATIVE_NOISE = re.compile(rb"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before "
                          rb"absl::InitializeLog|INFO: Created TensorFlow Lite XNNPACK delegate)")
# What TensorFlow prints after such a line without a prefix of its own (the
# cpu_feature_guard note's second line).
_NATIVE_CONTINUATION = re.compile(rb"^To enable the following instructions: .*rebuild TensorFlow")

_verbose: bool | None = None  # set by `configure`; None: read the environment
_ours: dict[str, str] = {}  # environment defaults set here (a later `configure` may change them)


def is_verbose() -> bool:
    """Whether the user asked for the noise: `configure(True)`, `KERASTUNE_NLP_VERBOSE=1`, or the
    `kerastune_nlp` logger at DEBUG."""
    if logging.getLogger("kerastune_nlp").isEnabledFor(logging.DEBUG):
        return True
    if _verbose is not None:
        return _verbose
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def configure(verbose: bool | None = None) -> None:
    """Sets the quiet (or verbose) environment defaults; a value the user set is kept.

    Args:
        verbose: bool or None. True shows TensorFlow's and transformers' own
            messages; None reads `KERASTUNE_NLP_VERBOSE`. Defaults to None.
    """
    global _verbose
    if verbose is not None:
        _verbose = bool(verbose)
    quiet = not is_verbose()
    _default("TF_CPP_MIN_LOG_LEVEL", "2" if quiet else "0")
    _default("TRANSFORMERS_VERBOSITY", "error" if quiet else None)
    _default("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1" if quiet else None)


def _default(name: str, value: str | None) -> None:
    """Sets (or with None removes) an environment default, unless the user set the variable."""
    if name in os.environ and _ours.get(name) != os.environ[name]:
        return  # the user's value
    if value is None:
        if _ours.pop(name, None) is not None:
            del os.environ[name]
        return
    os.environ[name] = _ours[name] = value


def hides_native_startup() -> bool:
    """Quiet mode, and the user did not ask TensorFlow for every log line (`TF_CPP_MIN_LOG_LEVEL=0`)."""
    return not is_verbose() and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip() != "0"


@contextlib.contextmanager
def native_startup_hidden():
    """Drops TensorFlow's native start-up lines written to file descriptor 2 inside the block.

    Everything written to descriptor 2 inside the block goes to a temporary
    file; on leaving (also on an error) the lines that are not TensorFlow's
    native log lines are written to the real stderr, in order. Nothing is
    hidden in verbose mode, or when descriptor 2 cannot be redirected. A
    process killed inside the block (a native abort while TensorFlow loads)
    loses what was caught: rerun with `KERASTUNE_NLP_VERBOSE=1` to see it.
    """
    if not hides_native_startup():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr (a daemon, a closed descriptor)
        yield
        return
    with _held_stderr(saved):
        yield


@contextlib.contextmanager
def _held_stderr(saved: int):
    """Descriptor 2 into a temporary file for the block (`saved` is a dup of the real one, closed here);
    afterwards what was written there, without the native noise, goes to the real stderr in order.

    A file, not a pipe: no reader thread, and a chatty library cannot block on a full pipe.
    """
    import tempfile

    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = without_native_noise(captured.read())
            if kept:
                os.write(2, kept)


def without_native_noise(data: bytes) -> bytes:
    """`data` without TensorFlow's native log lines (and their unprefixed continuation lines)."""
    kept, dropping = [], False
    for line in data.splitlines(keepends=True):
        if NATIVE_NOISE.match(line):
            dropping = True
            continue
        if dropping and _NATIVE_CONTINUATION.match(line):
            continue
        dropping = False
        kept.append(line)
    return b"".join(kept)


def fit_verbosity(verbose="auto") -> int:
    """Keras `fit` verbosity: "auto" is a progress bar on a terminal, one line per epoch otherwise.

    Args:
        verbose: "auto", or 0 (silent), 1 (progress bar), 2 (a line per
            epoch), passed through. Defaults to "auto".
    """
    if verbose != "auto":
        return int(verbose)
    try:
        return 1 if sys.stdout.isatty() else 2
    except (AttributeError, ValueError):  # replaced or closed stdout
        return 2


@contextlib.contextmanager
def quiet_native_stderr():
    """Holds what native code writes to stderr during the block; afterwards writes back all but the noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr
        yield
        return
    with _held_stderr(saved):
        yield


class _DropLibraryRecords(logging.Filter):
    """Drops records below ERROR that the modules under `prefixes` log on the root logger."""

    def __init__(self, prefixes):
        super().__init__()
        self.prefixes = tuple(os.path.normpath(p) for p in prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not os.path.normpath(record.pathname).startswith(self.prefixes)


@contextlib.contextmanager
def quiet(loggers: dict | None = None, root_callers: tuple = (), native: bool = True):
    """Hushes third-party libraries for the block, unless `is_verbose()`.

    Args:
        loggers: dict. Logger name -> the level it gets for the block (e.g.
            `{"tf2onnx": logging.WARNING}`).
        root_callers: tuple of str. Package folders whose modules log with
            `logging.info(...)` on the root logger (ONNX Runtime's quantizer
            does: 38 lines per BERT model); their records below ERROR are
            dropped, and the root logger gets no implicit stderr handler.
        native: bool. Filter native stderr lines (`quiet_native_stderr`).
    """
    if is_verbose():
        yield
        return
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in loggers or {}}
    record_filter = _DropLibraryRecords(root_callers) if root_callers else None
    # `logging.info()` on a root logger without handlers calls basicConfig(): a library call would
    # leave a stderr handler behind in the user's process.
    placeholder = logging.NullHandler() if root_callers and not root.handlers else None
    try:
        for name, level in (loggers or {}).items():
            logging.getLogger(name).setLevel(level)
        if record_filter is not None:
            root.addFilter(record_filter)
        if placeholder is not None:
            root.addHandler(placeholder)
        with quiet_native_stderr() if native else contextlib.nullcontext():
            yield
    finally:
        if placeholder is not None:
            root.removeHandler(placeholder)
        if record_filter is not None:
            root.removeFilter(record_filter)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
