"""Distillation: student construction, the loss, every task end to end, resume and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kerastune_nlp as kt
from kerastune_nlp.distillation import DistillConfig, distill
from kerastune_nlp.distillation.students import choose_layers, parse_layer_list, spread_layers
from kerastune_nlp.errors import ConfigError, LabelError, RunDirectoryError

from tests.tasks import harness


def _splits(name):
    train, dev = harness.TASK_DATA[name]()
    return {"train": train, "dev": dev, "test": dev}


def _distill(teacher, output, name, config=None, **kwargs):
    return distill(teacher, output, config=config or DistillConfig(student_layers=1), verbose=0,
                   train_overrides=kwargs.pop("train_overrides", {"epochs": 1}), **_splits(name), **kwargs)


# -- which blocks a student keeps -----------------------------------------------


def test_students_keep_evenly_spread_blocks_with_the_top_one():
    assert spread_layers(6, 3) == [1, 3, 5]
    assert spread_layers(12, 6) == [1, 3, 5, 7, 9, 11]
    assert spread_layers(6, 6) == list(range(6))
    assert choose_layers(6, None, None) == (1, 3, 5)  # default: half the depth
    assert choose_layers(6, None, (0, 2, 4)) == (0, 2, 4)
    assert parse_layer_list("0, 2,4") == (0, 2, 4)


def test_a_student_cannot_keep_more_blocks_than_the_teacher_has():
    with pytest.raises(ConfigError, match=r"at most the teacher's 6 blocks. Received: `student_layers`=8.*"
                                          r"between 1 and 6"):
        choose_layers(6, 8, None)
    with pytest.raises(ConfigError, match=r"numbered 0 to 5.*\[6\] outside"):
        choose_layers(6, None, (0, 6))
    with pytest.raises(ConfigError, match="increasing order"):
        choose_layers(6, None, (3, 1))
    with pytest.raises(ConfigError, match="comma-separated block numbers"):
        parse_layer_list("0,two")
    with pytest.raises(ConfigError, match="one way"):
        DistillConfig(student_layers=2, keep_layers=(0, 1))
    with pytest.raises(ConfigError, match=r"`temperature` > 0"):
        DistillConfig(temperature=0)
    with pytest.raises(ConfigError, match=r"`alpha`.*in \[0, 1\]"):
        DistillConfig(alpha=1.5)


# -- the loss ----------------------------------------------------------------------


def test_soft_losses_are_temperature_scaled_kl_and_skip_unlabelled_tokens():
    from kerastune_nlp.models.losses import masked_token_distillation, sigmoid_distillation, softmax_distillation

    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 5)).astype("float32")

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(teacher / 3), softmax(student / 3)
    expected = 9 * (p * (np.log(p) - np.log(q))).sum(-1)
    np.testing.assert_allclose(softmax_distillation(student, teacher, 3.0).numpy(), expected, rtol=1e-4)
    assert np.allclose(softmax_distillation(teacher, teacher, 2.0).numpy(), 0, atol=1e-6)
    assert np.allclose(sigmoid_distillation(teacher, teacher, 2.0).numpy(), 0, atol=1e-6)
    assert (sigmoid_distillation(student, teacher, 2.0).numpy() > 0).all()
    # Tokens: only positions with a label count; the sum is divided by the constant normaliser.
    labels = np.array([[0, -100, 1, -100]])  # one sentence of 4 tokens, 5 tags
    value = masked_token_distillation(2.0, 3.0)(labels, student[None], teacher[None]).numpy()
    assert value == pytest.approx((expected[0] + expected[2]) / 2.0, rel=1e-4)


def _tiny_pair(tiny_bert):
    """A teacher and a student classifier (tiny BERT, different random heads) and one batch.

    No dropout anywhere, the backbone's included: the loss curves these tests
    read are then the optimiser's alone, not dropout noise on four examples.
    """
    from kerastune_nlp.backbones.config import parse_config
    from kerastune_nlp.backbones.encoder import load_encoder
    from kerastune_nlp.models import backbones
    from kerastune_nlp.tasks import get_task

    task = get_task("classification")(state={"labels": ["a", "b", "c"]})
    tokenizer = backbones.load_tokenizer(tiny_bert)

    config = parse_config(tiny_bert / "config.json")
    config = type(config).from_dict({**config.to_dict(), "hidden_dropout_prob": 0.0,
                                     "attention_probs_dropout_prob": 0.0})

    def backbone():
        return backbones.without_autograph(load_encoder(tiny_bert, config=config)[0])

    models = [task.build_model(backbone(), tokenizer.model_input_names, dropout=0.0, initializer_range=0.5,
                               seed=seed) for seed in (1, 2)]
    batch = tokenizer(["the quick brown fox", "new york city", "apple released the iphone", "berlin"],
                      padding=True, return_tensors="np")
    features = {name: batch[name].astype("int32") for name in tokenizer.model_input_names}
    return task, models, features


def _agreement(student, teacher, features):
    from kerastune_nlp.models.losses import softmax_distillation

    return float(softmax_distillation(student(features), teacher(features), 1.0).numpy().mean())


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_the_teacher_term_pulls_the_student_to_the_teacher_and_nothing_else_trains(tiny_bert, alpha):
    from kerastune_nlp._tf import keras
    from kerastune_nlp.distillation.model import DistillingModel

    task, (teacher, student), features = _tiny_pair(tiny_bert)
    # Each row's label is the class the teacher finds least likely: learning
    # the labels moves the student away from the teacher, whatever the
    # random initialisation of this session's tiny backbone.
    labels = np.argmin(teacher(features).numpy(), axis=-1)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    before = _agreement(student, teacher, features)
    soft = task.distillation_loss(None, 1, 1, temperature=1.0)
    model = DistillingModel(student, teacher, soft, alpha=alpha)
    # A small step: at 1e-2 Adam's first steps overshoot and the soft loss
    # oscillates on some random initialisations.
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # The student's own layers; the teacher is neither trained nor checkpointed with them.
    assert model.layers == student.layers
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in student.trainable_weights}
    assert not {id(w) for w in teacher.weights} & {id(w) for w in model.weights}
    history = model.fit(features, labels, epochs=60, batch_size=4, verbose=0).history
    after = _agreement(student, teacher, features)
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    if alpha == 0.0:
        # The student matches the teacher (absolute bounds: on some initialisations
        # the two heads already nearly agree before training).
        assert after < min(before, 0.01) and history["soft_loss"][-1] < 0.01
        assert np.array_equal(np.argmax(student(features), -1), np.argmax(teacher(features), -1))
    else:  # hard labels only: the student learns the labels, away from the teacher
        assert after > before and np.array_equal(np.argmax(student(features), -1), labels)
    # Dev loss is the hard loss alone.
    hard = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, student(features)).numpy()
    assert model.evaluate(features, labels, verbose=0, return_dict=True)["loss"] == pytest.approx(float(hard), rel=1e-4)


def test_a_student_with_every_block_starts_as_the_teacher(tiny_run, tmp_path):
    """The layer copy is exact: keeping all blocks (and the head) reproduces the teacher's outputs."""
    teacher = kt.load_run(tiny_run("ner"))
    result = _distill(tiny_run("ner"), tmp_path / "same", "ner", DistillConfig(keep_layers=(0, 1)),
                      train_overrides={"epochs": 1, "learning_rate": 1e-9})
    dev = _splits("ner")["dev"]
    rows = teacher.task.encode(teacher.tokenizer, dev, teacher.max_length).rows
    for a, b in zip(result.predictor.outputs(rows), teacher.outputs(rows)):
        np.testing.assert_allclose(a, b, atol=1e-4)


# -- every task, end to end ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(harness.TASK_DATA))
def test_every_task_distils_into_a_normal_run_directory_with_a_side_by_side_report(name, tiny_run, tmp_path):
    result = _distill(tiny_run(name), tmp_path / "student", name)
    block = result.metrics["distillation"]
    assert block["teacher"]["blocks"] == 2 and block["student"]["blocks"] == 1
    assert block["recipe"]["layers"] == [1] and block["recipe"]["init"] == "teacher"
    assert block["student"]["parameters"] < block["teacher"]["parameters"]
    assert block["student"]["weights_bytes"] < block["teacher"]["weights_bytes"]
    for side in ("teacher", "student"):
        latency = block[side]["latency_batch1_cpu"]
        assert latency["predict_ms"] > 0 and latency["forward_ms"] > 0 and latency["examples"] > 0
        assert block[side]["metric"]["test"] is not None
    assert block["student"]["metric"]["test"] == result.predictor.task.primary_metric(result.metrics["test"])
    assert block["student_vs_teacher"]["metric_name"] == result.predictor.task.metric_name
    # A normal run: load_run rebuilds the 1-block student and predicts as the trained one did.
    reloaded = kt.load_run(result.run_dir)
    assert reloaded.backbone_config.num_hidden_layers == 1
    inputs = harness.inputs_of(reloaded.task, _splits(name)["dev"])
    assert reloaded.predict(inputs) == result.predictor.predict(inputs)
    assert json.loads((result.run_dir / "metrics.json").read_text())["distillation"]["recipe"]["alpha"] == 0.5


@pytest.mark.slow
def test_a_student_run_exports_and_serves_like_any_run(tiny_run, tmp_path):
    from kerastune_nlp.export.exporter import export_run

    student = _distill(tiny_run("classification"), tmp_path / "student", "classification").run_dir
    export_run(student, tmp_path / "export", formats="savedmodel", examples=_splits("classification")["dev"],
               measure=False)
    version = tmp_path / "export" / "serving" / "student" / "1"
    texts = harness.inputs_of(kt.load_run(student).task, _splits("classification")["dev"])
    assert kt.Predictor.load(version).predict(texts) == kt.load_run(student).predict(texts)


def test_an_interrupted_distillation_resumes_when_rerun(tiny_run, tmp_path):
    from kerastune_nlp._tf import keras

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    output = tmp_path / "student"
    with pytest.raises(KeyboardInterrupt):
        _distill(tiny_run("ner"), output, "ner", train_overrides={"epochs": 2}, callbacks=[Crash()])
    assert not output.exists() and (tmp_path / "student.partial").is_dir()
    result = _distill(tiny_run("ner"), output, "ner", train_overrides={"epochs": 2})
    assert [e["epoch"] for e in result.metrics["dev_per_epoch"]] == [1, 2]
    with pytest.raises(RunDirectoryError, match="already exists"):  # never replaced without --overwrite
        _distill(tiny_run("ner"), output, "ner")


# -- bad input ------------------------------------------------------------------------


def test_data_with_labels_the_teacher_does_not_know_is_refused(tiny_run, tmp_path):
    from kerastune_nlp.data.conll import Sentence

    splits = _splits("ner")
    splits["train"] = [*splits["train"], Sentence(("Mars", "rover"), ("B-planet", "O"), "new.conll", 7)]
    with pytest.raises(LabelError, match=r"teacher run .* knows only its own labels.*'planet' first at new.conll"):
        distill(tiny_run("ner"), tmp_path / "s", config=DistillConfig(student_layers=1), verbose=0, **splits)
    assert not (tmp_path / "s").exists() and not (tmp_path / "s.partial").exists()


def test_a_student_backbone_with_another_tokenizer_is_refused(tiny_run, tiny_backbones, tmp_path):
    with pytest.raises(ConfigError, match=r"tokenizes differently from the teacher.*--student-layers"):
        _distill(tiny_run("ner"), tmp_path / "s", "ner",
                 DistillConfig(student_backbone=str(tiny_backbones["roberta"])))


def test_cli_refuses_bad_students_before_training(tiny_run, tmp_path, capsys):
    from kerastune_nlp.cli import main

    assert main(["distill", str(tiny_run("ner")), "--student-layers", "3", "--output", str(tmp_path / "s")]) == 2
    assert "at most the teacher's 2 blocks. Received: `student_layers`=3" in capsys.readouterr().err
    assert main(["distill", str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["distill", str(tiny_run("ner")), "--alpha", "2"]) == 2
    assert "`alpha`=2.0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# -- the example (the real bundled weights: tests/test_cli.py, on the quick NER run) -------


def test_the_example_distils_a_teacher_trained_on_conll_files(tiny_bert, tmp_path, capsys):
    import runpy

    from kerastune_nlp.data import bundled_wnut17

    # The first 60 bundled training sentences as a small CoNLL file (train = dev = test).
    blocks = bundled_wnut17()["train"].read_text(encoding="utf-8").split("\n\n")[:60]
    conll = tmp_path / "small.conll"
    conll.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    teacher = tmp_path / "teacher"
    files = kt.DataConfig(train=str(conll), dev=str(conll), test=str(conll), max_length=32)
    kt.train("ner", output_dir=teacher, data_config=files, verbose=0,
             model_config=kt.ModelConfig(backbone=str(tiny_bert)),
             train_config=kt.TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3))
    example = runpy.run_path(str(Path(__file__).parents[2] / "examples" / "distill_ner.py"))
    assert example["main"](["--teacher", str(teacher), "--output", str(tmp_path / "out"),
                            "--student-layers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "1 of the teacher's 2 blocks [1]" in printed and "test entity F1" in printed
    assert kt.load_run(tmp_path / "out" / "student").backbone_config.num_hidden_layers == 1
    assert example["main"](["--teacher", str(teacher), "--output", str(tmp_path / "bad"),
                            "--student-layers", "4"]) == 2
    assert "at most the teacher's 2 blocks" in capsys.readouterr().err


# -- ModernBERT: global and sliding blocks, and a first block without attn_norm ------


def test_a_modernbert_student_keeps_block_0_and_each_kept_block_s_attention_kind(tiny_modernbert_run, tmp_path):
    """The tiny ModernBERT has 3 blocks (full, sliding, full). Keeping every block reproduces the teacher;
    2 blocks keep 0 and the top one, whose kinds the student's config lists."""
    teacher = kt.load_run(tiny_modernbert_run("ner"))
    dev = _splits("ner")["dev"]
    rows = teacher.task.encode(teacher.tokenizer, dev, teacher.max_length).rows
    same = _distill(tiny_modernbert_run("ner"), tmp_path / "same", "ner", DistillConfig(keep_layers=(0, 1, 2)),
                    train_overrides={"epochs": 1, "learning_rate": 1e-9})
    for a, b in zip(same.predictor.outputs(rows), teacher.outputs(rows)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    result = _distill(tiny_modernbert_run("ner"), tmp_path / "two", "ner", DistillConfig(student_layers=2))
    block = result.metrics["distillation"]
    assert block["recipe"]["layers"] == [0, 2] and block["student"]["blocks"] == 2
    saved = json.loads((result.run_dir / "backbone_config" / "config.json").read_text())
    assert saved["layer_types"] == ["full_attention", "full_attention"]
    reloaded = kt.load_run(result.run_dir)
    assert reloaded.backbone_config.layer_types == ("full_attention", "full_attention")
    inputs = harness.inputs_of(reloaded.task, dev)
    assert reloaded.predict(inputs) == result.predictor.predict(inputs)


def test_a_modernbert_student_without_block_0_is_refused_before_training(tiny_modernbert_run, tmp_path):
    with pytest.raises(ConfigError, match=r"must keep block 0.*block 1 has one.*`keep_layers`=\[0, 2\]"):
        _distill(tiny_modernbert_run("ner"), tmp_path / "s", "ner", DistillConfig(keep_layers=(1, 2)))
    assert not (tmp_path / "s").exists()


def test_a_modernbert_student_can_start_from_the_pretrained_backbone(tiny_modernbert_run, tmp_path):
    result = _distill(tiny_modernbert_run("classification"), tmp_path / "s", "classification",
                      DistillConfig(keep_layers=(0, 1), student_init="pretrained"))
    block = result.metrics["distillation"]
    assert block["recipe"]["layers"] == [0, 1] and block["recipe"]["init"] == "pretrained"
    assert kt.load_run(result.run_dir).backbone_config.layer_types == ("full_attention", "sliding_attention")
