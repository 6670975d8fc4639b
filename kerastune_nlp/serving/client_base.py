"""What the REST and gRPC clients share: instances from texts, client-side batching, retries.

Client-side batching splits a long list into requests of at most
`batch_size` instances, sends them one after another or `concurrency` at a
time, and returns the answers in input order. Every answer is checked to hold
one prediction per instance sent, so answers are never shifted or mixed.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.serving.retry import AttemptFailed, RetryPolicy, call_with_retries

MISMATCH_HINT = "The server mixed or dropped answers; report this server bug."


def build_instances(texts_or_instances, pairs=None) -> list[dict]:
    """Instances (one dict of named inputs each) from texts, text pairs, or ready dicts.

    Args:
        texts_or_instances: list of str (sent as `{"text": ...}`) or of dicts of inputs.
        pairs: list of str or None. Second texts of pair models (`text_pair`),
            as many as texts.

    Returns:
        A new list of dicts.
    """
    if isinstance(texts_or_instances, (str, bytes, dict)):
        raise ConfigError("Expected a list of texts (or of instance dicts), one per prediction. "
                          f"Received: `texts_or_instances` of type {type(texts_or_instances).__name__}; "
                          "wrap a single text in a list: predict([text]).")
    items = list(texts_or_instances)
    if pairs is not None:
        pairs = list(pairs)
        if len(pairs) != len(items) or not all(isinstance(x, str) for x in items + pairs):
            raise ConfigError("`pairs` must hold one str per text. Received: "
                              f"{len(items)} texts and {len(pairs)} pairs; pass texts and pairs of equal length.")
        return [{"text": text, "text_pair": pair} for text, pair in zip(items, pairs)]
    instances = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            instances.append({"text": item})
        elif isinstance(item, dict) and item:
            instances.append(dict(item))
        else:
            raise ConfigError("Each instance must be a str or a non-empty dict of named inputs. "
                              f"Received: item {index} = {item!r}; pass texts, or dicts such as "
                              "{'text': ..., 'text_pair': ...}.")
    return instances


def columns_of(instances: list[dict]) -> dict[str, list]:
    """The columnar ("inputs") form of instances, which must all have the same input names."""
    names = list(instances[0])
    for index, instance in enumerate(instances):
        if set(instance) != set(names):
            raise ConfigError(f"Columnar requests need the same input names in every instance. Received: "
                              f"{sorted(names)} in instance 0 but {sorted(instance)} in instance {index}.")
    return {name: [instance[name] for instance in instances] for name in names}


def rows_of(outputs, count: int, what: str) -> list:
    """Per-instance outputs from columnar outputs (dict of columns, or one column), checking the count."""
    columns = outputs if isinstance(outputs, dict) else {None: outputs}
    for name, column in columns.items():
        if not isinstance(column, list) or len(column) != count:
            size = len(column) if isinstance(column, list) else type(column).__name__
            raise AttemptFailed(f"the answer does not match the request: {count} instances sent but output "
                                f"{name!r} holds {size} values", transient=False,
                                hint=MISMATCH_HINT)
    if None in columns:
        return list(columns[None])
    return [{name: column[index] for name, column in columns.items()} for index in range(count)]


class BatchingClient:
    """What both clients share: argument checks, client-side batching, retries, closing.

    Args:
        timeout: float. Seconds one attempt may take. Defaults to 10.0.
        retries: int. Retries of transient failures. Defaults to 3.
        backoff: float. First wait before a retry, doubling each time. Defaults to 0.2.
        max_backoff: float. Cap on one wait. Defaults to 5.0.
        batch_size: int. Most instances per request. Defaults to 32.
        concurrency: int. Requests of one call in flight at once. Defaults to 1.
    """

    def __init__(self, timeout=10.0, retries=3, backoff=0.2, max_backoff=5.0, batch_size=32, concurrency=1):
        for name, value in (("batch_size", batch_size), ("concurrency", concurrency)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"`{name}` must be an integer >= 1. Received: `{name}`={value!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"`timeout` must be a number of seconds > 0. Received: `timeout`={timeout!r}")
        self.timeout, self.batch_size, self.concurrency = float(timeout), batch_size, concurrency
        self.policy = RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff)
        self._executor = None
        self._lock = threading.Lock()

    def _batched(self, instances: list, send: Callable[[list, str], list], what: str) -> list:
        """`send(batch, what)` for each batch of `batch_size`; results flattened in input order."""
        size, total = self.batch_size, len(instances)
        batches = [(instances[i:i + size], what if total <= size else
                    f"{what} (instances {i}-{min(i + size, total) - 1} of {total})") for i in range(0, total, size)]
        if self.concurrency == 1 or len(batches) <= 1:
            answers = [send(batch, label) for batch, label in batches]
        else:
            # map() keeps batch order whatever order the answers arrive in.
            answers = list(self._pool().map(lambda item: send(*item), batches))
        return [row for answer in answers for row in answer]

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="serving-client")
            return self._executor

    def _retry(self, attempt, what: str):
        return call_with_retries(attempt, self.policy, what)

    def close(self) -> None:
        """Stops the batch threads (subclasses also close their connections)."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
