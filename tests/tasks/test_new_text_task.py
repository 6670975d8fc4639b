"""A text task defined in this file alone, with its own label format, goes through every stage.

`StarRatingTask` subclasses `TextTask`: its labels are written as stars
("★★★☆☆" or "★★★"), a rule no module outside this file knows. Through the
CLI it trains, tunes one trial, distils, prunes, exports, and its export is
served and predicted with; nothing outside this file names it.
"""

import csv
import json

import httpx
import numpy as np
import pytest

from kerastune_nlp.cli import main
from kerastune_nlp.errors import DataFormatError
from kerastune_nlp.tasks import register_task
from kerastune_nlp.tasks.text import TextTask

STAR, EMPTY_STAR = "★", "☆"


@register_task
class StarRatingTask(TextTask):
    """One to five stars per text, one softmax class per rating. State: `labels`, the ratings seen."""

    name = "star_rating"
    description = "a 1-5 star rating per text, written as stars (test-only task)"
    monitor = "val_accuracy"
    mode = "max"
    metric_name = "accuracy"

    def parse_label(self, value, where, column, separator=","):
        cell = str(value).strip() if value is not None else ""
        stars = cell.rstrip(EMPTY_STAR)
        if not stars or set(stars) != {STAR} or len(cell) > 5:
            raise DataFormatError(f"{where}: expected 1 to 5 stars such as '★★★☆☆' in column {column!r}. "
                                  f"Received: {value!r}.")
        return STAR * len(stars)

    def fit_state(self, train):
        self.state["labels"] = self.label_set(train)

    def targets(self, examples):
        index = {name: i for i, name in enumerate(self.state["labels"])}
        return np.asarray([index[e.label] for e in examples], np.int32)

    def loss_and_metrics(self, train, steps_per_epoch, replicas):
        from kerastune_nlp._tf import keras

        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])

    def distillation_loss(self, train, steps_per_epoch, replicas, temperature):
        from kerastune_nlp._tf import tf
        from kerastune_nlp.models.losses import softmax_distillation

        return lambda y_true, student, teacher: tf.reduce_mean(softmax_distillation(student, teacher, temperature))

    def scores_of(self, outputs):
        shifted = np.exp(outputs - outputs.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)

    def predict(self, predictor, inputs, pairs=None, **options):
        return [self.state["labels"][i] for i in self.raw_outputs(predictor, inputs, pairs).argmax(-1)]

    def evaluate(self, predictor, examples):
        predicted = self.scores_of_examples(predictor, examples).argmax(-1)
        gold = self.targets(examples)
        stars = np.asarray([len(label) for label in self.state["labels"]])
        return {"accuracy": float(np.mean(predicted == gold)),
                "star_error": float(np.mean(np.abs(stars[predicted] - stars[gold])))}

    def scores_of_examples(self, predictor, examples):
        return self.outputs_of_examples(predictor, examples)

    def primary_metric(self, scores):
        return float(scores["accuracy"])

    def serve_record(self, scores):
        return {"labels": self.state["labels"][int(np.argmax(scores))], "probabilities": [float(p) for p in scores]}

    def json_fields(self, scores, **options):
        return {"rating": self.state["labels"][int(np.argmax(scores))], "probability": float(np.max(scores))}

    def per_example_loss(self, examples, outputs):
        targets = self.targets(examples)
        return -np.log(outputs[np.arange(len(targets)), targets] + 1e-7)

    def prediction_row(self, output):
        return {"predicted": self.state["labels"][int(np.argmax(output))]}

    def serving_outputs(self, outputs):
        from kerastune_nlp._tf import tf

        ids = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        return {"labels": tf.gather(tf.constant(list(self.state["labels"])), ids),
                "probabilities": tf.nn.softmax(outputs, axis=-1)}


REVIEWS = [("a great film , loved it", "★★★★★"), ("great cast and a great plot", "★★★★☆"),
           ("bad film , bad plot", "★"), ("boring and bad", "★☆☆☆☆"), ("it was okay", "★★★"),
           ("an okay film", "★★★☆☆")]


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stars")
    return _write(folder / "reviews.csv", REVIEWS * 4)


TRAINING = ["--max-length", "16", "--epochs", "1", "--batch-size", "4", "--learning-rate", "1e-3"]


@pytest.fixture(scope="module")
def run(data, tiny_bert, tmp_path_factory):
    output = tmp_path_factory.mktemp("star-run") / "run"
    assert main(["train", "--task", "star_rating", "--train", data, "--dev", data, "--test", data,
                 "--backbone", str(tiny_bert), *TRAINING, "--output", str(output)]) == 0
    return output


def test_the_label_rule_of_the_task_reads_and_refuses_files(tmp_path):
    from kerastune_nlp.tasks.readers import read_text_file

    examples, _ = read_text_file(_write(tmp_path / "ok.csv", [("fine", "★★☆☆☆")]), task="star_rating")
    assert examples[0].label == "★★"
    with pytest.raises(DataFormatError, match=r"bad\.csv, line 3: expected 1 to 5 stars .* Received: '4'"):
        read_text_file(_write(tmp_path / "bad.csv", [("fine", "★"), ("meh", "4")]), task="star_rating")


def test_trains_and_predicts_through_the_cli(run, capsys):
    manifest = json.loads((run / "run_config.json").read_text())
    assert manifest["task"] == "star_rating" and manifest["task_state"]["labels"] == ["★", "★★★", "★★★★", "★★★★★"]
    assert set(json.loads((run / "metrics.json").read_text())["test"]) == {"accuracy", "star_error"}
    capsys.readouterr()
    assert main(["predict", str(run), "a great plot", "bad and boring"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [a["text"] for a in answers] == ["a great plot", "bad and boring"]
    assert all(set(a["rating"]) == {STAR} for a in answers)


def test_tunes_one_trial(data, tiny_bert, tmp_path, capsys):
    assert main(["tune", "--task", "star_rating", "--train", data, "--dev", data, "--backbone", str(tiny_bert),
                 "--max-length", "16", "--search-dir", str(tmp_path / "search"), "--max-trials", "1",
                 "--no-default-space", "--space", "learning_rate=1e-4:3e-3:log", "--space", "epochs=1",
                 "--space", "batch_size=4"]) == 0, capsys.readouterr().err
    assert (tmp_path / "search" / "best_config.yaml").is_file()


def test_distils_and_prunes(run, data, tmp_path, capsys):
    student = tmp_path / "student"
    assert main(["distill", str(run), "--student-layers", "1", "--epochs", "1",
                 "--output", str(student)]) == 0, capsys.readouterr().err
    assert json.loads((student / "run_config.json").read_text())["task"] == "star_rating"
    pruned = tmp_path / "pruned"
    assert main(["prune", str(run), "--sparsity", "0.5", "--output", str(pruned)]) == 0, capsys.readouterr().err
    assert json.loads((pruned / "run_config.json").read_text())["task"] == "star_rating"
    capsys.readouterr()
    for folder in (student, pruned):
        assert main(["predict", str(folder), "a great plot", "--format", "text"]) == 0
        assert set(capsys.readouterr().out.split("\t")[0]) == {STAR}


def test_exports_serves_and_predicts_from_the_export(run, tmp_path):
    from kerastune_nlp.serving.background import serve_in_background

    export = tmp_path / "export"
    assert main(["export", str(run), "--output", str(export), "--formats", "savedmodel", "--no-timing",
                 "--max-metric-drop", "100"]) == 0
    version = export / "serving" / run.name / "1"
    assert (version / "saved_model.pb").is_file()
    answers = {}
    for name, source in (("export", version), ("run", run)):  # to files: capsys and the server's logging do not mix
        assert main(["predict", str(source), "a great plot", "--format", "text",
                     "--output", str(tmp_path / f"{name}.txt")]) == 0
        answers[name] = (tmp_path / f"{name}.txt").read_text(encoding="utf-8").split("\t")[0]
    assert answers["export"] == answers["run"] and set(answers["run"]) == {STAR}
    with serve_in_background(version.parent, model_name="stars") as server:
        response = httpx.post(f"{server.url}/v1/models/stars:predict", json={"instances": ["a great plot"]},
                              timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["labels"] == answers["export"]
