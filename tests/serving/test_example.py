"""`examples/export_and_serve.py` on a trained run: export, serve on 127.0.0.1, query with the client."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
_spec = importlib.util.spec_from_file_location("serving_client_tests", Path(__file__).parent / "test_client.py")
client_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(client_tests)


@pytest.mark.slow
def test_export_and_serve_example_answers_predict_and_entities(tiny_run, tmp_path_factory, tmp_path):
    import kerastune_nlp as kt

    run = client_tests.sharpened_run(tmp_path_factory, tiny_run, "ner")
    text = "Barack Obama visited Paris and New York ."
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "export_and_serve.py"), "--run", str(run), "--output",
         str(tmp_path / "export"), "--formats", "savedmodel", "--text", text],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert "version 1 AVAILABLE" in out and f":predict  {text}" in out and f":entities {text}" in out
    # Every span the server gave is the Predictor's, printed with its offsets.
    spans = kt.Predictor.load(run).predict_entities([text])[0]
    assert spans
    for span in spans:
        assert f"{span['text']!r} [{span['start']}:{span['end']}] {span['label']}" in out
