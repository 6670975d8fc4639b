"""The epoch end stays cheap: batched Viterbi, model-only best checkpoint, time-based crash backups."""

import numpy as np
import pytest

from kerastune_nlp.evaluation.iob_decoding import viterbi_decode, viterbi_decode_batch

LABELS = ["O", "B-person", "I-person", "B-location", "I-location", "B-corporation", "I-corporation"]


def _random_logits(rng, count):
    sentences = []
    for _ in range(count):
        words = int(rng.integers(1, 40))
        logits = rng.normal(0.0, 3.0, size=(words, len(LABELS))).astype(np.float32)
        # Sentences whose best tags are invalid transitions (I- after O, I- of another type,
        # an I- first word), ties, and a one-word sentence that is only I-.
        kind = rng.integers(0, 4)
        if kind == 0:
            logits[:, 2] += 6.0
        elif kind == 1:
            logits[:, [2, 4]] += 5.0
        elif kind == 2:
            logits[:, [1, 3]] = logits[:, [3, 1]].max(axis=1, keepdims=True)
        sentences.append(logits)
    sentences.append(np.full((1, len(LABELS)), -5.0, np.float32) + np.eye(len(LABELS), dtype=np.float32)[2] * 9)
    return sentences


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_batched_viterbi_matches_the_per_sentence_one_bit_for_bit(chunk):
    rng = np.random.default_rng(0)
    sentences = _random_logits(rng, 300)
    batched = viterbi_decode_batch(sentences, LABELS, chunk=chunk)
    assert len(batched) == len(sentences)
    for logits, ids in zip(sentences, batched):
        np.testing.assert_array_equal(ids, viterbi_decode(logits, LABELS))
        assert ids.dtype == np.int64 and len(ids) == len(logits)
    # The constraint holds: no I-X after O or after another type.
    for ids in batched:
        tags = [LABELS[i] for i in ids]
        assert not tags[0].startswith("I-")
        for previous, tag in zip(tags, tags[1:]):
            if tag.startswith("I-"):
                assert previous[2:] == tag[2:], tags


def test_batched_viterbi_names_an_empty_sentence():
    with pytest.raises(ValueError, match="at least one word.*index 1"):
        viterbi_decode_batch([np.zeros((2, 3)), np.zeros((0, 3))], ["O", "B-x", "I-x"])
    assert viterbi_decode_batch([], LABELS) == []


# -- checkpoints, backups and the epoch-end report -----------------------------------------------

from kerastune_nlp._tf import tf  # noqa: E402
from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig  # noqa: E402
from kerastune_nlp.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def wnut_tiny():
    from kerastune_nlp.data import bundled_wnut17, read_conll

    paths = bundled_wnut17()
    return read_conll(paths["train"])[:40], read_conll(paths["dev"])[:12]


def _train(backbone, data, output, callbacks=(), **train_options):
    from kerastune_nlp.training.ner_trainer import train_ner

    train, dev = data
    return train_ner(
        train, dev, output_dir=output, model_config=ModelConfig(backbone=str(backbone)),
        data_config=DataConfig(max_length=32), ner_config=NERDataConfig(window_stride=4),
        train_config=TrainConfig(batch_size=8, learning_rate=1e-3, **{"epochs": 2, **train_options}),
        extra_callbacks=list(callbacks), verbose=0,
    )


def test_backups_default_to_every_ten_minutes_and_epoch_ends():
    config = TrainConfig()
    assert config.checkpoint_every_seconds == 600 and config.checkpoint_every_steps is None
    with pytest.raises(ConfigError, match="checkpoint_every_seconds.*> 0 or None.*-5"):
        TrainConfig(checkpoint_every_seconds=-5)


def test_metrics_report_the_epoch_end_and_the_best_checkpoint_is_model_only(tiny_bert, wnut_tiny, tmp_path):
    from kerastune_nlp._tf import keras

    class KeepBest(keras.callbacks.Callback):
        """Copies the staging checkpoints before the run directory drops them."""

        def on_train_end(self, logs=None):
            import shutil

            shutil.copytree(tmp_path / "run.partial" / "checkpoints", tmp_path / "copied")

    result = _train(tiny_bert, wnut_tiny, tmp_path / "run", callbacks=[KeepBest()])
    report = result.metrics["epoch_end"]
    assert [e["epoch"] for e in report["per_epoch"]] == [1, 2]
    for entry in report["per_epoch"]:
        # One backup per epoch (its end: the 10-minute interval never comes), the dev set scored.
        assert entry["backups"] == 1 and entry["backup_bytes"] > 0
        assert entry["dev_scoring_seconds"] > 0 and 0 <= entry["decoding_seconds"] <= entry["dev_scoring_seconds"]
        assert entry["epoch_end_seconds"] >= entry["dev_scoring_seconds"]
        assert 0 < entry["epoch_end_share"] < 1
        assert entry["bytes_written"] == entry["backup_bytes"] + entry["checkpoint_bytes"] + entry["other_bytes"]
    assert report["per_epoch"][0]["checkpoint_bytes"] > 0  # the first epoch is always the best so far
    assert set(report["mean"]) >= {"epoch_end_seconds", "bytes_written", "backup_seconds", "checkpoint_seconds"}
    names = tf.train.list_variables(str(tmp_path / "copied" / "best.ckpt"))
    assert not [n for n, _ in names if "optimizer" in n], names
    # The backup holds the optimizer's slots as well, so it is larger than the best weights.
    assert report["per_epoch"][0]["backup_bytes"] > report["per_epoch"][0]["checkpoint_bytes"]


def test_keep_optimizer_state_keeps_it_in_the_best_checkpoint(tiny_bert, wnut_tiny, tmp_path):
    result = _train(tiny_bert, wnut_tiny, tmp_path / "run", epochs=1, keep_optimizer_state=True)
    names = [n for n, _ in tf.train.list_variables(str(result.run_dir / "checkpoints" / "best.ckpt"))]
    assert any("optimizer" in n for n in names)


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _steps(backup, clock, epochs, steps, seconds_per_step):
    """Drives `backup` through `epochs` x `steps` fake steps; returns the (epoch, batch) of each backup."""
    done = []
    backup._backup = lambda epoch, batch=0: done.append((epoch, batch)) or setattr(backup, "_last", clock())
    backup.params = {"steps": steps}
    backup._last = clock()
    for epoch in range(epochs):
        backup._current_epoch = epoch
        for batch in range(steps):
            clock.now += seconds_per_step
            backup.on_train_batch_end(batch)
        backup.on_epoch_end(epoch)
    return done


class _NoPreemption:
    def backup_if_preempted(self):
        pass


def test_step_backup_follows_the_clock_and_the_step_count(tmp_path):
    from kerastune_nlp.training.callbacks import StepBackup

    clock = _FakeClock()
    backup = StepBackup(str(tmp_path / "b"), every_seconds=10, clock=clock)
    backup._training_state = _NoPreemption()
    # 3 s a step: due at the 4th step after each backup (12 s >= 10 s), and at each epoch end.
    assert _steps(backup, clock, epochs=2, steps=6, seconds_per_step=3.0) == [
        (0, 3), (0, 5), (1, 3), (1, 5)]
    clock = _FakeClock()
    backup = StepBackup(str(tmp_path / "c"), every_steps=4, every_seconds=600, clock=clock)
    backup._training_state = _NoPreemption()
    assert _steps(backup, clock, epochs=1, steps=10, seconds_per_step=1.0) == [(0, 3), (0, 7), (0, 9)]
    clock = _FakeClock()
    backup = StepBackup(str(tmp_path / "d"), clock=clock)  # neither: epoch ends only
    backup._training_state = _NoPreemption()
    assert _steps(backup, clock, epochs=2, steps=5, seconds_per_step=100.0) == [(0, 4), (1, 4)]


# -- the final dev scores come from the best epoch's own scoring ---------------------------------


def test_final_dev_scores_are_the_best_epochs_and_equal_a_fresh_scoring(tiny_bert, wnut_tiny, tmp_path):
    from kerastune_nlp.inference.predictor import Predictor

    result = _train(tiny_bert, wnut_tiny, tmp_path / "run", epochs=3)
    per_epoch = [e["val_entity_f1"] for e in result.metrics["dev_per_epoch"]]
    assert result.metrics["dev"]["overall"]["f1"] == max(per_epoch)
    # Not rescored, yet exactly what scoring the saved run gives, every count and score.
    assert Predictor.load(result.run_dir).evaluate(wnut_tiny[1]) == result.metrics["dev"]


def test_best_epoch_dev_scores_are_reused_only_when_nothing_can_change_them(tmp_path):
    import json
    import types

    from kerastune_nlp.tasks import get_task
    from kerastune_nlp.training.callbacks import DevScoreCallback
    from kerastune_nlp.training.trainer import best_epoch_dev_scores

    best = tmp_path / "best.ckpt"
    (tmp_path / "best.ckpt.index").write_bytes(b"")
    (tmp_path / "best.json").write_text(json.dumps({"monitor": "val_entity_f1", "best": 0.5, "epoch": 2}))
    callback = DevScoreCallback(score=None, to_logs=None)
    callback.scores_by_epoch = {1: {"overall": {"f1": 0.1}}, 2: {"overall": {"f1": 0.5}}}

    def built(peft="none", epochs_scored=callback):
        return types.SimpleNamespace(best_path=best, dev_callbacks=[epochs_scored],
                                     train_config=TrainConfig(peft=peft))

    assert best_epoch_dev_scores(built(), get_task("ner")()) == {"overall": {"f1": 0.5}}
    # A threshold chosen after fitting, merged LoRA adapters, or a best epoch scored
    # before a resume: the caller rescores.
    assert best_epoch_dev_scores(built(), get_task("multilabel")()) is None
    assert best_epoch_dev_scores(built(peft="lora"), get_task("ner")()) is None
    resumed = DevScoreCallback(score=None, to_logs=None)
    resumed.scores_by_epoch = {3: {"overall": {"f1": 0.2}}}
    assert best_epoch_dev_scores(built(epochs_scored=resumed), get_task("ner")()) is None
