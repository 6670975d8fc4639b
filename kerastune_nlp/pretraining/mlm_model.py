"""The masked-language model: built from a backbone checkpoint, head loaded or created, trained on masked slots.

`load_mlm_model` builds the `TFAutoModelForMaskedLM` class of the backbone's
architecture and loads the checkpoint into it (PyTorch safetensors through
`load_pytorch_state_dict_in_tf2_model` on plain numpy arrays, as
`models.backbones` does; TF files through `from_pretrained`). Every encoder
weight must arrive; the MLM head may be missing - sentence-transformers
checkpoints such as all-MiniLM-L6-v2 ship a bare BertModel - and is then
created, which the caller reports.

`MaskedLMTrainer` runs the encoder over the whole sequence but the head
(transform + projection onto the vocabulary) only over the masked slots.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import re

from kerastune_nlp._tf import keras, tf
from kerastune_nlp.errors import BackboneError, MissingDependencyError
from kerastune_nlp.models import backbones

logger = logging.getLogger("kerastune_nlp.pretraining")

# The head of each MLM class, called on [batch, slots, hidden] hidden states.
# Classes not listed run the whole model and gather the slots' logits.
_HEADS = {
    "TFBertForMaskedLM": lambda m, h, t: m.mlm(sequence_output=h, training=t),
    "TFDebertaV2ForMaskedLM": lambda m, h, t: m.mlm(sequence_output=h, training=t),
    "TFDebertaForMaskedLM": lambda m, h, t: m.mlm(sequence_output=h, training=t),
    "TFRobertaForMaskedLM": lambda m, h, t: m.lm_head(h),
    "TFXLMRobertaForMaskedLM": lambda m, h, t: m.lm_head(h),
    "TFCamembertForMaskedLM": lambda m, h, t: m.lm_head(h),
    "TFDistilBertForMaskedLM": lambda m, h, t: m.vocab_projector(m.vocab_layer_norm(m.act(m.vocab_transform(h)))),
    "TFElectraForMaskedLM": lambda m, h, t: m.generator_lm_head(m.generator_predictions(h, training=t),
                                                                training=t),
}


@dataclasses.dataclass(frozen=True)
class LoadedMaskedLM:
    """A masked-language model and what its checkpoint held.

    Args:
        model: the `TF...ForMaskedLM` model.
        head: str. "loaded" (the checkpoint had the MLM head), "created"
            (it had none: the head starts from random weights) or "partial".
        missing_head_weights: tuple of str. Head weights the checkpoint lacked.
    """

    model: object
    head: str
    missing_head_weights: tuple = ()


def encoder_layer(model):
    """The model's encoder (its main layer: `model.bert`, `model.roberta`, ...)."""
    return getattr(model, model.base_model_prefix)


def head_layer_names(model) -> set[str]:
    """Names the head's weights may carry in a checkpoint (TF layer names and their PyTorch aliases)."""
    encoder = encoder_layer(model)
    names = set()
    for layer in model.layers:
        if layer is not encoder:
            names.update({layer.name, layer.name.split("___")[-1]})
    return names


def load_mlm_model(resolved: backbones.ResolvedBackbone, config=None) -> LoadedMaskedLM:
    """Builds the backbone's masked-LM model with its pretrained encoder (and head, when the checkpoint has one).

    Args:
        resolved: ResolvedBackbone. From `resolve_backbone`.
        config: the transformers config, or None to read it.

    Raises:
        BackboneError: the architecture has no TF masked-LM class, or the
            checkpoint lacks encoder weights or has the wrong shapes.

    Example:
    >>> loaded = load_mlm_model(resolve_backbone("all-minilm-l6-v2"))
    >>> loaded.head
    'created'
    """
    from safetensors import SafetensorError
    from transformers import TFAutoModelForMaskedLM

    config = config or backbones.load_config(resolved)
    if resolved.weights_format == "pt-safetensors":
        model = _build(config)
        info = _load_pt_safetensors(model, resolved)
    else:
        if resolved.weights_format == "pt-pickle" and importlib.util.find_spec("torch") is None:
            raise MissingDependencyError(f"Loading {str(resolved.weights_file)!r} needs PyTorch. Install torch, or "
                                         "convert the checkpoint to model.safetensors.")
        try:
            model, info = TFAutoModelForMaskedLM.from_pretrained(
                str(resolved.directory), config=config, output_loading_info=True,
                from_pt=resolved.weights_format == "pt-pickle")
        except ValueError as error:
            raise _no_mlm_class(config, error) from error
        except KeyError as error:  # an h5 file without one of the model's layers
            found = re.search(r"object '([^']+)'", str(error))
            raise BackboneError(
                f"{str(resolved.weights_file)!r} lacks weights the masked-LM model needs: layer "
                f"{found.group(1) if found else str(error)!r} is not in it. Check that config.json matches the "
                "weights.") from error
        except (OSError, SafetensorError) as error:
            kind = "an HDF5" if resolved.weights_format == "tf-h5" else "a safetensors"
            raise backbones._broken_weights_error(resolved.weights_file, kind, error) from error
    return _check_loaded(model, info, resolved)


def _build(config):
    from transformers import TFAutoModelForMaskedLM

    try:
        model = TFAutoModelForMaskedLM.from_config(config)
    except ValueError as error:
        raise _no_mlm_class(config, error) from error
    model(model.dummy_inputs, training=False)  # create the variables
    return model


def _no_mlm_class(config, error) -> BackboneError:
    return BackboneError(
        f"The architecture {config.model_type!r} has no TensorFlow masked-language-model class in transformers "
        f"({str(error).splitlines()[0][:200]}). Continued pretraining needs one: pick a BERT, RoBERTa, "
        "DistilBERT, ELECTRA, DeBERTa-v2 or XLM-R backbone."
    )


def _load_pt_safetensors(model, resolved) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    state = {}
    for shard in backbones._shards(resolved.weights_file):
        try:
            state.update(load_file(str(shard)))
        except (SafetensorError, OSError) as error:
            raise backbones._broken_weights_error(shard, "a safetensors", error) from error
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state, allow_missing_keys=True, output_loading_info=True, skip_logger_warnings=True)
    return info


def _check_loaded(model, info: dict, resolved) -> LoadedMaskedLM:
    heads = head_layer_names(model)
    missing = [str(key) for key in info.get("missing_keys", [])]
    in_head = [key for key in missing if key.replace("/", ".").split(".")[0] in heads]
    encoder_missing = [key for key in missing if key not in in_head and "pooler" not in key]
    if encoder_missing:
        raise BackboneError(
            f"{str(resolved.weights_file)!r} lacks encoder weights the {model.config.model_type!r} masked-LM "
            f"model needs: {encoder_missing[:5]}. Check that config.json matches the weights."
        )
    if info.get("mismatched_keys"):
        raise BackboneError(f"{str(resolved.weights_file)!r} has weights of the wrong shape: "
                            f"{list(info['mismatched_keys'])[:5]}. Check that config.json matches the weights.")
    head_weights = [w for w in model.weights if w.name.split("/")[1] in heads] if in_head else []
    if not in_head:
        head = "loaded"
    elif any(name in heads for name in in_head) or len(in_head) >= len(head_weights):
        head = "created"  # a TF h5 file reports the whole missing layer by name
    else:
        head = "partial"
    logger.info("Loaded %s into %s (MLM head %s)", resolved.weights_file, type(model).__name__, head)
    return LoadedMaskedLM(model, head, tuple(in_head))


def head_group(model, head_names=None):
    """`variable -> 0 (encoder) or 1 (MLM head)`, for per-group learning rates."""
    names = head_names if head_names is not None else head_layer_names(model)
    return lambda variable: int(variable.name.split("/")[1] in names) if "/" in variable.name else 0


def masked_logits(model, features: dict, training: bool = False):
    """Logits over the vocabulary at the masked slots: [batch, slots, vocab]."""
    inputs = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
    positions = features["masked_positions"]
    head = _HEADS.get(type(model).__name__)
    if head is None:
        logits = model(inputs, training=training).logits
        return tf.gather(logits, positions, batch_dims=1)
    hidden = encoder_layer(model)(**inputs, training=training)[0]
    return head(model, tf.gather(hidden, positions, batch_dims=1), training)


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
    """Trains and scores a `TF...ForMaskedLM` on batches from `masking.masked_dataset`.

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
