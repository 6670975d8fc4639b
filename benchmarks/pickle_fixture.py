"""Write the PyTorch pickle fixtures that kerastune_nlp/backbones/torch_pickle.py is tested on.

Our package reads `pytorch_model.bin` without PyTorch (a restricted
unpickler), so its test fixtures come from real `torch.save` here:

    tests/fixtures/encoders/bert-pickle/config.json        (copy of bert/config.json)
    tests/fixtures/encoders/bert-pickle/pytorch_model.bin  (the bert case's weights)
    tests/fixtures/encoders/pickle-tensors/odd.bin         (views, offsets, every dtype read)
    tests/fixtures/encoders/pickle-tensors/odd.npz         (what odd.bin holds, bfloat16 as float32)
    tests/fixtures/encoders/pickle-tensors/pytorch_model-0000{1,2}-of-00002.bin
    tests/fixtures/encoders/pickle-tensors/pytorch_model.bin.index.json  (odd.bin in 2 shards)
    tests/fixtures/encoders/pickle-tensors/legacy.bin      (pre-1.6 format, must be refused)
    tests/fixtures/encoders/README.md  (its <!-- pickle --> section; encoder_reference.py keeps it)

`pytorch_model.bin` is written as transformers 4.x `save_pretrained(dir,
safe_serialization=False)` did (v5 only writes safetensors): `torch.save` of
a plain dict {name: state_dict[name].contiguous()}, default zip format;
shards `pytorch_model-0000i-of-0000n.bin` with an index
{"metadata": {"total_size": bytes}, "weight_map": {name: shard}}.
It also checks that transformers v5 loads bert-pickle back with the
reference outputs of bert/reference.npz.

Run it in the reference environment (PyTorch + transformers v5), after
benchmarks/encoder_reference.py:

    .venv-ref/bin/python benchmarks/pickle_fixture.py
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "encoders"


def save_like_transformers_4(state_dict: dict, path: Path) -> None:
    torch.save({name: tensor.contiguous() for name, tensor in state_dict.items()}, path)


def write_bert_pickle() -> Path:
    folder = FIXTURES / "bert-pickle"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy(FIXTURES / "bert" / "config.json", folder / "config.json")
    save_like_transformers_4(load_file(FIXTURES / "bert" / "model.safetensors"), folder / "pytorch_model.bin")
    # transformers v5 reads it back (weights_only) and reproduces the reference outputs.
    model = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    reference = np.load(FIXTURES / "bert" / "reference.npz")
    inputs = {key: torch.from_numpy(reference[f"long_{key}"])
              for key in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        output = model(**inputs).last_hidden_state.numpy()
    error = float(np.abs(output - reference["long_last_hidden_state"]).max())
    if error > 1e-5:
        raise RuntimeError(f"{folder}: transformers' reload differs from reference.npz by {error}")
    return folder


def odd_tensors() -> dict:
    """Tensors that are views into shared or larger storages, in every dtype the reader handles."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return {
        "transposed": base.t(),  # stride (1, 4)
        "offset": base[1:, 1:],  # storage offset 5, shares base's storage
        "strided": base[:, ::2],  # stride (4, 2)
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "half": torch.tensor([0.5, -1.25, 65504.0], dtype=torch.float16),
        "bfloat16": torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16),
        "int64": torch.tensor([-(2**40), 0, 7], dtype=torch.int64),
        "int32": torch.tensor([[-3, 4]], dtype=torch.int32),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "uint16": torch.tensor([1, 65535], dtype=torch.int32).to(torch.uint16),  # _rebuild_tensor_v3
        "parameter": torch.nn.Parameter(torch.tensor([1.5, -0.5])),  # _rebuild_parameter
    }


def expected(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy()
    if tensor.dtype == torch.uint16:
        return tensor.to(torch.int32).numpy().astype(np.uint16)
    return tensor.numpy().copy()


def write_pickle_tensors() -> Path:
    folder = FIXTURES / "pickle-tensors"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    tensors = odd_tensors()
    torch.save(tensors, folder / "odd.bin")  # as saved: views keep their offsets and strides
    np.savez(folder / "odd.npz", **{name: expected(tensor) for name, tensor in tensors.items()})
    names = list(tensors)
    shards = {"pytorch_model-00001-of-00002.bin": names[::2], "pytorch_model-00002-of-00002.bin": names[1::2]}
    for shard, keys in shards.items():
        save_like_transformers_4({key: tensors[key] for key in keys}, folder / shard)
    index = {
        "metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
        "weight_map": {key: shard for shard, keys in shards.items() for key in sorted(keys)},
    }
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    torch.save({"weight": torch.ones(2)}, folder / "legacy.bin", _use_new_zipfile_serialization=False)
    for name in ("odd.bin", *shards):  # torch reads them back (odd.bin with the views' strides)
        for key, tensor in torch.load(folder / name, weights_only=True).items():
            same = np.array_equal(expected(tensor), expected(tensors[key]))
            if not same or (name == "odd.bin" and tensor.stride() != tensors[key].stride()):
                raise RuntimeError(f"{folder / name}: {key} does not read back as saved")
    return folder


def write_readme_section(folders) -> None:
    """Writes the <!-- pickle --> section of the fixtures' README (after the tf-h5 one)."""
    sizes = "; ".join(f"`{folder.name}/{path.name}` {path.stat().st_size:,} B"
                      for folder in folders for path in sorted(folder.iterdir()))
    section = (
        "## PyTorch pickles (`pytorch_model.bin`)\n\n"
        "Written by `.venv-ref/bin/python benchmarks/pickle_fixture.py` "
        f"(torch {torch.__version__}, transformers {transformers.__version__}) for the restricted "
        "unpickler (`kerastune_nlp/backbones/torch_pickle.py`, read with `allow_pickle=True`). "
        "`bert-pickle/`: the `bert` case's weights as transformers 4.x "
        "`save_pretrained(dir, safe_serialization=False)` wrote them (`torch.save` of "
        "{name: tensor.contiguous()}); transformers v5 loads it back with bert/reference.npz's "
        "outputs. `pickle-tensors/`: `odd.bin` (views with storage offsets and strides, 0-d and "
        "empty tensors, float16/bfloat16/float64/int64/int32/int8/uint8/bool/uint16, a Parameter) "
        "with its values in `odd.npz` (bfloat16 as float32), the same tensors in two shards with "
        "`pytorch_model.bin.index.json`, and `legacy.bin` in the pre-1.6 non-zip format.\n\n"
        f"Sizes: {sizes}.\n"
    )
    readme = FIXTURES / "README.md"
    text = readme.read_text()
    block = f"<!-- pickle -->\n{section}<!-- /pickle -->"
    if "<!-- pickle -->" in text:
        text = re.sub(r"<!-- pickle -->.*?<!-- /pickle -->", lambda _: block, text, flags=re.S)
    elif "<!-- /tf-h5 -->" in text:
        text = text.replace("<!-- /tf-h5 -->", "<!-- /tf-h5 -->\n\n" + block, 1)
    else:
        raise SystemExit(f"{readme} lacks the <!-- tf-h5 --> markers: run encoder_reference.py first")
    readme.write_text(text)


def main() -> None:
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    folders = (write_bert_pickle(), write_pickle_tensors())
    write_readme_section(folders)
    for folder in folders:
        for path in sorted(folder.iterdir()):
            print(f"{path.relative_to(REPO)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
