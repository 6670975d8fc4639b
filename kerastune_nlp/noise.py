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

Turn the noise back on with `KERASTUNE_NLP_VERBOSE=1` in the environment
(before `import kerastune_nlp`), `kerastune-nlp --verbose`, or, for the
progress bar alone, `kt.train(..., verbose=1)`. Setting
`TF_CPP_MIN_LOG_LEVEL=0` yourself also shows TensorFlow's start-up lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys

VERBOSE_VARIABLE = "KERASTUNE_NLP_VERBOSE"

# Lines TensorFlow's C++ runtime writes to stderr at start-up on a CPU-only
# machine: absl-formatted info, warning and error lines (I0000/W0000/E0000 ...;
# "failed call to cuInit" is an error line) plus absl's own preamble. Fatal
# lines (F0000 ...) are never hidden: they explain a crash.
NATIVE_NOISE = re.compile(rb"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before "
                          rb"absl::InitializeLog)")
# What TensorFlow prints after such a line without a prefix of its own (the
# cpu_feature_guard note's second line).
_NATIVE_CONTINUATION = re.compile(rb"^To enable the following instructions: .*rebuild TensorFlow")

_verbose: bool | None = None  # set by `configure`; None: read the environment
_ours: dict[str, str] = {}  # environment defaults set here (a later `configure` may change them)


def is_verbose() -> bool:
    """Whether the user asked for the noise: `configure(True)` or `KERASTUNE_NLP_VERBOSE=1`."""
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
    import tempfile  # here: `import kerastune_nlp` stays cheap

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr (a daemon, a closed descriptor)
        yield
        return
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
