"""Which weights move: gradual unfreezing, freezing, BitFit and LoRA through train_ner."""

import numpy as np
import pytest

from kerastune_nlp._tf import keras
from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig
from kerastune_nlp.data import bundled_wnut17, read_conll
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.models import backbones
from kerastune_nlp.inference import load_run
from kerastune_nlp.training.ner_trainer import train_ner


@pytest.fixture(scope="module")
def wnut_small():
    paths = bundled_wnut17()
    return read_conll(paths["train"])[:40], read_conll(paths["dev"])[:16]


def _key(name: str) -> str:
    # Drop the model's uniquified top scope (tf_bert_model_3/...) so runs compare.
    parts = name.split("/")
    return "/".join(parts[1:]) if parts[0].startswith("tf_") else name


def _snapshot(model) -> dict:
    return {_key(w.name): w.numpy().copy() for w in model.weights}


class Snapshots(keras.callbacks.Callback):
    """Weights at the start and after each epoch."""

    def __init__(self):
        super().__init__()
        self.taken = []

    def on_train_begin(self, logs=None):
        self.taken.append(_snapshot(self.model))

    def on_epoch_end(self, epoch, logs=None):
        self.taken.append(_snapshot(self.model))


def _moved(before: dict, after: dict, pattern: str) -> bool:
    names = [n for n in before if pattern in n]
    assert names, pattern
    return any(not np.array_equal(before[n], after[n]) for n in names)


def _train(backbone, data, tmp_path, callbacks=(), **train_options):
    train, dev = data
    return train_ner(
        train, dev, output_dir=tmp_path / "run", model_config=ModelConfig(backbone=str(backbone)),
        data_config=DataConfig(max_length=32), ner_config=NERDataConfig(window_stride=4),
        train_config=TrainConfig(batch_size=8, learning_rate=1e-3, **{"epochs": 2, **train_options}),
        extra_callbacks=list(callbacks), verbose=0,
    )


def _pretrained(backbone_dir) -> dict:
    backbone = backbones.load_pretrained_backbone(backbones.resolve_backbone(str(backbone_dir)))
    return {_key(w.name): w.numpy() for w in backbone.weights}


def test_gradual_unfreezing_opens_one_layer_per_epoch_from_the_top(tiny_bert, wnut_small, tmp_path):
    snapshots = Snapshots()
    _train(tiny_bert, wnut_small, tmp_path, [snapshots], epochs=3, unfreeze_layers_per_epoch=1)
    start, first, second, third = snapshots.taken
    assert _moved(start, first, "token_logits") and _moved(start, first, "layer_._1/")
    assert not _moved(start, first, "layer_._0/") and not _moved(start, first, "embeddings/")
    assert _moved(first, second, "layer_._0/") and not _moved(first, second, "embeddings/")
    assert _moved(second, third, "embeddings/")


def test_freezing_embeddings_and_bottom_layer_keeps_them_pretrained(tiny_bert, wnut_small, tmp_path):
    result = _train(tiny_bert, wnut_small, tmp_path, freeze_embeddings=True, freeze_layers=1)
    pretrained = _pretrained(tiny_bert)
    saved = _snapshot(load_run(result.run_dir).model)
    assert not _moved(pretrained, saved, "embeddings/") and not _moved(pretrained, saved, "layer_._0/")
    assert _moved(pretrained, saved, "layer_._1/")
    parameters = result.metrics["training"]["parameters"]
    assert parameters["trainable"] < parameters["total"]


def test_bitfit_trains_biases_and_head_only(tiny_bert, wnut_small, tmp_path):
    result = _train(tiny_bert, wnut_small, tmp_path, peft="bitfit")
    pretrained = _pretrained(tiny_bert)
    saved = _snapshot(load_run(result.run_dir).model)
    for name, value in pretrained.items():
        if "pooler" in name:
            continue
        is_bias = name.endswith(("bias:0", "beta:0"))
        if not is_bias:
            assert np.array_equal(value, saved[name]), name
    assert _moved(pretrained, saved, "bias:0")
    bias_sizes = sum(v.size for n, v in pretrained.items() if n.endswith(("bias:0", "beta:0")) and "pooler" not in n)
    head_size = sum(v.size for n, v in saved.items() if n.startswith("token_logits"))
    assert result.metrics["training"]["parameters"]["trainable"] == bias_sizes + head_size


def test_lora_trains_adapters_and_saves_them_merged(tiny_bert, wnut_small, tmp_path):
    result = _train(tiny_bert, wnut_small, tmp_path, peft="lora", lora_rank=4, lora_targets=("query", "value"))
    pretrained = _pretrained(tiny_bert)
    tagger = load_run(result.run_dir)  # a plain model: adapters were merged
    saved = _snapshot(tagger.model)
    assert set(saved) >= set(pretrained)
    for name in pretrained:
        merged = "/query/kernel" in name or "/value/kernel" in name
        assert np.array_equal(pretrained[name], saved[name]) != merged, name
    parameters = result.metrics["training"]["parameters"]
    adapters = 2 * 2 * (32 * 4 + 4 * 32)  # 2 layers x (query, value) x (A, B)
    head = sum(v.size for n, v in saved.items() if n.startswith("token_logits"))
    assert parameters["trainable"] == adapters + head
    sentence = [s.tokens for s in wnut_small[1][:4]]
    assert tagger.predict(sentence) == result.predictor.predict(sentence)


def test_peft_with_freezing_is_refused():
    with pytest.raises(ConfigError, match="peft.*freeze_layers"):
        TrainConfig(peft="lora", freeze_layers=1)
