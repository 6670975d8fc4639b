"""Server-side batching: concurrent requests merged into one predictor call, as TF Serving does.

One worker thread per model version takes the first waiting request, then
gathers more for at most `timeout_ms` or until `max_batch_size` instances,
and makes one blocking call. A request is never split: one larger than the
batch runs alone, and one that would overflow the batch waits for the next.
When a merged call fails, each request is run again alone, so only the bad
request fails (one empty text must not cost 31 neighbours their answers).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from typing import Callable, Hashable

from kerastune_nlp.errors import ServingError

logger = logging.getLogger(__name__)

_STOP = object()


class BatcherClosedError(ServingError):
    """The model version stopped taking requests (it is being unloaded); sending again reaches a live one."""


@dataclasses.dataclass
class _Job:
    key: Hashable  # requests merge only with the same key (same method and options)
    inputs: dict[str, list]
    count: int
    future: concurrent.futures.Future


class Batcher:
    """Merges concurrent requests for one model version into batched calls.

    Args:
        call: callable(key, inputs: dict[str, list]) -> list, one result per
            instance, in order. Blocking; runs on the worker thread only.
        max_batch_size: int. Most instances per call; 1 serves requests one at a time.
        timeout_ms: float. Longest wait, counted from the first request of a
            batch, for more requests to merge.
        name: str. Thread name, for logs.
        on_batch: callable(instances, requests) or None. Told of each call (metrics).

    Example:
    >>> batcher = Batcher(lambda key, inputs: [len(t) for t in inputs["text"]], max_batch_size=8, timeout_ms=5)
    >>> batcher.submit("predict", {"text": ["abc"]}).result()
    [3]
    >>> batcher.close()
    """

    def __init__(self, call: Callable, *, max_batch_size: int, timeout_ms: float, name: str = "batcher",
                 on_batch: Callable[[int, int], None] | None = None):
        self._call = call
        self._max = max(1, int(max_batch_size))
        self._timeout = max(0.0, timeout_ms) / 1000.0
        self._on_batch = on_batch
        self._queue: queue.Queue = queue.Queue()
        self._backlog: collections.deque = collections.deque()  # taken from the queue, left for a later batch
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, inputs: dict[str, list]) -> concurrent.futures.Future:
        """Queues one request; the future gets its own results (a list, one per instance)."""
        count = len(next(iter(inputs.values())))
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise BatcherClosedError("This model version is being unloaded; send the request again.")
            self._queue.put(_Job(key, inputs, count, future))
        return future

    def close(self, wait: bool = True) -> None:
        """Stops taking requests; the worker answers everything already queued, then exits."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        if wait:
            self._thread.join()

    # -- worker thread -------------------------------------------------------------

    def _work(self) -> None:
        stopping = False
        while True:
            if self._backlog:
                first = self._backlog.popleft()
            elif stopping:
                return
            else:
                first = self._queue.get()
                if first is _STOP:
                    return
            batch, stopping = self._gather(first, stopping)
            self._run(batch)

    def _gather(self, first: _Job, stopping: bool) -> tuple[list[_Job], bool]:
        batch, total = [first], first.count
        deadline = time.monotonic() + self._timeout
        # Earlier leftovers first (arrival order), then new arrivals until the deadline.
        for job in list(self._backlog):
            if total >= self._max:
                break
            if job.key == first.key and total + job.count <= self._max:
                self._backlog.remove(job)
                batch.append(job)
                total += job.count
        while total < self._max and not stopping:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stopping = True
            elif job.key == first.key and total + job.count <= self._max:
                batch.append(job)
                total += job.count
            else:
                self._backlog.append(job)
                if job.key == first.key:
                    break  # the batch is full for this request: run now rather than wait
        return batch, stopping

    def _run(self, batch: list[_Job]) -> None:
        # Requests whose caller gave up (cancelled future) are dropped before the call.
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if batch:
            self._call_merged(batch)

    def _call_merged(self, batch: list[_Job]) -> None:
        merged = {name: [value for job in batch for value in job.inputs[name]] for name in batch[0].inputs}
        total = sum(job.count for job in batch)
        try:
            results = list(self._call(batch[0].key, merged))
            if len(results) != total:
                raise RuntimeError(f"The predictor returned {len(results)} results for {total} instances.")
        except Exception as error:  # noqa: BLE001  (any failure goes back to its request)
            if len(batch) == 1:
                batch[0].future.set_exception(error)
                return
            logger.debug("A merged batch of %d requests failed (%s); running each alone.", len(batch), error)
            for job in batch:
                self._call_merged([job])
            return
        if self._on_batch is not None:
            self._on_batch(total, len(batch))
        offset = 0
        for job in batch:
            job.future.set_result(results[offset: offset + job.count])
            offset += job.count
