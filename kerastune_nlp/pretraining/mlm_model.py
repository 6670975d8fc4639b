"""The masked-language model: our encoder plus an MLM head of its family, head loaded or created.

`load_mlm_model` loads the encoder with `load_encoder` (every encoder weight
must arrive) and the family's MLM head from the same checkpoint when it is
there; sentence-transformers checkpoints such as all-MiniLM-L6-v2 ship a
bare BertModel, and the head is then created (seeded), which the caller
reports. Each family's head is the transformers one: dense -> activation ->
LayerNorm -> projection onto the vocabulary tied to the word embeddings, plus
a bias, under the family's PyTorch names (`HEAD_NAMES`). ModernBERT's
(`ModernBertForMaskedLM`: `head.dense`, `head.norm`, `decoder` tied to
`tok_embeddings`) has a dense bias only with `classifier_bias`, a norm bias
only with `norm_bias` and a decoder bias only with `decoder_bias`. `save_mlm_checkpoint`
writes encoder and head in PyTorch naming.

`MaskedLMTrainer` runs the encoder over the whole sequence but the head
(transform + projection onto the vocabulary) only over the masked slots.
"""

from __future__ import annotations

import dataclasses
import logging

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.errors import BackboneError
from kerastune_nlp.models import backbones

logger = logging.getLogger("kerastune_nlp.pretraining")

# model_type -> the head's PyTorch names `(dense, LayerNorm, bias)`, the first
# one written, any one read. The decoder weight is the word embedding table.
HEAD_NAMES = {
    "bert": (("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"),),
    "roberta": (("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),),
    "xlm-roberta": (("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),),
    "electra": (("generator_predictions.dense", "generator_predictions.LayerNorm", "generator_lm_head.bias"),),
    "distilbert": (("vocab_transform", "vocab_layer_norm", "vocab_projector.bias"),),
    "deberta-v2": (("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"),
                   ("lm_predictions.lm_head.dense", "lm_predictions.lm_head.LayerNorm", "lm_predictions.lm_head.bias")),
    "modernbert": (("head.dense", "head.norm", "decoder.bias"),),
}
# A decoder weight some checkpoints may also hold; ours is always the word table (tied), so a
# different one (tie_word_embeddings false) is refused rather than silently replaced.
_DECODER_WEIGHTS = {"modernbert": "decoder.weight"}
# The word table the decoder is tied to (ModernBERT calls it tok_embeddings).
_WORD_EMBEDDINGS = ("embeddings.word_embeddings.weight", "embeddings.tok_embeddings.weight")


def _head_settings(config) -> dict:
    """The head's activation and LayerNorm epsilon, as transformers' head of the family."""
    model_type = config.model_type
    if model_type == "modernbert":
        return dict(activation=config.classifier_activation, layer_norm_eps=config.norm_eps,
                    dense_bias=config.classifier_bias, norm_bias=config.norm_bias, decoder_bias=config.decoder_bias)
    if model_type == "distilbert":
        return dict(activation=config.activation, layer_norm_eps=1e-12)
    # RoBERTa's lm_head and ELECTRA's generator head use exact GELU whatever hidden_act says.
    activation = "gelu" if model_type in ("roberta", "xlm-roberta", "electra") else config.hidden_act
    return dict(activation=activation, layer_norm_eps=config.layer_norm_eps)


@keras.utils.register_keras_serializable(package="kerastune_nlp")
class MaskedLMHead(keras.layers.Layer):
    """Hidden states -> vocabulary logits: dense, activation, LayerNorm, tied projection + bias.

    Args:
        embedding_size: int. Width of the word embedding table (the dense layer's output).
        vocab_size: int. Rows of the table.
        activation: str. Hugging Face activation name.
        layer_norm_eps: float. LayerNorm epsilon.
        initializer_range: float. Stddev of the dense kernel. Defaults to 0.02.
        seed: int or None. Seeds the dense kernel. Defaults to None.
        dense_bias: bool. The dense layer has a bias. Defaults to True.
        norm_bias: bool. The LayerNorm has a bias (beta). Defaults to True.
        decoder_bias: bool. The projection onto the vocabulary has a bias. Defaults to True.
    """

    def __init__(self, embedding_size, vocab_size, activation, layer_norm_eps, initializer_range=0.02, seed=None,
                 dense_bias=True, norm_bias=True, decoder_bias=True, **kwargs):
        from kerastune_nlp.backbones.activations import get_activation
        from kerastune_nlp.backbones.initializers import make_dense, make_layer_norm

        super().__init__(**kwargs)
        self.embedding_size, self.vocab_size = embedding_size, vocab_size
        self.activation, self.layer_norm_eps = activation, layer_norm_eps
        self.initializer_range, self.seed = initializer_range, seed
        self.dense_bias, self.norm_bias, self.decoder_bias = bool(dense_bias), bool(norm_bias), bool(decoder_bias)
        self._activation = get_activation(activation)
        self.dense = make_dense(embedding_size, name="dense", initializer_range=initializer_range, seed=seed,
                                path="mlm_head/dense", use_bias=self.dense_bias)
        self.layer_norm = make_layer_norm(layer_norm_eps, name="layer_norm", center=self.norm_bias)

    def build(self, input_shape):
        from kerastune_nlp.backbones.layers import build_in_scope

        build_in_scope(self.dense, tf.TensorShape([None, None, input_shape[-1]]))
        build_in_scope(self.layer_norm, tf.TensorShape([None, None, self.embedding_size]))
        self.bias = (self.add_weight(name="bias", shape=[self.vocab_size], initializer="zeros")
                     if self.decoder_bias else None)
        super().build(input_shape)

    def call(self, hidden, word_embeddings):
        hidden = self.layer_norm(self._activation(self.dense(hidden)))
        logits = tf.matmul(hidden, tf.cast(word_embeddings, hidden.dtype), transpose_b=True)
        return logits if self.bias is None else logits + tf.cast(self.bias, logits.dtype)

    def get_config(self):
        return {**super().get_config(), "embedding_size": self.embedding_size, "vocab_size": self.vocab_size,
                "activation": self.activation, "layer_norm_eps": self.layer_norm_eps,
                "initializer_range": self.initializer_range, "seed": self.seed, "dense_bias": self.dense_bias,
                "norm_bias": self.norm_bias, "decoder_bias": self.decoder_bias}


class MaskedLanguageModel(keras.Model):
    """Our encoder and its family's MLM head; `call` gives logits over the whole sequence.

    Args:
        encoder: one of our encoders (built).
        config: its family config.
        seed: int or None. Seeds a created head. Defaults to None.
    """

    def __init__(self, encoder, config, seed=None, **kwargs):
        from kerastune_nlp.backbones.registry import get_family

        super().__init__(**kwargs)
        self.encoder = encoder
        self.model_type = config.model_type
        family = get_family(config.model_type)
        table = next(v for v, name, _ in family.weight_map(encoder) if name in _WORD_EMBEDDINGS)
        # Not tracked again here: the table belongs to the encoder.
        object.__setattr__(self, "_word_embeddings", table)
        object.__setattr__(self, "backbone_config", config)
        self.head = MaskedLMHead(int(table.shape[1]), int(table.shape[0]), name="mlm_head",
                                 initializer_range=config.initializer_range, seed=seed, **_head_settings(config))
        self.head(self.encoder({"input_ids": tf.zeros([1, 1], tf.int32)}), self._word_embeddings)  # build

    def masked_logits(self, inputs, positions, training=False):
        hidden = self.encoder(inputs, training=training)
        return self.head(tf.gather(hidden, positions, batch_dims=1), self._word_embeddings)

    def call(self, inputs, training=False):
        return self.head(self.encoder(inputs, training=training), self._word_embeddings)


@dataclasses.dataclass(frozen=True)
class LoadedMaskedLM:
    """A masked-language model and what its checkpoint held.

    Args:
        model: MaskedLanguageModel.
        head: str. "loaded" (the checkpoint had the MLM head), "created"
            (it had none: the head starts from random weights) or "partial".
        missing_head_weights: tuple of str. Head weights the checkpoint lacked.
    """

    model: object
    head: str
    missing_head_weights: tuple = ()


def encoder_layer(model):
    """The model's encoder."""
    return model.encoder


def head_layer_names(model) -> set[str]:
    """The PyTorch names the model's head takes in a checkpoint (any of the family's namings)."""
    names = set()
    for naming in HEAD_NAMES[model.model_type]:
        names |= {name for _, name, _ in _head_tensors(model, naming)}
    return names


def _head_tensors(model, naming) -> list:
    """`(variable, pytorch_name, layout)` of the head under one naming (the biases it has)."""
    dense, norm, bias = naming
    head = model.head
    entries = [(head.dense.kernel, f"{dense}.weight", "linear"), (head.dense.bias, f"{dense}.bias", "copy"),
               (head.layer_norm.gamma, f"{norm}.weight", "copy"), (head.layer_norm.beta, f"{norm}.bias", "copy"),
               (head.bias, bias, "copy")]
    return [entry for entry in entries if entry[0] is not None]


def load_mlm_model(resolved: backbones.ResolvedBackbone, config=None, seed=None) -> LoadedMaskedLM:
    """Builds the backbone's masked-LM model with its pretrained encoder (and head, when the checkpoint has one).

    Args:
        resolved: ResolvedBackbone. From `resolve_backbone`.
        config: our family config, or None to read it.
        seed: int or None. Seeds a created head. Defaults to None.

    Raises:
        BackboneError: the architecture has no MLM head here, or the
            checkpoint lacks encoder weights or has the wrong shapes.

    Example:
    >>> loaded = load_mlm_model(resolve_backbone("all-minilm-l6-v2"))
    >>> loaded.head
    'created'
    """
    from kerastune_nlp.backbones.checkpoint_files import open_checkpoint
    from kerastune_nlp.backbones.tensor_layouts import to_keras

    config = config or backbones.load_config(resolved)
    if config.model_type not in HEAD_NAMES:
        raise BackboneError(f"Continued pretraining has no masked-LM head for {config.model_type!r}. Pick one of "
                            f"{sorted(HEAD_NAMES)}.")
    encoder = backbones.load_pretrained_backbone(resolved)
    model = MaskedLanguageModel(encoder, config, seed=seed, name="masked_lm")
    # resolve_backbone gives "pt-pickle" only when allow_pickle was passed to it.
    with open_checkpoint(resolved.weights_file,
                         allow_pickle=resolved.weights_format == "pt-pickle") as source:
        available = set(source.names)
        _check_tied_decoder(model, config.model_type, source, available, resolved.weights_file)
        best = max(HEAD_NAMES[config.model_type],
                   key=lambda naming: sum(name in available for _, name, _ in _head_tensors(model, naming)))
        entries = _head_tensors(model, best)
        missing = tuple(name for _, name, _ in entries if name not in available)
        for variable, name, layout in entries:
            if name in available:
                value = to_keras(source.get(name), layout)
                if tuple(value.shape) != tuple(variable.shape):
                    raise BackboneError(f"{str(resolved.weights_file)!r}: the MLM head tensor {name!r} has shape "
                                        f"{tuple(value.shape)}, the model needs {tuple(variable.shape)}. Check that "
                                        "config.json matches the weights.")
                variable.assign(value.astype(variable.dtype.as_numpy_dtype, copy=False))
    head = "loaded" if not missing else "created" if len(missing) == len(entries) else "partial"
    logger.info("Loaded %s into the %r masked-LM model (MLM head %s)", resolved.weights_file, config.model_type,
                head)
    return LoadedMaskedLM(model, head, missing)


def _check_tied_decoder(model, model_type, source, available, weights_file) -> None:
    import numpy as np

    name = _DECODER_WEIGHTS.get(model_type)
    if name is None or name not in available:
        return
    table = model._word_embeddings.numpy()
    decoder = np.asarray(source.get(name))
    if decoder.shape != table.shape or not np.array_equal(decoder, table):
        raise BackboneError(
            f"{str(weights_file)!r}: the MLM decoder weight {name!r} differs from the word embeddings, and "
            "kerastune_nlp's masked-LM head always ties them (as transformers does unless config.json says "
            "tie_word_embeddings false). Received: a separate decoder of shape "
            f"{tuple(decoder.shape)}. Use a checkpoint with tied embeddings, or fine-tune without continued "
            "pretraining."
        )


def save_mlm_checkpoint(model, directory):
    """Writes config.json and model.safetensors: the encoder and the MLM head, PyTorch naming."""
    from safetensors.numpy import load_file, save_file

    from kerastune_nlp.backbones.encoder import save_checkpoint
    from kerastune_nlp.backbones.tensor_layouts import to_pytorch

    directory = save_checkpoint(model.encoder, model.backbone_config, directory)
    weights = directory / "model.safetensors"
    tensors = load_file(str(weights))
    for variable, name, layout in _head_tensors(model, HEAD_NAMES[model.model_type][0]):
        tensors[name] = to_pytorch(variable.numpy(), layout)
    save_file(tensors, str(weights), metadata={"format": "pt"})
    return directory


def head_group(model, head_names=None):
    """`variable -> 0 (encoder) or 1 (MLM head)`, for per-group learning rates."""
    in_head = {id(v) for v in model.head.weights}
    return lambda variable: int(id(variable) in in_head)


def masked_logits(model, features: dict, training: bool = False):
    """Logits over the vocabulary at the masked slots: [batch, slots, vocab]."""
    inputs = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
    return model.masked_logits(inputs, features["masked_positions"], training=training)


class _Ratio(keras.metrics.Metric):
    """A sum over a count, accumulated exactly over the epoch (not a mean of batch means)."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_weight(name="total", initializer="zeros", dtype=tf.float64)
        self.count = self.add_weight(name="count", initializer="zeros", dtype=tf.float64)

    def update_state(self, total, count):
        self.total.assign_add(tf.cast(total, tf.float64))
        self.count.assign_add(tf.cast(count, tf.float64))

    def result(self):
        return tf.cast(self.total / tf.maximum(self.count, 1.0), tf.float32)


class MaskedLMTrainer(keras.Model):
    """Trains and scores a `MaskedLanguageModel` on batches from `masking.masked_dataset`.

    Logs `loss` (mean cross-entropy per masked token) and `masked_accuracy`;
    perplexity is `exp(loss)`.

    Args:
        mlm_model: the masked-LM model.
    """

    def __init__(self, mlm_model, **kwargs):
        super().__init__(**kwargs)
        self.mlm_model = mlm_model
        self.loss_metric = _Ratio("loss")
        self.accuracy_metric = _Ratio("masked_accuracy")

    @property
    def metrics(self):
        return [self.loss_metric, self.accuracy_metric]

    def call(self, features, training=False):
        return masked_logits(self.mlm_model, features, training)

    def _sums(self, features, training: bool):
        logits = tf.cast(self(features, training=training), tf.float32)
        labels, weights = features["masked_labels"], features["masked_weights"]
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)
        return tf.reduce_sum(losses * weights), tf.reduce_sum(correct * weights), tf.reduce_sum(weights)

    def train_step(self, features):
        with tf.GradientTape() as tape:
            loss_sum, correct, count = self._sums(features, training=True)
            loss = loss_sum / tf.maximum(count, 1.0)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return self._update(loss_sum, correct, count)

    def test_step(self, features):
        return self._update(*self._sums(features, training=False))

    def _update(self, loss_sum, correct, count):
        self.loss_metric.update_state(loss_sum, count)
        self.accuracy_metric.update_state(correct, count)
        return {metric.name: metric.result() for metric in self.metrics}
