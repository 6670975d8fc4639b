"""A ModernBERT model served: REST :predict and :entities answer as the Predictor does.

ModernBERT's tokenizer is byte-level BPE, which has no in-graph twin: its
SavedModel has only the `ids` signature, so the server runs it behind the
Python tokenizer (as `Predictor.load` does), for a run directory and for
an exported TF Serving model folder alike.
"""

from pathlib import Path

import pytest

from tests.tasks import harness


@pytest.mark.slow  # trains two tiny ModernBERT runs, exports one, starts two servers (about 60 s)
def test_a_modernbert_run_and_its_export_are_served_with_the_predictors_answers(tiny_modernbert_run, tmp_path):
    from kerastune_nlp.export.exporter import export_run
    from kerastune_nlp.inference import load_predictor
    from kerastune_nlp.serving.background import serve_in_background
    from kerastune_nlp.serving.client import ServingClient

    ner = tiny_modernbert_run("ner")
    sentence = "Barack Obama visited Paris."
    predictor = load_predictor(ner)
    with serve_in_background(ner, model_name="ner", poll_seconds=0) as handle, \
            ServingClient(handle.url, "ner") as client:
        spans = client.entities([sentence])
        served = client.predict([sentence])[0]
    expected_spans = predictor.predict_entities([sentence])
    assert [[(e["text"], e["label"], e["start"], e["end"]) for e in s] for s in spans] == \
        [[(e["text"], e["label"], e["start"], e["end"]) for e in s] for s in expected_spans]
    assert served["words"] == ["Barack", "Obama", "visited", "Paris", "."]
    assert list(served["labels"]) == predictor.predict([sentence])[0]

    classifier = tiny_modernbert_run("classification")
    export_run(classifier, tmp_path / "export", formats="savedmodel", measure=False, max_metric_drop=100,
               examples=harness.TASK_DATA["classification"]()[1])
    model_folder = tmp_path / "export" / "serving" / Path(classifier).name
    texts = [e.text for e in harness.TASK_DATA["classification"]()[1][:12]]
    expected = load_predictor(classifier).serve({"text": texts})
    with serve_in_background(model_folder, model_name="trec", poll_seconds=0) as handle, \
            ServingClient(handle.url, "trec", batch_size=5) as client:
        got = client.predict(texts)
    assert [answer["labels"] for answer in got] == [answer["labels"] for answer in expected]
    for answer, truth in zip(got, expected):
        assert answer["probabilities"] == pytest.approx(list(map(float, truth["probabilities"])), abs=1e-5)
