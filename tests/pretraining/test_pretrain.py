"""Continued pretraining end to end: it learns, writes a backbone the resolver loads, resumes, refuses bad input."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError, RunDirectoryError
from kerastune_nlp.pretraining import continue_pretraining

from .conftest import SENTENCES, tiny_config, write_corpus


def _encoder_weights(model) -> dict:
    """Encoder weights by name without the model's own scope (the pooler left out)."""
    from kerastune_nlp.backbones import families
    from kerastune_nlp.pretraining.mlm_model import encoder_layer

    encoder = model if families.is_own_encoder(model) else encoder_layer(model)
    return {w.name.split("/", 1)[1]: w.numpy() for w in encoder.weights if "pooler" not in w.name}


def _uniform_and_frequency_losses(backbone_dir) -> tuple[float, float]:
    """Masked-LM losses (nats) of a uniform guess over the vocab and of knowing only sub-token frequencies."""
    from kerastune_nlp.models.backbones import load_tokenizer

    tokenizer = load_tokenizer(backbone_dir)
    counts = Counter(i for text in SENTENCES for i in tokenizer(text, add_special_tokens=False)["input_ids"])
    shares = np.array(list(counts.values())) / sum(counts.values())
    return float(np.log(len(tokenizer))), float(-(shares * np.log(shares)).sum())


def test_the_adapted_backbone_is_a_folder_the_resolver_loads(tiny_pretrained):
    from kerastune_nlp.models.backbones import load_pretrained_backbone, resolve_backbone

    output = tiny_pretrained.output_dir
    names = {p.name for p in output.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretraining.json"} <= names
    assert not {"backup", "fingerprint.json", "eval_before.json", "history.json"} & names
    assert not [n for n in names if n.endswith((".bin", ".pkl", ".pickle"))]  # no pickle anywhere
    assert not output.with_name(output.name + ".partial").exists()
    resolved = resolve_backbone(str(output))
    assert resolved.weights_format == "pt-safetensors"
    loaded = _encoder_weights(load_pretrained_backbone(resolved))
    trained = _encoder_weights(tiny_pretrained.model)
    assert loaded.keys() == trained.keys() and len(trained) > 30
    for name, value in trained.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    report = json.loads((output / "pretraining.json").read_text())
    assert report == tiny_pretrained.report and report["kind"] == "kerastune_nlp.pretraining"
    assert sorted(report["files"]) == sorted(names)


def test_a_tiny_model_learns_the_domain_text(tiny_pretrained, tiny_bert):
    from kerastune_nlp.models.backbones import load_pretrained_backbone, resolve_backbone

    report = tiny_pretrained.report
    assert report["mlm_head"] == "created" and sorted(report["missing_head_weights"]) == sorted([
        "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
        "cls.predictions.bias"])
    assert report["head_learning_rate"] == pytest.approx(1e-2 * report["settings"]["new_head_lr_scale"])
    assert report["settings"]["whole_word_masking"] is True
    corpus = report["corpus"]
    assert corpus["train"]["texts"] == 108 and corpus["held_out"]["texts"] == 12 and corpus["kind"] == "text-file"
    before, after = report["eval"]["before"], report["eval"]["after"]
    assert before["masked_tokens"] == after["masked_tokens"] > 10
    # What the tiny model can learn in 6 epochs is the word frequencies, not yet the context
    # (~900 steps away, see conftest). So it must start at the loss of a uniform guess, ln(vocab)
    # (a random head of 0.02-scale weights gives near-equal logits), and end closer to the loss of
    # knowing the corpus's sub-token frequencies than to that: bounds that hold for any
    # initialisation (seeds 0-15: 4.79-4.90 before, 3.26-3.69 after, midpoint 4.12).
    uniform, frequencies = _uniform_and_frequency_losses(tiny_bert)
    midpoint = (uniform + frequencies) / 2
    assert abs(before["loss"] - uniform) < 0.3
    assert after["loss"] < midpoint and after["perplexity"] == pytest.approx(np.exp(after["loss"]), rel=1e-3)
    losses = [entry["loss"] for entry in report["history"]]
    assert len(losses) == 6 and losses[-1] < midpoint < losses[0]
    # Masked accuracy is not asserted to rise: knowing frequencies but not context, the model
    # guesses 0 or 1 of the 17 held-out masked tokens whichever way its initialisation falls
    # (seed 7: 1/17 before, 0/17 after). It must be a true count, though.
    for scores in (before, after):
        correct = scores["masked_accuracy"] * scores["masked_tokens"]
        assert correct == pytest.approx(round(correct), abs=1e-4)  # the report rounds to 6 decimals
    # The encoder was trained too, not only the new head.
    start = _encoder_weights(load_pretrained_backbone(resolve_backbone(str(tiny_bert))))
    trained = _encoder_weights(tiny_pretrained.model)
    moved = [name for name in trained if not np.allclose(trained[name], start[name])]
    assert len(moved) > 0.9 * len(trained)
    assert report["timing"]["steps_trained"] == 6 * report["timing"]["steps_per_epoch"]
    assert report["resumed_from"] is None


def test_pretraining_again_from_the_output_loads_its_head_and_scores_it_unchanged(tiny_pretrained, corpus_file,
                                                                                  tmp_path):
    again = continue_pretraining(corpus_file, output_dir=tmp_path / "again", backbone=str(tiny_pretrained.output_dir),
                                 config=tiny_config(whole_word_masking=True, epochs=1), verbose=0)
    assert again.report["mlm_head"] == "loaded"
    assert again.report["head_learning_rate"] == pytest.approx(1e-2)  # a loaded head trains at the encoder's rate
    # Same held-out lines and masks: the saved model (encoder and head) scores exactly as it did.
    first_after, second_before = tiny_pretrained.report["eval"]["after"], again.report["eval"]["before"]
    assert second_before["masked_tokens"] == first_after["masked_tokens"]
    assert second_before["loss"] == pytest.approx(first_after["loss"], abs=1e-4)
    assert second_before["masked_accuracy"] == first_after["masked_accuracy"]


def test_fine_tuning_starts_from_the_adapted_backbone(tiny_pretrained, tmp_path):
    import kerastune_nlp as kt

    paths = kt.bundled_wnut17()
    train, dev = kt.read_conll(paths["train"])[:32], kt.read_conll(paths["dev"])[:16]
    result = kt.train("ner", train, dev, dev, output_dir=tmp_path / "ner", verbose=0,
                      model_config=kt.ModelConfig(backbone=str(tiny_pretrained.output_dir)),
                      data_config=kt.DataConfig(max_length=32),
                      train_config=kt.TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3))
    manifest = json.loads((result.run_dir / "run_config.json").read_text())
    assert manifest["model"]["backbone"] == str(tiny_pretrained.output_dir)
    assert result.metrics["test"]


class _KillAt:
    """Raises KeyboardInterrupt (a Ctrl-C) at a given epoch and step."""

    def __new__(cls, epoch: int, step: int):
        from kerastune_nlp._tf import keras

        class Kill(keras.callbacks.Callback):
            seen_epoch = 0

            def on_epoch_begin(self, e, logs=None):
                Kill.seen_epoch += 1

            def on_train_batch_end(self, batch, logs=None):
                if Kill.seen_epoch == epoch and batch + 1 == step:
                    raise KeyboardInterrupt

        return Kill()


def test_a_killed_run_leaves_no_output_and_the_same_command_resumes(tiny_bert, corpus_file, tmp_path):
    output = tmp_path / "resumable"
    # No held-out scoring here (eval_share 0): it would only add time.
    config = tiny_config(epochs=2, eval_share=0.0, checkpoint_every_steps=2, checkpoint_every_seconds=None)
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 2 at step 3: the backup of step 2 is on disk
        continue_pretraining(corpus_file, output_dir=output, backbone=str(tiny_bert), config=config,
                             callbacks=[_KillAt(2, 3)], verbose=0)
    staging = tmp_path / "resumable.partial"
    assert not output.exists() and (staging / "backup").is_dir() and (staging / "fingerprint.json").is_file()
    # A different command refuses the leftover folder and says what differs.
    with pytest.raises(RunDirectoryError, match=r"DIFFERENT command \(settings\.learning_rate: 0\.01 there, "
                                                r"0.001 now\)"):
        continue_pretraining(corpus_file, output_dir=output, backbone=str(tiny_bert),
                             config=tiny_config(epochs=2, eval_share=0.0, learning_rate=1e-3), verbose=0)
    resumed = continue_pretraining(corpus_file, output_dir=output, backbone=str(tiny_bert), config=config, verbose=0)
    report = resumed.report
    steps = report["timing"]["steps_per_epoch"]
    assert report["resumed_from"] == {"epoch": 2, "step": 2}
    assert report["timing"]["steps_trained"] == steps - 2
    assert report["timing"]["optimizer_steps"] == 2 * steps  # the optimizer's state came back with the weights
    assert [entry["epoch"] for entry in report["history"]] == [1, 2]
    assert report["history"][1]["resumed_at_step"] == 2
    assert output.is_dir() and not staging.exists()


def test_bad_inputs_are_refused_before_training(tiny_bert, corpus_file, tmp_path):
    backbone = str(tiny_bert)
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.csv").write_text("keep me")
    for overwrite in (False, True):  # a folder this project did not write is never replaced
        with pytest.raises(RunDirectoryError, match="already exists" if not overwrite else "not a folder written by"):
            continue_pretraining(corpus_file, output_dir=data, backbone=backbone, overwrite=overwrite)
    assert (data / "precious.csv").read_text() == "keep me"
    (tmp_path / "out.partial").mkdir()
    with pytest.raises(RunDirectoryError, match=r"out\.partial' exists but was not created by `kerastune-nlp pretrain"):
        continue_pretraining(corpus_file, output_dir=tmp_path / "out", backbone=backbone)
    small = write_corpus(tmp_path / "small.txt", repeats=1)
    with pytest.raises(DataFormatError, match=r"too small for one batch: 3 text\(s\) gave 25 tokens, which pack "
                                              r"into 1 sequence\(s\) of 32; one batch of 4 needs 4 sequences, i\.e\. "
                                              r"more than 90 tokens"):
        continue_pretraining(small, output_dir=tmp_path / "o", backbone=backbone, config=tiny_config())
    with pytest.raises(DataFileNotFoundError, match=r"`eval_file`=.*missing\.txt"):
        continue_pretraining(corpus_file, output_dir=tmp_path / "o", backbone=backbone, config=tiny_config(),
                             eval_file=tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="exactly one source of text"):
        continue_pretraining(corpus_file, dataset="some/hub-set", output_dir=tmp_path / "o", backbone=backbone)
    with pytest.raises(ConfigError, match=r"can embed: it has 64 positions. Received: `max_length`=128"):
        continue_pretraining(corpus_file, output_dir=tmp_path / "o", backbone=backbone,
                             config=tiny_config(max_length=128))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out.partial", "small.txt"]


def test_the_real_bundled_backbone_gets_a_head_and_is_scored_before_and_after(tmp_path):
    """all-MiniLM-L6-v2 has no MLM head: a few steps on a tiny corpus; encoder loaded, head created, scored."""
    from kerastune_nlp.models.backbones import load_pretrained_backbone, resolve_backbone
    from kerastune_nlp.pretraining import PretrainConfig

    corpus = tmp_path / "tweets.txt"
    corpus.write_text("\n".join(f"@user{i} the new iPhone launch in San Francisco was great #apple" for i in range(40)))
    result = continue_pretraining(corpus, output_dir=tmp_path / "minilm", verbose=0, config=PretrainConfig(
        epochs=1, batch_size=4, max_length=32, learning_rate=1e-4, eval_share=0.25))
    report = result.report
    assert report["mlm_head"] == "created" and report["backbone"]["weights_format"] == "pt-safetensors"
    assert report["backbone"]["class"] == "BertEncoder"
    before, after = report["eval"]["before"], report["eval"]["after"]
    assert before["masked_tokens"] == after["masked_tokens"] > 0
    assert 0 <= before["masked_accuracy"] <= 1 and after["loss"] < before["loss"]  # a random head learns fast
    loaded = _encoder_weights(load_pretrained_backbone(resolve_backbone(str(result.output_dir))))
    trained = _encoder_weights(result.model)
    assert all(np.array_equal(loaded[name], value) for name, value in trained.items())
