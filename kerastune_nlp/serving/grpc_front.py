"""TF Serving's gRPC API on the same registry and batchers as the REST front.

`PredictionService.Predict` and `GetModelMetadata`, `ModelService.GetModelStatus`
(the stubs of the `tensorflow-serving-api` package). Inputs are 1-D string
TensorProtos named like the signature inputs; outputs are TensorProtos named
like the REST outputs, padded to a rectangle per output (ragged word lists
get "" / 0 / False after each text's `word_count` words, as in the SavedModel).
The status and metadata protos are parsed from the REST JSON, which is their
JSON form, so both fronts say exactly the same thing.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.serving import protocol
from kerastune_nlp.serving.batching import BatcherClosedError
from kerastune_nlp.serving.protocol import RequestError

logger = logging.getLogger(__name__)

_HTTP_OF = {grpc.StatusCode.OK: 200, grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
            grpc.StatusCode.RESOURCE_EXHAUSTED: 413, grpc.StatusCode.UNAVAILABLE: 503,
            grpc.StatusCode.INTERNAL: 500}
_NUMPY = {"string": object, "float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64,
          "bool": np.bool_}
_FILL = {"string": b"", "bool": False}


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _code_of(error: RequestError) -> grpc.StatusCode:
    return {404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED}.get(
        error.status, grpc.StatusCode.INVALID_ARGUMENT)


def _shape(value) -> tuple:
    """Longest length at each depth of nested lists."""
    if not isinstance(value, list):
        return ()
    inner = [_shape(item) for item in value]
    depth = max((len(s) for s in inner), default=0)
    return (len(value),) + tuple(max(s[i] for s in inner if len(s) > i) for i in range(depth))


def _place(array: np.ndarray, value, index: tuple = ()) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _place(array, item, index + (i,))
    else:
        array[index] = value.encode("utf-8") if isinstance(value, str) else value


def to_tensor_proto(values: list, dtype: str):
    """One output across instances -> a TensorProto, padding ragged rows with ""/0/False."""
    from kerastune_nlp._tf import tf

    array = np.full(_shape(values), _FILL.get(dtype, 0), dtype=_NUMPY.get(dtype, object))
    _place(array, values)
    return tf.make_tensor_proto(array)


def _texts(name: str, tensor) -> list[str]:
    from kerastune_nlp._tf import tf

    if tensor.dtype != tf.string.as_datatype_enum:
        raise RequestError(f"Expected input \"{name}\" to be a DT_STRING tensor. Received: dtype "
                           f"{tf.dtypes.as_dtype(tensor.dtype).name}. Send texts with tf.make_tensor_proto([...]).")
    array = tf.make_ndarray(tensor)
    if array.ndim != 1:
        raise RequestError(f"Expected input \"{name}\" to be 1-D (shape [-1], one text per instance). Received: "
                           f"shape {list(array.shape)}. Send a flat list of texts.")
    try:
        return [value.decode("utf-8") for value in array.tolist()]
    except UnicodeDecodeError:
        raise RequestError(f"Expected UTF-8 text in input \"{name}\". Encode the texts as UTF-8.") from None


class _Front:
    """Routing, error mapping and metrics shared by both services."""

    def __init__(self, registry, metrics):
        self.registry, self.metrics = registry, metrics

    def answer(self, route: str, spec, context, work):
        started, code, reason = time.perf_counter(), grpc.StatusCode.OK, ""
        try:
            if spec.WhichOneof("version_choice") == "version_label":
                raise RequestError(f"Version labels are not supported. Received: version_label "
                                   f"{spec.version_label!r}. Set model_spec.version instead.")
            version = spec.version.value if spec.HasField("version") else None
            return work(spec.name, version)
        except RequestError as error:
            code, message, reason = _code_of(error), str(error), "request"
        except ConfigError as error:
            code, message, reason = grpc.StatusCode.INVALID_ARGUMENT, str(error), "predictor_input"
        except BatcherClosedError as error:
            code, message, reason = grpc.StatusCode.UNAVAILABLE, str(error), "unavailable"
        except Exception as error:  # noqa: BLE001  (a status, never a dropped call)
            logger.exception("gRPC %s failed", route)
            code, message, reason = grpc.StatusCode.INTERNAL, f"Internal error: {type(error).__name__}: {error}", \
                "server"
        finally:
            model = spec.name if spec.name == self.registry.name else ""
            self.metrics.observe_request(model, route, _HTTP_OF[code], time.perf_counter() - started, reason)
        context.abort(code, message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata (Classify, Regress and MultiInference answer UNIMPLEMENTED)."""

    def __init__(self, front: _Front):
        self.front = front

    def Predict(self, request, context):  # noqa: N802  (gRPC method name)
        def work(name, number):
            protocol.check_signature_name({"signature_name": request.model_spec.signature_name or
                                           protocol.SIGNATURE_NAME})
            with self.front.registry.acquire(name, number) as version:
                inputs = {key: _texts(key, tensor) for key, tensor in request.inputs.items()}
                columns = protocol.parse_columns(inputs, version.input_names, self.front.registry.options.max_instances)
                wanted = list(request.output_filter) or version.output_names
                unknown = [n for n in wanted if n not in version.output_names]
                if unknown:
                    raise RequestError(f"Unknown output(s) {unknown} in output_filter. Available: "
                                       f"{version.output_names}.")
                results = version.submit(("predict",), columns).result()
                response = predict_pb2.PredictResponse()
                response.model_spec.name, response.model_spec.signature_name = name, protocol.SIGNATURE_NAME
                response.model_spec.version.value = version.number
                for output in wanted:
                    values = protocol.to_json([r[output] for r in results])
                    response.outputs[output].CopyFrom(
                        to_tensor_proto(values, version.signature["outputs"][output]["dtype"]))
                return response

        return self.front.answer("grpc_predict", request.model_spec, context, work)

    def GetModelMetadata(self, request, context):  # noqa: N802
        def work(name, number):
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise RequestError(f"Expected metadata_field [\"signature_def\"] (the only one TF Serving knows). "
                                   f"Received: {fields}.")
            with self.front.registry.acquire(name, number) as version:
                answer = protocol.metadata_response(version.name, version.number, version.signature)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            json_format.ParseDict({"model_spec": answer["model_spec"]}, response)
            signatures = get_model_metadata_pb2.SignatureDefMap()
            json_format.ParseDict(answer["metadata"]["signature_def"], signatures)
            response.metadata["signature_def"].Pack(signatures)
            return response

        return self.front.answer("grpc_metadata", request.model_spec, context, work)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus (HandleReloadConfigRequest answers UNIMPLEMENTED: versions come from the folder)."""

    def __init__(self, front: _Front):
        self.front = front

    def GetModelStatus(self, request, context):  # noqa: N802
        def work(name, number):
            versions = self.front.registry.versions(name, number)
            statuses = [protocol.version_status(v.number, v.state, v.error) for v in versions]
            return json_format.ParseDict({"model_version_status": statuses},
                                         get_model_status_pb2.GetModelStatusResponse())

        return self.front.answer("grpc_status", request.model_spec, context, work)


def start_grpc_server(registry, metrics, host: str = "127.0.0.1", port: int = 8500, workers: int = 16):
    """Starts the gRPC front; returns `(server, bound_port)`.

    Args:
        registry: a started `ModelRegistry`.
        metrics: `ServerMetrics`.
        host: str. Interface to bind. Defaults to "127.0.0.1".
        port: int. Port (TF Serving's is 8500); 0 picks a free one. Defaults to 8500.
        workers: int. Threads answering calls; concurrent calls are what the batcher merges. Defaults to 16.
    """
    from kerastune_nlp.errors import ServingError

    limit = registry.options.max_body_bytes
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
                         options=[("grpc.max_receive_message_length", limit)])
    front = _Front(registry, metrics)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(front), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(front), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise ServingError(f"The gRPC server could not listen on {address} ({error}). Pass a free --grpc-port.") \
            from None
    if bound == 0:
        raise ServingError(f"The gRPC server could not listen on {address}. Pass a free --grpc-port.")
    server.start()
    return server, bound
