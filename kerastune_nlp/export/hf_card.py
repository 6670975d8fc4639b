"""The model card (README.md) of a Hugging Face export: base model, data, scores, command, license.

What differs between tasks (pipeline tag, the "Use" snippet, the task's
notes, its bundled data set) comes from the task's `HFHead`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_DATA_LICENSES = {"wnut17": "CC BY 4.0 (WNUT-17, Derczynski et al. 2017)", "trec": "TREC question classification "
                  "(Li and Roth 2002), free for research use"}


def base_model(manifest) -> tuple[str, str | None]:
    """`(name, hub id or None)` of the run's backbone."""
    from kerastune_nlp.models.backbones import KNOWN_BACKBONES

    name = manifest.model.backbone
    if name in KNOWN_BACKBONES:
        return name, KNOWN_BACKBONES[name].hub_id
    if not Path(name).expanduser().exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return name, name
    return name, None


def base_license(manifest) -> str | None:
    """The `license:` of the backbone folder's own model card, when it has one."""
    folder = Path(manifest.backbone_directory or "")
    card = folder / "README.md"
    if not manifest.backbone_directory or not card.is_file():
        return None
    match = re.search(r"^license:\s*(\S+)\s*$", card.read_text(encoding="utf-8", errors="replace")[:4000], re.M)
    return match.group(1) if match else None


def _data_lines(manifest, metrics, example_dataset: str | None) -> list[str]:
    data, counts = manifest.data, metrics.get("data", {})
    bundled = None if data.train or getattr(data, "dataset", None) else example_dataset
    lines = []
    if getattr(data, "dataset", None):
        lines.append(f"- Hugging Face dataset `{data.dataset}`")
    if bundled:
        lines.append(f"- the data bundled with kerastune_nlp: {bundled} ({_DATA_LICENSES.get(bundled, '')})")
    for split in ("train", "dev", "test"):
        path = getattr(data, split, None)
        count = counts.get(split)
        if isinstance(count, dict):
            count = count.get("examples")
        if path or count:
            where = f"`{Path(path).name}`" if path else ("bundled" if bundled else "a seeded share of train")
            lines.append(f"- {split}: {where}"
                         + (f", {count} examples" if count else ""))
    if getattr(data, "quick", False):
        lines.append("- `--quick`: a seeded subset of the data (a demonstration run, not a tuned model)")
    return lines


def _score_lines(task, metrics) -> list[str]:
    lines = []
    for split in ("dev", "test"):
        scores = metrics.get(split)
        if scores:
            try:
                metric = task.primary_metric(scores)
                lines.append(f"- {split}: {task.metric_name} {metric:.4f} ({task.headline(scores)})")
            except (KeyError, TypeError, ValueError):
                lines.append(f"- {split}: {json.dumps(scores)[:300]}")
    return lines or ["- no scores recorded in metrics.json"]


def _notes(head, manifest, config, metrics) -> list[str]:
    block = config.get("kerastune_nlp", {})
    notes = list(head.notes)
    state = "last hidden state of each token" if head.token_level else "first token's hidden state"
    if config.get("architectures", [""])[0].endswith("ForTokenClassification") and "pairs" not in block.get("head", ""):
        notes.append(f"**Head.** One Linear layer on the {state}, as in kerastune_nlp: the same weights.")
    else:
        notes.append(
            f"**Head.** kerastune_nlp's head is one Linear layer on the {state}. transformers' head of this "
            f"family has a hidden layer; it is written with weights that compute exactly that Linear head: "
            f"{block.get('head', '')}. The logits equal the run's. Further fine-tuning in PyTorch works, but that "
            "hidden layer starts from these scaled, paired weights rather than a pretrained pooler. Run it in "
            "float32 or bfloat16: in float16 those small scales underflow.")
    if manifest.train.peft == "lora":
        notes.append("**LoRA.** The adapters were merged into the encoder's weights when the run was saved; "
                     "the checkpoint is a plain model.")
    pruning = metrics.get("pruning")
    if pruning:
        notes.append("**Pruned.** The encoder's kernels are sparse (see `pruning` in the run's metrics.json: "
                     f"{json.dumps(pruning.get('sparsity', pruning.get('target_sparsity', '')))[:200]}); they are "
                     "stored as they are (dense tensors with zeros; safetensors has no sparse format).")
    if metrics.get("distillation"):
        notes.append("**Distilled.** This is the student of a distillation run (see the run's metrics.json).")
    return notes


def model_card(task, manifest, run_dir: Path, config: dict, metrics: dict, verification: dict | None) -> str:
    """The README.md of the exported folder."""
    from kerastune_nlp.export.hf_heads import hf_head_of

    head = hf_head_of(task)
    name, hub_id = base_model(manifest)
    license_id = base_license(manifest)
    front = ["---", "library_name: transformers", f"pipeline_tag: {head.pipeline_tag}",
             f"license: {license_id or 'other'}", "tags:", "- kerastune-nlp", f"- {task.name}"]
    if hub_id:
        front.append(f"base_model: {hub_id}")
    front.append("---")
    title = Path(run_dir).name
    lines = [*front, "", f"# {title}", "",
             f"A `{config['model_type']}` model fine-tuned for **{task.name}** ({task.description}) by "
             f"kerastune_nlp {manifest.package_version}, from `{name}`"
             + (f" ([{hub_id}](https://huggingface.co/{hub_id}))" if hub_id else "") + ", exported to transformers' "
             f"`{config['architectures'][0]}`.", "", "## Use", "", head.usage, "",
             *[f"{note}\n" for note in _notes(head, manifest, config, metrics)],
             "## Data", "", *_data_lines(manifest, metrics, head.example_dataset), "",
             "## Scores (from the run's metrics.json)", "", *_score_lines(task, metrics), ""]
    if verification:
        lines += ["## Export check", "",
                  f"- logits of this folder against the run's Keras model: max abs difference "
                  f"{verification['max_abs_logit_diff']:.2e} on {verification['examples']} examples, "
                  f"checked with {verification['checked_with']}",
                  f"- {verification['metric_name']} of this folder on those examples: {verification['metric']}", ""]
    train = manifest.train
    lines += ["## Training", "",
              "The run's own manifest is `kerastune_run_config.json`; it reproduces the run:", "",
              "    kerastune-nlp train --config kerastune_run_config.json --output saved_models/" + title, "",
              f"Settings: task `{task.name}`, backbone `{name}`, max length {manifest.data.max_length}, "
              f"{train.epochs} epochs, batch {train.batch_size}, learning rate {train.learning_rate}, "
              f"weight decay {train.weight_decay}, warmup {train.warmup_ratio}, seed {train.seed}, "
              f"precision {train.precision}, peft {train.peft}.", "",
              "## License", "",
              (f"The base model's license is `{license_id}` (its model card); " if license_id else
               "The base model's license applies (not recorded in its folder; check its model card); ")
              + "the fine-tuned weights follow it. The training data's own terms apply to the data."]
    return "\n".join(lines) + "\n"
