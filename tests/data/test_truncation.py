"""Head, tail and head+tail truncation: the rule, the Python encoding, and the in-graph twin on real long reviews."""

import csv
from pathlib import Path

import pytest

from kerastune_nlp.config import ClassificationConfig
from kerastune_nlp.data.truncation import keep, split_budget
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.tasks import get_task

IMDB = Path(__file__).resolve().parents[3] / "shared" / "data" / "imdb" / "imdb_reviews_2500.csv"


def long_texts(count: int) -> list[str]:
    """IMDb reviews (../shared beside the repository), else bundled TREC questions joined 15 at a time."""
    if IMDB.is_file():
        with IMDB.open(encoding="utf-8") as handle:
            return [row["review"] for _, row in zip(range(count), csv.DictReader(handle))]
    from kerastune_nlp.data.bundled_trec import load_bundled_trec

    questions = [e.text for e in load_bundled_trec()["train"]]
    return [" ".join(questions[i * 15:(i + 1) * 15]) for i in range(count)]


def test_keep_takes_the_head_the_tail_or_a_quarter_and_three_quarters():
    content = list(range(20))
    assert keep(content, 8, "head") == list(range(8))
    assert keep(content, 8, "tail") == list(range(12, 20))
    assert keep(content, 8, "head_tail") == [0, 1, 14, 15, 16, 17, 18, 19]
    assert keep(content[:5], 8, "head_tail") == content[:5]
    assert split_budget(510, "head_tail") == (127, 383)


def test_encoding_keeps_special_tokens_and_the_chosen_end(tiny_bert):
    from kerastune_nlp.models.backbones import load_tokenizer

    tokenizer = load_tokenizer(tiny_bert)
    text = " ".join(f"w{i}" for i in range(40))
    full = tokenizer(text)["input_ids"]
    for strategy, expected in (("head", full[1:7]), ("tail", full[-7:-1]), ("head_tail", full[1:2] + full[-6:-1])):
        task = get_task("classification")(ClassificationConfig(truncation=strategy))
        encoded = task.encode(tokenizer, ([text], None), 8, labelled=False)
        ids = list(encoded.rows[0].input_ids)
        assert ids == [full[0], *expected, full[-1]], strategy
        assert encoded.stats["truncated"] == 1


@pytest.mark.parametrize("strategy", ["head", "tail", "head_tail"])
def test_in_graph_tokenizer_truncates_long_reviews_like_python(strategy):
    from kerastune_nlp.data import graph_tokenizer as gt
    from kerastune_nlp.models.backbones import load_tokenizer, resolve_backbone

    tokenizer = load_tokenizer(resolve_backbone("all-minilm-l6-v2").directory)
    texts = long_texts(150)
    task = get_task("classification")(ClassificationConfig(truncation=strategy))
    graph = gt.GraphWordPiece(gt.wordpiece_spec(tokenizer), 128, truncation=strategy)
    agreement = task.tokenizer_agreement(tokenizer, graph, [], extra=texts)
    assert task.encode(tokenizer, (texts, None), 128, labelled=False).stats["truncated"] > 100
    assert agreement.total == 150 and agreement.rate == 1.0, agreement.differing[:2]


def test_pairs_refuse_a_truncation_other_than_head():
    with pytest.raises(ConfigError, match=r"`truncation`='head' for a pair task.*Received: `truncation`='tail' "
                                          r"with `text_pair_column`='b'"):
        ClassificationConfig(text_column="a", text_pair_column="b", truncation="tail")


def test_auto_is_head_tail_for_single_texts_and_old_runs_keep_the_head(tiny_bert, tmp_path):
    import json

    import kerastune_nlp as kt
    from kerastune_nlp.runs.manifest import read_manifest

    assert get_task("classification")().truncation == "head_tail"
    assert ClassificationConfig(text_column="a", text_pair_column="b").truncation == "auto"
    train = [kt.TextExample(" ".join(["word"] * 50), label) for label in ("a", "b") * 4]
    run = kt.train("classification", train, train[:4], train[:4], output_dir=tmp_path / "run", verbose=0,
                   model_config=kt.ModelConfig(backbone=str(tiny_bert)), data_config=kt.DataConfig(max_length=16),
                   train_config=kt.TrainConfig(epochs=1, batch_size=4))
    manifest_path = run.run_dir / "run_config.json"
    assert json.loads(manifest_path.read_text())["task_config"]["truncation"] == "auto"
    payload = json.loads(manifest_path.read_text())
    del payload["task_config"]["truncation"]  # as a run written before the setting existed
    manifest_path.write_text(json.dumps(payload))
    assert read_manifest(run.run_dir).task_config.truncation == "head"
    assert kt.load_run(run.run_dir).task.truncation == "head"
