"""Mixed precision, XLA with few padded shapes, and determinism, on a tiny backbone."""

import math

import numpy as np
import pytest

from kerastune_nlp._tf import tf
from kerastune_nlp.config import DataConfig, ModelConfig, NERDataConfig, TrainConfig
from kerastune_nlp.data import bundled_wnut17, read_conll
from kerastune_nlp.data.batching import make_train_dataset
from kerastune_nlp.errors import ConfigError
from kerastune_nlp.training import devices
from kerastune_nlp.training.ner_trainer import train_ner


@pytest.fixture(scope="module")
def wnut_small():
    paths = bundled_wnut17()
    return read_conll(paths["train"])[:48], read_conll(paths["dev"])[:16]


def _train(backbone, data, output, **train_options):
    train, dev = data
    return train_ner(
        train, dev, output_dir=output, model_config=ModelConfig(backbone=str(backbone)),
        data_config=DataConfig(max_length=32), ner_config=NERDataConfig(window_stride=4),
        train_config=TrainConfig(batch_size=8, learning_rate=1e-3, **{"epochs": 2, **train_options}),
        verbose=0,
    )


@pytest.fixture(scope="module")
def float32_run(tiny_bert, wnut_small, tmp_path_factory):
    """The float32 reference both bfloat16 precisions are compared with, trained once."""
    return _train(tiny_bert, wnut_small, tmp_path_factory.mktemp("fp32") / "run", precision="float32")


def _losses(result) -> list:
    import json

    return json.loads((result.run_dir / "history.json").read_text())["loss"]


def test_bfloat16_trains_to_a_finite_loss_close_to_float32(tiny_bert, wnut_small, float32_run, tmp_path):
    full = float32_run
    mixed = _train(tiny_bert, wnut_small, tmp_path / "bf16", precision="mixed_bfloat16")
    assert mixed.metrics["training"]["precision"] == "mixed_bfloat16"
    assert all(math.isfinite(v) for v in _losses(mixed))
    # bfloat16 keeps 8 bits of mantissa: the curves agree to a few percent.
    assert _losses(mixed)[-1] == pytest.approx(_losses(full)[-1], rel=0.05)
    # The head's output (and so the loss) stays float32; the policy was put back.
    assert mixed.predictor.model.output.dtype == tf.float32
    from kerastune_nlp._tf import keras

    assert keras.mixed_precision.global_policy().name == "float32"


def test_autocast_bfloat16_trains_close_to_float32_and_hands_back_a_float32_model(tiny_bert, wnut_small,
                                                                                   float32_run, tmp_path):
    import kerastune_nlp as kt

    full = float32_run
    autocast = _train(tiny_bert, wnut_small, tmp_path / "autocast", precision="autocast_bfloat16")
    assert autocast.metrics["training"]["precision"] == "autocast_bfloat16"
    assert all(math.isfinite(v) for v in _losses(autocast))
    assert _losses(autocast)[-1] == pytest.approx(_losses(full)[-1], rel=0.05)
    assert _losses(autocast) != _losses(full)  # the matmuls did run in bfloat16
    # Float32 layers throughout, and the Dense layers' own call is back after training.
    model = autocast.predictor.model
    assert all(weight.dtype == tf.float32 for weight in model.weights)
    assert not any("call" in vars(layer) for layer in model._flatten_layers())
    # So the returned predictor and the reloaded run give the same answers.
    sentences = [s.tokens for s in wnut_small[1][:6]]
    reloaded = kt.load_run(autocast.run_dir)
    assert autocast.predictor.predict(sentences) == reloaded.predict(sentences)


@pytest.mark.slow
def test_xla_trains_on_a_few_padded_lengths(tiny_bert, wnut_small, tmp_path):
    result = _train(tiny_bert, wnut_small, tmp_path / "xla", jit_compile=True, epochs=1)
    assert result.metrics["training"]["jit_compile"] is True
    assert all(math.isfinite(v) for v in _losses(result))

    # What bucketing hands XLA on the full WNUT-17 train set: at most 8 lengths.
    train = read_conll(bundled_wnut17()["train"])
    windows = result.predictor.task.encode(result.predictor.tokenizer, train, result.predictor.max_length).rows
    dataset = make_train_dataset(windows, result.predictor.input_names, result.predictor.pad_id, 8, 0,
                                 pad_to_multiple_of=16)
    lengths = {int(features["input_ids"].shape[1]) for features, _ in dataset}
    assert lengths <= {16, 32}  # max_length 32
    assert all(length % 16 == 0 for length in lengths)


def test_fixed_length_padding_pads_every_batch_to_max_length(tiny_bert, wnut_small):
    from kerastune_nlp.models import backbones
    from kerastune_nlp.data.ner_windows import WindowEncoder

    tokenizer = backbones.load_tokenizer(tiny_bert)
    encoder = WindowEncoder(tokenizer, max_length=32, stride=4, label_to_id={"O": 0, "B-person": 1,
                            "I-person": 2, "B-location": 3, "I-location": 4, "B-group": 5, "I-group": 6,
                            "B-corporation": 7, "I-corporation": 8, "B-product": 9, "I-product": 10,
                            "B-creative-work": 11, "I-creative-work": 12})
    train = wnut_small[0]
    windows, _ = encoder.encode([s.tokens for s in train], [s.tags for s in train])
    dataset = make_train_dataset(windows, tokenizer.model_input_names, tokenizer.pad_token_id, 8, 0,
                                 fixed_length=32)
    assert {int(f["input_ids"].shape[1]) for f, _ in dataset} == {32}
    with pytest.raises(ConfigError, match="fixed_length"):
        make_train_dataset(windows, tokenizer.model_input_names, 0, 8, 0, fixed_length=8)


@pytest.mark.slow
def test_same_seed_gives_the_same_run(tiny_bert, wnut_small, tmp_path):
    first = _train(tiny_bert, wnut_small, tmp_path / "a")
    second = _train(tiny_bert, wnut_small, tmp_path / "b")
    assert _losses(first) == _losses(second)
    assert first.metrics["dev"] == second.metrics["dev"]
    a = first.predictor.model.get_weights()
    b = second.predictor.model.get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_strategy_and_batch_errors_name_the_fix(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        devices.resolve_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG.*not valid JSON"):
        devices.resolve_strategy("auto")

    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(ConfigError, match=r"multiple of the 2 replicas.*--batch-size 8 or 10"):
        devices.check_batch_size(9, TwoReplicas())
    assert devices.check_batch_size(8, TwoReplicas()) == 4
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        TrainConfig(gradient_accumulation_steps=0)


def test_auto_precision_is_float32_on_cpu():
    assert devices.resolve_precision("auto", tf.distribute.get_strategy()) == "float32"


def test_nan_loss_stops_the_run_and_keeps_the_best_checkpoint(tiny_bert, wnut_small, tmp_path):
    from kerastune_nlp._tf import keras
    from kerastune_nlp.errors import TrainingError

    class PoisonHead(keras.callbacks.Callback):
        """Turns the head's kernel into NaN in the second epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                kernel = self.model.get_layer("token_logits").kernel
                kernel.assign(tf.fill(kernel.shape, float("nan")))

    train, dev = wnut_small
    with pytest.raises(TrainingError, match=r"became nan at epoch 2.*lower --learning-rate.*best\.ckpt"):
        train_ner(train, dev, output_dir=tmp_path / "run", model_config=ModelConfig(backbone=str(tiny_bert)),
                  data_config=DataConfig(max_length=32), ner_config=NERDataConfig(window_stride=4),
                  train_config=TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3),
                  extra_callbacks=[PoisonHead()], verbose=0)
    assert not (tmp_path / "run").exists()
    best = tmp_path / "run.partial" / "checkpoints" / "best.ckpt"
    reader = tf.train.load_checkpoint(str(best))
    values = [reader.get_tensor(name) for name in reader.get_variable_to_shape_map()]
    kernels = [v for v in values if isinstance(v, np.ndarray) and v.dtype == np.float32 and v.size > 1]
    assert kernels and all(np.isfinite(v).all() for v in kernels)


def test_mixed_float16_wraps_the_optimizer_in_dynamic_loss_scaling(tiny_bert, wnut_small, tmp_path):
    # What a GPU run gets; float16 kernels also exist on the CPU, slowly.
    from kerastune_nlp._tf import keras

    result = _train(tiny_bert, wnut_small, tmp_path / "fp16", precision="mixed_float16", epochs=1)
    assert result.metrics["training"]["precision"] == "mixed_float16"
    assert all(math.isfinite(v) for v in _losses(result))
    assert isinstance(result.predictor.model.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert result.metrics["training"]["optimizer_updates"] > 0
