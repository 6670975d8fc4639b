"""TF Serving's REST protocol as pure functions: parse and check requests, shape answers.

Follows https://www.tensorflow.org/tfx/serving/api_rest: the row format
(`"instances"`, answered with `"predictions"`) and the columnar format
(`"inputs"`, answered with `"outputs"`); a model with a single output gets
bare values instead of objects keyed by the output name. Every refusal is a
`RequestError` carrying the HTTP status and a message that says what was
expected, what was received and how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from typing import Any, Sequence

from kerastune_nlp.errors import ServingError

SIGNATURE_NAME = "serving_default"
METHOD_NAME = "tensorflow/serving/predict"
AGGREGATIONS = ("first", "average", "max")
DTYPES = {"string": "DT_STRING", "float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int32": "DT_INT32",
          "int64": "DT_INT64", "bool": "DT_BOOL"}


class RequestError(ServingError):
    """A request the server refuses; `status` is the HTTP status code (4xx).

    Args:
        message: str. What was expected, what was received, how to fix it.
        status: int. HTTP status code. Defaults to 400.
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class ModelTarget:
    """What a `/v1/models/...` path asks for."""

    name: str
    version: int | None
    action: str  # "status" | "metadata" | "predict" | "entities"


_MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]*)|/labels/(?P<label>[^/:]*))?"
                         r"(?P<suffix>/metadata|:[^/]*)?$")
_VERBS = {"predict": "predict", "entities": "entities"}


def parse_model_path(rest: str, method: str) -> ModelTarget:
    """`<name>[/versions/<v>][/metadata | :predict | :entities]` -> a `ModelTarget`."""
    match = _MODEL_PATH.match(rest)
    if match is None:
        raise RequestError(f"Malformed request: {method} /v1/models/{rest}. Expected /v1/models/<name>"
                           "[/versions/<version>] with /metadata, :predict or :entities.", 404)
    if match["label"] is not None:
        raise RequestError(f"Version labels are not supported. Received: label {match['label']!r}. "
                           "Ask for /v1/models/<name>/versions/<number> instead.")
    version = None
    if match["version"] is not None:
        if not match["version"].isdigit():
            raise RequestError(f"Expected a version number. Received: versions/{match['version']!r}. "
                               "Use /v1/models/<name>/versions/<number>, e.g. versions/1.")
        version = int(match["version"])
    suffix = match["suffix"] or ""
    if suffix.startswith(":"):
        verb = suffix[1:]
        if verb not in _VERBS:
            hint = " (classify and regress take tf.Example protos, which this server does not)" \
                if verb in ("classify", "regress") else ""
            raise RequestError(f"Unknown method :{verb}{hint}. Expected :predict or :entities.")
        if method != "POST":
            raise RequestError(f"{method} is not allowed on :{verb}; send a POST with a JSON body.", 405)
        return ModelTarget(match["name"], version, _VERBS[verb])
    if method != "GET":
        raise RequestError(f"{method} is not allowed on /v1/models/{rest}; GET it for the model status or "
                           "metadata, or POST to /v1/models/<name>:predict.", 405)
    return ModelTarget(match["name"], version, "metadata" if suffix == "/metadata" else "status")


def parse_json(body: bytes) -> dict:
    """The request body as a JSON object."""
    if not body.strip():
        raise RequestError('Empty request body. Expected a JSON object such as {"instances": ["some text"]}.')
    try:
        payload = json.loads(body)
    except UnicodeDecodeError:
        raise RequestError("The request body is not UTF-8. Send JSON encoded as UTF-8.") from None
    except json.JSONDecodeError as error:
        raise RequestError(f"The request body is not valid JSON: {error.msg} at line {error.lineno}, column "
                           f"{error.colno}. Send a JSON object such as {{\"instances\": [\"some text\"]}}.") from None
    if not isinstance(payload, dict):
        raise RequestError(f"Expected a JSON object with \"instances\" or \"inputs\". Received: a JSON "
                           f"{_json_type(payload)}. Wrap it, e.g. {{\"instances\": [\"some text\"]}}.")
    return payload


def _json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _text(value, where: str) -> str:
    """One input value: a non-empty string, or TF Serving's {"b64": ...} for bytes."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            value = base64.b64decode(value["b64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise RequestError(f"Expected base64 of UTF-8 text in {{\"b64\": ...}} for {where}. Received: "
                               f"{str(value['b64'])[:40]!r}. Send the text as a plain JSON string.") from None
    if not isinstance(value, str):
        raise RequestError(f"Expected a string for {where}. Received: {json.dumps(value)[:60]} "
                           f"({_json_type(value)}). Send each text as a JSON string.")
    if not value.strip():
        raise RequestError(f"Expected non-empty text for {where}. Received: {value!r}. Drop that instance or "
                           "send real text.")
    return value


def _names(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def check_count(count: int, max_instances: int) -> None:
    if count == 0:
        raise RequestError("Expected at least one instance. Received: an empty list. Send one or more texts.")
    if count > max_instances:
        raise RequestError(f"Too many instances: {count} in one request, at most {max_instances} "
                           "(--max-instances). Split the request into smaller ones.", 413)


def check_signature_name(payload: dict) -> None:
    name = payload.get("signature_name", SIGNATURE_NAME)
    if name != SIGNATURE_NAME:
        raise RequestError(f"Unknown signature_name {name!r}. Available signatures: [\"{SIGNATURE_NAME}\"]. "
                           "Leave signature_name out or set it to \"serving_default\".")


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """A checked `:predict` request: one list of texts per signature input, and its format."""

    inputs: dict[str, list[str]]
    columnar: bool

    @property
    def count(self) -> int:
        return len(next(iter(self.inputs.values())))


def parse_predict(payload: dict, input_names: Sequence[str], max_instances: int) -> PredictRequest:
    """Checks a `:predict` body in the row or the columnar format.

    Args:
        payload: dict. The parsed JSON body.
        input_names: the signature's inputs, e.g. ["text"] or ["text", "text_pair"].
        max_instances: int. The most instances one request may carry.
    """
    unknown = sorted(set(payload) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise RequestError(f"Unknown key(s) {_names(unknown)} in the request. Expected \"instances\" (row "
                           "format) or \"inputs\" (columnar format), and optionally \"signature_name\".")
    check_signature_name(payload)
    if ("instances" in payload) == ("inputs" in payload):
        both = "both" if "instances" in payload else "neither"
        raise RequestError(f"Expected exactly one of \"instances\" or \"inputs\". Received: {both}. Send "
                           "{\"instances\": [\"text\", ...]} or {\"inputs\": {\"text\": [\"text\", ...]}}.")
    if "instances" in payload:
        return PredictRequest(_rows(payload["instances"], list(input_names), max_instances), columnar=False)
    return PredictRequest(_columns(payload["inputs"], list(input_names), max_instances), columnar=True)


def _rows(instances, names: list[str], max_instances: int) -> dict[str, list[str]]:
    if not isinstance(instances, list):
        raise RequestError(f"Expected \"instances\" to be a list. Received: a JSON {_json_type(instances)}. "
                           "Send {\"instances\": [\"text\", ...]}.")
    check_count(len(instances), max_instances)
    columns: dict[str, list[str]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        single = len(names) == 1 and not (isinstance(instance, dict) and set(instance) != {"b64"})
        if single:
            columns[names[0]].append(_text(instance, f"instance {index}"))
            continue
        if not isinstance(instance, dict):
            raise RequestError(f"Expected instance {index} to be an object with keys {_names(names)} (the model "
                               f"has {len(names)} inputs). Received: a JSON {_json_type(instance)}.")
        missing, extra = [n for n in names if n not in instance], sorted(set(instance) - set(names))
        if missing or extra:
            raise RequestError(f"Instance {index} has keys {_names(sorted(instance))}. Expected exactly "
                               f"{_names(names)}" + (f"; missing {_names(missing)}" if missing else "")
                               + (f"; unknown {_names(extra)}" if extra else "") + ".")
        for name in names:
            columns[name].append(_text(instance[name], f"input \"{name}\" of instance {index}"))
    return columns


def _columns(inputs, names: list[str], max_instances: int) -> dict[str, list[str]]:
    if isinstance(inputs, list) and len(names) == 1:
        inputs = {names[0]: inputs}
    if not isinstance(inputs, dict):
        expected = f"an object {{{_names(names)}: [...]}}" + (" or a list of texts" if len(names) == 1 else "")
        raise RequestError(f"Expected \"inputs\" to be {expected}. Received: a JSON {_json_type(inputs)}.")
    return parse_columns(inputs, names, max_instances)


def parse_columns(inputs: dict, names: Sequence[str], max_instances: int) -> dict[str, list[str]]:
    """Checks named input columns (the columnar REST format and gRPC): every input, same lengths."""
    names = list(names)
    missing, extra = [n for n in names if n not in inputs], sorted(set(inputs) - set(names))
    if missing or extra:
        raise RequestError(f"Wrong input names: received {_names(sorted(inputs))}, expected {_names(names)}"
                           + (f"; missing {_names(missing)}" if missing else "")
                           + (f"; unknown {_names(extra)}" if extra else "")
                           + ". Name the inputs as in the model's metadata (GET /v1/models/<name>/metadata).")
    columns = {}
    for name in names:
        values = inputs[name]
        if not isinstance(values, list):
            raise RequestError(f"Expected input \"{name}\" to be a list of texts (shape [-1]). Received: a JSON "
                               f"{_json_type(values)}. Wrap a single text in a list.")
        check_count(len(values), max_instances)
        columns[name] = [_text(value, f"input \"{name}\" at index {i}") for i, value in enumerate(values)]
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise RequestError("Expected every input to hold the same number of texts. Received: "
                           + ", ".join(f"\"{n}\": {k}" for n, k in lengths.items()) + ".")
    return columns


def parse_entities(payload: dict, max_instances: int) -> tuple[list, str]:
    """Checks an `:entities` body -> (texts, or `Document`s for a "documents" body; aggregation)."""
    unknown = sorted(set(payload) - {"instances", "documents", "aggregation", "signature_name"})
    if unknown:
        raise RequestError(f"Unknown key(s) {_names(unknown)} in the request. Expected \"instances\" (or "
                           "\"documents\") and optionally \"aggregation\" (" + " | ".join(AGGREGATIONS) + ").")
    check_signature_name(payload)
    if ("instances" in payload) == ("documents" in payload):
        raise RequestError(("Both \"instances\" and \"documents\" given; send one. " if "documents" in payload
                            else "Missing \"instances\". ") + "Send {\"instances\": [\"raw text\", ...], "
                           "\"aggregation\": \"first\"} or {\"documents\": [{\"sentences\": [\"...\", ...]} "
                           "| {\"text\": \"...\"}, ...]}.")
    aggregation = payload.get("aggregation", "first")
    if aggregation not in AGGREGATIONS:
        raise RequestError(f"Unknown aggregation. Received: {json.dumps(aggregation)}. Expected one of "
                           + ", ".join(AGGREGATIONS) + ".")
    if "documents" in payload:
        return parse_documents(payload["documents"], max_instances), aggregation
    texts = _rows(payload["instances"], ["text"], max_instances)["text"]
    return texts, aggregation


def parse_documents(documents, max_instances: int) -> list:
    """`:entities` documents -> `Document`s; at most `max_instances` sentences in all.

    A document is `{"sentences": ["...", ...]}` (offsets into each sentence),
    `{"text": "..."}` or a bare string (cut into sentences; offsets into the text).
    """
    from kerastune_nlp.data.documents import Document

    if not isinstance(documents, list):
        raise RequestError(f"Expected \"documents\" to be a list. Received: a JSON {_json_type(documents)}. "
                           "Send {\"documents\": [{\"sentences\": [\"...\", ...]} | {\"text\": \"...\"}, ...]}.")
    check_count(len(documents), max_instances)
    parsed = []
    for index, document in enumerate(documents):
        where = f"documents[{index}]"
        if isinstance(document, str) or (isinstance(document, dict) and set(document) == {"text"}):
            text = document if isinstance(document, str) else document["text"]
            parsed.append(Document.from_text(_text(text, where + ("" if isinstance(document, str) else ".text"))))
        elif isinstance(document, dict) and set(document) == {"sentences"}:
            sentences = document["sentences"]
            if not isinstance(sentences, list) or not sentences:
                raise RequestError(f"Expected {where}.sentences to be a non-empty list of strings. Received: "
                                   f"{json.dumps(sentences)[:60]}.")
            parsed.append(Document.from_sentences(
                [_text(s, f"{where}.sentences[{k}]") for k, s in enumerate(sentences)]))
        else:
            shown = _names(sorted(document)) if isinstance(document, dict) else f"a JSON {_json_type(document)}"
            raise RequestError(f"Expected {where} to be {{\"sentences\": [...]}}, {{\"text\": \"...\"}} or a "
                               f"string. Received: {shown}.")
    sentences = sum(len(d.sentences) for d in parsed)
    if sentences > max_instances:
        raise RequestError(f"Too many sentences: {sentences} in one request's documents, at most {max_instances} "
                           "(--max-instances). Split the request into smaller ones.", 413)
    return parsed


def to_json(value) -> Any:
    """numpy scalars and arrays, bytes and tuples -> plain JSON values."""
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_json(value.tolist())
    return value


def predict_response(results: list[dict], output_names: Sequence[str], columnar: bool) -> dict:
    """TF Serving's answer: bare values when the signature has a single output."""
    names = list(output_names) or list(results[0])
    results = [to_json(r) for r in results]
    if columnar:
        outputs = {name: [r[name] for r in results] for name in names}
        return {"outputs": outputs[names[0]] if len(names) == 1 else outputs}
    if len(names) == 1:
        return {"predictions": [r[names[0]] for r in results]}
    return {"predictions": [{name: r[name] for name in names} for r in results]}


def version_status(version: int, state: str, error: str | None = None) -> dict:
    """One entry of `model_version_status` (TF Serving's ModelVersionStatus as JSON)."""
    return {"version": str(version), "state": state,
            "status": {"error_code": "UNKNOWN" if error else "OK", "error_message": error or ""}}


def _tensor_info(name: str, spec: dict, tensor_name: str) -> dict:
    return {"dtype": DTYPES.get(spec.get("dtype"), "DT_INVALID"),
            "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in spec.get("shape", [-1])],
                             "unknown_rank": False},
            "name": tensor_name}


def signature_def(signature: dict) -> dict:
    """`Predictor.serving_signature()` -> TF Serving's SignatureDef JSON for `serving_default`."""
    inputs = {name: _tensor_info(name, spec, f"{SIGNATURE_NAME}_{name}:0")
              for name, spec in signature["inputs"].items()}
    outputs = {name: _tensor_info(name, spec, f"StatefulPartitionedCall:{index}")
               for index, (name, spec) in enumerate(signature["outputs"].items())}
    return {"inputs": inputs, "outputs": outputs, "method_name": METHOD_NAME}


def metadata_response(name: str, version: int, signature: dict) -> dict:
    """TF Serving's GetModelMetadata answer as JSON (`signature_name` is empty there too)."""
    return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE_NAME: signature_def(signature)}}}}


def error_body(message: str) -> dict:
    return {"error": message}
