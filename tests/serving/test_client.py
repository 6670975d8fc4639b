"""The TF Serving clients (REST and gRPC): formats, batching, retries and errors.

Two kinds of server: a scripted stub (the standard library's HTTP server,
no TensorFlow) for exact protocol and fault checks, such as how many attempts
were made, and the real `kerastune-nlp serve` on a tiny trained model, whose
answers must equal the `Predictor`'s own.
"""

import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.errors import ConfigError, ServingError
from kerastune_nlp.serving.client import ServingClient
from kerastune_nlp.serving.retry import RetryPolicy



# --- a scripted stub server ---


class Stub:
    """An HTTP server whose answers come from `script(method, path, body) -> (status, body[, headers])`.

    `script` may return None to drop the connection without an answer. Every
    request is recorded as (method, path, parsed JSON body or None).
    """

    def __init__(self, script):
        stub = self
        self.script, self.requests, self.lock = script, [], threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                with stub.lock:
                    stub.requests.append((self.command, self.path, body))
                result = stub.script(self.command, self.path, body)
                if result is None:  # a reset: close without a status line
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, payload, headers = (tuple(result) + ({},))[:3]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    made = []

    def make(script):
        made.append(Stub(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def echo(method, path, body):
    """Answers each instance with its own text, in the row or the columnar format, after a random delay."""
    time.sleep(random.random() * 0.01)  # so concurrent batches finish out of order
    if "instances" in body:
        return 200, {"predictions": [{"echo": i["text"], "n": len(body["instances"])} for i in body["instances"]]}
    texts = body["inputs"]["text"]
    return 200, {"outputs": {"echo": texts, "n": [len(texts)] * len(texts)}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_row_and_columnar_requests_follow_the_tf_serving_format(stub):
    server = stub(echo)
    with ServingClient(server.url, "m", version=3) as client:
        assert client.predict(["a", "b"]) == [{"echo": "a", "n": 2}, {"echo": "b", "n": 2}]
        assert client.predict(["a", "b"], columnar=True) == [{"echo": "a", "n": 2}, {"echo": "b", "n": 2}]
        client.predict(["q"], pairs=["p"], columnar=True, signature_name="sig")
    (_, path, row), (_, _, columnar), (_, _, pair) = server.requests
    assert path == "/v1/models/m/versions/3:predict"
    assert row == {"signature_name": "serving_default", "instances": [{"text": "a"}, {"text": "b"}]}
    assert columnar == {"signature_name": "serving_default", "inputs": {"text": ["a", "b"]}}
    assert pair == {"signature_name": "sig", "inputs": {"text": ["q"], "text_pair": ["p"]}}


def test_a_single_output_signature_gives_bare_values_in_both_formats(stub):
    def single(method, path, body):
        if "instances" in body:
            return 200, {"predictions": [len(i["text"]) for i in body["instances"]]}
        return 200, {"outputs": [len(t) for t in body["inputs"]["text"]]}

    with ServingClient(stub(single).url, "m") as client:
        assert client.predict(["ab", "c"]) == client.predict(["ab", "c"], columnar=True) == [2, 1]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_client_side_batching_splits_and_keeps_input_order(stub, concurrency):
    server = stub(echo)
    texts = [f"text {i}" for i in range(70)]
    with ServingClient(server.url, "m", batch_size=16, concurrency=concurrency) as client:
        answers = client.predict(texts)
    assert [a["echo"] for a in answers] == texts
    assert sorted(len(body["instances"]) for _, _, body in server.requests) == [6, 16, 16, 16, 16]
    assert client.predict([]) == [] and len(server.requests) == 5  # nothing to send, no request


def test_an_answer_with_the_wrong_number_of_predictions_is_refused(stub):
    def short(method, path, body):
        return 200, {"predictions": [{"echo": i["text"]} for i in body["instances"]][1:]}

    with ServingClient(stub(short).url, "m", batch_size=4) as client:
        with pytest.raises(ServingError, match=r"instances 0-3 of 6\).*4 instances sent, 3 predictions received"):
            client.predict(list("abcdef"))


def test_transient_errors_are_retried_until_the_server_answers(stub):
    # A reset connection, then the three gateway statuses, then an answer.
    answers = iter([None, (503, {"error": "loading"}), (502, b"bad gateway"), (504, {"error": "slow"})])

    def script(method, path, body):
        answer = next(answers, "ok")
        return echo(method, path, body) if answer == "ok" else answer

    server = stub(script)
    with ServingClient(server.url, "m", retries=4, backoff=0.01) as client:
        assert client.predict(["x"]) == [{"echo": "x", "n": 1}]
    assert len(server.requests) == 5


def test_retries_run_out_with_a_message_naming_url_status_server_text_and_attempts(stub):
    server = stub(lambda *_: (503, {"error": "model is loading"}, {"Retry-After": "0"}))
    with ServingClient(server.url, "m", retries=2, backoff=0.01) as client:
        with pytest.raises(ServingError) as caught:
            client.predict(["x"])
    message = str(caught.value)
    assert f"POST {server.url}/v1/models/m:predict" in message and "HTTP 503" in message
    assert "model is loading" in message and "after 3 attempts" in message and len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 404, 413, 429])
def test_4xx_answers_are_never_retried(stub, status):
    server = stub(lambda *_: (status, {"error": f"refused with {status}"}))
    with ServingClient(server.url, "ner", version=7, retries=5, backoff=0.01) as client:
        with pytest.raises(ServingError, match=f"after 1 attempt: HTTP {status}.*refused with {status}") as caught:
            client.predict(["x"])
    assert len(server.requests) == 1
    if status == 404:
        assert "does not serve model 'ner' version 7" in str(caught.value)
    if status == 413:
        assert "lower `batch_size`" in str(caught.value)


def test_no_server_gives_a_clear_error_after_every_attempt_quickly(monkeypatch):
    from kerastune_nlp.serving import retry

    waits = []  # the backoff sleeps, recorded instead of timed: wall-clock bounds fail on a loaded machine
    monkeypatch.setattr(retry.time, "sleep", waits.append)
    url = f"http://127.0.0.1:{free_port()}"
    with ServingClient(url, "m", retries=3, backoff=0.05, timeout=2) as client:
        with pytest.raises(ServingError) as caught:
            client.status()
    message = str(caught.value)
    assert f"GET {url}/v1/models/m failed after 4 attempts" in message and "ConnectError" in message
    assert f"Is the server running and listening at {url}" in message
    # Three retries, each 50-100% of its exponential step (jitter): 0.05, 0.1, 0.2 s.
    assert len(waits) == 3
    for wait, step in zip(waits, (0.05, 0.1, 0.2)):
        assert step / 2 <= wait <= step


def test_entities_against_plain_tf_serving_says_the_route_is_missing(stub):
    # What TF Serving answers for a verb it does not know (http_rest_api_handler.cc).
    server = stub(lambda method, path, body: (400, {"error": f"Malformed request: {method} {path}"}))
    with ServingClient(server.url, "ner") as client:
        with pytest.raises(ServingError, match=r"does not offer `:entities` \(plain TF Serving"):
            client.entities(["Paris"])
    assert server.requests == [("POST", "/v1/models/ner:entities",
                                {"instances": [{"text": "Paris"}], "aggregation": "first"})]


def test_status_and_metadata_return_the_servers_json(stub):
    server = stub(lambda method, path, body: (200, {"path": path}))
    with ServingClient(server.url + "/", "a b") as client:
        assert client.status() == {"path": "/v1/models/a%20b"}
        assert client.metadata() == {"path": "/v1/models/a%20b/metadata"}


def test_bad_arguments_are_refused_before_sending():
    with pytest.raises(ConfigError, match="wrap a single text in a list"):
        ServingClient("http://127.0.0.1:1", "m").predict("one text")
    with pytest.raises(ConfigError, match="Received: `url`='127.0.0.1:8501'"):
        ServingClient("127.0.0.1:8501", "m")
    with pytest.raises(ConfigError, match="`batch_size` must be an integer >= 1. Received: `batch_size`=0"):
        ServingClient("http://h:1", "m", batch_size=0)
    with pytest.raises(ConfigError, match="2 texts and 1 pairs"):
        ServingClient("http://h:1", "m").predict(["a", "b"], pairs=["c"])
    with pytest.raises(ConfigError, match="retries"):
        RetryPolicy(retries=-1)


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy(retries=9, backoff=0.1, max_backoff=0.5)
    for retry, step in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)]:
        assert step / 2 <= policy.delay(retry) <= step
    assert policy.delay(1, retry_after=3.0) == 0.5  # the server's Retry-After, still capped


# --- the real server on tiny trained models: answers must equal the Predictor's ---

from tests.tasks import harness  # noqa: E402


def sharpened_run(tmp_path_factory, tiny_run, name: str) -> Path:
    """A copy of the session's tiny `name` run whose answers differ from text to text.

    One epoch on a few dozen examples gives nearly the same answer for every
    text (one label; NER tags every word "O"), which would let a mixed-up
    answer pass as right. Scaling the head's kernel (and, for NER, pushing
    its bias away from "O") makes labels, probabilities and spans depend on
    each text. Made once per session (cached on disk).

    Only built-in tasks with a softmax head (classification, NER) are handled.
    """
    import shutil

    import kerastune_nlp as kt
    from kerastune_nlp._tf import keras

    run = tmp_path_factory.getbasetemp() / "serving_client_runs" / name
    if not (run.parent / f"{name}.done").is_file():
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(tiny_run(name), run)
        predictor = kt.load_run(run)
        head = [layer for layer in predictor.model.layers if isinstance(layer, keras.layers.Dense)][-1]
        kernel, bias = head.get_weights()
        if name == "ner":
            bias[list(predictor.task.labels).index("O")] -= 4.0
        else:  # centre the logits over the training texts, so no label wins everywhere
            head.set_weights([kernel * 20, bias * 0])
            texts = [e.text for e in harness.TASK_DATA[name]()[0]]
            bias = -np.log([a["probabilities"] for a in predictor.serve({"text": texts})]).mean(axis=0)
        head.set_weights([kernel * 20, bias])
        predictor.model.save_weights(str(run / "model.h5"))
        (run.parent / f"{name}.done").write_text("ok")
    return run


def exported_model(tmp_path_factory, tiny_run, name: str) -> Path:
    """`sharpened_run` exported as a SavedModel: the TF Serving model folder `.../serving/<name>` (cached)."""
    from kerastune_nlp.export.exporter import export_run

    root = tmp_path_factory.getbasetemp() / "serving_client_models"
    folder = root / f"{name}_export" / "serving" / name
    if not (root / f"{name}.done").is_file():
        export_run(sharpened_run(tmp_path_factory, tiny_run, name), root / f"{name}_export", formats="savedmodel",
                   measure=False, max_metric_drop=100, examples=harness.TASK_DATA[name]()[1])
        (root / f"{name}.done").write_text("ok")
    assert (folder / "1" / "saved_model.pb").is_file()
    return folder


def trec_texts(count: int, start: int = 0) -> list:
    """Distinct TREC questions (distinct, so no answer comes from the server's cache by another text)."""
    from kerastune_nlp.data.bundled_trec import load_bundled_trec

    texts = list(dict.fromkeys(e.text for e in load_bundled_trec()["train"]))
    return texts[start:start + count]


def assert_same_answers(got: list, expected: list):
    """Labels equal, probabilities within 1e-5, one answer per text in the same order."""
    assert len(got) == len(expected)
    for index, (answer, truth) in enumerate(zip(got, expected)):
        assert set(answer) == set(truth), index
        for key, value in truth.items():
            if key == "probabilities":
                assert answer[key] == pytest.approx(list(map(float, value)), abs=1e-5), index
            else:
                assert answer[key] == json.loads(json.dumps(value, default=lambda v: v.tolist())), (index, key)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, tiny_run):
    from kerastune_nlp.inference import load_predictor

    folder = exported_model(tmp_path_factory, tiny_run, "classification")
    return folder, load_predictor(folder / "1")


@pytest.fixture(scope="module")
def server(classifier):
    from kerastune_nlp.serving.background import serve_in_background

    with serve_in_background(classifier[0], grpc_port=0, max_batch_size=32, batch_timeout_ms=2,
                             poll_seconds=0) as handle:
        yield handle


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_rest_predict_in_both_formats_equals_the_predictor(server, classifier):
    texts = trec_texts(20)
    expected = classifier[1].serve({"text": texts})
    with ServingClient(server.url, "classification") as client:
        assert_same_answers(client.predict(texts), expected)
        assert_same_answers(client.predict(texts, columnar=True), expected)
        assert_same_answers(client.predict([{"text": t} for t in texts[:3]]), expected[:3])


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_rest_batching_of_70_texts_keeps_order_and_answers(server, classifier):
    texts = trec_texts(70, start=100)
    with ServingClient(server.url, "classification", version=1, batch_size=16, concurrency=3) as client:
        assert_same_answers(client.predict(texts), classifier[1].serve({"text": texts}))


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_status_and_metadata_describe_the_served_signature(server, classifier):
    with ServingClient(server.url, "classification") as client:
        status, metadata = client.status(), client.metadata()
    assert status == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                "status": {"error_code": "OK", "error_message": ""}}]}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert metadata["model_spec"]["name"] == "classification" and metadata["model_spec"]["version"] == "1"
    assert {name: spec["dtype"] for name, spec in signature["inputs"].items()} == {"text": "DT_STRING"}
    assert set(signature["outputs"]) == set(classifier[1].serve({"text": ["a"]})[0])


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_unknown_model_or_version_fails_at_once_naming_it(server):
    for model, version, which in (("nope", None, "model 'nope' (latest version)"),
                                  ("classification", 9, "model 'classification' version 9")):
        with ServingClient(server.url, model, version=version, retries=3) as client:
            with pytest.raises(ServingError) as caught:
                client.predict(["What is it ?"])
        message = str(caught.value)
        assert "after 1 attempt: HTTP 404" in message and f"does not serve {which}" in message, message
        assert "Servable not found" in message or "Could not find" in message


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_a_request_the_server_refuses_is_a_clear_error(server):
    with ServingClient(server.url, "classification", retries=3) as client:
        with pytest.raises(ServingError, match=r"after 1 attempt: HTTP 400.*unknown \"wrong\".*metadata\(\)"):
            client.predict([{"text": "a", "wrong": "b"}])
        with pytest.raises(ServingError, match=r"HTTP 400.*needs a NER model"):
            client.entities(["Paris"])


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_entities_equal_the_predictors_spans(tiny_run, tmp_path_factory):
    from kerastune_nlp.inference import load_predictor
    from kerastune_nlp.serving.background import serve_in_background

    run = sharpened_run(tmp_path_factory, tiny_run, "ner")  # :entities is our extension: no export needed
    texts = [" ".join(s.tokens) for s in harness.TASK_DATA["ner"]()[1]] + ["Paris is lovely", "Zürich,  São Paulo"]
    expected = load_predictor(run).predict_entities(texts, "average")
    assert 0 < sum(map(len, expected)) < sum(len(t.split()) for t in texts), "the model must tag some words"
    with serve_in_background(run, model_name="ner", poll_seconds=0) as handle, \
            ServingClient(handle.url, "ner", batch_size=5, concurrency=2) as client:
        got = client.entities(texts, aggregation="average")
    assert [[(e["text"], e["label"], e["start"], e["end"]) for e in spans] for spans in got] == \
        [[(e["text"], e["label"], e["start"], e["end"]) for e in spans] for spans in expected]
    assert [e["score"] for spans in got for e in spans] == \
        pytest.approx([e["score"] for spans in expected for e in spans], abs=1e-5)


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_grpc_predict_status_and_metadata_equal_rest(server, classifier):
    from kerastune_nlp.serving.client import GrpcServingClient

    texts = trec_texts(40, start=300)
    with ServingClient(server.url, "classification") as rest, \
            GrpcServingClient(f"127.0.0.1:{server.grpc_port}", "classification", batch_size=16,
                              concurrency=2) as grpc_client:
        assert_same_answers(grpc_client.predict(texts), classifier[1].serve({"text": texts}))
        assert grpc_client.status() == rest.status()
        assert grpc_client.metadata() == rest.metadata()


@pytest.mark.slow  # trains and exports a tiny model (about 25 s, once per session)
def test_grpc_errors_name_the_target_code_and_attempts(server):
    from kerastune_nlp.serving.grpc_client import GrpcServingClient

    with GrpcServingClient(f"127.0.0.1:{server.grpc_port}", "nope", retries=3) as client:
        with pytest.raises(ServingError, match=r"gRPC 127.0.0.1:\d+ Predict\(model 'nope' \(latest version\)\) "
                                               r"failed after 1 attempt: gRPC NOT_FOUND"):
            client.predict(["a"])
    target = f"127.0.0.1:{free_port()}"
    with GrpcServingClient(target, "m", retries=2, backoff=0.01, timeout=2) as client:
        with pytest.raises(ServingError, match=f"gRPC {target} GetModelStatus.*after 3 attempts.*UNAVAILABLE"):
            client.status()
