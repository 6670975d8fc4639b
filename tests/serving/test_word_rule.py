"""One word-splitting rule for raw text: the Predictor, the SavedModel's raw-string graph and the server.

A NER model learns CoNLL words, where punctuation stands alone; a route
that gave it `Paris.` as one word would feed it input it never saw, and give
other offsets than the next route. So every route splits by
`inference.words.split_words`, the graph through RE2 with the same pattern.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("raw_sentences", Path(__file__).parent / "raw_sentences.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


def _graph_words(graph, texts):
    from kerastune_nlp._tf import tf

    encoded = graph.encode_words(tf.constant(texts))
    words, starts, ends, mask = (encoded[k].numpy() for k in ("words", "starts", "ends", "word_mask"))
    return [[(w.decode(), int(s), int(e)) for w, s, e, m in zip(*row) if m]
            for row in zip(words, starts, ends, mask)]


def test_the_graph_splits_1000_raw_sentences_into_the_predictors_words_and_offsets(tiny_bert):
    from kerastune_nlp.models.backbones import load_tokenizer
    from kerastune_nlp.data.graph_tokenizer import GraphWordPiece, wordpiece_spec
    from kerastune_nlp.data.words import split_words

    texts = corpus.raw_sentences(1000)
    tokenizer = load_tokenizer(str(tiny_bert))
    graph = GraphWordPiece(wordpiece_spec(tokenizer), max_length=512)
    python = [split_words(text) for text in texts]
    in_graph = [words for begin in range(0, len(texts), 250) for words in _graph_words(graph, texts[begin:begin + 250])]
    different = [(text, a, b) for text, a, b in zip(texts, python, in_graph) if a != b]
    assert not different, different[:3]
    assert all(text[s:e] == w for text, words in zip(texts, python) for w, s, e in words)
    joined = {w for words in python for w, _, _ in words}
    # The corpus exercises what the rule is for: punctuation cut off, URLs, tags and contractions kept whole.
    assert {"Paris", ".", "#SpaceX", "@nasa", "https://example.org/a?b=1&c=2", "O'Neill’s", "हिन्दी"} <= joined
    assert sum(len(words) for words in python) > 15000


@pytest.fixture(scope="module")
def ner_export(tiny_bert_256, tmp_path_factory):
    """A tiny NER run (max_length 256, so raw sentences fit the graph's one window) whose head is pushed off "O"
    (one epoch alone tags every word "O", which would let any mix-up pass), exported as a SavedModel."""
    import kerastune_nlp as kt
    from kerastune_nlp._tf import keras
    from kerastune_nlp.export.exporter import export_run

    root = tmp_path_factory.mktemp("word_rule")
    paths = kt.bundled_wnut17()
    train, dev = kt.read_conll(paths["train"])[:48], kt.read_conll(paths["dev"])[:16]
    run = kt.train("ner", train, dev, output_dir=root / "run", verbose=0,
                   model_config=kt.ModelConfig(backbone=str(tiny_bert_256)), data_config=kt.DataConfig(max_length=256),
                   train_config=kt.TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3)).run_dir
    predictor = kt.load_run(run)
    head = [layer for layer in predictor.model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = head.get_weights()
    bias[list(predictor.task.labels).index("O")] -= 4.0
    head.set_weights([kernel * 20, bias])
    predictor.model.save_weights(str(run / "model.h5"))
    export_run(run, root / "export", formats="savedmodel", measure=False, max_metric_drop=100, examples=dev)
    return run, root / "export" / "serving" / "run"


@pytest.mark.slow  # trains and exports a tiny model, starts the server (about 40 s)
def test_every_route_gives_the_same_words_offsets_and_labels_on_1000_raw_sentences(ner_export):
    from kerastune_nlp._tf import tf
    from kerastune_nlp.inference import load_predictor
    from kerastune_nlp.serving.background import serve_in_background
    from kerastune_nlp.serving.client import ServingClient

    run, served_model = ner_export
    texts = corpus.raw_sentences(1000)
    predictor = load_predictor(run)
    python = predictor.serve({"text": texts})  # the signature's outputs computed by the Predictor
    as_json = predictor.predict_json(texts)     # what `kerastune-nlp predict` writes
    signature = tf.saved_model.load(str(served_model / "1")).signatures["serving_default"]
    graph = []
    for begin in range(0, len(texts), 100):
        out = {k: v.numpy() for k, v in signature(text=tf.constant(texts[begin:begin + 100])).items()}
        for i in range(len(out["word_count"])):
            n = int(out["word_count"][i])
            graph.append({"words": [w.decode() for w in out["words"][i][:n]], "start": out["start"][i][:n].tolist(),
                          "end": out["end"][i][:n].tolist(), "labels": [x.decode() for x in out["labels"][i][:n]],
                          "covered": bool(out["covered"][i][:n].all())})
    with serve_in_background(served_model, model_name="ner", poll_seconds=0) as handle, \
            ServingClient(handle.url, "ner", batch_size=100) as client:
        rest = client.predict(texts)         # TF Serving's :predict: the raw-string graph
        rest_entities = client.entities(texts)  # our :entities: the Predictor on the exported model

    def words_and_offsets(record):
        return list(zip(record["words"], record["start"], record["end"]))

    for i, text in enumerate(texts):
        assert words_and_offsets(graph[i]) == words_and_offsets(python[i]) == words_and_offsets(rest[i]), text
        assert as_json[i]["words"] == python[i]["words"], text
        assert as_json[i]["labels"] == python[i]["labels"], text
        if graph[i]["covered"]:  # the graph tags one window; the Predictor slides over longer texts
            assert graph[i]["labels"] == python[i]["labels"] == list(rest[i]["labels"]), text
    covered = sum(record["covered"] for record in graph)
    assert covered >= 990, covered
    tagged = sum(label != "O" for record in python for label in record["labels"])
    assert 0 < tagged < sum(len(record["labels"]) for record in python), "the model must tag some words, not all"
    spans = [[(e["text"], e["label"], e["start"], e["end"]) for e in entities] for entities in rest_entities]
    assert spans == [[(e["text"], e["label"], e["start"], e["end"]) for e in record["entities"]] for record in as_json]
