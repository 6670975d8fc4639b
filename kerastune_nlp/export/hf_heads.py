"""Our task heads written as the Hugging Face task heads of each family.

Our heads are one Linear layer: on every token's last hidden state (token-level
tasks, `HFHead.token_level`) or on the first token's ([CLS] / <s>) for the
sequence tasks. transformers'
task classes put more in between, per family (v5, `modeling_<family>.py`):

    token classification      dropout -> classifier                  (all but ModernBERT)
                              head.dense -> act -> head.norm (LayerNorm) -> classifier   (ModernBERT)
    sequence classification   BERT:        pooler.dense -> tanh -> classifier
                              RoBERTa/XLM-R: classifier.dense -> tanh -> classifier.out_proj
                              ELECTRA:     classifier.dense -> gelu -> classifier.out_proj
                              DistilBERT:  pre_classifier -> ReLU -> classifier
                              DeBERTa-v2:  pooler.dense -> pooler_hidden_act (gelu) -> classifier
                              ModernBERT:  head.dense -> act -> head.norm -> classifier

A Linear head is not a renaming of those, but each of them computes it with
chosen weights (no config change), because the hidden Linear layer only has
to carry our L logits, not the H hidden values:

- Pairs. Unit 2k of the hidden layer gets row +e*w_k of our kernel, unit
  2k+1 gets -e*w_k (biases 0); the output layer takes
  (a(2k) - a(2k+1)) / (c*e) and adds our bias b_k. For every activation of
  the form x*s(x) with s(x) + s(-x) = 1 (exact and tanh GELU, quick GELU,
  SiLU, ReLU) a(z) - a(-z) = z EXACTLY, c = 1; for "linear" c = 2, exact.
  For tanh, tanh(z) - tanh(-z) = 2 tanh(z) = 2z - 2z^3/3 + ..., c = 2: with
  e = 1e-5 the relative error is (e*z)^2/3, 3e-7 for a logit z of 10
  (z without the bias). It needs 2L <= H hidden units.
- ModernBERT's LayerNorm after the activation: the pairs make the vector's
  weighted sum free of the mean (weights +1/-1), and a tiny e keeps its
  variance far below the LayerNorm epsilon, so the norm divides by
  sqrt(eps) (gamma 1, beta 0), which the output layer multiplies back. With
  e = 1e-5*sqrt(eps) the relative error is var/(2*eps) < 1e-9 * sum(z^2) / H.

Standardised targets (regression, `HFHead.target_scaling`): the exported head
folds the scaling in (`std*w`, `std*b + mean`, `HFHead.fold_scaling`), so the
PyTorch model outputs values.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kerastune_nlp.errors import ConfigError

# a(z) - a(-z) = z exactly: z*s(z) with s(z) + s(-z) = 1.
ODD_PLUS_LINEAR = ("gelu", "gelu_new", "gelu_python", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate",
                   "quick_gelu", "silu", "swish", "relu")
# a(z) - a(-z) = 2z (linear: exactly; tanh: 2z - 2z^3/3 + ...).
TWICE = ("linear", "tanh")
TANH_SCALE = 1e-5


@dataclasses.dataclass(frozen=True)
class HeadLayout:
    """Where one family's task head keeps its tensors, and what it computes.

    Args:
        dense: str or None. The hidden Linear layer's name ("pooler.dense"), None for a plain Linear head.
        output: str. The output Linear layer ("classifier", "classifier.out_proj").
        activation: str. The hidden layer's activation (an ACT2FN name).
        norm: str or None. A LayerNorm after the activation (ModernBERT's "head.norm").
        dense_bias: bool. The hidden layer has a bias. Defaults to True.
        norm_bias: bool. The LayerNorm has a bias. Defaults to True.
        norm_eps: float. The LayerNorm epsilon.
        under_base: bool. `dense` sits inside the base model (BERT's pooler). Defaults to False.
    """

    dense: str | None
    output: str
    activation: str = "linear"
    norm: str | None = None
    dense_bias: bool = True
    norm_bias: bool = True
    norm_eps: float = 1e-5
    under_base: bool = False


CLASS_PREFIX = {"bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "electra": "Electra",
                "distilbert": "DistilBert", "deberta-v2": "DebertaV2", "modernbert": "ModernBert"}


def head_layout(model_type: str, token_level: bool, config: dict) -> HeadLayout:
    """The Hugging Face task head of `model_type` (token or sequence level), read from its config."""
    if model_type not in CLASS_PREFIX:
        raise ConfigError(f"Expected a run of one of the families {sorted(CLASS_PREFIX)} for the Hugging Face "
                          f"export. Received: `model_type`={model_type!r}.")
    if model_type == "modernbert":
        return HeadLayout("head.dense", "classifier", config.get("classifier_activation", "gelu"), "head.norm",
                          bool(config.get("classifier_bias", False)), bool(config.get("norm_bias", False)),
                          float(config.get("norm_eps", 1e-5)))
    if token_level:
        return HeadLayout(None, "classifier")
    return {
        "bert": HeadLayout("pooler.dense", "classifier", "tanh", under_base=True),
        "roberta": HeadLayout("classifier.dense", "classifier.out_proj", "tanh"),
        "xlm-roberta": HeadLayout("classifier.dense", "classifier.out_proj", "tanh"),
        "electra": HeadLayout("classifier.dense", "classifier.out_proj", "gelu"),
        "distilbert": HeadLayout("pre_classifier", "classifier", "relu"),
        "deberta-v2": HeadLayout("pooler.dense", "classifier", config.get("pooler_hidden_act", "gelu")),
    }[model_type]


def scale_of(layout: HeadLayout) -> float:
    """The e of the pair construction (see the module docstring)."""
    if layout.norm is not None:
        if layout.norm_eps <= 0:
            raise ConfigError(f"Expected a LayerNorm epsilon > 0 in the head. Received: `norm_eps`={layout.norm_eps}.")
        return 1e-5 * math.sqrt(layout.norm_eps)
    return TANH_SCALE if layout.activation == "tanh" else 1.0


def head_tensors(layout: HeadLayout, kernel: np.ndarray, bias: np.ndarray, base_prefix: str) -> dict:
    """PyTorch tensors of the family's head computing `hidden @ kernel + bias`.

    Args:
        layout: HeadLayout. The family's head.
        kernel: float32 [H, L]. Our head's Dense kernel (scaling already folded in for regression).
        bias: float32 [L].
        base_prefix: str. The base model's prefix, for heads inside it (BERT's pooler).

    Returns:
        `{name: float32 array}` in PyTorch layout (Linear weights [out, in]).
    """
    kernel, bias = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
    hidden, labels = kernel.shape
    if layout.dense is None:
        return {f"{layout.output}.weight": kernel.T.copy(), f"{layout.output}.bias": bias.copy()}
    if layout.activation in ODD_PLUS_LINEAR:
        c = 1.0
    elif layout.activation in TWICE:
        c = 2.0
    else:
        raise ConfigError(f"The head's activation {layout.activation!r} cannot carry a Linear head exactly. "
                          f"Expected one of {', '.join(ODD_PLUS_LINEAR + TWICE)}.")
    if 2 * labels > hidden:
        raise ConfigError(
            f"The Hugging Face head of this family computes our Linear head with 2 hidden units per label, and the "
            f"encoder has {hidden}: at most {hidden // 2} labels. Received: {labels} labels. Export another format "
            "(savedmodel, onnx) for this run.")
    e = scale_of(layout)
    # float64 while building: rows of e*w_k with e ~ 3e-8 keep their relative precision either way.
    dense = np.zeros((hidden, hidden), np.float64)
    dense[0:2 * labels:2] = e * kernel.T
    dense[1:2 * labels:2] = -e * kernel.T
    sigma = math.sqrt(layout.norm_eps) if layout.norm is not None else 1.0
    output = np.zeros((labels, hidden), np.float64)
    index = np.arange(labels)
    output[index, 2 * index] = sigma / (c * e)
    output[index, 2 * index + 1] = -sigma / (c * e)
    dense_name = f"{base_prefix}.{layout.dense}" if layout.under_base else layout.dense
    tensors = {f"{dense_name}.weight": dense.astype(np.float32)}
    if layout.dense_bias:
        tensors[f"{dense_name}.bias"] = np.zeros(hidden, np.float32)
    if layout.norm is not None:
        tensors[f"{layout.norm}.weight"] = np.ones(hidden, np.float32)
        if layout.norm_bias:
            tensors[f"{layout.norm}.bias"] = np.zeros(hidden, np.float32)
    tensors[f"{layout.output}.weight"] = output.astype(np.float32)
    tensors[f"{layout.output}.bias"] = bias.copy()
    return tensors


def _activation(name: str, x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    if name in ("gelu", "gelu_python"):
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate"):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "quick_gelu":
        return x / (1.0 + np.exp(-1.702 * x))
    if name in ("silu", "swish"):
        return x / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "linear":
        return x
    raise ConfigError(f"Unknown head activation {name!r}.")


def apply_head(layout: HeadLayout, tensors: dict, hidden: np.ndarray, base_prefix: str) -> np.ndarray:
    """What transformers' head computes from the last hidden state (inference: no dropout), in float32.

    The reference for the export's own check where PyTorch is not installed;
    it follows `modeling_<family>.py` line by line.
    """
    hidden = np.asarray(hidden, np.float32)
    if layout.dense is not None:
        name = f"{base_prefix}.{layout.dense}" if layout.under_base else layout.dense
        hidden = hidden @ tensors[f"{name}.weight"].T
        if layout.dense_bias:
            hidden = hidden + tensors[f"{name}.bias"]
        hidden = _activation(layout.activation, hidden).astype(np.float32)
        if layout.norm is not None:
            mean = hidden.mean(-1, keepdims=True)
            var = ((hidden - mean) ** 2).mean(-1, keepdims=True)
            hidden = (hidden - mean) / np.sqrt(var + np.float32(layout.norm_eps)) * tensors[f"{layout.norm}.weight"]
            if layout.norm_bias:
                hidden = hidden + tensors[f"{layout.norm}.bias"]
    return (hidden @ tensors[f"{layout.output}.weight"].T + tensors[f"{layout.output}.bias"]).astype(np.float32)


def hf_head_of(task):
    """The task's `HFHead` (`task.hf_head()`), or a ConfigError naming the task and what the export needs."""
    describe = getattr(task, "hf_head", None)
    head = describe() if callable(describe) else None
    if head is None:
        from kerastune_nlp.tasks import Task, get_task, task_names

        able = [name for name in task_names() if get_task(name).hf_head is not Task.hf_head]
        raise ConfigError(f"The Hugging Face export writes tasks that describe their head as a transformers model "
                          f"(`Task.hf_head()` returning an `HFHead`), as {able} do with their Linear heads. "
                          f"Received: task {task.name!r}. Export savedmodel or onnx instead.")
    return head
