"""Quiet, fast start-up: the Python API hides TensorFlow's native start-up lines and `\\r` progress bars
written to files, the documented switches bring them back, and `kerastune-nlp predict` answers as before.

Each test that checks what a process prints runs a fresh Python process
(TensorFlow's start-up lines are printed once per process, on import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerastune_nlp import noise

ROOT = Path(__file__).resolve().parents[1]

API_SCRIPT = """
import sys
import kerastune_nlp as kt

backbone, output, verbose = sys.argv[1], sys.argv[2], sys.argv[3]
paths = kt.bundled_wnut17()
train, dev = kt.read_conll(paths["train"])[:24], kt.read_conll(paths["dev"])[:8]
options = {} if verbose == "default" else {"verbose": int(verbose)}
kt.train("ner", train, dev, output_dir=output, model_config=kt.ModelConfig(backbone=backbone),
         data_config=kt.DataConfig(max_length=32), **options,
         train_config=kt.TrainConfig(epochs=2, batch_size=8, learning_rate=1e-3))
print("PREDICTED", kt.Predictor.load(output).predict(["Barack Obama visited Paris"]))
"""


def _env(**values) -> dict:
    """The test process's environment without the quieting this suite's conftest sets, plus `values`."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", noise.VERBOSE_VARIABLE,
                                                            "TRANSFORMERS_VERBOSITY",
                                                            "TRANSFORMERS_NO_ADVISORY_WARNINGS")}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])), HF_HUB_OFFLINE="1",
               **values)
    return env


def _run_api(tmp_path, tiny_bert, verbose: str, **env) -> tuple[str, str]:
    """Runs API_SCRIPT with stdout and stderr redirected to files; returns what each holds."""
    script = tmp_path / "api.py"
    script.write_text(API_SCRIPT)
    out_path, err_path = tmp_path / f"out-{verbose}.txt", tmp_path / f"err-{verbose}.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        completed = subprocess.run([sys.executable, str(script), str(tiny_bert), str(tmp_path / f"run-{verbose}"),
                                    verbose], stdout=out, stderr=err, env=_env(**env), cwd=tmp_path, timeout=600)
    # Bytes decoded as they are: read_text would turn every "\r" into a newline.
    stdout, stderr = (path.read_bytes().decode(errors="replace") for path in (out_path, err_path))
    assert completed.returncode == 0, stderr[-3000:]
    return stdout, stderr


def _native_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if noise.NATIVE_NOISE.match(line.encode())]


def test_python_api_is_quiet_by_default_and_the_switches_bring_the_noise_back(tmp_path, tiny_bert):
    stdout, stderr = _run_api(tmp_path, tiny_bert, "default")
    assert "PREDICTED [[" in stdout
    assert _native_lines(stderr) == [], stderr[-3000:]
    assert "cuInit" not in stderr and "cuda" not in stderr.lower()
    # Keras's progress bar to a file: one line per epoch instead of `\r` / backspace redraws.
    assert "\r" not in stdout and "\b" not in stdout
    assert "Epoch 2/2" in stdout and " - loss: " in stdout

    stdout, stderr = _run_api(tmp_path, tiny_bert, "1", **{noise.VERBOSE_VARIABLE: "1"})
    assert "PREDICTED [[" in stdout
    assert _native_lines(stderr), "KERASTUNE_NLP_VERBOSE=1 should show TensorFlow's start-up lines:\n" + stderr
    assert "\r" in stdout or "\b" in stdout  # verbose=1: the progress bar, as asked


def test_a_log_level_the_user_set_is_kept_and_zero_shows_tensorflows_lines():
    code = "import os, kerastune_nlp._tf; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    completed = subprocess.run([sys.executable, "-c", code], env=_env(TF_CPP_MIN_LOG_LEVEL="1"),
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "1" and not _native_lines(completed.stderr)
    completed = subprocess.run([sys.executable, "-c", code], env=_env(TF_CPP_MIN_LOG_LEVEL="0"),
                               capture_output=True, text=True, timeout=300)
    assert completed.stdout.strip() == "0" and _native_lines(completed.stderr)


def test_configure_switches_only_its_own_defaults(monkeypatch):
    for name in ("TF_CPP_MIN_LOG_LEVEL", "TRANSFORMERS_VERBOSITY", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(noise, "_ours", {})
    monkeypatch.setattr(noise, "_verbose", None)
    noise.configure(False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2" and os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    noise.configure(True)  # `kerastune-nlp --verbose` after `import kerastune_nlp` set the quiet defaults
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" and "TRANSFORMERS_VERBOSITY" not in os.environ
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user's value
    noise.configure(False)
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info" and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_native_lines_are_dropped_and_everything_else_kept_in_order():
    data = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            b"I0000 00:00:1796271413.110165    7672 port.cc:153] oneDNN custom operations are on.\n"
            b"a line of the user\n"
            b"I0000 00:00:1796271413.150595    7672 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
            b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
            b"appropriate compiler flags.\n"
            b"E0000 00:00:1796271416.112645    7672 cuda_platform.cc:52] failed call to cuInit: (303)\n"
            b"Traceback (most recent call last):\n"
            b"F0000 00:00:1796271416.112645    7672 op_kernel.cc:1] Check failed: a fatal line explains a crash\n"
            b"no newline at the end")
    assert noise.without_native_noise(data) == (b"a line of the user\nTraceback (most recent call last):\n"
                                                b"F0000 00:00:1796271416.112645    7672 op_kernel.cc:1] Check "
                                                b"failed: a fatal line explains a crash\nno newline at the end")


def test_fit_verbosity_auto_follows_the_terminal(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(sys, "stdout", Stream(False))
    assert noise.fit_verbosity("auto") == 2 and noise.fit_verbosity(1) == 1 and noise.fit_verbosity(0) == 0
    monkeypatch.setattr(sys, "stdout", Stream(True))
    assert noise.fit_verbosity("auto") == 1


def test_optional_libraries_load_on_first_use_and_still_work():
    """pandas, scipy and dill are not imported with TensorFlow, yet tf_keras still finds them when used."""
    code = """
import sys
import kerastune_nlp._tf as ktf
deferred = {"pandas", "scipy", "dill"}
print("loaded:", sorted(deferred & set(sys.modules)))
print("unknown:", sorted(set(ktf.deferred_attempts) - set(ktf._DEFERRED)))
from tf_keras.src.engine import data_adapter, training_v1
import pandas as pd
import scipy.sparse
assert data_adapter._is_pandas_series(pd.Series([1.0]))
assert pd.DataFrame in data_adapter._get_tensor_types()
assert training_v1.issparse(scipy.sparse.csr_matrix([[1.0]]))
print("ok")
"""
    completed = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    tf_version = subprocess.run([sys.executable, "-c", "from kerastune_nlp._tf import _tensorflow_version as v; "
                                 "print(v())"], env=_env(), capture_output=True, text=True).stdout.strip()
    if not tf_version.startswith("2.21."):
        pytest.skip(f"deferral is verified for TensorFlow 2.21 only (installed: {tf_version})")
    assert "loaded: []" in completed.stdout and "unknown: []" in completed.stdout and "ok" in completed.stdout


def test_python_m_predict_answers_and_exits_with_its_code(tiny_run, tmp_path):
    """`python -m kerastune_nlp predict` as a program (it skips the interpreter's teardown): same answers."""
    import kerastune_nlp as kt

    run = tiny_run("ner")
    texts = ["Barack Obama visited Paris", "Who wrote Hamlet ?"]
    completed = subprocess.run([sys.executable, "-m", "kerastune_nlp", "predict", str(run), *texts],
                               env=_env(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr == ""
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    expected = kt.Predictor.load(run).predict_json(texts)
    assert [{k: v for k, v in line.items() if k not in ("line", "text")} for line in lines] == \
        json.loads(json.dumps(expected))
    output = tmp_path / "answers.jsonl"
    completed = subprocess.run([sys.executable, "-m", "kerastune_nlp", "predict", str(run), "Paris",
                                "--output", str(output)], env=_env(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0 and json.loads(output.read_text())["text"] == "Paris"
    completed = subprocess.run([sys.executable, "-m", "kerastune_nlp", "predict", str(tmp_path / "missing"), "x"],
                               env=_env(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2 and "does not exist" in completed.stderr
