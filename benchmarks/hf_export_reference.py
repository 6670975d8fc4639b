"""Writes the state-dict names and shapes transformers' PyTorch task classes expect, per family.

    PYTHONPATH=. .venv-bench/bin/python benchmarks/hf_export_reference.py \
        [--output tests/fixtures/hf_export/expected_state_dicts.json]

Run in the benchmark environment (torch 2.13 + transformers 5.24). For each
family it builds a tiny config, instantiates `AutoModelForTokenClassification`
and `AutoModelForSequenceClassification` with `NUM_LABELS` labels and records
every key of `state_dict()` with its shape. The test suite (no PyTorch)
builds our encoder from the same config, exports a task model's tensors with
`kerastune_nlp.export.hf_checkpoint` and compares names and shapes with this
file: what `from_pretrained` would call missing or unexpected shows up there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NUM_LABELS = 5
OUTPUT = Path(__file__).parents[1] / "tests" / "fixtures" / "hf_export" / "expected_state_dicts.json"


def tiny_configs() -> dict:
    import transformers

    small = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64)
    return {
        "bert": transformers.BertConfig(**small),
        "roberta": transformers.RobertaConfig(**{**small, "max_position_embeddings": 66}, pad_token_id=1),
        "xlm-roberta": transformers.XLMRobertaConfig(**{**small, "max_position_embeddings": 66}, pad_token_id=1),
        "electra": transformers.ElectraConfig(**small, embedding_size=16),
        "distilbert": transformers.DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                    max_position_embeddings=64),
        "deberta-v2": transformers.DebertaV2Config(
            **small, relative_attention=True, position_buckets=16, norm_rel_ebd="layer_norm",
            pos_att_type=["p2c", "c2p"], share_att_key=True, position_biased_input=False, type_vocab_size=0,
            pad_token_id=0),
        "modernbert": transformers.ModernBertConfig(
            vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=48,
            global_attn_every_n_layers=2, local_attention=4, max_position_embeddings=64, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2),
    }


def main(argv=None) -> int:
    import torch  # noqa: F401  (fails clearly outside the benchmark environment)
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    result = {"transformers": transformers.__version__, "num_labels": NUM_LABELS, "families": {}}
    for family, config in tiny_configs().items():
        config.num_labels = NUM_LABELS
        entry = {"config": {**config.to_dict(), "model_type": config.model_type}}
        heads = (("token", AutoModelForTokenClassification), ("sequence", AutoModelForSequenceClassification))
        for head, auto in heads:
            model = auto.from_config(config)
            entry[head] = {"class": type(model).__name__,
                           "tensors": {name: list(t.shape) for name, t in model.state_dict().items()}}
        # The keras side rebuilds the encoder from this config: drop the head fields it set.
        for key in ("id2label", "label2id"):
            entry["config"].pop(key, None)
        result["families"][family] = entry
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
