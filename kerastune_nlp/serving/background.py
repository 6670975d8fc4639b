"""Run the model server in this process: for tests, notebooks, examples and `kerastune-nlp serve`.

uvicorn runs on a thread of its own (with its own event loop); signal
handlers are only installed on the main thread, so Ctrl-C stays with the
caller, who calls `stop()`.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from kerastune_nlp.errors import ConfigError, ServingError

START_TIMEOUT_S = 30.0


@dataclasses.dataclass
class ServerHandle:
    """A running server. `stop()` (or leaving the `with` block) shuts it down.

    Attributes:
        url: str. Base URL of the REST API, e.g. "http://127.0.0.1:8501".
        port: int. The REST port actually bound (the real one when 0 was asked).
        grpc_port: int or None. The gRPC port actually bound, when enabled.
        registry: the `ModelRegistry` (versions, states, predictors).
        metrics: the `ServerMetrics`.
    """

    url: str
    port: int
    grpc_port: int | None
    registry: object
    metrics: object
    _server: object
    _thread: threading.Thread
    _grpc: object = None

    def stop(self) -> None:
        """Stops accepting connections, finishes queued requests and unloads the model."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
        if self._grpc is not None:
            self._grpc.stop(grace=2).wait()
        self.registry.stop()

    def wait(self) -> None:
        """Blocks until the server stops (Ctrl-C raises KeyboardInterrupt here, for the caller to `stop()`)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_in_background(path, host: str = "127.0.0.1", port: int = 0, *, grpc_port: int | None = None,
                        log_level: str = "warning", **options) -> ServerHandle:
    """Loads the model at `path` and serves it on a background thread; returns once it listens.

    Args:
        path: str or Path. A model base folder, export folder, run directory, SavedModel
            version folder, .tflite or .onnx file (see `inference.artifacts.resolve_path`).
        host: str. Interface to bind. Defaults to "127.0.0.1".
        port: int. REST port; 0 picks a free one. Defaults to 0.
        grpc_port: int or None. Also serve TF Serving's gRPC API on this port (0: a free one). Defaults to None.
        log_level: str. uvicorn's log level. Defaults to "warning".
        **options: `ServingOptions` fields (max_batch_size, batch_timeout_ms, batching, versions,
            poll_seconds, max_instances, max_body_bytes, model_name, predictor_batch_size).

    Example:
    >>> with serve_in_background("saved_models/export/serving/ner") as server:
    ...     httpx.post(f"{server.url}/v1/models/ner:predict", json={"instances": ["Paris is lovely"]}).json()
    """
    import uvicorn

    from kerastune_nlp.serving.app import create_app
    from kerastune_nlp.serving.metrics import ServerMetrics
    from kerastune_nlp.serving.registry import ModelRegistry, ServingOptions, resolve_source

    fields = {f.name for f in dataclasses.fields(ServingOptions)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"Unknown server option(s) {unknown}. Expected some of {sorted(fields)}.")
    settings = ServingOptions(**options)
    source = resolve_source(path, settings.model_name)
    metrics = ServerMetrics()
    registry = ModelRegistry(source, settings, metrics)
    registry.start()
    grpc_server = None
    try:
        if grpc_port is not None:
            from kerastune_nlp.serving.grpc_front import start_grpc_server

            grpc_server, grpc_port = start_grpc_server(registry, metrics, host, grpc_port)
        config = uvicorn.Config(create_app(registry, metrics), host=host, port=port, log_level=log_level,
                                access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServingError(f"The server could not listen on {host}:{port} (is another server using that "
                                   "port?). Pass a free --port, or 0 for any free port.")
            time.sleep(0.01)
    except BaseException:
        if grpc_server is not None:
            grpc_server.stop(grace=None)
        registry.stop()
        raise
    bound = server.servers[0].sockets[0].getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    return ServerHandle(f"http://{url_host}:{bound}", bound, grpc_port, registry, metrics, server, thread,
                        grpc_server)
