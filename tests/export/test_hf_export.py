"""The Hugging Face export (`--formats hf`) without PyTorch: names, shapes, head mapping, config, card, tokenizer.

The names and shapes transformers' PyTorch task classes expect come from
`tests/fixtures/hf_export/expected_state_dicts.json`, written in the benchmark
environment by `benchmarks/hf_export_reference.py`; the PyTorch round trip
itself is `benchmarks/hf_export.py`.
"""

import json
import types
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.errors import ConfigError, ExportError, RunDirectoryError
from kerastune_nlp.export import hf_heads
from kerastune_nlp.export.exporter import export_run

EXPECTED = json.loads((Path(__file__).parents[1] / "fixtures" / "hf_export" / "expected_state_dicts.json")
                      .read_text())
FAMILIES = sorted(EXPECTED["families"])
LABELS = EXPECTED["num_labels"]

from tests.tasks import harness


def _tiny_predictor(family: str, task_name: str, seed: int = 0):
    """A task model on a random tiny encoder of `family` with a random head (no training, no run directory)."""
    from kerastune_nlp._tf import tf
    from kerastune_nlp.backbones.config import parse_config
    from kerastune_nlp.backbones.encoder import build_encoder
    from kerastune_nlp.tasks import get_task

    config = EXPECTED["families"][family]["config"]
    labels = [f"L{i}" for i in range(LABELS)]
    if task_name == "ner":
        labels = ["O"] + [f"{p}-T{i}" for i in range(2) for p in "BI"]
    state = {"regression": {"target_mean": 3.0, "target_std": 2.0}}.get(task_name, {"labels": labels})
    task = get_task(task_name)(None, state)
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if family in ("bert", "electra") else [])
    model = task.build_model(build_encoder(config, seed=seed), inputs, dropout=0.1, initializer_range=0.02)
    head = model.get_layer("token_logits" if task_name == "ner" else "head")
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in head.get_weights()])
    predictor = types.SimpleNamespace(task=task, model=model, backbone_config=parse_config(config), max_length=16)
    features = {"input_ids": rng.integers(5, 99, (3, 9)).astype(np.int32),
                "attention_mask": np.ones((3, 9), np.int32)}
    features["attention_mask"][0, 6:] = 0
    if "token_type_ids" in inputs:
        features["token_type_ids"] = np.zeros((3, 9), np.int32)
    features = {k: tf.constant(v) for k, v in features.items()}
    return predictor, features


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("task_name", ["ner", "classification"])
def test_tensor_names_and_shapes_are_those_of_the_transformers_class(family, task_name):
    from kerastune_nlp.export.hf_checkpoint import hf_tensors

    predictor, _ = _tiny_predictor(family, task_name)
    tensors, _, _ = hf_tensors(predictor)
    expected = EXPECTED["families"][family]["token" if task_name == "ner" else "sequence"]["tensors"]
    assert {k: list(v.shape) for k, v in tensors.items()} == expected
    assert all(v.dtype == np.float32 for v in tensors.values())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("task_name", ["ner", "classification", "regression"])
def test_the_family_head_computes_our_linear_head(family, task_name):
    # transformers' head (dense -> activation [-> LayerNorm] -> classifier, as modeling_<family>.py computes
    # it) applied to our encoder's hidden states gives the Keras model's outputs.
    from kerastune_nlp._tf import keras
    from kerastune_nlp.backbones.registry import get_family
    from kerastune_nlp.export.hf_checkpoint import hf_tensors

    predictor, features = _tiny_predictor(family, task_name)
    tensors, layout, config = hf_tensors(predictor)
    encoder = next(layer for layer in predictor.model.layers if getattr(layer, "is_own_encoder", False))
    hidden = keras.Model(predictor.model.inputs, encoder.output)(features).numpy()
    if task_name != "ner":
        hidden = hidden[:, 0]
    ours = predictor.model(features).numpy()
    theirs = hf_heads.apply_head(layout, tensors, hidden, get_family(config["model_type"]).base_model_prefix)
    if task_name == "regression":  # the export folds the target scaling in
        ours = ours * 2.0 + 3.0
    assert np.max(np.abs(ours - theirs)) < 2e-5, (family, layout)
    assert np.max(np.abs(ours)) > 0.5  # a head that does something


def test_tanh_pairs_stay_within_float32_rounding_for_large_logits():
    layout = hf_heads.head_layout("roberta", False, {})
    rng = np.random.default_rng(1)
    kernel, bias = rng.normal(0, 3, (64, 4)).astype(np.float32), rng.normal(0, 1, 4).astype(np.float32)
    hidden = rng.normal(0, 3, (20, 64)).astype(np.float32)
    expected = hidden.astype(np.float64) @ kernel + bias
    got = hf_heads.apply_head(layout, hf_heads.head_tensors(layout, kernel, bias, "roberta"), hidden, "roberta")
    assert np.abs(expected).max() > 50
    assert np.max(np.abs(got - expected) / np.maximum(1, np.abs(expected))) < 1e-5


def test_heads_that_cannot_carry_the_labels_are_refused():
    layout = hf_heads.head_layout("electra", False, {})
    with pytest.raises(ConfigError, match="at most 16 labels. Received: 17 labels"):
        hf_heads.head_tensors(layout, np.zeros((32, 17), np.float32), np.zeros(17, np.float32), "electra")
    with pytest.raises(ConfigError, match="cannot carry a Linear head exactly"):
        hf_heads.head_tensors(hf_heads.HeadLayout("pooler.dense", "classifier", "sigmoid"),
                              np.zeros((32, 2), np.float32), np.zeros(2, np.float32), "deberta")
    with pytest.raises(ConfigError, match="Received: `model_type`='gpt2'"):
        hf_heads.head_layout("gpt2", True, {})


def test_a_custom_head_is_refused_with_the_reason():
    from kerastune_nlp.export.hf_checkpoint import task_parts

    predictor, _ = _tiny_predictor("bert", "classification")
    predictor.task = types.SimpleNamespace(name="my-task")
    with pytest.raises(ConfigError, match="Received: task 'my-task'"):
        task_parts(predictor)


def test_a_task_without_an_hf_head_is_refused_naming_what_it_needs():
    from kerastune_nlp.export.hf_checkpoint import task_parts
    from kerastune_nlp.tasks import Task

    class Tagger(Task):
        name = "my-tagger"

    predictor, _ = _tiny_predictor("bert", "ner")
    predictor.task = Tagger()
    with pytest.raises(ConfigError, match=r"\(`Task.hf_head\(\)` returning an `HFHead`\), as \[.*'classification', "
                                          r"'multilabel', 'ner', 'regression'.*\] do.*Received: task 'my-tagger'"):
        task_parts(predictor)


def test_the_export_writes_what_the_task_says_of_its_head():
    # A task of one's own, exportable: its HFHead alone decides labels, problem type and the config block.
    from kerastune_nlp.export.hf_checkpoint import hf_config, hf_tensors
    from kerastune_nlp.tasks import HFHead
    from kerastune_nlp.tasks.classification import ClassificationTask

    class Stars(ClassificationTask):
        name = "stars"

        def hf_head(self):
            return HFHead(("one", "two", "three", "four", "five"), "snippet", problem_type="single_label_classification",
                          config_fields={"scale": "stars"}, target_scaling=(1.0, 2.0))

    predictor, _ = _tiny_predictor("bert", "classification")
    kernel, bias = (w.numpy() for w in predictor.model.get_layer("head").weights)
    predictor.task = Stars(None, {"labels": [f"L{i}" for i in range(LABELS)]})
    tensors, layout, config = hf_tensors(predictor)
    np.testing.assert_array_equal(tensors["classifier.bias"], bias * 2.0 + 1.0)
    manifest = types.SimpleNamespace(model=types.SimpleNamespace(dropout=None), package_version="0")
    data = hf_config(predictor, manifest, layout, config)
    assert data["id2label"] == {"0": "one", "1": "two", "2": "three", "3": "four", "4": "five"}
    assert data["architectures"] == ["BertForSequenceClassification"]
    assert data["problem_type"] == "single_label_classification"
    assert data["kerastune_nlp"]["task"] == "stars" and data["kerastune_nlp"]["scale"] == "stars"


# --- whole runs, through export_run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tiny_run):
    return {name: tiny_run(name) for name in sorted(harness.TASK_DATA)}


@pytest.mark.parametrize("name", sorted(harness.TASK_DATA))
def test_every_task_exports_a_folder_transformers_reads(name, runs, tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    result = export_run(runs[name], tmp_path / "export", formats="hf", examples=harness.TASK_DATA[name]()[1],
                        measure=False, raw_strings="skip")
    row = result.artifact("hf")
    assert row.status == "published" and row.max_abs_logit_diff <= 1e-4 and row.metric_change == pytest.approx(0)
    folder = tmp_path / "export" / "hf"
    assert row.path == str(folder) and not (tmp_path / "export" / ".hf.partial").exists()
    assert {"config.json", "model.safetensors", "README.md", "kerastune_run_config.json",
            "tokenizer_config.json"} <= {p.name for p in folder.iterdir()}
    config = AutoConfig.from_pretrained(str(folder))
    task = json.loads((Path(runs[name]) / "run_config.json").read_text())["task_state"]
    head = "TokenClassification" if name == "ner" else "SequenceClassification"
    assert config.model_type == "bert" and config.architectures == [f"BertFor{head}"]
    expected_labels = ["value"] if name == "regression" else task["labels"]
    assert [config.id2label[i] for i in range(len(config.id2label))] == expected_labels
    assert config.num_labels == len(expected_labels)
    assert config.label2id == {n: i for i, n in enumerate(expected_labels)}
    assert config.problem_type == {"ner": None, "classification": "single_label_classification",
                                   "multilabel": "multi_label_classification", "regression": "regression"}[name]
    assert config.kerastune_nlp["task"] == name
    # Names and shapes: those of BertFor<head> (vocabulary and depth from the tiny backbone).
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    reference = EXPECTED["families"]["bert"]["token" if name == "ner" else "sequence"]["tensors"]
    assert set(tensors) == set(reference)
    assert list(tensors["classifier.weight"].shape) == [len(expected_labels), config.hidden_size]
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer("Barack Obama visited Paris")["input_ids"][0] == tokenizer.cls_token_id
    assert row.extra["tokenizer_ids"].startswith(tuple(f"{n}/{n}" for n in range(1, 300)))
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: " + ("token-classification" if name == "ner" else "text-classification") in card
    assert "## Scores (from the run's metrics.json)" in card and "- test: " in card
    assert "kerastune-nlp train --config kerastune_run_config.json" in card
    assert "## License" in card and "max abs difference" in card
    assert ("PyTorch users get argmax unless they add" in card) == (name == "ner")
    if name == "multilabel":
        assert f"sigmoid is >= {config.kerastune_nlp['threshold']}" in card
    if name == "regression":
        assert "scaling is folded into the head" in card


def test_an_existing_hf_folder_is_replaced_only_with_overwrite_and_only_if_ours(runs, tmp_path):
    examples = harness.TASK_DATA["classification"]()[1][:8]
    options = dict(formats="hf", examples=examples, measure=False, raw_strings="skip")
    output = tmp_path / "export"
    export_run(runs["classification"], output, **options)
    with pytest.raises(ExportError, match="exists .an earlier Hugging Face export.. Pass --overwrite"):
        export_run(runs["classification"], output, **options)
    (output / ".hf.partial").mkdir()  # a crashed attempt's staging folder is ours: cleared
    export_run(runs["classification"], output, overwrite=True, **options)
    assert (output / "hf" / "config.json").is_file() and not (output / ".hf.partial").exists()
    (output / "hf" / "config.json").write_text("{}")  # someone else's folder now
    with pytest.raises(ExportError, match="was not written by kerastune_nlp"):
        export_run(runs["classification"], output, overwrite=True, **options)
    assert (output / "hf" / "config.json").read_text() == "{}"


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "notarun").mkdir()
    with pytest.raises(RunDirectoryError):
        export_run(tmp_path / "notarun", tmp_path / "export", formats="hf")
    assert not (tmp_path / "export").exists()


def test_the_cli_lists_and_accepts_the_hf_format(runs, tmp_path, capsys):
    from kerastune_nlp.cli import main

    assert main(["export", str(runs["ner"]), "--output", str(tmp_path / "e"), "--formats", "hf",
                 "--no-timing", "--raw-strings", "skip"]) == 0
    assert "| hf |" in capsys.readouterr().out
    assert (tmp_path / "e" / "hf" / "model.safetensors").is_file()


def test_a_lora_run_exports_merged_and_a_pruned_run_keeps_its_zeros(runs, tiny_bert, tmp_path):
    import kerastune_nlp as kt
    from safetensors.numpy import load_file

    from kerastune_nlp import pruning

    train, dev = harness.TASK_DATA["ner"]()
    lora = kt.train("ner", train, dev, dev, output_dir=tmp_path / "lora", verbose=0,
                    model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=32),
                    train_config=kt.TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3, peft="lora")).run_dir
    pruned = pruning.prune_run(runs["ner"], tmp_path / "pruned", sparsity=0.5, train=train, dev=dev, test=dev,
                               verbose=0)
    pruned = getattr(pruned, "run_dir", tmp_path / "pruned")
    for run, note in ((lora, "**LoRA.** The adapters were merged"), (pruned, "**Pruned.**")):
        output = tmp_path / f"export-{Path(run).name}"
        row = export_run(run, output, formats="hf", examples=dev, measure=False, raw_strings="skip").artifact("hf")
        assert row.status == "published" and row.max_abs_logit_diff <= 1e-4, row
        tensors = load_file(str(output / "hf" / "model.safetensors"))
        assert not any("lora" in name for name in tensors)
        assert set(tensors) == set(EXPECTED["families"]["bert"]["token"]["tensors"])
        assert note in (output / "hf" / "README.md").read_text()
    query = tensors["bert.encoder.layer.0.attention.self.query.weight"]
    assert np.mean(query == 0) == pytest.approx(0.5, abs=0.01)  # the pruned run's zeros, as they are
