"""The models a server holds: where they come from, their versions, loading, hot reload and unloading.

Like TF Serving with `model_version_policy { latest { num_versions: N } }`:
a model base folder `<base>/<name>/` holds numbered version folders; the
newest N complete ones are served, a poller picks up new ones without a
restart, and versions that drop out are unloaded once their in-flight
requests are answered. A folder counts only when its name is all digits and
it holds `saved_model.pb`, `variables/variables.index` and the sidecar, so
hidden staging folders and half-copied ones are never loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from pathlib import Path
from typing import Callable

from kerastune_nlp.errors import ConfigError, RunDirectoryError
from kerastune_nlp.inference.artifacts import numbered_versions, resolve_path
from kerastune_nlp.serving.batching import Batcher
from kerastune_nlp.serving.protocol import RequestError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    """How the server batches, polls and limits requests.

    Args:
        model_name: str or None. Name to serve under (picks one model of an export folder). Defaults to None.
        max_batch_size: int. Most instances per predictor call. Defaults to 32.
        batch_timeout_ms: float. Longest wait for more requests to merge. Defaults to 5.
        batching: bool. False serves requests one at a time. Defaults to True.
        versions: int. Newest versions served at once. Defaults to 2.
        poll_seconds: float. Seconds between scans for new versions (0: no polling). Defaults to 2.
        max_instances: int. Most instances one request may carry. Defaults to 1024.
        max_body_bytes: int. Largest request body. Defaults to 4 MiB.
        predictor_batch_size: int. Rows per model call inside the predictor. Defaults to 32.
    """

    model_name: str | None = None
    max_batch_size: int = 32
    batch_timeout_ms: float = 5.0
    batching: bool = True
    versions: int = 2
    poll_seconds: float = 2.0
    max_instances: int = 1024
    max_body_bytes: int = 4 * 1024 * 1024
    predictor_batch_size: int = 32

    def __post_init__(self):
        for name, flag in (("max_batch_size", "--max-batch-size"), ("versions", "--versions"),
                           ("max_instances", "--max-instances"), ("max_body_bytes", "--max-body-bytes"),
                           ("predictor_batch_size", "predictor_batch_size")):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"Expected a positive integer. Received: `{flag}`={value!r}.")
        for name, flag in (("batch_timeout_ms", "--batch-timeout-ms"), ("poll_seconds", "--poll-seconds")):
            if getattr(self, name) < 0:
                raise ConfigError(f"Expected zero or more. Received: `{flag}`={getattr(self, name)!r}.")
        if self.model_name is not None and (not self.model_name or "/" in self.model_name or ":" in self.model_name):
            raise ConfigError(f"Expected a model name without '/' or ':'. Received: `--model-name`={self.model_name!r}.")

    @property
    def effective_batch_size(self) -> int:
        return self.max_batch_size if self.batching else 1


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where one served model comes from: a base folder to poll, or a single artifact (version 1)."""

    name: str
    base: Path | None = None
    artifact: Path | None = None


def _name_from(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "model"


def resolve_source(path, model_name: str | None = None) -> ModelSource:
    """What PATH serves, read by `resolve_path` (no TensorFlow), so a wrong path fails in a second.

    A model folder (or an export folder's one model) is watched for new
    versions; a run directory, a version folder or a model file is served
    as version 1.

    Args:
        path: str or Path. Any form `resolve_path` accepts.
        model_name: str or None. Served name; for an export folder, which model to serve.
    """
    artifact = resolve_path(path, model=model_name)
    name = model_name or _name_from(artifact.name)
    if artifact.model_dir is not None:
        return ModelSource(name, base=artifact.model_dir)
    return ModelSource(name, artifact=artifact.target)


class ModelVersion:
    """One version of a model: its state (TF Serving's names), predictor and batching worker."""

    def __init__(self, name: str, number: int, path: Path):
        self.name, self.number, self.path = name, number, path
        self.state = "START"
        self.error: str | None = None
        self.predictor = None
        self.batcher: Batcher | None = None
        self.signature: dict | None = None
        self.in_flight = 0

    @property
    def task(self) -> str:
        return self.predictor.task.name

    @property
    def input_names(self) -> list[str]:
        return list(self.signature["inputs"])

    @property
    def output_names(self) -> list[str]:
        return list(self.signature["outputs"])

    def submit(self, key, inputs: dict):
        """Queues a request on this version's batcher; returns a `concurrent.futures.Future`."""
        return self.batcher.submit(key, inputs)


def _call_predictor(predictor):
    """The batcher's call: `serve` for :predict, `predict_entities` for :entities (key carries the aggregation)."""
    def call(key, inputs):
        if key[0] == "entities":
            return predictor.predict_entities(inputs["text"], aggregation=key[1])
        return predictor.serve(inputs)

    return call


class ModelRegistry:
    """Loads, serves and retires the versions of one model, thread-safely.

    Args:
        source: `ModelSource` (see `resolve_source`).
        options: `ServingOptions`.
        metrics: `ServerMetrics` or None (batch sizes are reported to it).
        loader: callable(path, batch_size) -> Predictor. Defaults to `load_predictor`.
    """

    def __init__(self, source: ModelSource, options: ServingOptions, metrics=None, loader: Callable | None = None):
        self.source, self.options, self.metrics = source, options, metrics
        self._loader = loader
        self._versions: dict[int, ModelVersion] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.source.name

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Loads what is there now (blocking), then polls a base folder for new versions."""
        if self.source.artifact is not None:
            version = self._load(1, self.source.artifact)
            if version.state != "AVAILABLE":
                raise RunDirectoryError(f"Could not load {str(self.source.artifact)!r}: {version.error}")
            return
        self.poll()
        if self.options.poll_seconds > 0:
            self._poller = threading.Thread(target=self._poll_loop, name=f"poll-{self.name}", daemon=True)
            self._poller.start()

    def stop(self) -> None:
        """Stops polling and retires every version (answering queued requests first)."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        for version in list(self._versions.values()):
            if version.state == "AVAILABLE":
                self._unload(version)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.options.poll_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001  (a scan error must not stop future scans)
                logger.exception("Scanning %s for versions failed; trying again in %ss.", self.source.base,
                                 self.options.poll_seconds)

    def poll(self) -> None:
        """One scan: load the newest N complete versions, retire the ones that dropped out."""
        complete = numbered_versions(self.source.base)[::-1]
        loaded: list[int] = []
        for folder in complete:
            if len(loaded) == self.options.versions or self._stop.is_set():
                break
            number = int(folder.name)
            version = self._versions.get(number)
            if version is None or version.state != "AVAILABLE":
                version = self._load(number, folder)  # a failure is retried at the next scan
            if version.state == "AVAILABLE":
                loaded.append(number)
        for version in list(self._versions.values()):
            if version.state == "AVAILABLE" and version.number not in loaded and loaded:
                threading.Thread(target=self._unload, args=(version,), daemon=True,
                                 name=f"unload-{self.name}-{version.number}").start()

    def _load(self, number: int, path: Path) -> ModelVersion:
        version = ModelVersion(self.name, number, path)
        version.state = "LOADING"
        with self._cond:
            self._versions[number] = version
        try:
            loader = self._loader
            if loader is None:
                from kerastune_nlp.inference import load_predictor as loader
            predictor = loader(path, batch_size=self.options.predictor_batch_size)
            signature = predictor.serving_signature()
        except Exception as error:  # noqa: BLE001  (reported in the model status; the others keep serving)
            version.state, version.error = "END", f"Loading {str(path)!r} failed: {type(error).__name__}: {error}"
            logger.warning("%s", version.error)
            return version
        version.predictor, version.signature = predictor, signature
        version.batcher = Batcher(_call_predictor(predictor), max_batch_size=self.options.effective_batch_size,
                                  timeout_ms=self.options.batch_timeout_ms, name=f"batch-{self.name}-{number}",
                                  on_batch=self._batch_observer(number))
        with self._cond:
            version.state = "AVAILABLE"
        logger.info("Serving %s version %d from %s", self.name, number, path)
        return version

    def _batch_observer(self, number: int):
        if self.metrics is None:
            return None
        return lambda instances, requests: self.metrics.observe_batch(self.name, number, instances, requests)

    def _unload(self, version: ModelVersion) -> None:
        with self._cond:
            if version.state != "AVAILABLE":
                return
            version.state = "UNLOADING"  # no new requests are routed to it from now on
            self._cond.wait_for(lambda: version.in_flight == 0)
        version.batcher.close()
        version.predictor = version.batcher = None
        with self._cond:
            version.state = "END"
        logger.info("Unloaded %s version %d", self.name, version.number)

    # -- requests --------------------------------------------------------------------

    def _not_found(self, name: str, number: int | None) -> RequestError:
        request = f"Specific({name}, {number})" if number is not None else f"Latest({name})"
        available = self.available()
        hint = (f" Serving {self.name!r} versions {available}." if available
                else f" No version of {self.name!r} is available yet.")
        return RequestError(f"Servable not found for request: {request}.{hint}", 404)

    @contextlib.contextmanager
    def acquire(self, name: str, number: int | None = None):
        """The requested (or newest available) version, kept loaded until the block ends."""
        with self._cond:
            if name != self.name:
                raise self._not_found(name, number)
            if number is None:
                available = [v for v in self._versions.values() if v.state == "AVAILABLE"]
                version = max(available, key=lambda v: v.number) if available else None
            else:
                version = self._versions.get(number)
                version = version if version is not None and version.state == "AVAILABLE" else None
            if version is None:
                raise self._not_found(name, number)
            version.in_flight += 1
        try:
            yield version
        finally:
            with self._cond:
                version.in_flight -= 1
                self._cond.notify_all()

    def available(self) -> list[int]:
        """Numbers of the AVAILABLE versions, newest first."""
        with self._cond:
            return sorted((v.number for v in self._versions.values() if v.state == "AVAILABLE"), reverse=True)

    def versions(self, name: str, number: int | None = None) -> list[ModelVersion]:
        """Every version known (any state), newest first; one when `number` is given. 404 when none."""
        with self._cond:
            found = sorted(self._versions.values(), key=lambda v: v.number, reverse=True) if name == self.name else []
        if number is not None:
            found = [v for v in found if v.number == number]
        if not found:
            what = f"version {number} of model {name!r}" if number is not None else f"any versions of model {name!r}"
            raise RequestError(f"Could not find {what}. This server serves {self.name!r}"
                               + (f" versions {self.available()}." if self.available() else "."), 404)
        return found

    def cache_gauges(self) -> list[tuple]:
        """(name, kind, help, labels, value) of each available version's answer cache, for /metrics."""
        gauges = []
        with self._cond:
            live = [v for v in self._versions.values() if v.state == "AVAILABLE"]
        for version in live:
            labels = {"model": self.name, "version": str(version.number)}
            try:
                info = version.predictor.cache_info()
            except (AttributeError, TypeError):
                continue  # unloaded between the listing and now
            gauges += [("kerastune_nlp_predictor_cache_hits_total", "counter", "Answers served from the cache.",
                        labels, info["hits"]),
                       ("kerastune_nlp_predictor_cache_misses_total", "counter", "Answers computed by the model.",
                        labels, info["misses"]),
                       ("kerastune_nlp_predictor_cache_size", "gauge", "Answers held in the cache.",
                        labels, info["size"])]
        with self._cond:
            states = sorted(self._versions.values(), key=lambda v: v.number)
        gauges += [("kerastune_nlp_model_version_available", "gauge", "1 when the version is AVAILABLE.",
                    {"model": self.name, "version": str(v.number)}, int(v.state == "AVAILABLE")) for v in states]
        return gauges
