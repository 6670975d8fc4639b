"""What the command line shows: logging, TensorFlow's native start-up noise, progress style."""

from __future__ import annotations

import logging
import os
import sys
import threading

from kerastune_nlp._noise import NATIVE_NOISE

# Lines TensorFlow's C++ runtime writes to stderr at start-up on a CPU-only
# machine ("Could not find cuda drivers", "failed call to cuInit ... (303)",
# oneDNN notes), and LiteRT's XNNPACK line: one pattern for the CLI and the library.
_NATIVE_NOISE = NATIVE_NOISE
_filter_started = False


def hide_native_noise() -> None:
    """Filters TensorFlow's native log lines out of stderr (file descriptor 2); the rest passes.

    TF 2.21 logs through absl before any setting applies (TF_CPP_MIN_LOG_LEVEL
    no longer hides these lines), so the only reliable place is the descriptor.
    """
    global _filter_started
    if _filter_started:
        return
    _filter_started = True
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not _NATIVE_NOISE.match(line))
                if kept:
                    os.write(original, kept)
            if pending and not _NATIVE_NOISE.match(pending):
                os.write(original, pending)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    import atexit

    def drain():
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end, so the reader finishes
        thread.join(timeout=2)

    atexit.register(drain)


def configure(verbose: bool = False) -> None:
    """Console logging (INFO, DEBUG with --verbose); quiets TensorFlow and transformers."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    if not verbose:
        hide_native_noise()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    if not verbose:
        for name in ("tensorflow", "absl", "h5py"):
            logging.getLogger(name).setLevel(logging.ERROR)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def fit_verbosity() -> int:
    """A progress bar on a terminal; one line per epoch in a log file or CI."""
    return 1 if sys.stdout.isatty() else 2
