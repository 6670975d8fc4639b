"""The command line and the main example, run as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerastune_nlp.cli import main
from kerastune_nlp.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=600):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "train" in out and "evaluate" in out and "predict" in out


def test_train_help_documents_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--train", "--dev", "--test", "--dataset", "--backbone", "--epochs", "--batch-size",
                 "--learning-rate", "--max-length", "--output", "--seed", "--quick", "--allow-pickle"):
        assert flag in out, flag


def test_hub_dataset_offline_is_a_clear_error(capsys):
    assert main(["train", "--dataset", "conll2003"]) == 2
    assert "--train/--dev/--test" in capsys.readouterr().err


def test_missing_train_file_is_named(tmp_path, capsys):
    missing = tmp_path / "nope.conll"
    assert main(["train", "--train", str(missing)]) == 2
    assert "nope.conll" in capsys.readouterr().err


def test_max_length_above_backbone_limit_is_refused(capsys, tmp_path):
    assert main(["train", "--max-length", "1024", "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "512 positions" in err and "--max-length" in err
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("example") / "quick"
    # Two epochs, not the preset's three: the real path is the same, the suite a minute shorter.
    completed = _run("examples/ner_conll.py", "--quick", "--epochs", "2", "--output", str(output))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output, completed.stdout


@pytest.mark.slow
def test_example_quick_prints_a_real_entity_report(quick_run):
    output, stdout = quick_run
    assert "Test set, entity level" in stdout
    for entity_type in ("person", "location", "micro avg"):
        assert entity_type in stdout
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["test"]["overall"]["support"] > 0
    # Real weights on real data learn something even in the quick subset.
    assert metrics["test"]["overall"]["f1"] > 0.05


@pytest.mark.slow
def test_example_quick_writes_an_entity_error_analysis_that_agrees_with_the_scores(quick_run):
    output, _ = quick_run
    metrics = json.loads((output / "metrics.json").read_text())
    summary = json.loads((output / "ner_errors.json").read_text())
    overall, counts = metrics[metrics["reports_describe"]]["overall"], summary["counts"]
    # The real model finds entities (f1 > 0.05 above): correct ones are seqeval's true positives.
    assert counts["correct"] == round(overall["recall"] * overall["support"]) > 0
    assert summary["gold_entities"] == overall["support"]
    assert summary["predicted_entities"] == round(counts["correct"] / overall["precision"])
    assert summary["predicted_entities"] == sum(counts[c] for c in counts if c not in ("missed", "merged", "split"))
    assert "## Entity-type confusion" in (output / "ner_errors.md").read_text()
    assert (output / "confusion_matrix.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (output / "worst_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 50 and rows[0]["errors"] >= rows[-1]["errors"] > 0
    lines = Path(rows[0]["source"]).read_text(encoding="utf-8").splitlines()
    assert all(lines[r["line"] - 1].split("\t") == [r["words"][0], r["gold_tags"][0]] for r in rows)


@pytest.mark.slow
def test_cli_evaluate_and_predict_reuse_the_run(quick_run, tmp_path):
    output, _ = quick_run
    test_file = ROOT / "kerastune_nlp" / "data" / "bundled" / "wnut17" / "test.conll"
    scores_file = tmp_path / "scores.json"
    completed = _run("-m", "kerastune_nlp.cli", "evaluate", str(output), "--test", str(test_file),
                     "--json", str(scores_file))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "micro avg" in completed.stdout
    assert json.loads(scores_file.read_text())["overall"]["support"] == 1079
    completed = _run("-m", "kerastune_nlp.cli", "predict", str(output), "Barack Obama visited Paris",
                     "--format", "text")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().startswith("Barack")


@pytest.mark.slow
def test_cli_distills_the_real_quick_run_into_half_its_blocks(quick_run, tmp_path):
    """Real weights: the quick run's fine-tuned MiniLM (6 blocks) distilled into blocks [1, 3, 5]."""
    import numpy as np

    import kerastune_nlp as kt
    from kerastune_nlp.distillation.students import build_subset_backbone, subset_config
    from kerastune_nlp.inference.predictor import rebuild_model
    from kerastune_nlp.runs.manifest import read_manifest

    teacher, student = quick_run[0], tmp_path / "student"
    completed = _run("-m", "kerastune_nlp.cli", "distill", str(teacher), "--epochs", "1", "--output", str(student))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "3 of the teacher's 6 blocks [1, 3, 5]" in completed.stdout and "test entity F1" in completed.stdout
    block = json.loads((student / "metrics.json").read_text())["distillation"]
    assert (block["teacher"]["blocks"], block["student"]["blocks"]) == (6, 3)
    # MiniLM: 22.7M weights, about half in the embeddings; each block holds 1.8M.
    assert 0.7 < block["student_vs_teacher"]["parameters"] < 0.8
    assert block["student"]["metric"]["test"] > 0.0  # the student tags real entities
    # The subset copy on the real checkpoint: the kept blocks and the embeddings are the teacher's own.
    predictor, backbone = rebuild_model(kt.load_run(teacher).task, read_manifest(teacher), teacher)
    copy = build_subset_backbone(backbone, subset_config(predictor.backbone_config, 3), [1, 3, 5])
    assert len(copy.blocks) == 3
    for kept, copied in zip([1, 3, 5], copy.blocks):
        for a, b in zip(backbone.blocks[kept].get_weights(), copied.get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(backbone.embeddings.get_weights()[0], copy.embeddings.get_weights()[0])


@pytest.mark.slow
def test_text_classification_example_quick_on_bundled_trec(tmp_path):
    output = tmp_path / "trec"
    completed = _run("examples/text_classification.py", "--quick", "--epochs", "2", "--output", str(output))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Test set:" in completed.stdout and "accuracy" in completed.stdout
    metrics = json.loads((output / "metrics.json").read_text())
    # Six classes: chance is about 0.2; the real backbone learns far more in the quick run.
    assert metrics["test"]["accuracy"] > 0.5
    assert (output / "confusion_matrix.png").exists()
    # An option between the positionals, as a user types it.
    completed = _run("-m", "kerastune_nlp.cli", "predict", str(output), "--top-k", "2", "Who wrote Hamlet ?")
    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = json.loads(completed.stdout)
    assert answer["label"] in {"HUM", "ENTY", "DESC", "NUM", "LOC", "ABBR"} and len(answer["top_k"]) == 2


def test_sentiment_example_without_data_says_what_to_pass():
    completed = _run("examples/sentiment.py")
    assert completed.returncode == 2
    assert "--train" in completed.stderr and "--dataset" in completed.stderr


def test_text_task_errors_name_file_and_columns(tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\ngood,5\n")
    assert main(["train", "--task", "classification", "--train", str(data)]) == 2
    assert "Found columns: ['review', 'stars']" in capsys.readouterr().err


def test_speed_and_strategy_flags_reach_the_train_config():
    from kerastune_nlp.cli import build_parser
    from kerastune_nlp.cli.flags import settings_from_args

    args = build_parser().parse_args(["train",
        "--precision", "mixed_bfloat16", "--xla", "--gradient-accumulation", "4", "--strategy", "mirrored",
        "--padding", "max_length", "--layerwise-lr-decay", "0.9", "--peft", "lora", "--lora-rank", "4",
        "--lora-targets", "query,key,value", "--checkpoint-every", "50",
    ])
    settings = settings_from_args(args)
    data, train = settings.data, settings.train
    assert data.padding == "max_length"
    assert (train.precision, train.jit_compile, train.gradient_accumulation_steps, train.strategy) == (
        "mixed_bfloat16", True, 4, "mirrored")
    assert (train.layerwise_lr_decay, train.peft, train.lora_rank) == (0.9, "lora", 4)
    assert train.lora_targets == ("query", "key", "value") and train.checkpoint_every_steps == 50


def test_bad_lora_target_names_the_flag(capsys):
    assert main(["train", "--task", "ner", "--peft", "lora", "--lora-targets", "query,ffn"]) == 2
    assert "lora_targets" in capsys.readouterr().err


def test_verbose_works_before_and_after_the_subcommand():
    from kerastune_nlp.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--verbose", "predict", "RUN", "a text"]).verbose is True
    assert parser.parse_args(["predict", "RUN", "a text", "--verbose"]).verbose is True
    assert parser.parse_args(["export", "RUN", "--output", "OUT", "-v"]).verbose is True
    assert parser.parse_args(["predict", "RUN"]).verbose is False


def test_options_may_come_between_a_commands_positionals():
    from kerastune_nlp.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["predict", "RUN", "--top-k", "2", "great film", "--format", "text", "bad film"])
    assert (args.run, args.text, args.top_k, args.format) == ("RUN", ["great film", "bad film"], 2, "text")
    args = parser.parse_args(["export", "--output", "OUT", "RUN"])
    assert (args.run, args.output) == ("RUN", "OUT")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_top_k_below_one_is_refused(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "RUN", "--top-k", value, "great film"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "kerastune-nlp predict: error: argument --top-k: expected an integer of at least 1" in err


def test_top_k_below_one_is_refused_by_the_python_api_too():
    from kerastune_nlp.tasks import get_task

    task = get_task("classification")(None, {"labels": ["neg", "pos"]})
    with pytest.raises(ConfigError, match=r"`top_k`=-1"):
        task.json_fields(np.array([0.3, 0.7]), top_k=-1)


@pytest.mark.parametrize("argv, hint", [
    (["train", "--trian", "x.conll"], "--trian: did you mean --train?"),
    (["train", "--learning_rate", "1e-4"], "--learning_rate: did you mean --learning-rate?"),
    # No silent prefix matching: `--epoch` is not taken as `--epochs`.
    (["train", "--epoch", "2"], "--epoch: did you mean --epochs?"),
    (["predict", "RUN", "--bogus"], "--bogus: not a flag of this command"),
])
def test_unknown_flag_shows_the_subcommand_usage_and_the_closest_flag(capsys, argv, hint):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"usage: kerastune-nlp {argv[0]}" in err
    assert f"kerastune-nlp {argv[0]}: error: unrecognized arguments" in err and hint in err
