"""A client for TF Serving's REST API, which `kerastune-nlp serve` also speaks.

It sends `:predict` requests in TF Serving's row ("instances") or columnar
("inputs") format, reads model status and metadata, and calls our server's
`:entities` extension. Long lists are split into requests of at most
`batch_size` instances (sent one after another or `concurrency` at a time);
the answers come back in input order, and each answer is checked to hold one
prediction per instance sent, so answers are never shifted or mixed.
Transient failures are retried (see `kerastune_nlp.serving.retry`).

This module imports no TensorFlow, so a thin client process starts fast; the
gRPC client (`GrpcServingClient`, which needs the TF Serving protos and hence
TensorFlow) loads on first use of its name.

Example:
>>> from kerastune_nlp.serving.client import ServingClient
>>> with ServingClient("http://127.0.0.1:8501", "wnut17") as client:
...     client.predict(["Paris is lovely"])[0]["labels"]
"""

from __future__ import annotations

import json
from typing import Sequence
from urllib.parse import quote

from kerastune_nlp.errors import ConfigError, MissingDependencyError
from kerastune_nlp.serving.client_base import MISMATCH_HINT, BatchingClient, build_instances, columns_of, rows_of
from kerastune_nlp.serving.retry import AttemptFailed

TRANSIENT_STATUS = (502, 503, 504)
__all__ = ["ServingClient", "build_instances"]  # and GrpcServingClient, lazily


def __getattr__(name):
    # Lazy: the gRPC client imports TensorFlow (through the TF Serving protos).
    if name == "GrpcServingClient":
        from kerastune_nlp.serving.grpc_client import GrpcServingClient

        return GrpcServingClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _server_error(response) -> str:
    """The server's error text: TF Serving's {"error": ...}, FastAPI's {"detail": ...}, or the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or "(empty body)"
    if isinstance(body, dict) and ("error" in body or "detail" in body):
        return str(body.get("error", body.get("detail")))[:500]
    return json.dumps(body)[:500]


class ServingClient(BatchingClient):
    """A TF Serving REST client (also for `kerastune-nlp serve`), safe to share between threads.

    Args:
        url: str. The server's base URL, e.g. "http://127.0.0.1:8501".
        model: str. The model name.
        version: int or None. A fixed model version; None asks for the latest.
        timeout: float. Seconds one attempt may take (connect and answer). Defaults to 10.0.
        retries: int. Retries of transient failures (connection refused or
            reset, HTTP 502/503/504, timeouts); 4xx answers are never retried. Defaults to 3.
        backoff: float. First wait before a retry, doubling up to `max_backoff`. Defaults to 0.2.
        batch_size: int. Most instances per request. Defaults to 32.
        concurrency: int. Requests of one call in flight at once. Defaults to 1.
        max_backoff: float. Cap on one wait in seconds. Defaults to 5.0.

    Example:
    >>> client = ServingClient("http://127.0.0.1:8501", "trec", batch_size=16, concurrency=4)
    >>> [p["labels"] for p in client.predict(["What is the capital of Peru?"])]
    """

    def __init__(self, url: str, model: str, version: int | None = None, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.2, batch_size: int = 32, concurrency: int = 1, max_backoff: float = 5.0):
        super().__init__(timeout, retries, backoff, max_backoff, batch_size, concurrency)
        try:
            import httpx
        except ImportError as error:
            raise MissingDependencyError("The serving client needs httpx: pip install 'kerastune-nlp[serve]'.") \
                from error
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"`url` must start with http:// or https://. Received: `url`={url!r}; "
                              "for example 'http://127.0.0.1:8501'.")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"`model` must be the served model's name. Received: `model`={model!r}")
        if version is not None and not str(version).isdigit():
            raise ConfigError(f"`version` must be a whole number or None (latest). Received: `version`={version!r}")
        self.url, self.model, self.version = url.rstrip("/"), model, None if version is None else int(version)
        self._httpx = httpx
        # One pool for every thread; enough connections that `concurrency` batches never queue for one.
        self._http = httpx.Client(timeout=self.timeout, limits=httpx.Limits(
            max_connections=max(100, concurrency), max_keepalive_connections=max(32, concurrency)))

    @property
    def model_url(self) -> str:
        """`<url>/v1/models/<model>[/versions/<version>]`."""
        path = f"{self.url}/v1/models/{quote(self.model, safe='')}"
        return path if self.version is None else f"{path}/versions/{self.version}"

    def _which(self) -> str:
        return f"model {self.model!r} " + ("(latest version)" if self.version is None else f"version {self.version}")

    def predict(self, texts_or_instances: Sequence, pairs: Sequence[str] | None = None,
                signature_name: str = "serving_default", columnar: bool = False) -> list:
        """Predictions, one per instance, in input order.

        Args:
            texts_or_instances: list of str, or list of dicts of named inputs.
            pairs: list of str or None. Second texts (`text_pair`) for pair models.
            signature_name: str. The SavedModel signature. Defaults to "serving_default".
            columnar: bool. Send TF Serving's columnar "inputs" format instead of
                row "instances"; the answer is turned back into rows. Defaults to False.

        Returns:
            A list with one entry per instance: a dict of named outputs (or the
            bare value when the signature has a single output).

        Raises:
            ServingError: the server refused, failed, or could not be reached.
        """
        instances = build_instances(texts_or_instances, pairs)
        url = f"{self.model_url}:predict"

        def send(batch, what):
            if columnar:
                body = {"signature_name": signature_name, "inputs": columns_of(batch)}
                return self._post(url, body, what, lambda answer: rows_of(answer.get("outputs"), len(batch), what))
            body = {"signature_name": signature_name, "instances": batch}
            return self._post(url, body, what, lambda answer: self._rows(answer, "predictions", len(batch)))

        return self._batched(instances, send, f"POST {url}")

    def entities(self, texts: Sequence[str], aggregation: str = "first") -> list[list[dict]]:
        """Entity spans per text from our server's `:entities` extension (NER models).

        Args:
            texts: list of str.
            aggregation: str. How word pieces make one word's label, as in
                `Predictor.predict_entities`. Defaults to "first".

        Returns:
            One list per text of {"text", "label", "start", "end", "score"} dicts.

        Raises:
            ServingError: the server has no `:entities` route (plain TF Serving),
                the model is unknown or not an NER model, or the server failed.
        """
        instances = build_instances(texts)
        url = f"{self.model_url}:entities"

        def send(batch, what):
            body = {"instances": batch, "aggregation": aggregation}
            return self._post(url, body, what, lambda answer: self._rows(answer, "predictions", len(batch)))

        return self._batched(instances, send, f"POST {url}")

    def status(self) -> dict:
        """TF Serving's model status: {"model_version_status": [{"version", "state", "status"}]}."""
        return self._get(self.model_url)

    def metadata(self) -> dict:
        """TF Serving's model metadata: {"model_spec": ..., "metadata": {"signature_def": ...}}."""
        return self._get(f"{self.model_url}/metadata")

    def close(self) -> None:
        """Closes the connection pool and the batch threads."""
        super().close()
        self._http.close()

    # --- one HTTP request with retries ---

    def _rows(self, answer: dict, key: str, count: int) -> list:
        rows = answer.get(key)
        if not isinstance(rows, list) or len(rows) != count:
            size = len(rows) if isinstance(rows, list) else f"no {key!r} list"
            raise AttemptFailed(f"the answer does not match the request: {count} instances sent, {size} "
                                f"{key} received (keys: {sorted(answer)})", transient=False,
                                hint=MISMATCH_HINT)
        return rows

    def _get(self, url: str) -> dict:
        return self._retry(lambda: self._attempt("GET", url, None, lambda answer: answer), f"GET {url}")

    def _post(self, url: str, body: dict, what: str, parse) -> list:
        payload = json.dumps(body).encode("utf-8")
        return self._retry(lambda: self._attempt("POST", url, payload, parse), what)

    def _attempt(self, method: str, url: str, payload, parse):
        httpx = self._httpx
        try:
            response = self._http.request(method, url, content=payload,
                                          headers={"Content-Type": "application/json"} if payload else None)
        except httpx.TimeoutException as error:
            raise AttemptFailed(f"no answer within the {self.timeout:g} s timeout ({type(error).__name__})",
                                transient=True, hint="Raise `timeout` or check the server's load.") from error
        except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise AttemptFailed(f"connection failed ({type(error).__name__}: {error})", transient=True,
                                hint=f"Is the server running and listening at {self.url}?") from error
        except httpx.HTTPError as error:
            raise AttemptFailed(f"request failed ({type(error).__name__}: {error})", transient=False) from error
        if response.status_code == 200:
            try:
                answer = response.json()
            except ValueError as error:
                raise AttemptFailed(f"HTTP 200 but the body is not JSON: {response.text[:200]!r}",
                                    transient=False, hint="Is this a TF Serving REST endpoint?") from error
            if not isinstance(answer, dict):
                raise AttemptFailed(f"HTTP 200 but the body is not a JSON object: {response.text[:200]!r}",
                                    transient=False, hint="Is this a TF Serving REST endpoint?")
            return parse(answer)
        code, said = response.status_code, _server_error(response)
        retry_after = response.headers.get("Retry-After", "")
        raise AttemptFailed(f"HTTP {code}, server said: {said!r}", transient=code in TRANSIENT_STATUS,
                            hint=self._hint(code, said, url),
                            retry_after=float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None)

    def _hint(self, code: int, said: str, url: str) -> str:
        if url.endswith(":entities") and self._no_entities_route(code, said):
            return (f"The server at {self.url} does not offer `:entities` (plain TF Serving has only :predict, "
                    ":classify and :regress): serve the model with `kerastune-nlp serve`, or call predict() and "
                    "read the NER outputs (words, labels, start, end).")
        if code == 404:
            return (f"The server does not serve {self._which()}: check the model name and version "
                    "(status() lists the loaded versions) or the server's model path.")
        if code == 413:
            return "The request holds more instances than the server accepts: lower `batch_size`."
        if code == 400:
            return "The server rejected the request: check the input names and signature with metadata()."
        if code in TRANSIENT_STATUS:
            return "The server is overloaded or restarting; try again later or raise `retries`."
        return ""

    @staticmethod
    def _no_entities_route(code: int, said: str) -> bool:
        # TF Serving answers an unknown verb with 400 "Malformed request"; FastAPI and others with 404/405
        # and no model named in the text. A 404 naming the model means the model is unknown instead.
        lowered = said.lower()
        if "malformed request" in lowered:
            return True
        return code in (404, 405) and not any(word in lowered for word in ("servable", "model", "version"))
