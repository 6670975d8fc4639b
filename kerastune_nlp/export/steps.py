"""The export's steps: a progress line with the elapsed time for each, and memory handed back after each.

Memory, measured on a MiniLM NER run (90 MB of weights, default formats):
the process peaked at 7.5 GB, 5 GB of it inside tf2onnx's ONNX optimizer
passes. tf2onnx deep-copies the whole graph (weights included) before each of
its 12 passes, 2-3 rounds, and the copies it drops form reference cycles that
only a full garbage collection frees; Python's automatic full collections
come too rarely to catch them (large numpy buffers do not count towards the
thresholds). Collecting before each pass (`collect_between_tf2onnx_passes`)
and after each export step, with the ONNX freezing done one copy at a time
(`onnx._frozen_graph`) and the biggest converter first, brought the peak to
2.5 GB (`benchmarks/export_memory.py`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import time

logger = logging.getLogger("kerastune_nlp.export")


class Steps:
    """Times each step, logs `export: <step> ... 12.3 s` at INFO, and frees memory after it.

    `seconds` keeps each step's time (the report's `steps` entry).
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str):
        """A block timed as one step; yield a dict and set its "status" to add it to the line."""
        started = time.perf_counter()
        outcome: dict = {}
        try:
            yield outcome
        finally:
            release_memory()
            elapsed = time.perf_counter() - started
            self.seconds[name] = round(elapsed, 2)
            status = outcome.get("status")
            logger.info("export: %s ... %.1f s%s", name, elapsed, f" ({status})" if status else "")


def release_memory() -> None:
    """A full garbage collection, then glibc's free lists back to the OS (a no-op elsewhere)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def collect_between_tf2onnx_passes():
    """tf2onnx's graph optimizer with a garbage collection before each of its passes (see the module doc).

    tf2onnx 1.17 has no hook for this; its pass table `tf2onnx.optimizer._optimizers`
    is wrapped for the block and restored after. Without that table (another
    tf2onnx) the conversion runs as it comes, only with a higher peak.
    """
    try:
        from tf2onnx import optimizer
    except ImportError:
        yield
        return
    table = getattr(optimizer, "_optimizers", None)
    if not isinstance(table, dict):
        logger.debug("tf2onnx has no optimizer table here; converting without collections between passes")
        yield
        return
    saved = dict(table)

    def collected(factory):
        def make():
            gc.collect()
            return factory()

        return make

    try:
        for name, factory in saved.items():
            table[name] = collected(factory)
        yield
    finally:
        table.update(saved)
