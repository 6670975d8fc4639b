"""Retries with capped exponential backoff, shared by the REST and gRPC clients.

Only transient failures are retried (the server is down, restarting or
overloaded: connection refused or reset, HTTP 502/503/504, gRPC UNAVAILABLE
or DEADLINE_EXCEEDED). A request the server understood and refused (any 4xx,
gRPC INVALID_ARGUMENT, NOT_FOUND) fails at once: sending it again gives the
same answer. Predict, status and metadata are idempotent, so sending a request
twice is safe.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from typing import Callable, TypeVar

from kerastune_nlp.errors import ConfigError, ServingError

logger = logging.getLogger(__name__)
T = TypeVar("T")


class AttemptFailed(Exception):
    """One attempt failed; `transient` says whether another attempt may succeed.

    Args:
        detail: str. What went wrong (status or gRPC code and the server's text).
        transient: bool. Retry (True) or fail at once (False).
        hint: str. How to fix it, appended to the final message.
        retry_after: float or None. Seconds the server asked us to wait.
    """

    def __init__(self, detail: str, transient: bool, hint: str = "", retry_after: float | None = None):
        super().__init__(detail)
        self.detail, self.transient, self.hint, self.retry_after = detail, transient, hint, retry_after


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient failures.

    Args:
        retries: int. Attempts after the first one (3 means up to 4 in all). Defaults to 3.
        backoff: float. Seconds before the first retry; doubles each time. Defaults to 0.2.
        max_backoff: float. Cap on one wait in seconds. Defaults to 5.0.
    """

    retries: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0

    def __post_init__(self):
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"`retries` must be an integer >= 0. Received: `retries`={self.retries!r}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ConfigError("`backoff` and `max_backoff` must be >= 0 seconds. "
                              f"Received: `backoff`={self.backoff!r}, `max_backoff`={self.max_backoff!r}")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based).

        Jitter (50-100% of the exponential step) keeps many clients that failed
        together from all coming back in the same millisecond.
        """
        step = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        wait = step * (0.5 + 0.5 * random.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff))
        return wait


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """Runs `attempt` until it succeeds, fails for good, or the retries run out.

    Args:
        attempt: callable. Returns the result or raises `AttemptFailed`.
        policy: `RetryPolicy`.
        what: str. The request, e.g. "POST http://host:8501/v1/models/ner:predict".

    Returns:
        What `attempt` returned.

    Raises:
        ServingError: naming `what`, the last failure, how many attempts were
            made, and the hint of the failure.
    """
    total = policy.retries + 1
    for number in range(1, total + 1):
        try:
            return attempt()
        except AttemptFailed as failure:
            if failure.transient and number < total:
                wait = policy.delay(number, failure.retry_after)
                logger.info("%s: %s (attempt %d of %d); retrying in %.2f s", what, failure.detail, number, total, wait)
                time.sleep(wait)
                continue
            gave_up = f" (transient; gave up after {total} attempts)" if failure.transient else ""
            hint = f" {failure.hint}" if failure.hint else ""
            raise ServingError(f"{what} failed after {number} attempt{'s' if number > 1 else ''}{gave_up}: "
                               f"{failure.detail}.{hint}") from failure
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
