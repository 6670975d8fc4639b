"""The REST front: TF Serving's `/v1/models/...` API, `:entities`, `/health` and `/metrics`.

`:entities` takes `{"instances": ["text", ...]}` (one span list per text) or
`{"documents": [{"sentences": [...]} | {"text": "..."} | "text", ...]}`:
per document one `{"text", "start", "end", "entities"}` per sentence, each
sentence read with the run's document context (`Predictor.predict_entities`).

Routes only parse, wait and answer: predictor calls run on each version's
batching thread (`batching.Batcher`), so the event loop never blocks on
TensorFlow. Every answer, errors included, is JSON; errors are
`{"error": message}` as TF Serving sends them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.serving import protocol
from kerastune_nlp.serving.batching import BatcherClosedError
from kerastune_nlp.serving.metrics import CONTENT_TYPE, ServerMetrics
from kerastune_nlp.serving.protocol import RequestError

logger = logging.getLogger(__name__)


def json_response(payload: dict, status: int = 200) -> Response:
    # json.dumps, not Starlette's JSONResponse: that refuses NaN, which TF Serving sends as NaN.
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    media_type="application/json")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes: on the declared length, then on the bytes read."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(f"Expected a number in the Content-Length header. Received: {declared!r}.")
        if int(declared) > limit:
            raise RequestError(f"Request body too large: Content-Length {int(declared)} bytes, at most {limit} "
                               "(--max-body-bytes). Send fewer instances per request, or start the server with a "
                               "larger --max-body-bytes.", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body, or a Content-Length that understates it
            raise RequestError(f"Request body too large: more than {limit} bytes read (--max-body-bytes). Send "
                               "fewer instances per request, or start the server with a larger --max-body-bytes.",
                               413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _call(version, key, inputs: dict) -> list:
    """Waits (without blocking the loop) for this request's results from the version's batcher."""
    return await asyncio.wrap_future(version.submit(key, inputs))


def create_app(registry, metrics: ServerMetrics | None = None) -> FastAPI:
    """The FastAPI app serving `registry`'s model.

    Args:
        registry: a started `ModelRegistry`.
        metrics: `ServerMetrics` to record into (a new one when None).

    Example:
    >>> registry = ModelRegistry(resolve_source("export/serving/ner"), ServingOptions()); registry.start()
    >>> app = create_app(registry)   # then: uvicorn.run(app, port=8501)
    """
    metrics = metrics or ServerMetrics()
    options = registry.options
    app = FastAPI(title="kerastune-nlp model server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.registry, app.state.metrics = registry, metrics

    @app.exception_handler(StarletteHTTPException)
    async def unknown_path(request: Request, error: StarletteHTTPException):
        metrics.observe_request("", "unknown", error.status_code, 0.0, "path")
        message = (f"Unknown path {request.method} {request.url.path}. Expected /v1/models/<name>[/versions/<v>]"
                   "[/metadata|:predict|:entities], /health or /metrics.")
        return json_response(protocol.error_body(message), error.status_code)

    @app.get("/health")
    async def health():
        available = registry.available()
        body = {"status": "ok" if available else "unavailable",
                "models": {registry.name: {"available_versions": available,
                                           "versions": [protocol.version_status(v.number, v.state, v.error)
                                                        for v in _all_versions(registry)]}}}
        metrics.observe_request("", "health", 200 if available else 503, 0.0)
        return json_response(body, 200 if available else 503)

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(registry.cache_gauges()), media_type=CONTENT_TYPE)

    async def status(target) -> dict:
        versions = registry.versions(target.name, target.version)
        return {"model_version_status": [protocol.version_status(v.number, v.state, v.error) for v in versions]}

    async def metadata(target, body) -> dict:
        with registry.acquire(target.name, target.version) as version:
            return protocol.metadata_response(version.name, version.number, version.signature)

    async def predict(target, body) -> dict:
        payload = protocol.parse_json(body)
        with registry.acquire(target.name, target.version) as version:
            request = protocol.parse_predict(payload, version.input_names, options.max_instances)
            results = await _call(version, ("predict",), request.inputs)
            return protocol.predict_response(results, version.output_names, request.columnar)

    async def entities(target, body) -> dict:
        payload = protocol.parse_json(body)
        with registry.acquire(target.name, target.version) as version:
            if not version.predictor.task.has_entities:
                raise RequestError(f"The :entities method needs a NER model; {version.name!r} version "
                                   f"{version.number} is a {version.task} model. Use :predict instead.")
            texts, aggregation = protocol.parse_entities(payload, options.max_instances)
            results = await _call(version, ("entities", aggregation), {"text": texts})
            return {"predictions": [protocol.to_json(spans) for spans in results]}

    handlers = {"metadata": metadata, "predict": predict, "entities": entities}

    @app.api_route("/v1/models/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def models(request: Request, rest: str):
        started, route, reason = time.perf_counter(), "unknown", ""
        model = ""
        try:
            target = protocol.parse_model_path(rest, request.method)
            route = target.action
            model = target.name if target.name == registry.name else ""  # unknown names: no label explosion
            if target.action == "status":
                body, code = await status(target), 200
            else:
                raw = await read_body(request, options.max_body_bytes) if request.method == "POST" else b""
                body, code = await handlers[target.action](target, raw), 200
        except RequestError as error:
            body, code, reason = protocol.error_body(str(error)), error.status, "request"
        except ConfigError as error:  # the predictor refused the inputs
            body, code, reason = protocol.error_body(str(error)), 400, "predictor_input"
        except BatcherClosedError as error:  # the version started unloading after routing
            body, code, reason = protocol.error_body(str(error)), 503, "unavailable"
        except Exception as error:  # noqa: BLE001  (an answer, never a dropped connection)
            logger.exception("Request %s /v1/models/%s failed", request.method, rest)
            body, code, reason = protocol.error_body(f"Internal error: {type(error).__name__}: {error}"), 500, "server"
        metrics.observe_request(model, route, code, time.perf_counter() - started, reason)
        return json_response(body, code)

    return app


def _all_versions(registry) -> list:
    try:
        return registry.versions(registry.name)
    except RequestError:
        return []
