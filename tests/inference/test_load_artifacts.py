"""`Predictor.load` on a run directory and on each exported artifact: one API, the run's answers."""

import importlib.util
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import kerastune_nlp as kt
from kerastune_nlp.errors import ConfigError, RunDirectoryError
from kerastune_nlp.export.exporter import export_run

from tests.tasks import harness

# `sharpened_run`: a tiny run whose answers differ from text to text (see its docstring).
_client_spec = importlib.util.spec_from_file_location("serving_client_tests",
                                                      Path(__file__).parents[1] / "serving" / "test_client.py")
client_tests = importlib.util.module_from_spec(_client_spec)
_client_spec.loader.exec_module(client_tests)

# int8 files load through the same runners; the export tests check what they lose.
FORMATS = "savedmodel,tflite-float32,onnx"


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """A tiny NER and classification run, each exported to every format."""
    root = tmp_path_factory.mktemp("artifacts")
    result = {}
    for name in ("ner", "classification"):
        run = client_tests.sharpened_run(tmp_path_factory, tiny_run, name)
        export_run(run, root / f"{name}-export", formats=FORMATS, examples=harness.TASK_DATA[name]()[1],
                   measure=False, max_metric_drop=100)
        result[name] = (run, root / f"{name}-export")
    return result


def _artifacts(export: Path, run: Path) -> dict:
    return {"savedmodel": export / "serving" / run.name / "1", "model folder": export / "serving" / run.name,
            "export folder": export, "tflite": export / "tflite" / "model-float32.tflite",
            "onnx": export / "onnx" / "model.onnx"}


def _texts(name):
    dev = harness.TASK_DATA[name]()[1]
    return [" ".join(e.tokens) for e in dev] if name == "ner" else [e.text for e in dev]


def _margin(probabilities) -> float:
    best, second = sorted(probabilities, reverse=True)[:2]
    return best - second


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ner", "classification"])
def test_every_artifact_gives_the_run_directorys_answers(name, exported):
    run, export = exported[name]
    texts = _texts(name)
    reference = kt.Predictor.load(run)
    expected, expected_served = reference.predict(texts), reference.serve({"text": texts})
    # Rows whose two most probable labels are closer than float32 kernels can agree on
    # (the tiny model's probabilities are all near 1/6) may flip; their probabilities are
    # still compared below.
    decisive = [name == "ner" or _margin(want["probabilities"]) > 1e-5 for want in expected_served]
    assert sum(decisive) >= len(texts) // 2
    for kind, path in _artifacts(export, run).items():
        predictor = kt.Predictor.load(path)
        assert predictor.describe()["task"] == name, kind
        predicted = predictor.predict(texts)
        assert [p for p, d in zip(predicted, decisive) if d] == [e for e, d in zip(expected, decisive) if d], kind
        served = predictor.serve({"text": texts})
        for got, want, sure in zip(served, expected_served, decisive):
            if sure:
                assert got["labels"] == want["labels"], kind
            tolerance = 1e-3 if kind == "tflite" else 1e-4
            key = "scores" if name == "ner" else "probabilities"
            assert np.allclose(got[key], want[key], atol=tolerance), kind


@pytest.mark.slow
def test_serve_in_python_equals_the_raw_string_savedmodel_signature(exported):
    from kerastune_nlp._tf import tf
    from kerastune_nlp.inference.runners import load_saved_model

    for name in ("ner", "classification"):
        run, export = exported[name]
        texts = _texts(name)
        signature = load_saved_model(export / "serving" / run.name / "1").signatures["serving_default"]
        graph = {k: v.numpy() for k, v in signature(text=tf.constant(texts)).items()}
        served = kt.Predictor.load(run).serve({"text": texts})
        fully_covered = 0
        for i, record in enumerate(served):
            if name == "ner":
                count = graph["word_count"][i]
                assert record["words"] == [w.decode() for w in graph["words"][i][:count]]
                assert record["start"] == list(graph["start"][i][:count])
                covered = graph["covered"][i][:count]  # the graph tags one window; Python tags all words
                if covered.all():
                    fully_covered += 1
                    assert record["labels"] == [t.decode() for t in graph["labels"][i][:count]]
            else:
                assert record["labels"] == graph["labels"][i].decode()
                assert np.allclose(record["probabilities"], graph["probabilities"][i], atol=1e-5)
        assert name != "ner" or fully_covered >= 3


@pytest.mark.slow
def test_long_ner_text_is_read_in_windows_so_no_entity_past_the_limit_is_lost(exported):
    from kerastune_nlp._tf import tf
    from kerastune_nlp.inference.runners import load_saved_model

    run, export = exported["ner"]
    predictor = kt.Predictor.load(export / "onnx" / "model.onnx")
    text = " ".join(_texts("ner")[:6])   # about 100 words; the model reads 32 sub-tokens at a time
    spans = predictor.predict_entities([text])[0]
    assert spans and all(text[s["start"]:s["end"]] == s["text"] for s in spans)
    tagged = predictor.serve({"text": [text]})[0]
    assert tagged["word_count"] == len(text.split()) and all(tagged["covered"])
    # The in-graph signature stops at max_length: everything past it is what windows recover.
    graph = load_saved_model(export / "serving" / run.name / "1").signatures["serving_default"](
        text=tf.constant([text]))
    first_uncovered = int(np.argmin(graph["covered"].numpy()[0]))
    assert 0 < first_uncovered < tagged["word_count"]
    limit = tagged["start"][first_uncovered]
    assert any(s["start"] >= limit for s in spans), "no entity found past the first window"


@pytest.mark.slow
def test_predictor_is_safe_from_many_threads_and_caches_answers(exported):
    run, export = exported["classification"]
    # No cache here, so every thread really runs the (not re-entrant) TFLite interpreter.
    predictor = kt.Predictor.load(export / "tflite" / "model-float32.tflite", cache_size=0)
    texts = _texts("classification")
    expected = predictor.predict(texts, top_k=2)
    results, errors = {}, []

    def worker(n):
        try:
            order = texts[n:] + texts[:n]
            results[n] = (order, predictor.predict(order, top_k=2))
        except Exception as error:  # noqa: BLE001 - any failure is the test's failure
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    by_text = dict(zip(texts, expected))
    for order, answers in results.values():
        assert answers == [by_text[t] for t in order]
    cached = kt.Predictor.load(export / "tflite" / "model-float32.tflite", cache_size=16)
    assert cached.predict(texts[:10]) == cached.predict(texts[:10]) == [by_text[t][0][0] for t in texts[:10]]
    info = cached.cache_info()
    assert (info["hits"], info["misses"], info["size"], info["hit_rate"]) == (10, 10, 10, 0.5)


def test_wrong_paths_and_inputs_are_refused_with_a_message(exported, tmp_path):
    run, export = exported["ner"]
    with pytest.raises(RunDirectoryError, match="does not exist"):
        kt.Predictor.load(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RunDirectoryError, match="is a file but not a .tflite or .onnx model"):
        kt.Predictor.load(tmp_path / "notes.txt")
    with pytest.raises(RunDirectoryError, match="which is none of these"):
        kt.Predictor.load(tmp_path)
    stray = tmp_path / "model.onnx"
    shutil.copy(export / "onnx" / "model.onnx", stray)
    with pytest.raises(RunDirectoryError, match="kerastune_export.json"):
        kt.Predictor.load(stray)
    predictor = kt.Predictor.load(export / "onnx" / "model.onnx")
    with pytest.raises(ConfigError, match="unknown: \\['txt'\\]"):
        predictor.serve({"txt": ["a"]})
    with pytest.raises(ConfigError, match="hold strings"):
        predictor.serve({"text": ["a", 3]})
    with pytest.raises(ConfigError, match="blank text at index 1"):
        predictor.predict_entities(["a b", "   "])
    with pytest.raises(ConfigError, match="Unknown aggregation"):
        predictor.predict_entities(["a b"], aggregation="mean")
    classifier = kt.Predictor.load(exported["classification"][1] / "onnx" / "model.onnx")
    with pytest.raises(ConfigError, match="Entity spans come from NER models"):
        classifier.predict_entities(["a b"])


def test_cli_predict_writes_one_json_line_per_input_line_from_any_artifact(exported, tmp_path, capsys, monkeypatch):
    import io
    import json

    from kerastune_nlp.cli import main

    run, export = exported["ner"]
    lines = ["Barack Obama visited Paris .", "", "New York , says Anna"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    answers = tmp_path / "answers.jsonl"
    assert main(["predict", str(export / "onnx" / "model.onnx"), "--input", str(tmp_path / "in.txt"),
                 "--output", str(answers)]) == 0
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3] and records[1] == {"line": 2, "text": "", "blank": True}
    expected = kt.Predictor.load(run).predict_entities([lines[0], lines[2]])
    for got, want in zip([records[0]["entities"], records[2]["entities"]], expected):
        assert [{**g, "score": pytest.approx(g["score"], abs=1e-5)} for g in got] == want
    assert records[0]["words"] == ["Barack", "Obama", "visited", "Paris", "."]
    # An existing --output is never overwritten.
    assert main(["predict", str(run), "x", "--output", str(answers)]) == 2
    assert "already exists" in capsys.readouterr().err
    # stdin, on the classification SavedModel.
    run, export = exported["classification"]
    monkeypatch.setattr("sys.stdin", io.StringIO("Who wrote Hamlet ?\nWhere is Rome ?\n"))
    assert main(["predict", str(export / "serving" / run.name / "1"), "--top-k", "2"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in out] == ["Who wrote Hamlet ?", "Where is Rome ?"]
    assert all(len(r["top_k"]) == 2 and r["truncated"] is False for r in out)
    assert main(["predict", str(tmp_path / "missing"), "x"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_evaluate_scores_any_path_form_as_the_predictor_does(exported, tmp_path, capsys):
    import json

    from kerastune_nlp.cli import main

    run, export = exported["ner"]
    dev = harness.TASK_DATA["ner"]()[1]
    kt.write_conll(tmp_path / "dev.conll", [s.tokens for s in dev], [s.tags for s in dev])
    for name, path in {"run": run, "export folder": export, "onnx": export / "onnx" / "model.onnx"}.items():
        scores = tmp_path / f"{name}.json"
        assert main(["evaluate", str(path), "--test", str(tmp_path / "dev.conll"), "--json", str(scores)]) == 0, name
        assert "micro avg" in capsys.readouterr().out
        expected = kt.Predictor.load(path, cache_size=0).evaluate(dev)
        assert json.loads(scores.read_text())["overall"] == pytest.approx(expected["overall"]), name
