"""A client for TF Serving's gRPC API (PredictionService, ModelService).

It returns the same Python shapes as the REST `ServingClient` (one dict of
named outputs per instance; status and metadata as TF Serving's REST JSON),
so user code can switch between the two. Importing the TF Serving protos
imports TensorFlow, so this module is only loaded when it is used.

Example:
>>> from kerastune_nlp.serving.grpc_client import GrpcServingClient
>>> with GrpcServingClient("127.0.0.1:8500", "wnut17") as client:
...     client.predict(["Paris is lovely"])[0]["labels"]
"""

from __future__ import annotations

from typing import Sequence

from kerastune_nlp.errors import ConfigError, MissingDependencyError
from kerastune_nlp.serving.client_base import MISMATCH_HINT, BatchingClient, build_instances, columns_of
from kerastune_nlp.serving.retry import AttemptFailed

_MESSAGE_BYTES = 64 * 1024 * 1024  # NER answers for a big batch exceed gRPC's 4 MB default


def _imports():
    try:
        import grpc
        from google.protobuf import json_format
        from tensorflow_serving.apis import (
            get_model_metadata_pb2,
            get_model_status_pb2,
            model_service_pb2_grpc,
            predict_pb2,
            prediction_service_pb2_grpc,
        )
    except ImportError as error:
        raise MissingDependencyError("The gRPC client needs grpcio and tensorflow-serving-api: "
                                     f"pip install 'kerastune-nlp[serve]'. ({error})") from error
    return grpc, json_format, predict_pb2, get_model_status_pb2, get_model_metadata_pb2, \
        prediction_service_pb2_grpc, model_service_pb2_grpc


def _plain(value):
    """numpy value -> JSON-like Python (str for DT_STRING), as TF Serving's REST API writes it."""
    value = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value  # REST would send {"b64": ...}; bytes are the honest Python form
    return value


class GrpcServingClient(BatchingClient):
    """A TF Serving gRPC client (also for the gRPC front of `kerastune-nlp serve`), thread-safe.

    Args:
        target: str. "host:port" of the gRPC server, e.g. "127.0.0.1:8500".
        model: str. The model name.
        version: int or None. A fixed model version; None asks for the latest.
        timeout: float. Deadline of one attempt in seconds. Defaults to 10.0.
        retries: int. Retries of UNAVAILABLE and DEADLINE_EXCEEDED; other codes
            fail at once. Defaults to 3.
        backoff: float. First wait before a retry, doubling up to `max_backoff`. Defaults to 0.2.
        batch_size: int. Most instances per request. Defaults to 32.
        concurrency: int. Requests of one call in flight at once. Defaults to 1.
        max_backoff: float. Cap on one wait in seconds. Defaults to 5.0.

    Example:
    >>> client = GrpcServingClient("127.0.0.1:8500", "trec")
    >>> client.status()["model_version_status"][0]["state"]
    'AVAILABLE'
    """

    def __init__(self, target: str, model: str, version: int | None = None, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.2, batch_size: int = 32, concurrency: int = 1,
                 max_backoff: float = 5.0):
        super().__init__(timeout, retries, backoff, max_backoff, batch_size, concurrency)
        if not isinstance(target, str) or "://" in target or ":" not in target:
            raise ConfigError(f"`target` must be 'host:port' (no scheme). Received: `target`={target!r}; "
                              "for example '127.0.0.1:8500'.")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"`model` must be the served model's name. Received: `model`={model!r}")
        if version is not None and not str(version).isdigit():
            raise ConfigError(f"`version` must be a whole number or None (latest). Received: `version`={version!r}")
        (self._grpc, self._json, self._predict_pb2, self._status_pb2, self._metadata_pb2,
         prediction_grpc, model_grpc) = _imports()
        self.target, self.model, self.version = target, model, None if version is None else int(version)
        self._channel = self._grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", _MESSAGE_BYTES), ("grpc.max_send_message_length", _MESSAGE_BYTES)])
        self._predictions = prediction_grpc.PredictionServiceStub(self._channel)
        self._models = model_grpc.ModelServiceStub(self._channel)
        self._input_dtypes = {}

    def _which(self) -> str:
        return f"model {self.model!r} " + ("(latest version)" if self.version is None else f"version {self.version}")

    def _spec(self, spec, signature_name: str | None = None):
        spec.name = self.model
        if self.version is not None:
            spec.version.value = self.version
        if signature_name is not None:
            spec.signature_name = signature_name

    def predict(self, texts_or_instances: Sequence, pairs: Sequence[str] | None = None,
                signature_name: str = "serving_default", columnar: bool = False) -> list:
        """Predictions, one per instance, in input order (as `ServingClient.predict`).

        Args:
            texts_or_instances: list of str, or list of dicts of named inputs.
            pairs: list of str or None. Second texts (`text_pair`) for pair models.
            signature_name: str. The SavedModel signature. Defaults to "serving_default".
            columnar: bool. Accepted so code can switch from REST; gRPC requests
                are always columnar tensors. Defaults to False.

        Returns:
            One dict of named outputs per instance (the bare value when the
            signature has a single output).

        Raises:
            ServingError: the server refused, failed, or could not be reached.
        """
        del columnar  # every gRPC request carries one tensor per input
        instances = build_instances(texts_or_instances, pairs)

        def send(batch, what):
            request = self._predict_pb2.PredictRequest()
            self._spec(request.model_spec, signature_name)
            for name, column in columns_of(batch).items():
                request.inputs[name].CopyFrom(self._tensor(name, column, signature_name))
            return self._call(self._predictions.Predict, request, what,
                              lambda response: self._rows(response, len(batch)))

        return self._batched(instances, send, f"gRPC {self.target} Predict({self._which()})")

    def status(self) -> dict:
        """TF Serving's model status as the REST API writes it."""
        request = self._status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)

        def parse(response):
            answer = self._json.MessageToDict(response, always_print_fields_with_no_presence=True,
                                              preserving_proto_field_name=True)
            for entry in answer.get("model_version_status", []):
                entry.setdefault("status", {"error_code": "OK", "error_message": ""})
            return answer

        return self._call(self._models.GetModelStatus, request,
                          f"gRPC {self.target} GetModelStatus({self._which()})", parse)

    def metadata(self) -> dict:
        """TF Serving's model metadata (signature_def) as the REST API writes it."""
        request = self._metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)

        def parse(response):
            answer = {"model_spec": self._json.MessageToDict(
                response.model_spec, always_print_fields_with_no_presence=True, preserving_proto_field_name=True),
                "metadata": {}}
            for field, packed in response.metadata.items():
                signatures = self._metadata_pb2.SignatureDefMap()
                if not packed.Unpack(signatures):
                    raise AttemptFailed(f"metadata field {field!r} holds {packed.type_url}, not a SignatureDefMap",
                                        transient=False)
                answer["metadata"][field] = self._json.MessageToDict(
                    signatures, always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
                for signature in answer["metadata"][field].get("signature_def", {}).values():
                    if not signature.get("defaults"):  # empty input defaults: not in the REST examples
                        signature.pop("defaults", None)
            return answer

        return self._call(self._predictions.GetModelMetadata, request,
                          f"gRPC {self.target} GetModelMetadata({self._which()})", parse)

    def close(self) -> None:
        """Closes the channel and the batch threads."""
        super().close()
        self._channel.close()

    # --- tensors and calls ---

    def _tensor(self, name: str, column: list, signature_name: str):
        if all(isinstance(value, str) for value in column):
            # By hand: DT_STRING needs no dtype lookup and no numpy object arrays.
            from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

            return tensor_pb2.TensorProto(
                dtype=types_pb2.DT_STRING, string_val=[value.encode("utf-8") for value in column],
                tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(
                    size=len(column))]))
        import tensorflow as tf

        # Numbers: gRPC needs the signature's exact dtype (REST converts JSON numbers itself).
        return tf.make_tensor_proto(column, dtype=self._dtype(signature_name, name))

    def _dtype(self, signature_name: str, name: str):
        import tensorflow as tf

        if signature_name not in self._input_dtypes:
            signature = self.metadata()["metadata"]["signature_def"]["signature_def"].get(signature_name)
            if signature is None:
                raise ConfigError(f"{self._which()} has no signature {signature_name!r}. "
                                  f"Received: `signature_name`={signature_name!r}; see metadata().")
            self._input_dtypes[signature_name] = {key: spec["dtype"] for key, spec in signature["inputs"].items()}
        dtypes = self._input_dtypes[signature_name]
        if name not in dtypes:
            raise ConfigError(f"Signature {signature_name!r} has inputs {sorted(dtypes)}. Received: input {name!r}.")
        from tensorflow.core.framework import types_pb2

        return tf.dtypes.as_dtype(types_pb2.DataType.Value(dtypes[name]))  # "DT_INT32" -> tf.int32

    def _rows(self, response, count: int) -> list:
        import tensorflow as tf

        columns = {}
        for name, proto in response.outputs.items():
            array = tf.make_ndarray(proto)
            if array.ndim == 0 or array.shape[0] != count:
                raise AttemptFailed(f"the answer does not match the request: {count} instances sent but output "
                                    f"{name!r} has shape {list(array.shape)}", transient=False,
                                    hint=MISMATCH_HINT)
            columns[name] = array
        if len(columns) == 1:
            (array,) = columns.values()
            return [_plain(array[index]) for index in range(count)]
        return [{name: _plain(array[index]) for name, array in columns.items()} for index in range(count)]

    def _call(self, method, request, what: str, parse):
        grpc = self._grpc
        transient = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

        def attempt():
            try:
                response = method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
                details = error.details() if hasattr(error, "details") else str(error)
                raise AttemptFailed(f"gRPC {code.name}, server said: {details!r}", transient=code in transient,
                                    hint=self._hint(code)) from error
            return parse(response)

        return self._retry(attempt, what)

    def _hint(self, code) -> str:
        names = self._grpc.StatusCode
        return {
            names.NOT_FOUND: f"The server does not serve {self._which()}: check the model name and version "
                             "(status() lists the loaded versions).",
            names.INVALID_ARGUMENT: "The server rejected the request: check the input names and signature "
                                    "with metadata().",
            names.UNAVAILABLE: f"Is the gRPC server running and listening at {self.target}?",
            names.DEADLINE_EXCEEDED: "Raise `timeout` or check the server's load.",
            names.UNIMPLEMENTED: f"The server at {self.target} does not implement this method.",
        }.get(code, "")
