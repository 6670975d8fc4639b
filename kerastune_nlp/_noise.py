"""Third-party chatter: what counts as noise, and the one switch that brings it back.

The switch is the level of the `kerastune_nlp` logger. The command line's
`--verbose` sets logging to DEBUG (`cli/console.py`); from Python,
`logging.basicConfig(level=logging.DEBUG)` (or
`logging.getLogger("kerastune_nlp").setLevel(logging.DEBUG)`) does the same.
Below DEBUG, the stages that run noisy libraries (export: the TFLite
converter, tf2onnx, ONNX Runtime's quantizer) wrap them in `quiet(...)`;
at DEBUG everything they say passes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile

# Lines native code writes to stderr (file descriptor 2) that say nothing to a
# user: TensorFlow's absl-formatted log lines (I0000/W0000/E0000 ...: CUDA
# probing, oneDNN notes, converter passes) with absl's own preamble, and
# LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
NATIVE_NOISE = re.compile(rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before "
                          rb"absl::InitializeLog|INFO: Created TensorFlow Lite XNNPACK delegate)")


def verbose() -> bool:
    """True when the user asked for everything (`--verbose`, or the `kerastune_nlp` logger at DEBUG)."""
    return logging.getLogger("kerastune_nlp").isEnabledFor(logging.DEBUG)


def drop_noise(data: bytes) -> bytes:
    """`data` without the lines `NATIVE_NOISE` matches."""
    lines = data.split(b"\n")
    kept = [line for line in lines[:-1] if not NATIVE_NOISE.match(line)]
    tail = lines[-1] if not NATIVE_NOISE.match(lines[-1]) else b""
    return b"".join(line + b"\n" for line in kept) + tail


@contextlib.contextmanager
def quiet_native_stderr():
    """Holds what native code writes to stderr during the block; afterwards writes back all but the noise.

    A temporary file, not a pipe, so no reader thread is needed and a chatty
    converter cannot block on a full pipe. Python's own writes to
    `sys.stderr` go to the same descriptor, so they are kept and replayed in
    order.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = drop_noise(held.read())
            if kept:
                os.write(2, kept)


class _DropLibraryRecords(logging.Filter):
    """Drops records below ERROR that the modules under `prefixes` log on the root logger."""

    def __init__(self, prefixes):
        super().__init__()
        self.prefixes = tuple(os.path.normpath(p) for p in prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not os.path.normpath(record.pathname).startswith(self.prefixes)


@contextlib.contextmanager
def quiet(loggers: dict | None = None, root_callers: tuple = (), native: bool = True):
    """Hushes third-party libraries for the block, unless `verbose()`.

    Args:
        loggers: dict. Logger name -> the level it gets for the block (e.g.
            `{"tf2onnx": logging.WARNING}`).
        root_callers: tuple of str. Package folders whose modules log with
            `logging.info(...)` on the root logger (ONNX Runtime's quantizer
            does: 38 lines per BERT model); their records below ERROR are
            dropped, and the root logger gets no implicit stderr handler.
        native: bool. Filter native stderr lines (`quiet_native_stderr`).
    """
    if verbose():
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
