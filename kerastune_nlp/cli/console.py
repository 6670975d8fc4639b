"""What the command line shows: logging, TensorFlow's native start-up noise, progress style."""

from __future__ import annotations

import logging
import os
import sys
import threading

from kerastune_nlp import noise

# Lines TensorFlow's C++ runtime writes to stderr ("Could not find cuda drivers",
# "failed call to cuInit ... (303)", oneDNN notes) and LiteRT's XNNPACK line: see `kerastune_nlp.noise`.
_NATIVE_NOISE = noise.NATIVE_NOISE
_filter_started = False


def hide_native_noise() -> None:
    """Filters TensorFlow's native log lines out of stderr (file descriptor 2) for the whole command.

    TF 2.21 logs through absl before any setting applies (TF_CPP_MIN_LOG_LEVEL
    no longer hides these lines), so the only reliable place is the descriptor.
    The package hides the start-up lines itself (`noise.native_startup_hidden`);
    the command also hides what native converters (TFLite, tf2onnx) log later.
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
    """Console logging (INFO, DEBUG with --verbose); quiets TensorFlow and transformers (`noise.configure`)."""
    noise.configure(verbose)
    if not verbose:
        hide_native_noise()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    if not verbose:
        for name in ("tensorflow", "absl", "h5py"):
            logging.getLogger(name).setLevel(logging.ERROR)


def fit_verbosity() -> int:
    """A progress bar on a terminal; one line per epoch in a log file or CI."""
    return noise.fit_verbosity("auto")


def exit_now(code: int) -> None:
    """Ends the process after flushing output and running exit handlers, skipping interpreter teardown.

    Tearing down a process that loaded TensorFlow and built a model takes
    1.7-5.8 s on a 2-core machine (module and object finalization), more
    than loading the model did; `os._exit` skips it. Only for commands whose
    every output is written and closed when they return (predict, evaluate).
    """
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`... | head`): nothing more can be written
            if code == 0:
                code = 1
    logging.shutdown()
    atexit._run_exitfuncs()  # the stderr filter's drain, tempfile and other cleanups
    os._exit(code)
