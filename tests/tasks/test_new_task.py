"""A task defined in this file alone trains, saves, reloads and predicts through `kt.train` and the CLI.

`IsQuestionTask` subclasses the bare `Task` interface (not one of the
built-in task bases) and is registered here; no other module knows it.
"""

import dataclasses
import json

import numpy as np
import pytest

import kerastune_nlp as kt
from kerastune_nlp.cli import main
from kerastune_nlp.config import setting
from kerastune_nlp.tasks import DevScore, EncodedSplit, Task, register_task, task_names


@dataclasses.dataclass(frozen=True)
class IsQuestionConfig:
    question_mark: str = setting("?", "the character that marks a question")


@dataclasses.dataclass(frozen=True)
class Row:
    input_ids: np.ndarray
    token_type_ids: np.ndarray


@register_task
class IsQuestionTask(Task):
    """Binary: is the text a question? Examples are `(text, bool)` pairs; files are `label<TAB>text`."""

    name = "is_question"
    description = "is the text a question (test-only task)"
    config_class = IsQuestionConfig
    monitor = "val_accuracy"
    mode = "max"

    def load_splits(self, data, seed):
        splits = {name: self.read_file(path, data) for name, path in
                  (("train", data.train), ("dev", data.dev), ("test", data.test)) if path}
        return splits, "questions"

    def read_file(self, path, data):
        rows = []
        for line in open(path, encoding=data.encoding):
            label, text = line.rstrip("\n").split("\t")
            rows.append((text, label == "yes"))
        return rows

    def fit_state(self, train):
        self.state["labels"] = ["no", "yes"]

    def encode(self, tokenizer, examples, max_length, labelled=True):
        texts = [e[0] for e in examples] if labelled else list(examples)
        encoded = tokenizer(texts, truncation=True, max_length=max_length, return_token_type_ids=True)
        rows = [Row(np.asarray(i, np.int32), np.asarray(t, np.int32))
                for i, t in zip(encoded["input_ids"], encoded["token_type_ids"])]
        targets = np.asarray([int(e[1]) for e in examples], np.int32) if labelled else None
        return EncodedSplit(rows, targets, {"examples": len(rows)})

    def build_model(self, backbone, input_names, *, dropout, initializer_range, seed=None):
        from kerastune_nlp.models.sequence_classifier import build_sequence_classifier

        return build_sequence_classifier(backbone, input_names, 2, dropout=dropout,
                                         initializer_range=initializer_range, seed=seed)

    def loss_and_metrics(self, train, steps_per_epoch, replicas):
        from kerastune_nlp._tf import keras

        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])

    def dev_score(self, predictor, dev):
        return DevScore(lambda: self.evaluate(predictor, dev), lambda s: {"val_accuracy": s["accuracy"]})

    def predict(self, predictor, inputs, **options):
        outputs = np.stack(predictor.outputs(self.encode(predictor.tokenizer, inputs, predictor.max_length,
                                                         labelled=False).rows))
        return [self.state["labels"][i] for i in outputs.argmax(-1)]

    def evaluate(self, predictor, examples):
        predicted = self.predict(predictor, [e[0] for e in examples])
        gold = ["yes" if e[1] else "no" for e in examples]
        return {"accuracy": float(np.mean([p == g for p, g in zip(predicted, gold)]))}


QUESTIONS = ["Who wrote Hamlet ?", "Where is Paris ?", "What time is it ?", "Is the dog lazy ?",
             "When did Obama visit Berlin ?", "Why is the sky blue ?"]
STATEMENTS = ["The fox jumps over the dog .", "Paris is in France .", "It is late .", "The dog is lazy .",
              "Obama visited Berlin .", "The sky is blue ."]


def _examples():
    return [(q, True) for q in QUESTIONS] + [(s, False) for s in STATEMENTS]


def test_the_new_task_is_registered_everywhere():
    assert "is_question" in task_names()
    assert kt.get_task("is_question") is IsQuestionTask


def test_new_task_trains_saves_reloads_and_predicts_through_train(tiny_bert, tmp_path):
    examples = _examples()
    result = kt.train(IsQuestionTask(), examples, examples[:4] + examples[-4:], examples, output_dir=tmp_path / "run",
                      model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=16),
                      train_config=kt.TrainConfig(epochs=3, batch_size=4, learning_rate=3e-3), verbose=0)
    assert set(result.metrics["test"]) == {"accuracy"}
    manifest = json.loads((result.run_dir / "run_config.json").read_text())
    assert manifest["task"] == "is_question" and manifest["task_config"] == {"question_mark": "?"}
    reloaded = kt.load_run(result.run_dir)
    assert isinstance(reloaded.task, IsQuestionTask)
    texts = QUESTIONS + STATEMENTS
    assert reloaded.predict(texts) == result.predictor.predict(texts)
    assert set(reloaded.predict(texts)) <= {"yes", "no"}


def test_new_task_through_the_cli(tiny_bert, tmp_path, capsys):
    data = tmp_path / "questions.tsv"
    data.write_text("".join(f"{'yes' if y else 'no'}\t{t}\n" for t, y in _examples()))
    run = tmp_path / "cli-run"
    code = main(["train", "--task", "is_question", "--train", str(data), "--dev", str(data), "--test", str(data),
                 "--backbone", str(tiny_bert), "--max-length", "16", "--epochs", "1", "--batch-size", "4",
                 "--question-mark", "?", "--output", str(run)])
    assert code == 0, capsys.readouterr().err
    assert "Test set:" in capsys.readouterr().out
    assert main(["predict", str(run), "Who is there ?", "It rains .", "--format", "text"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.split("\t")[0] in {"yes", "no"} for line in lines)
    assert main(["predict", str(run), "Who is there ?"]) == 0  # JSON Lines: the task's `predict` answer
    assert json.loads(capsys.readouterr().out)["prediction"] in {"yes", "no"}
    # A built-in task's flag is refused for this task, naming the flag and its task.
    assert main(["train", "--task", "is_question", "--train", str(data), "--tag-scheme", "iob1"]) == 2
    assert "--tag-scheme is a setting of --task ner" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["ner", "classification", "multilabel", "regression"])
def test_built_in_tasks_expose_a_serving_hook(name):
    from kerastune_nlp._tf import tf

    task = kt.get_task(name)()
    task.state.update(labels=["B-x", "I-x", "O"] if name == "ner" else ["a", "b", "c"], target_mean=1.0,
                      target_std=2.0, threshold=0.5)
    outputs = tf.constant(np.random.default_rng(0).normal(size=(2, 4, 3) if name == "ner" else (2, 3)),
                          tf.float32)
    served = task.serving_outputs(outputs)
    assert served and all(isinstance(v, tf.Tensor) for v in served.values())


@pytest.mark.parametrize("name", ["ner", "classification", "multilabel", "regression"])
def test_built_in_tasks_describe_their_hugging_face_head(name):
    from kerastune_nlp.tasks import HFHead

    task = kt.get_task(name)()
    task.state.update(labels=["B-x", "I-x", "O"] if name == "ner" else ["a", "b", "c"], target_mean=1.0,
                      target_std=2.0, threshold=0.25)
    head = task.hf_head()
    assert isinstance(head, HFHead) and head.token_level == (name == "ner")
    assert head.labels == (("value",) if name == "regression" else tuple(task.state["labels"]))
    assert head.usage.startswith("```python") and '"PATH"' in head.usage
    kernel, bias = np.ones((4, len(head.labels)), np.float32), np.zeros(len(head.labels), np.float32)
    folded = head.fold_scaling(kernel, bias)
    if name == "regression":  # values out of transformers: std * output + mean, and back
        assert folded[0][0, 0] == 2.0 and folded[1][0] == 1.0 and head.unfold_scaling(np.float32(3.0)) == 1.0
    else:
        assert folded[0] is kernel and folded[1] is bias
    if name == "multilabel":
        assert head.config_fields == {"threshold": 0.25} and "p >= 0.25" in head.usage


def test_a_task_of_its_own_has_no_hugging_face_head():
    assert IsQuestionTask().hf_head() is None
