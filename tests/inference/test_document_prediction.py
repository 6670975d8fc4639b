"""Prediction on documents: the same context layout as training, offsets into the caller's strings."""

import pytest

from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig
from kerastune_nlp.data import read_conll
from kerastune_nlp.data.document_split import split_by_document
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.data.documents import Document, split_sentences
from kerastune_nlp.data.words import split_words

WIKIGOLD = "/work/shared/data/wikigold/wikigold.conll.txt"


def train_wikigold_context_run(backbone, output_dir, context_size="auto", documents=12):
    """A tiny run on the first WikiGold articles, with document context (the recipe of test_document_context)."""
    from kerastune_nlp.training.ner_trainer import train_ner

    articles = [s for s in read_conll(WIKIGOLD) if s.document < documents]
    (train, dev, test), _ = split_by_document(articles, (0.6, 0.2, 0.2), 0, "wikigold")
    result = train_ner(train, dev, test, output_dir=output_dir, model_config=ModelConfig(backbone=str(backbone)),
                       data_config=DataConfig(max_length=48), ner_config=NERDataConfig(context_size=context_size),
                       train_config=TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3), verbose=0)
    return result.run_dir, test


@pytest.fixture(scope="module")
def context_run(tiny_bert, tmp_path_factory):
    from kerastune_nlp.inference.predictor import load_run

    run_dir, test = train_wikigold_context_run(tiny_bert, tmp_path_factory.mktemp("docs") / "run")
    predictor = load_run(run_dir)
    assert predictor.document_context == 12
    _make_it_tag_entities(predictor, test)
    predictor.save_model_files(run_dir)  # so the server and the export load the same weights
    predictor.source = {"kind": "run", "path": str(run_dir)}
    return predictor, test


def _make_it_tag_entities(predictor, test):
    """Lowers the "O" bias until 10-60% of the test words get an entity tag.

    The tiny run tags every word "O" (its vocabulary knows few WikiGold words);
    label comparisons between routes would then hold whatever the routes read.
    """
    head = predictor.model.get_layer("token_logits")
    kernel, bias = head.get_weights()
    outside = predictor.labels.index("O")

    def share(shift):
        shifted = bias.copy()
        shifted[outside] -= shift
        head.set_weights([kernel, shifted])
        predictor.cache.clear()
        tags = [t for s in predictor.task.predict_sentences(predictor, test) for t in s]
        return sum(t != "O" for t in tags) / len(tags)

    low, high = 0.0, 64.0
    for _ in range(20):  # bisection on the shift for about a third of the words tagged
        middle = (low + high) / 2
        value = share(middle)
        if 0.15 <= value <= 0.5:
            return
        low, high = (middle, high) if value < 0.15 else (low, middle)
    raise AssertionError(f"no bias shift gave a usable share of entity tags (last: {value:.2f} at {middle})")


def _by_document(examples):
    documents: dict = {}
    for sentence in examples:
        documents.setdefault((sentence.source, sentence.document), []).append(sentence)
    return [sorted(d, key=lambda s: s.line) for d in documents.values()]


# -- the sentence rule -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, sentences", [
    ("Obama met Merkel. They spoke in Berlin.", ["Obama met Merkel.", "They spoke in Berlin."]),
    ("One line\nanother line", ["One line", "another line"]),
    ('He said "Stop." Then left!  42 came.', ['He said "Stop."', "Then left!", "42 came."]),
    ("Dr. Smith met J. Doe. The U.S. team won.", ["Dr. Smith met J. Doe.", "The U.S. team won."]),
    ("pi is 3.14. it is not. Really? (Yes.)", ["pi is 3.14. it is not.", "Really?", "(Yes.)"]),
    ("  padded start. And end.  ", ["padded start.", "And end."]),
    ("", []),
    ("   \n ", []),
])
def test_split_sentences_rule_and_offsets(text, sentences):
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == sentences
    # Sentence boundaries are word boundaries: the words of the sentences are the words of the text.
    assert [w for s, e in spans for w, _, _ in split_words(text[s:e])] == [w for w, _, _ in split_words(text)]


def test_document_of_refuses_what_is_not_a_document():
    with pytest.raises(ConfigError, match=r"Received: int at documents\[3\]"):
        Document.of(5, 3)
    with pytest.raises(ConfigError, match=r"Received: list at documents\[0\]\[1\]"):
        Document.of(["fine", ["a", "b"]], 0)
    assert Document.of(["fine", ["a", "b"]], 0, words_allowed=True).sentences == ("fine", ("a", "b"))


# -- a run trained with context ----------------------------------------------------------------------

def test_documents_are_read_exactly_as_training_encoded_them(context_run, monkeypatch):
    predictor, test = context_run
    documents = _by_document(test)
    expected = predictor.task.predict_sentences(predictor, [s for d in documents for s in d])
    training_rows = predictor.task.encode(predictor.tokenizer, [s for d in documents for s in d],
                                          predictor.max_length).rows
    seen = []
    original = type(predictor).outputs
    monkeypatch.setattr(predictor, "outputs", lambda rows: seen.extend(rows) or original(predictor, rows))
    predictor.cache.clear()
    got = predictor.predict(documents=[[list(s.tokens) for s in d] for d in documents])
    assert [tags for d in got for tags in d] == expected
    # The model inputs are the training windows, context included (not merely the same labels).
    assert sorted(tuple(r.input_ids.tolist()) for r in seen) == sorted(tuple(r.input_ids.tolist())
                                                                       for r in training_rows)
    assert sum(len(r.input_ids) for r in seen) > sum(len(r.input_ids) for r in predictor.task.encode(
        predictor.tokenizer, [list(s.tokens) for d in documents for s in d], predictor.max_length,
        labelled=False).rows)


def test_a_text_document_gives_the_labels_of_its_sentences_and_exact_offsets(context_run):
    predictor, test = context_run
    document = _by_document(test)[0]
    sentences = [" ".join(s.tokens) for s in document]
    text = "\n".join(sentences)
    by_text = predictor.predict_entities(documents=[text])[0]
    by_list = predictor.predict_entities(documents=[sentences])[0]
    assert [s["text"] for s in by_text] == sentences
    offset = 0
    for from_text, from_list, sentence in zip(by_text, by_list, sentences):
        assert (from_text["start"], from_text["end"]) == (offset, offset + len(sentence))
        assert text[from_text["start"]:from_text["end"]] == sentence
        for entity in from_text["entities"]:
            assert text[entity["start"]:entity["end"]] == entity["text"]
        for entity in from_list["entities"]:
            assert sentence[entity["start"]:entity["end"]] == entity["text"]
        # The same sentences in the same document: the same entities, offsets moved by the sentence start.
        assert [(e["label"], e["start"] + offset, e["end"] + offset) for e in from_list["entities"]] == \
               [(e["label"], e["start"], e["end"]) for e in from_text["entities"]]
        offset += len(sentence) + 1
    tags = predictor.predict(documents=[sentences])[0]
    words = [[w for w, _, _ in split_words(s)] for s in sentences]
    assert tags == predictor.predict(documents=[words])[0]
    assert sum(len(s["entities"]) for s in by_text) == sum(
        sum(t.startswith("B-") for t in sentence_tags) for sentence_tags in tags)


def test_documents_do_not_see_each_other(context_run):
    predictor, test = context_run
    first, second = _by_document(test)[:2]
    together = predictor.predict(documents=[[list(s.tokens) for s in first], [list(s.tokens) for s in second]])
    predictor.cache.clear()
    alone = [predictor.predict(documents=[[list(s.tokens) for s in d]])[0] for d in (first, second)]
    assert together == alone


# -- a run trained without context: documents change nothing -----------------------------------------

def test_without_context_documents_give_what_sentences_give(tiny_run):
    from kerastune_nlp.inference.predictor import load_run

    predictor = load_run(tiny_run("ner"))
    assert predictor.document_context == 0
    sentences = ["Barack Obama met Angela Merkel in Berlin.", "Paris is lovely", "  Zürich,  São Paulo\tand New York "]
    text = " ".join(sentences)
    assert [s["entities"] for s in predictor.predict_entities(documents=[sentences])[0]] == \
           predictor.predict_entities(sentences)
    assert predictor.predict(documents=[sentences])[0] == predictor.predict(sentences)
    records = predictor.predict_entities(documents=[text])[0]
    alone = predictor.predict_entities([text[r["start"]:r["end"]] for r in records])
    assert [[(e["label"], e["start"], e["end"], e["score"]) for e in r["entities"]] for r in records] == \
           [[(e["label"], e["start"] + r["start"], e["end"] + r["start"], e["score"]) for e in spans]
            for r, spans in zip(records, alone)]
    # Texts and documents in one call (as one server batch may hold them) are each answered in kind.
    mixed = predictor.predict_entities([sentences[0], Document.from_sentences(sentences[1:])])
    assert mixed[0] == predictor.predict_entities(sentences[:1])[0]
    assert [r["entities"] for r in mixed[1]] == predictor.predict_entities(sentences[1:])


def test_document_errors_name_the_place(tiny_run):
    from kerastune_nlp.inference.predictor import load_run

    predictor = load_run(tiny_run("ner"))
    with pytest.raises(ConfigError, match=r"empty sentence at documents\[1\]\[0\]"):
        predictor.predict_entities(documents=[["fine"], ["  ", "x"]])
    with pytest.raises(ConfigError, match="either texts or `documents`"):
        predictor.predict_entities(["a"], documents=[["b"]])
    with pytest.raises(ConfigError, match="wrap it in a list"):
        predictor.predict_entities(documents="one text")
    assert predictor.predict_entities(documents=["", "  "]) == [[], []]


# -- the CLI: --input read as documents ----------------------------------------------------------------

def test_cli_predict_input_reads_documents(context_run, tmp_path):
    import json

    from kerastune_nlp.cli import main

    predictor, test = context_run
    first, second = [[" ".join(s.tokens) for s in d][:4] for d in _by_document(test)[:2]]
    lines = ["-DOCSTART- -X- O O", "", *first, "", "", "-DOCSTART- -X- O O", *second]
    source = tmp_path / "documents.txt"
    source.write_text("\n".join(lines) + "\n")
    assert main(["predict", predictor.source["path"], "--input",
                 str(source), "--output", str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records] == list(range(1, len(lines) + 1))
    assert records[0] == {"line": 1, "text": lines[0], "document_start": True} and records[1] == {"line": 2,
                                                                                                  "blank": True}
    expected = predictor.predict_json(documents=[first, second])
    sentences = [r for r in records if "document" in r]
    assert [r["document"] for r in sentences] == [1] * len(first) + [2] * len(second)
    assert [r["text"] for r in sentences] == first + second
    assert [{k: r[k] for k in ("entities", "words", "labels")} for r in sentences] == \
           [{k: e[k] for k in ("entities", "words", "labels")} for d in expected for e in d]
    # --documents no: every line alone, as before (so the -DOCSTART- line is a text of its own).
    assert main(["predict", predictor.source["path"], "--input", str(source), "--documents", "no",
                 "--format", "text", "--output", str(tmp_path / "alone.txt")]) == 0
    alone = (tmp_path / "alone.txt").read_text().splitlines()
    assert len(alone) == len(lines) and alone[1] == "" and alone[0] != lines[0]


# -- the server: :entities documents on a run with context -----------------------------------------------

def test_server_entities_documents_read_the_context(context_run):
    import httpx

    from kerastune_nlp.serving.background import serve_in_background

    predictor, test = context_run
    documents = [[" ".join(s.tokens) for s in d][:5] for d in _by_document(test)[:2]]
    body = {"documents": [{"sentences": documents[0]}, {"text": "\n".join(documents[1])}]}
    with serve_in_background(predictor.source["path"], model_name="wiki") as server:
        response = httpx.post(f"{server.url}/v1/models/wiki:entities", json=body, timeout=60)
    assert response.status_code == 200, response.text
    expected = predictor.predict_entities(documents=[documents[0], "\n".join(documents[1])])
    got = response.json()["predictions"]
    # Scores too: they move with the context, so a server reading sentences alone would differ.
    assert [[(e["label"], e["start"], e["end"], round(e["score"], 4)) for s in d for e in s["entities"]]
            for d in got] == [[(e["label"], e["start"], e["end"], round(e["score"], 4)) for s in d
                               for e in s["entities"]] for d in expected]
    assert sum(len(s["entities"]) for d in expected for s in d) > 0
    assert [[(s["start"], s["end"]) for s in d] for d in got] == [[(s["start"], s["end"]) for s in d]
                                                                    for d in expected]


# -- the exported raw-string signature with context ---------------------------------------------------------

def _exported_signatures(predictor, folder):
    """The raw-string signatures of the run, saved and loaded as TF Serving loads them."""
    import tensorflow as tf

    from kerastune_nlp.data import graph_tokenizer as gt
    from kerastune_nlp.export.signatures import CONTEXT_SIGNATURE, RAW_SIGNATURE, ServingModule

    graph = gt.GraphWordPiece(gt.wordpiece_spec(predictor.tokenizer), predictor.max_length)
    module = ServingModule(predictor, graph)
    tf.saved_model.save(module, str(folder), signatures=module.signatures())
    loaded = tf.saved_model.load(str(folder))
    return loaded.signatures[CONTEXT_SIGNATURE], loaded.signatures[RAW_SIGNATURE], loaded


def test_text_with_context_signature_gives_the_predictors_labels(context_run, tmp_path):
    import tensorflow as tf

    predictor, test = context_run
    examples = [s for d in _by_document(test) for s in d]
    signature, plain, _ = _exported_signatures(predictor, tmp_path / "saved")
    task = predictor.task
    inputs = task.raw_context_inputs_of(examples)
    assert sorted(signature.structured_input_signature[1]) == ["left_context", "right_context", "text"]
    assert sorted(plain.structured_input_signature[1]) == ["text"]
    outputs = signature(**{name: tf.constant(values) for name, values in inputs.items()})
    got = task.from_raw_outputs({name: value.numpy() for name, value in outputs.items()})
    by_python = task.predict_with_context(predictor, inputs)
    compared = [(a, b) for a, b in zip(got, by_python) if a is not None]
    # (Sentences longer than one window are the Python path's business: None, not compared.)
    assert len(compared) >= 15 and all(a == b for a, b in compared)
    # Where the word rule splits the joined words back into the CoNLL words, these are the labels the
    # Predictor gives the labelled sentences in their documents (the training layout).
    expected = task.predict_sentences(predictor, examples)
    same_words = [i for i, s in enumerate(examples) if [w for w, _, _ in split_words(inputs["text"][i])]
                  == list(s.tokens) and got[i] is not None]
    assert len(same_words) >= 10
    assert [got[i] for i in same_words] == [expected[i] for i in same_words]
    # The context is really read: the ids differ from the plain signature's wherever a sentence has neighbours.
    with_context = outputs["scores"].numpy()
    alone = plain(text=tf.constant(inputs["text"]))["scores"].numpy()
    assert not np_allclose(with_context, alone)
    # No context strings: the plain signature's answer.
    empty = signature(text=tf.constant(inputs["text"]), left_context=tf.constant([""] * len(examples)),
                      right_context=tf.constant([""] * len(examples)))
    assert np_allclose(empty["scores"].numpy(), alone)


def np_allclose(a, b):
    import numpy as np

    return a.shape == b.shape and np.allclose(a, b, atol=1e-5)


def test_the_graph_lays_out_context_ids_exactly_as_training(context_run):
    import tensorflow as tf

    from kerastune_nlp.data import graph_tokenizer as gt

    predictor, test = context_run
    task = predictor.task
    examples = [s for d in _by_document(test) for s in d]
    inputs = task.raw_context_inputs_of(examples)
    graph = gt.GraphWordPiece(gt.wordpiece_spec(predictor.tokenizer), predictor.max_length)
    encoded = graph.encode_words(tf.constant(inputs["text"]), tf.constant(inputs["left_context"]),
                                 tf.constant(inputs["right_context"]), task.context_size(predictor.max_length))
    ids, mask = encoded["features"]["input_ids"].numpy(), encoded["features"]["attention_mask"].numpy()
    windows = task.encode(predictor.tokenizer, examples, predictor.max_length).rows
    rows: dict = {}
    for window in windows:
        rows.setdefault(window.sentence_index, []).append(window)
    checked = with_context = 0
    for i, sentence in enumerate(examples):
        if len(rows[i]) > 1 or [w for w, _, _ in split_words(inputs["text"][i])] != list(sentence.tokens):
            continue
        window = rows[i][0]
        assert ids[i][mask[i].astype(bool)].tolist() == window.input_ids.tolist(), i
        # Each word's first sub-token is where training scores it.
        first = encoded["first"].numpy()[i][: len(sentence.tokens)]
        assert first[window.scored_words].tolist() == window.scored_positions.tolist()
        checked += 1
        with_context += window.scored_positions[0] > 1
    assert checked >= 15 and with_context >= 10


# -- the export report scores with context ------------------------------------------------------------------

def test_export_scores_with_context_and_checks_the_context_signature(context_run, tmp_path):
    import json

    from kerastune_nlp.export.exporter import export_run
    from kerastune_nlp.inference import load_predictor

    predictor, test = context_run
    export_run(predictor.source["path"], tmp_path / "export", formats="savedmodel,tflite-float32",
                        examples=test, measure=False)
    report = json.loads((tmp_path / "export" / "export_report.json").read_text())
    assert report["document_context"] == 12 and any("Document context" in n for n in report["notes"])
    rows = {r["format"]: r for r in report["artifacts"]}
    keras_f1 = predictor.task.primary_metric(predictor.evaluate(test))
    assert rows["keras-float32"]["metric"] == pytest.approx(keras_f1, abs=1e-6)
    for fmt in ("savedmodel", "tflite-float32"):
        assert rows[fmt]["status"] == "published", rows[fmt]
        assert rows[fmt]["metric"] == pytest.approx(keras_f1, abs=1e-3)
    agreed, total = rows["savedmodel"]["extra"]["context_signature_agreement"].split("/")
    assert agreed == total and int(total) >= 15
    # The exported TFLite model, loaded as a Predictor, reads documents with the context laid out in its ids.
    tflite = load_predictor(next((tmp_path / "export" / "tflite").glob("*.tflite")))
    documents = _by_document(test)[:2]
    assert tflite.predict(documents=[[list(s.tokens) for s in d] for d in documents]) == \
           predictor.predict(documents=[[list(s.tokens) for s in d] for d in documents])
