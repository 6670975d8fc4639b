"""Runs one side of a benchmark in a subprocess, streaming its output.

Its stdout and stderr go on to our stderr as they come (Keras and tqdm
progress bars included); what comes back is the exit status, the tail of the
output for an error message, and the wall and CPU seconds it took.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import resource
import subprocess
import sys
import time


@dataclasses.dataclass
class Finished:
    returncode: int
    tail: str
    wall_seconds: float
    cpu_seconds: float


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_streaming(command, env, cwd, tail_chars: int = 6000) -> Finished:
    tail = collections.deque(maxlen=64)
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    while chunk := os.read(process.stdout.fileno(), 4096):
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()
        tail.append(chunk)
    returncode = process.wait()
    return Finished(returncode, b"".join(tail).decode("utf-8", "replace")[-tail_chars:],
                    time.perf_counter() - started, children_cpu_seconds() - cpu_before)
