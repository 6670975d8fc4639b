"""`kerastune-nlp pretrain` as a user runs it: the report printed, bad flags refused with `error: ...` and exit 2."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from kerastune_nlp.cli import main


def test_help_documents_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    out = capsys.readouterr().out
    for flag in ("--corpus", "--dataset", "--text-column", "--backbone", "--output", "--epochs", "--batch-size",
                 "--max-length", "--learning-rate", "--mlm-probability", "--whole-word-masking", "--seed",
                 "--eval-file", "--eval-share", "--overwrite", "--checkpoint-every-steps"):
        assert flag in out, flag


def test_pretrain_command_replaces_an_earlier_output_and_prints_the_report(tiny_pretrained, tiny_bert, corpus_file,
                                                                          tmp_path, capsys):
    output = tmp_path / "adapted"
    shutil.copytree(tiny_pretrained.output_dir, output)  # an earlier `pretrain` output: --overwrite may replace it
    flags = ["pretrain", "--corpus", str(corpus_file), "--backbone", str(tiny_bert), "--output", str(output),
             "--epochs", "1", "--batch-size", "4", "--max-length", "32", "--learning-rate", "0.01",
             "--eval-share", "0.2", "--seed", "3"]
    assert main(flags) == 2
    assert "already exists" in capsys.readouterr().err
    code = main([*flags, "--overwrite"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "MLM head: created (the checkpoint had none" in out
    assert "held-out masked-token accuracy: " in out and "perplexity" in out
    assert f"kerastune-nlp train --backbone {output}" in out
    report = json.loads((output / "pretraining.json").read_text())
    assert report["settings"]["eval_share"] == 0.2 and report["settings"]["whole_word_masking"] is False
    assert report["corpus"]["held_out"]["texts"] == 24


@pytest.mark.parametrize("flags, message", [
    (["--mlm-probability", "1.5"], r"error: Expected `mlm_probability` in \(0, 1\).*Received: `mlm_probability`=1.5"),
    (["--eval-share", "0.7"], r"error: Expected `eval_share` in \[0, 0.5\)"),
    (["--batch-size", "0"], r"error: Expected `batch_size` to be an integer >= 1"),
])
def test_bad_flag_values_exit_2_with_the_reason(flags, message, corpus_file, tmp_path, capsys):
    assert main(["pretrain", "--corpus", str(corpus_file), "--output", str(tmp_path / "o"), *flags]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


def test_missing_corpus_exits_2_naming_the_path(tmp_path, capsys):
    assert main(["pretrain", "--corpus", str(tmp_path / "nowhere.txt"), "--output", str(tmp_path / "o")]) == 2
    assert "nowhere.txt" in capsys.readouterr().err
