"""Write the ModernBertForMaskedLM reference fixtures (PyTorch) that our MLM head is checked against.

Two tiny `ModernBertForMaskedLM` models (transformers v5, eager attention,
eval mode, weights widened as in benchmarks/encoder_reference.py), saved with
`save_pretrained` (encoder under `model.`, `head.dense`, `head.norm`,
`decoder.bias`; `decoder.weight` is tied to `model.embeddings.tok_embeddings`
and not written), with their logits on one padded batch:

    tests/fixtures/encoders/modernbert-mlm/          as released: no dense bias
                                                     (classifier_bias false), no
                                                     norm bias, decoder bias, exact GELU
    tests/fixtures/encoders/modernbert-mlm-biases/   classifier_bias, norm_bias (and
                                                     attention/mlp biases), tanh GELU head
    <case>/mlm_reference.npz   input_ids, attention_mask, logits [batch, length, vocab]

Run it in the reference environment (torch 2.13.0 + transformers 5.24.0):

    PYTHONPATH=. .venv-bench/bin/python benchmarks/mlm_head_parity/modernbert_reference.py
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "encoders"
_spec = importlib.util.spec_from_file_location("encoder_reference", REPO / "benchmarks" / "encoder_reference.py")
encoder_reference = importlib.util.module_from_spec(_spec)
sys.modules["encoder_reference"] = encoder_reference  # its dataclasses look their module up
_spec.loader.exec_module(encoder_reference)

BASE = dict(encoder_reference.MODERNBERT, vocab_size=96)
CASES = {
    "modernbert-mlm": dict(BASE),
    "modernbert-mlm-biases": dict(BASE, classifier_bias=True, norm_bias=True, attention_bias=True, mlp_bias=True,
                                  classifier_activation="gelu_pytorch_tanh", norm_eps=1e-6),
}
LENGTHS = [30, 17, 6]


def main() -> None:
    torch.manual_seed(encoder_reference.SEED)
    rng = np.random.default_rng(encoder_reference.SEED)
    for name, settings in CASES.items():
        config = transformers.ModernBertConfig(**settings)
        config._attn_implementation = "eager"
        model = transformers.ModernBertForMaskedLM(config)
        encoder_reference.randomize_(model)
        model.eval()
        assert model.decoder.weight is model.model.embeddings.tok_embeddings.weight
        folder = OUT / name
        shutil.rmtree(folder, ignore_errors=True)
        model.save_pretrained(str(folder))
        batch = encoder_reference.make_batch(LENGTHS, config.vocab_size, config.pad_token_id, False, rng)
        with torch.no_grad():
            logits = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
        np.savez_compressed(folder / "mlm_reference.npz", input_ids=batch["input_ids"].astype(np.int32),
                            attention_mask=batch["attention_mask"].astype(np.int32), logits=logits.astype(np.float32))
        # The saved folder reloads to the same logits (so the file is what the numbers came from).
        again = transformers.AutoModelForMaskedLM.from_pretrained(str(folder), attn_implementation="eager").eval()
        with torch.no_grad():
            reloaded = again(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
        keys = sorted(json.loads(json.dumps(list(again.state_dict()))))
        print(name, "reload max diff", float(np.abs(reloaded - logits).max()), "logit scale",
              float(np.abs(logits).max()), "head tensors", [k for k in keys if not k.startswith("model.")])


if __name__ == "__main__":
    main()
