"""Save the tiny encoder fixtures in the old transformers 4.x TF format (tf_model.h5).

Checkpoints saved by the TF classes of transformers 4.x (config.json +
tf_model.h5) are still around, but those classes are gone in transformers v5,
so these files can only be made while 4.x is installed. For each case of
tests/fixtures/encoders/ (written by benchmarks/encoder_reference.py) this:

1. builds the 4.x TF class from the case's config.json and fills it from its
   PyTorch model.safetensors (read with safetensors.numpy; 4.55+ cannot load
   a safetensors file with `from_pt=True`);
2. checks its outputs against the PyTorch reference.npz (max abs difference
   over positions where attention_mask is 1, within 1e-5);
3. saves `<case>-tf-h5/` (config.json + tf_model.h5, as 4.x save_pretrained
   writes them), reloads it with TFAutoModel.from_pretrained and checks the
   outputs again;
4. writes the results into the "TF 4.x h5 copies" section of the fixtures'
   README.md.

It needs transformers 4.x, whose TF classes v5 removed (no PyTorch needed);
the package itself now pins transformers 5, so use a separate environment:

    python3 -m venv .venv-tf4
    .venv-tf4/bin/pip install 'tensorflow==2.21.*' 'tf-keras==2.21.*' 'transformers==4.57.6' safetensors h5py
    .venv-tf4/bin/python benchmarks/encoder_reference_tf_h5.py [--fixtures DIR] [--cases bert roberta ...]

(The script does not import kerastune_nlp, so the package is not installed there.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the HF TF classes need Keras 2 (tf_keras)
os.environ["HF_HUB_OFFLINE"] = "1"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from transformers import AutoConfig, TFAutoModel  # noqa: E402
from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURES = REPO / "tests" / "fixtures" / "encoders"
BATCHES = ("padded", "long", "single")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TOLERANCE = 1e-5

# The 4.x TF DeBERTa-v2 names its separate position projections (share_att_key
# False) "pos_proj" and "pos_q_proj" where the PyTorch classes say
# "pos_key_proj" and "pos_query_proj", so 4.x's own PyTorch-to-TF loading leaves
# them unset. Rename them so tf_model.h5 holds the real weights under TF's names.
TF_RENAMES = {"deberta-v2": ((".pos_key_proj.", ".pos_proj."), (".pos_query_proj.", ".pos_q_proj."))}


def case_folders(fixtures: Path, names: list[str] | None) -> list[Path]:
    """The case folders with their own model.safetensors and reference.npz (the sharded copy is skipped)."""
    folders = sorted(path for path in fixtures.iterdir()
                     if (path / "model.safetensors").exists() and (path / "reference.npz").exists())
    if names:
        missing = sorted(set(names) - {path.name for path in folders})
        if missing:
            raise SystemExit(f"No such case in {fixtures}: {missing}. Run benchmarks/encoder_reference.py first.")
        folders = [path for path in folders if path.name in names]
    return folders


def build_from_safetensors(folder: Path):
    """The 4.x TF model of folder/config.json, filled from folder/model.safetensors."""
    config = AutoConfig.from_pretrained(folder)
    model = TFAutoModel.from_config(config)
    model(model.dummy_inputs, training=False)  # create the variables
    state = load_file(folder / "model.safetensors")
    for old, new in TF_RENAMES.get(config.model_type, ()):
        state = {key.replace(old, new): value for key, value in state.items()}
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state, allow_missing_keys=True, output_loading_info=True, skip_logger_warnings=True
    )
    left = {key: value for key, value in info.items() if value and key != "error_msgs"}
    if left or info.get("error_msgs"):
        raise RuntimeError(f"{folder}: tensors did not map one to one onto {type(model).__name__}: {info}")
    return model


def batch_inputs(reference, batch: str) -> dict[str, tf.Tensor]:
    return {key: tf.constant(reference[f"{batch}_{key}"]) for key in INPUTS if f"{batch}_{key}" in reference}


def compare(model, reference) -> dict[str, float]:
    """Max abs differences against reference.npz: valid positions, all positions, all hidden states."""
    result = {"valid": 0.0, "all": 0.0, "hidden_states": 0.0, "pooler": 0.0}
    for batch in BATCHES:
        output = model(batch_inputs(reference, batch), output_hidden_states=True, training=False)
        mask = reference[f"{batch}_attention_mask"].astype(bool)
        diff = np.abs(output.last_hidden_state.numpy() - reference[f"{batch}_last_hidden_state"])
        result["valid"] = max(result["valid"], float(diff[mask].max()))
        result["all"] = max(result["all"], float(diff.max()))
        stacked = np.stack([state.numpy() for state in output.hidden_states])
        hidden = np.abs(stacked - reference[f"{batch}_hidden_states"])
        result["hidden_states"] = max(result["hidden_states"], float(hidden[:, mask].max()))
        if f"{batch}_pooler_output" in reference:
            pooled = np.abs(output.pooler_output.numpy() - reference[f"{batch}_pooler_output"])
            result["pooler"] = max(result["pooler"], float(pooled.max()))
    return result


def save_h5(model, target: Path) -> None:
    """Writes target/ with exactly config.json and tf_model.h5 (4.x save_pretrained)."""
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory() as scratch:
        model.save_pretrained(scratch)
        target.mkdir()
        for name in ("config.json", "tf_model.h5"):
            shutil.copy2(Path(scratch) / name, target / name)


def check_case(folder: Path) -> dict:
    """Converts one case, checks it, saves <case>-tf-h5/ if it matches; returns the numbers."""
    reference = np.load(folder / "reference.npz")
    model = build_from_safetensors(folder)
    row = {"case": folder.name, "class": type(model).__name__, **compare(model, reference)}
    row["match"] = max(row["valid"], row["hidden_states"], row["pooler"]) <= TOLERANCE
    if row["match"]:
        target = folder.parent / f"{folder.name}-tf-h5"
        save_h5(model, target)
        reloaded = compare(TFAutoModel.from_pretrained(target), reference)
        row["reloaded_valid"] = reloaded["valid"]
        row["h5_kb"] = (target / "tf_model.h5").stat().st_size // 1024
        if reloaded["valid"] > TOLERANCE:
            raise RuntimeError(f"{target}: the saved tf_model.h5 does not reproduce the reference ({reloaded})")
    tf.keras.backend.clear_session()
    return row


def h5_table(path: Path) -> list[str]:
    """Lines `dataset [shape]` of a tf_model.h5, block weights shown once as layer_._{i}."""
    lines = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            generic = re.sub(r"layer_\._\d+", "layer_._{i}", name)
            lines.setdefault(generic, f"{generic} {list(item.shape)}")

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return [lines[key] for key in sorted(lines)]


def readme_section(fixtures: Path, rows: list[dict]) -> str:
    lines = [
        "## TF 4.x h5 copies\n\n",
        "`<case>-tf-h5/` holds config.json + tf_model.h5 as transformers "
        f"{transformers.__version__}'s TF classes save them (tensorflow {tf.__version__}, tf_keras), "
        "filled from the case's model.safetensors, for loaders of that older format. Written by "
        "`.venv/bin/python benchmarks/encoder_reference_tf_h5.py` while the test environment still had "
        "transformers 4.x. Max abs difference of the 4.x TF outputs against the v5 PyTorch "
        "reference.npz, over all three batches (valid = positions with attention_mask 1):\n\n",
        "| case | 4.x TF class | last_hidden_state, valid | all positions | hidden_states, valid | "
        "pooler | matches (<= 1e-5) | tf_model.h5 |\n|---|---|---|---|---|---|---|---|\n",
    ]
    for row in rows:
        size = f"{row['h5_kb']} KB" if row["match"] else "not written"
        lines.append(
            f"| `{row['case']}` | {row['class']} | {row['valid']:.1e} | {row['all']:.1e} | "
            f"{row['hidden_states']:.1e} | {row['pooler']:.1e} | {'yes' if row['match'] else 'NO'} | {size} |\n"
        )
    lines.append(
        "\nDeBERTa-v2 differs at padded positions only: for a fully masked query row the 4.x TF class "
        "zeroes the attention probabilities, the PyTorch class softmaxes finfo.min uniformly. The 4.x TF "
        "DeBERTa-v2 calls the separate position projections `pos_proj` / `pos_q_proj` (PyTorch: "
        "`pos_key_proj` / `pos_query_proj`); the h5 holds them under the TF names.\n\n"
        "HDF5 dataset names (Dense kernels are [in, out], Conv1D kernels [width, in, out], "
        "LayerNorm gamma/beta):\n"
    )
    for row in rows:
        path = fixtures / f"{row['case']}-tf-h5" / "tf_model.h5"
        if path.exists():
            lines.append(f"\n`{row['case']}-tf-h5/tf_model.h5`:\n\n```\n" + "\n".join(h5_table(path)) + "\n```\n")
    return "".join(lines)


def update_readme(fixtures: Path, rows: list[dict]) -> None:
    """Replaces the text between the tf-h5 markers of the fixtures' README.md."""
    readme = fixtures / "README.md"
    text = readme.read_text()
    pattern = re.compile(r"<!-- tf-h5 -->.*?<!-- /tf-h5 -->", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme} lacks the <!-- tf-h5 --> markers: rerun benchmarks/encoder_reference.py")
    section = readme_section(fixtures, rows)
    readme.write_text(pattern.sub(lambda _: f"<!-- tf-h5 -->\n{section}<!-- /tf-h5 -->", text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="default: %(default)s")
    parser.add_argument("--cases", nargs="*", help="case names (default: every case)")
    args = parser.parse_args()
    if not hasattr(transformers, "TFAutoModel"):
        raise SystemExit(f"transformers {transformers.__version__} has no TF classes: use a 4.x environment")
    rows = [check_case(folder) for folder in case_folders(args.fixtures, args.cases)]
    update_readme(args.fixtures, rows)
    print(json.dumps(rows, indent=1))
    return 0 if all(row["match"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
