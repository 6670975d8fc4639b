"""The model server: TF Serving's REST and gRPC APIs, batching, validation, hot reload, the CLI.

One tiny NER run (exported as a SavedModel) and one classification run (served
from its run directory) are shared by the module; every answer is compared
with a separately loaded Predictor of the same artifact.
"""

import concurrent.futures
import importlib.util
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.inference import load_predictor
from kerastune_nlp.serving.background import serve_in_background
from kerastune_nlp.serving.batching import Batcher
from kerastune_nlp.serving.registry import _call_predictor

_client_spec = importlib.util.spec_from_file_location("serving_client_tests", Path(__file__).parent / "test_client.py")
client_tests = importlib.util.module_from_spec(_client_spec)
_client_spec.loader.exec_module(client_tests)

NER_TEXTS = ["Barack Obama met Angela Merkel in Berlin", "Paris is lovely", "  Zürich,  São Paulo\tand New York "]
CLS_TEXTS = ["Who wrote Hamlet ?", "What is the capital of France ?", "How far is the moon ?"]


@pytest.fixture(scope="module")
def artifacts(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    cls_run = tiny_run("classification")
    # A copy of the shared NER SavedModel (answers differ per text): the version tests add folders to it.
    shutil.copytree(client_tests.exported_model(tmp_path_factory, tiny_run, "ner"), root / "export" / "serving" / "ner")
    return {"ner_base": root / "export" / "serving" / "ner", "cls_run": cls_run, "root": root}


@pytest.fixture(scope="module")
def ner(artifacts):
    """A NER server on a TF Serving model base folder (REST and gRPC), and a direct predictor."""
    with serve_in_background(artifacts["ner_base"], grpc_port=0, batch_timeout_ms=30, max_instances=16,
                             max_body_bytes=20_000) as server:
        server.direct = load_predictor(artifacts["ner_base"] / "1", cache_size=0)
        server.name = "ner"
        yield server


@pytest.fixture(scope="module")
def cls(artifacts):
    """A classification server on a run directory (served as version 1), and a direct predictor."""
    with serve_in_background(artifacts["cls_run"], model_name="trec", max_instances=16,
                             max_body_bytes=20_000) as server:
        server.direct = load_predictor(artifacts["cls_run"], cache_size=0)
        server.name = "trec"
        yield server


@pytest.fixture(params=["ner", "cls"])
def server(request):
    return request.getfixturevalue(request.param)


def texts_for(server):
    return NER_TEXTS if server.name == "ner" else CLS_TEXTS


def assert_same(answer, expected, path="answer"):
    """Equal, with floats to 1e-5 (batched and single calls pad differently)."""
    if isinstance(expected, dict):
        assert isinstance(answer, dict) and set(answer) == set(expected), (path, answer, expected)
        for key in expected:
            assert_same(answer[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(answer, list) and len(answer) == len(expected), (path, answer, expected)
        for i, (a, e) in enumerate(zip(answer, expected)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert math.isclose(answer, expected, abs_tol=1e-5), (path, answer, expected)
    else:
        assert answer == expected, (path, answer, expected)


def post(server, path, **kwargs):
    return httpx.post(f"{server.url}/v1/models/{path}", timeout=60, **kwargs)


def get(server, path):
    return httpx.get(f"{server.url}{path}", timeout=60)


# -- status, metadata, health, metrics ----------------------------------------------------------------------


def test_status_metadata_and_health_follow_tf_serving(server):
    ok = {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    for path in (f"/v1/models/{server.name}", f"/v1/models/{server.name}/versions/1"):
        response = get(server, path)
        assert response.status_code == 200 and response.json() == {"model_version_status": [ok]}
    signature = server.direct.serving_signature()
    for path in (f"/v1/models/{server.name}/metadata", f"/v1/models/{server.name}/versions/1/metadata"):
        metadata = get(server, path).json()
        assert metadata["model_spec"] == {"name": server.name, "signature_name": "", "version": "1"}
        serving = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert serving["method_name"] == "tensorflow/serving/predict"
        assert serving["inputs"]["text"]["dtype"] == "DT_STRING"
        assert serving["inputs"]["text"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
        assert list(serving["outputs"]) == list(signature["outputs"])
    health = get(server, "/health")
    assert health.status_code == 200 and health.json()["models"][server.name]["available_versions"] == [1]
    missing = get(server, "/v1/models/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    missing = get(server, f"/v1/models/{server.name}/versions/7")
    assert missing.status_code == 404 and "version 7" in missing.json()["error"]
    unknown = get(server, "/v2/models")
    assert unknown.status_code == 404 and "Unknown path GET /v2/models" in unknown.json()["error"]


# -- :predict in both formats, :entities ------------------------------------------------------------------


def test_row_and_columnar_predict_equal_the_predictor(server):
    texts = texts_for(server)
    expected = server.direct.serve({"text": texts})
    names = list(server.direct.serving_signature()["outputs"])
    for path in (f"{server.name}:predict", f"{server.name}/versions/1:predict"):
        rows = post(server, path, json={"instances": texts})
        assert rows.status_code == 200, rows.text
        assert_same(rows.json(), {"predictions": expected})
        objects = post(server, path, json={"instances": [{"text": t} for t in texts],
                                           "signature_name": "serving_default"})
        assert_same(objects.json(), {"predictions": expected})
    columns = {name: [e[name] for e in expected] for name in names}
    for inputs in ({"text": texts}, texts):
        response = post(server, f"{server.name}:predict", json={"inputs": inputs})
        assert response.status_code == 200, response.text
        assert_same(response.json(), {"outputs": columns})
    # TF Serving's {"b64": ...} form of a string input.
    b64 = post(server, f"{server.name}:predict", json={"instances": [{"b64": "UGFyaXMgaXMgbG92ZWx5"}]})
    assert_same(b64.json(), {"predictions": server.direct.serve({"text": ["Paris is lovely"]})})


def test_entities_equal_the_predictor_and_are_refused_for_other_tasks(ner, cls):
    for aggregation in ("first", "average", "max"):
        response = post(ner, "ner:entities", json={"instances": NER_TEXTS, "aggregation": aggregation})
        assert response.status_code == 200, response.text
        assert_same(response.json(), {"predictions": ner.direct.predict_entities(NER_TEXTS, aggregation)})
    default = post(ner, "ner/versions/1:entities", json={"instances": NER_TEXTS})
    assert_same(default.json(), {"predictions": ner.direct.predict_entities(NER_TEXTS)})
    refused = post(cls, "trec:entities", json={"instances": CLS_TEXTS})
    assert refused.status_code == 400 and "needs a NER model" in refused.json()["error"]
    assert "classification" in refused.json()["error"]


# -- validation ---------------------------------------------------------------------------------------------

BAD_REQUESTS = [
    ("bad json", dict(content=b'{"instances": ["a",]}'), 400, r"not valid JSON: .* line 1, column"),
    ("not an object", dict(json=["a"]), 400, r"Expected a JSON object .* Received: a JSON array"),
    ("no instances", dict(json={"text": ["a"]}), 400, r"Unknown key\(s\) \"text\""),
    ("both formats", dict(json={"instances": ["a"], "inputs": ["a"]}), 400, r"exactly one of .* Received: both"),
    ("wrong input name (rows)", dict(json={"instances": [{"txt": "a"}]}), 400,
     r"Instance 0 has keys \"txt\"\. Expected exactly \"text\"; missing \"text\"; unknown \"txt\""),
    ("wrong input name (columns)", dict(json={"inputs": {"txt": ["a"]}}), 400,
     r"Wrong input names: received \"txt\", expected \"text\".*metadata"),
    ("wrong type", dict(json={"instances": ["a", 5]}), 400, r"Expected a string for instance 1\. Received: 5 \(number\)"),
    ("not a list", dict(json={"instances": "a"}), 400, r"Expected \"instances\" to be a list\. Received: a JSON string"),
    ("empty instances", dict(json={"instances": []}), 400, r"at least one instance"),
    ("empty string", dict(json={"instances": ["a", "  "]}), 400, r"non-empty text for instance 1"),
    ("too many", dict(json={"instances": ["a"] * 17}), 413, r"Too many instances: 17 .* at most 16 \(--max-instances\)"),
    ("signature", dict(json={"instances": ["a"], "signature_name": "ids"}), 400,
     r"Unknown signature_name 'ids'\. Available signatures: \[\"serving_default\"\]"),
    ("oversized", dict(json={"instances": ["word " * 5000]}), 413, r"Content-Length \d+ bytes, at most 20000"),
    ("oversized chunked", dict(content=iter([b'{"instances": ["', b"x" * 25_000, b'"]}'])), 413,
     r"more than 20000 bytes read"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_naming_the_problem(cls, case):
    _, kwargs, status, message = case
    response = post(cls, "trec:predict", **kwargs)
    assert response.status_code == status, response.text
    assert re.search(message, response.json()["error"]), response.json()["error"]


@pytest.mark.parametrize("path, method, status, message", [
    ("trec:classify", "POST", 400, r"Unknown method :classify .*tf\.Example"),
    ("trec:predict", "GET", 405, r"send a POST"),
    ("nope:predict", "POST", 404, r"Servable not found for request: Latest\(nope\)\. Serving 'trec' versions \[1\]"),
    ("trec/versions/3:predict", "POST", 404, r"Specific\(trec, 3\)"),
    ("trec/versions/x:predict", "POST", 400, r"Expected a version number"),
    ("trec:entities", "POST", 400, r"needs a NER model"),
])
def test_wrong_paths_and_models_answer_like_tf_serving(cls, path, method, status, message):
    response = httpx.request(method, f"{cls.url}/v1/models/{path}", json={"instances": ["a"]})
    assert response.status_code == status and re.search(message, response.json()["error"]), response.text


def test_entities_take_documents(ner):
    documents = [{"sentences": NER_TEXTS[:2]}, {"text": ". ".join(NER_TEXTS)}, "Paris is lovely. Berlin too"]
    response = post(ner, "ner:entities", json={"documents": documents, "aggregation": "max"})
    assert response.status_code == 200, response.text
    expected = ner.direct.predict_entities(documents=[NER_TEXTS[:2], ". ".join(NER_TEXTS), documents[2]],
                                           aggregation="max")
    assert_same(response.json(), {"predictions": expected})
    text = ". ".join(NER_TEXTS)
    for sentence in response.json()["predictions"][1]:
        assert text[sentence["start"]:sentence["end"]] == sentence["text"]
        assert all(text[e["start"]:e["end"]] == e["text"] for e in sentence["entities"])


@pytest.mark.parametrize("body, message", [
    ({"documents": [{"sentences": ["fine", 3]}]}, r"documents\[0\]\.sentences\[1\]"),
    ({"documents": [{"text": "  "}]}, r"non-empty text for documents\[0\]\.text"),
    ({"documents": [{"sentence": ["a"]}]}, r"Expected documents\[0\] to be .*Received: \"sentence\""),
    ({"documents": {"text": "a"}}, r"Expected \"documents\" to be a list"),
    ({"documents": [{"sentences": ["a"] * 17}]}, r"Too many sentences: 17"),
    ({"documents": ["a"], "instances": ["b"]}, r"Both \"instances\" and \"documents\""),
])
def test_bad_entity_documents_name_the_field(ner, body, message):
    response = post(ner, "ner:entities", json=body)
    assert response.status_code in (400, 413) and re.search(message, response.json()["error"]), response.text


def test_bad_entities_requests(ner):
    response = post(ner, "ner:entities", json={"instances": ["a"], "aggregation": "mean"})
    assert response.status_code == 400 and 'Received: "mean". Expected one of first, average, max' in \
        response.json()["error"]
    response = post(ner, "ner:entities", json={"instances": [""]})
    assert response.status_code == 400 and "non-empty text" in response.json()["error"]


# -- batching -------------------------------------------------------------------------------------------------


def test_concurrent_requests_are_merged_and_each_gets_its_own_answer(ner):
    requests = [[f"Visit {city} number {i}" for i in range(1 + k % 3)]
                for k, city in enumerate(["Paris", "Berlin", "New York", "Tokyo", "Lima", "Oslo"] * 4)]
    before = ner.metrics.batch_requests.counts(("ner", 1))
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda texts: post(ner, "ner:predict", json={"instances": texts}), requests))
    for texts, answer in zip(requests, answers):
        assert answer.status_code == 200, answer.text
        assert_same(answer.json()["predictions"], ner.direct.serve({"text": texts}))
    after = ner.metrics.batch_requests.counts(("ner", 1))
    merged = sum(count - before.get(bound, 0) for bound, count in after.items() if bound > 1)
    assert merged >= 1, after  # at least one predictor call answered several requests
    exposition = get(ner, "/metrics").text
    sizes = re.findall(r'kerastune_nlp_batch_size_bucket\{model="ner",version="1",le="(\S+)"\} (\d+)', exposition)
    assert int(dict(sizes)["1"]) < int(dict(sizes)["+Inf"])  # some batches held more than one instance
    assert re.search(r'kerastune_nlp_requests_total\{model="ner",route="predict",code="200"\} \d+', exposition)
    assert re.search(r'kerastune_nlp_predictor_cache_misses_total\{model="ner",version="1"\} \d+', exposition)
    assert 'kerastune_nlp_request_latency_seconds_bucket{model="ner",route="predict",le="+Inf"}' in exposition


def test_a_request_failing_inside_a_merged_batch_fails_alone(cls):
    calls = []
    serve = _call_predictor(cls.direct)

    def recording(key, inputs):
        calls.append(len(inputs["text"]))
        return serve(key, inputs)

    batcher = Batcher(recording, max_batch_size=32, timeout_ms=500)
    try:
        # Queued before the worker's 500 ms window closes, so the first call merges all four.
        jobs = [{"text": [CLS_TEXTS[0]]}, {"text": [5]}, {"text": CLS_TEXTS[1:]}, {"text": [CLS_TEXTS[0]]}]
        futures = [batcher.submit(("predict",), job) for job in jobs]
        with pytest.raises(ConfigError, match=r"Expected input 'text' to hold strings\. Received: int at index 0"):
            futures[1].result(timeout=60)
        for job, future in zip(jobs, futures):
            if future is not futures[1]:
                assert_same(future.result(timeout=60), cls.direct.serve(job))
    finally:
        batcher.close()
    assert calls == [5, 1, 1, 2, 1]  # one merged call that failed, then each request alone


def test_batch_size_one_never_merges(cls):
    calls = []
    batcher = Batcher(lambda key, inputs: calls.append(len(inputs["text"])) or inputs["text"],
                      max_batch_size=1, timeout_ms=200)
    futures = [batcher.submit(("predict",), {"text": [str(i)]}) for i in range(4)]
    big = batcher.submit(("predict",), {"text": ["a", "b", "c"]})  # larger than the batch: runs whole, alone
    assert [f.result(timeout=10) for f in futures] == [["0"], ["1"], ["2"], ["3"]]
    assert big.result(timeout=10) == ["a", "b", "c"]
    batcher.close()
    assert calls == [1, 1, 1, 1, 3]


# -- gRPC -----------------------------------------------------------------------------------------------------


def test_grpc_predict_status_and_metadata(ner):
    import grpc
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                         predict_pb2, prediction_service_pb2_grpc)

    from kerastune_nlp._tf import tf

    with grpc.insecure_channel(f"127.0.0.1:{ner.grpc_port}") as channel:
        prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "ner"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(NER_TEXTS))
        response = prediction.Predict(request, timeout=60)
        assert response.model_spec.version.value == 1
        expected = ner.direct.serve({"text": NER_TEXTS})
        for row, record in enumerate(expected):
            count = record["word_count"]
            assert tf.make_ndarray(response.outputs["word_count"])[row] == count
            words = [w.decode() for w in tf.make_ndarray(response.outputs["words"])[row][:count]]
            assert words == record["words"] and tf.make_ndarray(response.outputs["start"])[row][:count].tolist() \
                == record["start"]
            assert_same(tf.make_ndarray(response.outputs["scores"])[row][:count].tolist(), record["scores"])

        request.inputs.clear()
        request.inputs["txt"].CopyFrom(tf.make_tensor_proto(["a"]))
        with pytest.raises(grpc.RpcError) as error:
            prediction.Predict(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "Wrong input names" in error.value.details()

        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata_request.model_spec.name = "ner"
        metadata = prediction.GetModelMetadata(metadata_request, timeout=60)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signatures)
        serving = signatures.signature_def["serving_default"]
        assert serving.inputs["text"].dtype == tf.string.as_datatype_enum
        assert set(serving.outputs) == set(ner.direct.serving_signature()["outputs"])  # a proto map: no order

        models = model_service_pb2_grpc.ModelServiceStub(channel)
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "ner"
        status = models.GetModelStatus(status_request, timeout=60)
        assert [(s.version, s.state) for s in status.model_version_status] == \
            [(1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
        status_request.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as error:
            models.GetModelStatus(status_request, timeout=60)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


# -- versions and hot reload ---------------------------------------------------------------------------------


def wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"Timed out waiting for {what}")


def states(server, name="ner"):
    answer = get(server, f"/v1/models/{name}").json()["model_version_status"]
    return {int(s["version"]): (s["state"], s["status"]["error_code"]) for s in answer}


def test_new_versions_are_served_without_restart_and_broken_ones_are_not(artifacts, tmp_path):
    base = tmp_path / "ner"
    shutil.copytree(artifacts["ner_base"] / "1", base / "1")
    with serve_in_background(base, poll_seconds=0.1, versions=2) as server:
        assert states(server) == {1: ("AVAILABLE", "OK")}
        # Written under a hidden name, then renamed into place, as the exporter does.
        shutil.copytree(base / "1", base / ".2.staging")
        time.sleep(0.3)  # a few polls: the hidden folder is never loaded
        assert 2 not in states(server)
        (base / ".2.staging").rename(base / "2")
        wait_for(lambda: states(server).get(2) == ("AVAILABLE", "OK"), "version 2")
        assert get(server, "/v1/models/ner/metadata").json()["model_spec"]["version"] == "2"
        # Half-written (no variables/) and broken (garbage saved_model.pb) folders.
        (base / "3").mkdir()
        shutil.copy(base / "1" / "saved_model.pb", base / "3" / "saved_model.pb")
        # Broken before it appears: a poll between a plain copy and the overwrite loaded the good copy.
        shutil.copytree(base / "1", base / ".4.tmp")
        (base / ".4.tmp" / "saved_model.pb").write_bytes(b"not a SavedModel")
        (base / ".4.tmp").rename(base / "4")
        wait_for(lambda: states(server).get(4, ("",))[0] == "END", "version 4 to fail")
        status = get(server, "/v1/models/ner/versions/4").json()["model_version_status"][0]
        assert status["status"]["error_code"] == "UNKNOWN" and "Loading" in status["status"]["error_message"]
        current = states(server)
        assert 3 not in current and current[1] == current[2] == ("AVAILABLE", "OK")
        answer = post(server, "ner:predict", json={"instances": NER_TEXTS})
        assert answer.status_code == 200 and answer.json()["predictions"][1]["words"] == ["Paris", "is", "lovely"]
        assert get(server, "/health").status_code == 200
        # A good version 5: served, and version 1 (now outside the newest 2 that load) is unloaded.
        shutil.copytree(base / "1", base / ".5.tmp")
        (base / ".5.tmp").rename(base / "5")
        wait_for(lambda: states(server).get(1) == ("END", "OK") and states(server)[5][0] == "AVAILABLE", "swap")
        assert states(server)[2] == ("AVAILABLE", "OK")
        gone = post(server, "ner/versions/1:predict", json={"instances": ["a"]})
        assert gone.status_code == 404 and "Specific(ner, 1)" in gone.json()["error"]


# -- the command line ----------------------------------------------------------------------------------------


def test_cli_refuses_a_wrong_path_and_a_typo_in_a_flag(tmp_path, capsys):
    from kerastune_nlp.cli import main

    assert main(["serve", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: Expected PATH to be one of: ") and error.endswith("missing', which does not exist.")
    assert len(error.splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert main(["serve", str(tmp_path / "empty")]) == 2
    assert "which is none of these" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(tmp_path), "--max-bach-size", "4"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --max-bach-size 4" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--max-batch-size", "0"]) == 2
    assert "Expected a positive integer. Received: `--max-batch-size`=0" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_serves_until_ctrl_c_and_stops_cleanly(artifacts, stop_signal):
    command = [sys.executable, "-m", "kerastune_nlp.cli", "serve", str(artifacts["ner_base"]), "--port", "0",
               "--model-name", "tagger", "--no-batching"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = "Loading"
        while line and "Serving" not in line:  # "Loading ..." first; "" when the process ended
            line = process.stdout.readline()
        assert "Serving 'tagger' versions [1] at http://" in line, (line, process.stderr.read()[-2000:])
        url = re.search(r"http://[\d.]+:\d+", line).group(0)
        answer = httpx.post(f"{url}/v1/models/tagger:predict", json={"instances": NER_TEXTS}, timeout=60)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and out.rstrip().endswith("Stopped."), (out, err[-2000:])
