"""Export says what it does, step by step with times, and nothing the converters mutter unless asked."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kerastune_nlp.export.exporter import export_run

# What ONNX Runtime's quantizer, LiteRT and TensorFlow's converters print when nobody stops them.
CHATTER = ("Please consider to run pre-processing", "Quantization parameters for tensor",
           "Ignore MatMul due to non constant B", "XNNPACK delegate", "W0000 ", "I0000 ")
PROGRESS = re.compile(r"^export: (\S.*?) \.\.\. (\d+\.\d) s(?: \((.*)\))?$")


@pytest.fixture(scope="module")
def ner_run(tiny_run):
    return tiny_run("ner")


def _dev():
    from tests.tasks import harness

    return harness.TASK_DATA["ner"]()[1]


def test_python_api_logs_a_line_per_step_and_hushes_the_quantizer(ner_run, tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO)  # the root at INFO: ONNX Runtime's quantizer would log its 38 lines
    result = export_run(ner_run, tmp_path / "e", formats="onnx-int8,tflite-int8", examples=_dev(),
                        measure=False, raw_strings="skip")
    lines = [r.getMessage() for r in caplog.records if r.name == "kerastune_nlp.export"]
    steps = [PROGRESS.match(line) for line in lines]
    assert all(steps), lines
    # One line per step, formats in the order they ran (the biggest converter first), each with its outcome.
    assert [m.group(1) for m in steps] == ["read the run and its data", "keras-float32 reference", "onnx",
                                          "onnx-int8", "tflite-int8"]
    assert [m.group(3) for m in steps[2:]] == ["published"] * 3
    # The report lists the formats as asked, and keeps each step's time.
    assert [a.format for a in result.artifacts] == ["keras-float32", "onnx", "onnx-int8", "tflite-int8"]
    report = json.loads(result.report_json.read_text())
    assert set(report["step_seconds"]) == {m.group(1) for m in steps}
    assert not [r for r in caplog.records if "onnxruntime" in r.pathname]
    err = capfd.readouterr().err
    assert not [c for c in CHATTER if c in err], err[-2000:]
    assert (tmp_path / "e" / "onnx" / "model-int8.onnx").is_file()
    assert not [p for p in (tmp_path / "e").rglob(".*")]  # no staged or partial files left


def test_debug_logging_brings_the_chatter_back(ner_run, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # what --verbose does: the kerastune_nlp logger at DEBUG
    export_run(ner_run, tmp_path / "e", formats="onnx-int8", examples=_dev(), measure=False, raw_strings="skip")
    assert any("Please consider to run pre-processing" in r.getMessage() for r in caplog.records)


def test_an_interrupted_conversion_leaves_no_staged_file(ner_run, tmp_path, monkeypatch):
    from kerastune_nlp.export import onnx

    def interrupted(source, target):
        target.with_name(target.name + ".partial").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx, "quantize_int8", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_run(ner_run, tmp_path / "e", formats="onnx-int8", examples=_dev(), measure=False,
                   raw_strings="skip")
    assert sorted(p.name for p in (tmp_path / "e" / "onnx").iterdir()) == ["model.onnx"]


@pytest.mark.slow
def test_cli_export_prints_progress_and_no_chatter_unless_verbose(ner_run, tmp_path):
    def export(*extra):
        command = [sys.executable, "-m", "kerastune_nlp.cli", "export", str(ner_run), "--output",
                   str(tmp_path / f"e{len(extra)}"), "--formats", "onnx-int8,tflite-int8", "--no-timing", *extra]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout, done.stderr

    out, err = export()
    progress = [line for line in err.splitlines() if PROGRESS.match(line)]
    assert [PROGRESS.match(line).group(1) for line in progress] == [
        "read the run and its data", "keras-float32 reference", "in-graph tokenizer check", "onnx", "onnx-int8",
        "tflite-int8"]
    assert not [c for c in CHATTER if c in err + out], err[-3000:]
    assert "| onnx-int8 |" in out
    _, err = export("--verbose")
    assert "Please consider to run pre-processing" in err and "Ignore MatMul due to non constant B" in err
    assert [line for line in err.splitlines() if PROGRESS.match(line)]
