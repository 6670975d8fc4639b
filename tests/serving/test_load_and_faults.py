"""The client and server under load and faults: every answer must be its own request's answer.

Each request carries a distinct text, and each answer is compared with the
`Predictor`'s answer for that text, so an answer delivered to the wrong
request (or shifted within a batch) fails the test. The faults: connections
dropped mid-body, malformed bodies, a new version folder appearing during
load, and the server stopped and restarted on the same port.
"""

import importlib.util
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from kerastune_nlp.serving.client import ServingClient

_spec = importlib.util.spec_from_file_location("serving_client_tests", Path(__file__).parent / "test_client.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
MODEL = "classification"


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_run):
    """A private copy of the tiny classifier's model folder (a test adds versions to it) and its Predictor."""
    from kerastune_nlp.inference import load_predictor

    folder = tmp_path_factory.mktemp("load_and_faults") / MODEL
    shutil.copytree(helpers.exported_model(tmp_path_factory, tiny_run, MODEL), folder)
    return folder, load_predictor(folder / "1", cache_size=0)


@pytest.fixture(scope="module")
def server(model):
    from kerastune_nlp.serving.background import serve_in_background

    with serve_in_background(model[0], max_batch_size=32, batch_timeout_ms=5, poll_seconds=0.2) as handle:
        yield handle


class Load:
    """`threads` threads sending one single-text request per text, each text once, in the background.

    Args:
        url: the server.
        texts: distinct texts; `answers[i]` is the answer to `texts[i]`.
        threads: int. Concurrent senders.
        shared: bool. One `ServingClient` for all threads (True) or one per thread.
        **options: `ServingClient` options (retries, backoff, ...).
    """

    def __init__(self, url, texts, threads, shared=False, **options):
        self.texts, self.answers, self.errors = texts, [None] * len(texts), []
        self._next, self._lock = 0, threading.Lock()
        if shared:  # one pooled client used by every thread
            self._clients = [ServingClient(url, MODEL, **options)] * threads
        else:
            self._clients = [ServingClient(url, MODEL, **options) for _ in range(threads)]
        self._threads = [threading.Thread(target=self._send, args=(c,), daemon=True) for c in self._clients]
        self.started = time.perf_counter()
        for thread in self._threads:
            thread.start()

    def _send(self, client):
        while True:
            with self._lock:
                index, self._next = self._next, self._next + 1
            if index >= len(self.texts):
                return
            try:
                self.answers[index] = client.predict([self.texts[index]])[0]
            except Exception as error:  # noqa: BLE001  (collected and asserted on)
                self.errors.append((index, error))

    @property
    def done(self) -> int:
        return sum(answer is not None for answer in self.answers)

    def wait_until(self, count: int, deadline_s: float = 60):
        """Blocks until `count` answers arrived (or fails after `deadline_s`)."""
        deadline = time.monotonic() + deadline_s
        while self.done < count and not self.errors:
            assert time.monotonic() < deadline, f"only {self.done} of {count} answers after {deadline_s} s"
            time.sleep(0.01)

    def join(self, expected: list, deadline_s: float = 120) -> float:
        """Waits for the end, then checks: no errors, every answer its own text's. Returns the seconds taken."""
        for thread in self._threads:
            thread.join(timeout=max(0.1, self.started + deadline_s - time.perf_counter()))
        elapsed = time.perf_counter() - self.started
        for client in set(self._clients):
            client.close()
        assert not any(t.is_alive() for t in self._threads), f"load still running after {deadline_s} s"
        assert not self.errors, f"{len(self.errors)} failed requests, first: {self.errors[0]}"
        helpers.assert_same_answers(self.answers, expected)
        return elapsed


@pytest.mark.slow
def test_32_concurrent_clients_2000_requests_all_answered_correctly(server, model):
    texts = helpers.trec_texts(2000)
    expected = model[1].serve({"text": texts})
    load = Load(server.url, texts, threads=32)
    elapsed = load.join(expected)
    merged = server.metrics.batch_requests.counts((MODEL, 1))
    assert max(size for size, count in merged.items() if count) > 1, f"no requests were merged: {merged}"
    print(f"2000 requests from 32 clients in {elapsed:.1f} s ({2000 / elapsed:.0f} req/s)")


def _half_body(port: int):
    """Headers announcing 200 bytes, then 40 of them, then the connection closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 200\r\n\r\n".encode() + b'{"instances": ["a dropped request", "and')


@pytest.mark.slow
def test_dropped_connections_and_malformed_bodies_leave_other_requests_unharmed(server, model):
    import httpx

    texts = helpers.trec_texts(300, start=2000)
    expected = model[1].serve({"text": texts})
    load = Load(server.url, texts, threads=8, shared=True, retries=2)
    url = f"{server.url}/v1/models/{MODEL}:predict"
    with httpx.Client() as raw:
        for round_ in range(15):
            _half_body(server.port)
            bad = raw.post(url, content=b'{"instances": ["unclosed', headers={"Content-Type": "application/json"})
            assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
            wrong = raw.post(url, json={"instances": [{"txt": "typo"}]})
            assert wrong.status_code == 400 and '"text"' in wrong.json()["error"]
    load.join(expected)
    with ServingClient(server.url, MODEL) as client:  # still serving afterwards
        helpers.assert_same_answers(client.predict(texts[:2]), expected[:2])


@pytest.mark.slow
def test_a_new_version_appearing_during_load_is_served_without_mixing_answers(server, model):
    folder = model[0]
    texts = helpers.trec_texts(600, start=2300)
    expected = model[1].serve({"text": texts})
    load = Load(server.url, texts, threads=8, shared=True, retries=3)
    load.wait_until(50)
    # How a deployment publishes a version: copy under a hidden name, then rename (atomic).
    shutil.copytree(folder / "1", folder / ".2.incoming")
    (folder / ".2.incoming").rename(folder / "2")
    with ServingClient(server.url, MODEL, version=2, retries=0) as client:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.status()["model_version_status"][0]["state"] == "AVAILABLE":
                    break
            except Exception:  # noqa: BLE001  (404 until the poller finds the folder)
                pass
            assert time.monotonic() < deadline, "version 2 was not loaded within 60 s"
            time.sleep(0.05)
        assert load.done < len(texts), "the load ended before version 2 arrived; the test proves nothing"
        load.join(expected)
        helpers.assert_same_answers(client.predict(texts[:5]), expected[:5])


@pytest.mark.slow
def test_a_server_stopped_and_restarted_on_the_same_port_loses_no_request(model):
    from kerastune_nlp.serving.background import serve_in_background

    texts = helpers.trec_texts(200, start=3000)
    expected = model[1].serve({"text": texts})
    with serve_in_background(model[0], poll_seconds=0, batch_timeout_ms=2) as first:
        load = Load(first.url, texts, threads=4, shared=True, retries=60, backoff=0.05, max_backoff=0.5)
        load.wait_until(20)
    stopped_at = load.done  # the clients now get "connection refused" and back off (at most 0.5 s a wait)
    with serve_in_background(model[0], port=first.port, poll_seconds=0, batch_timeout_ms=2):
        load.join(expected)
    assert stopped_at < len(texts), "the load ended before the restart; the test proves nothing"
