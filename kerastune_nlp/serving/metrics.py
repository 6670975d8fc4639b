"""Server metrics in the Prometheus text exposition format (version 0.0.4).

A few counters and histograms written out by hand: `prometheus_client`
would be one more dependency for about a hundred lines of text formatting.
"""

from __future__ import annotations

import bisect
import threading
from typing import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Counter:
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str]):
        self.name, self.help, self.label_names = name, help_text, tuple(label_names)
        self._values: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def inc(self, labels: Sequence, amount: float = 1.0) -> None:
        key = tuple(str(v) for v in labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, labels: Sequence) -> float:
        return self._values.get(tuple(str(v) for v in labels), 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, key)} {_number(value)}" for key, value in items]


class Histogram:
    """Observations counted into cumulative buckets per label set (plus sum and count)."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str], buckets: Sequence[float]):
        self.name, self.help, self.label_names = name, help_text, tuple(label_names)
        self.buckets = tuple(sorted(buckets))
        self._values: dict[tuple, list] = {}  # key -> [per-bucket counts..., +Inf count, sum]
        self._lock = threading.Lock()

    def observe(self, labels: Sequence, value: float) -> None:
        key = tuple(str(v) for v in labels)
        with self._lock:
            row = self._values.setdefault(key, [0] * (len(self.buckets) + 1) + [0.0])
            row[bisect.bisect_left(self.buckets, value)] += 1
            row[-1] += value

    def counts(self, labels: Sequence) -> dict[float, int]:
        """Observations per bucket upper bound (not cumulative; inf for the overflow), for tests."""
        row = self._values.get(tuple(str(v) for v in labels))
        if row is None:
            return {}
        return dict(zip(self.buckets + (float("inf"),), row[:-1]))

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((key, list(row)) for key, row in self._values.items())
        lines = []
        for key, row in items:
            cumulative = 0
            for bound, count in zip(self.buckets + (float("inf"),), row[:-1]):
                cumulative += count
                le = "+Inf" if bound == float("inf") else _number(bound)
                labels = _labels(self.label_names, key, 'le="' + le + '"')
                lines.append(f"{self.name}_bucket{labels} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(row[-1])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {cumulative}")
        return lines


class ServerMetrics:
    """Every metric the model server exposes at GET /metrics."""

    def __init__(self):
        self.requests = Counter("kerastune_nlp_requests_total", "Requests by model, route and HTTP status code.",
                                ("model", "route", "code"))
        self.errors = Counter("kerastune_nlp_request_errors_total",
                              "Refused or failed requests by model, route and reason.", ("model", "route", "reason"))
        self.latency = Histogram("kerastune_nlp_request_latency_seconds", "Request latency in seconds.",
                                 ("model", "route"), LATENCY_BUCKETS)
        self.batch_size = Histogram("kerastune_nlp_batch_size", "Instances per predictor call (server-side batch).",
                                    ("model", "version"), BATCH_BUCKETS)
        self.batch_requests = Histogram("kerastune_nlp_batch_requests", "Requests merged into one predictor call.",
                                        ("model", "version"), BATCH_BUCKETS)

    def observe_request(self, model: str, route: str, code: int, seconds: float, reason: str = "") -> None:
        self.requests.inc((model, route, code))
        self.latency.observe((model, route), seconds)
        if code >= 400:
            self.errors.inc((model, route, reason or ("client" if code < 500 else "server")))

    def observe_batch(self, model: str, version: int, instances: int, requests: int) -> None:
        self.batch_size.observe((model, version), instances)
        self.batch_requests.observe((model, version), requests)

    def render(self, gauges: Iterable[tuple[str, str, str, dict, float]] = ()) -> str:
        """The exposition text; `gauges` adds (name, kind, help, labels, value) samples read at scrape time."""
        blocks = []
        for metric in (self.requests, self.errors, self.latency, self.batch_size, self.batch_requests):
            blocks.append(f"# HELP {metric.name} {metric.help}\n# TYPE {metric.name} {metric.kind}")
            blocks.extend(metric.samples())
        grouped: dict[str, list] = {}
        for name, kind, help_text, labels, value in gauges:
            grouped.setdefault(name, [kind, help_text, []])[2].append((labels, value))
        for name, (kind, help_text, rows) in grouped.items():
            blocks.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}")
            blocks.extend(f"{name}{_labels(list(labels), list(labels.values()))} {_number(value)}"
                          for labels, value in rows)
        return "\n".join(blocks) + "\n"
