"""A run as a Hugging Face checkpoint folder that transformers v5 (PyTorch) loads with `from_pretrained`.

    <output>/hf/
      config.json          the encoder's config + architectures, id2label / label2id,
                           problem_type, and a `kerastune_nlp` block (task, threshold, ...)
      model.safetensors    the whole task model in PyTorch naming ("bert.encoder.layer.0...",
                           "classifier.weight"), metadata format "pt"
      tokenizer files      what `AutoTokenizer.from_pretrained` reads
      README.md            the model card
      kerastune_run_config.json   the run's manifest (`kerastune-nlp train --config` reproduces it)

The encoder's tensors come from the family's weight map (as `save_checkpoint`
writes them); the task head from `hf_heads` (our Linear head written as the
family's own head). What the task's head is as a transformers model (token or
sequence level, labels, problem type, the card's snippet and notes) the task
says itself: `Task.hf_head()`, an `HFHead`; nothing here asks which task it
is. The folder is written under `<output>/.hf.partial`, checked (logits
against the Keras model, the task metric, the tokenizer's ids) and only then
renamed to `<output>/hf`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from kerastune_nlp.errors import ConfigError, ExportError
from kerastune_nlp.export import hf_heads
from kerastune_nlp.export.hf_card import model_card
from kerastune_nlp.export.hf_heads import hf_head_of

logger = logging.getLogger("kerastune_nlp.export")

FOLDER = "hf"
MARKER_KEY = "kerastune_nlp"
RUN_CONFIG = "kerastune_run_config.json"
# Layers a task model may hold besides the encoder and the head (none of them has weights).
_PASS_THROUGH = ("InputLayer", "Dropout", "Activation")


def task_parts(predictor):
    """`(encoder, kernel, bias, token_level)` of a run's Keras model, or a ConfigError saying what does not fit."""
    from kerastune_nlp.backbones import families

    head = hf_head_of(predictor.task)
    token_level = head.token_level
    head_name = "token_logits" if token_level else "head"
    encoders = [layer for layer in predictor.model.layers if families.is_own_encoder(layer)]
    unknown = [f"{layer.name} ({type(layer).__name__})" for layer in predictor.model.layers
               if layer not in encoders and layer.name not in (head_name, "first_token")
               and type(layer).__name__ not in _PASS_THROUGH]
    if len(encoders) != 1 or unknown:
        raise ConfigError(
            "The Hugging Face export writes models of one encoder and one Linear head (dropout between). "
            f"Received a model with {len(encoders)} encoder(s) and the layers {unknown or 'as expected'}; "
            "transformers' task classes have no place for the others. Export savedmodel or onnx instead.")
    if not token_level and "first_token" not in [layer.name for layer in predictor.model.layers]:
        raise ConfigError("Expected the sequence head to read the first token's state ([CLS] / <s>), as "
                          "transformers' classification heads do. Received a model without a `first_token` layer.")
    kernel, bias = (w.numpy() for w in predictor.model.get_layer(head_name).weights)
    kernel, bias = head.fold_scaling(kernel, bias)  # standardised targets: the PyTorch model outputs values
    return encoders[0], kernel, bias, token_level


def hf_tensors(predictor) -> tuple[dict, hf_heads.HeadLayout, dict]:
    """`(tensors, head layout, config.json dict)` of the run's model in transformers' PyTorch naming."""
    from kerastune_nlp.backbones.checkpoint import check_weight_map
    from kerastune_nlp.backbones.encoder import ensure_built
    from kerastune_nlp.backbones.registry import get_family
    from kerastune_nlp.backbones.tensor_layouts import pytorch_tensors

    encoder, kernel, bias, token_level = task_parts(predictor)
    config = predictor.backbone_config.to_dict()
    model_type = config["model_type"]
    layout = hf_heads.head_layout(model_type, token_level, config)
    family = get_family(model_type)
    ensure_built(encoder)
    entries = family.weight_map(encoder)
    check_weight_map(encoder, entries)
    prefix = family.base_model_prefix
    # Our encoder's [CLS] pooler never trains (it is frozen when unused): the task classes without a
    # pooler have no place for it, and BERT's gets the head below.
    tensors = {f"{prefix}.{name}": value for name, value in pytorch_tensors(entries).items()
               if not name.startswith("pooler.")}
    tensors.update(hf_heads.head_tensors(layout, kernel, bias, prefix))
    return tensors, layout, config


def hf_config(predictor, manifest, layout: hf_heads.HeadLayout, config: dict) -> dict:
    """config.json for transformers: the encoder's fields, the labels, the problem type and the head's fields."""
    task = predictor.task
    head = hf_head_of(task)
    model_type = config["model_type"]
    kind = "TokenClassification" if head.token_level else "SequenceClassification"
    labels = list(head.labels)
    dropout = manifest.model.dropout
    data = {**config, "architectures": [f"{hf_heads.CLASS_PREFIX[model_type]}For{kind}"],
            "id2label": {str(i): name for i, name in enumerate(labels)},
            "label2id": {name: i for i, name in enumerate(labels)}, "dtype": "float32"}
    if head.problem_type:
        data["problem_type"] = head.problem_type
    if dropout is not None:  # the run's head dropout, for whoever trains on
        key = {"distilbert": "seq_classif_dropout", "deberta-v2": "cls_dropout"}.get(model_type, "classifier_dropout")
        data[key] = dropout
    if model_type == "deberta-v2":
        data.update(pooler_hidden_size=config["hidden_size"], pooler_hidden_act=layout.activation,
                    pooler_dropout=0.0)
    if model_type == "modernbert":
        data["classifier_pooling"] = "cls"
    block = {"task": task.name, "package_version": manifest.package_version, "max_length": predictor.max_length,
             "head": describe_layout(layout)}
    block.update(head.config_fields)
    data[MARKER_KEY] = block
    return data


def describe_layout(layout: hf_heads.HeadLayout) -> str:
    if layout.dense is None:
        return "Linear (our head's weights as they are)"
    where = f"{layout.dense} -> {layout.activation}" + (f" -> {layout.norm}" if layout.norm else "")
    exact = layout.activation in hf_heads.ODD_PLUS_LINEAR + ("linear",) and layout.norm is None
    return (f"{where} -> {layout.output} computing our Linear head with unit pairs (+w, -w), scale "
            f"{hf_heads.scale_of(layout):.3g}; " + ("exact" if exact else "exact up to float32 rounding and "
                                                   "a relative error below 1e-9 for logits up to 30"))


def write_hf_checkpoint(predictor, manifest, run_dir, directory, metrics: dict | None = None,
                        verification: dict | None = None) -> Path:
    """Writes the Hugging Face folder of a loaded run into `directory` (created; must not exist).

    Args:
        predictor: Predictor. The run, loaded with `load_run`.
        manifest: Manifest. The run's manifest.
        run_dir: str or Path. The run directory (for the model card).
        directory: str or Path. A new folder.
        metrics: dict or None. The run's metrics.json. Defaults to reading it.
        verification: dict or None. The export's check, quoted in the model card.

    Returns:
        `directory` as a Path.

    Example:
    >>> write_hf_checkpoint(load_run(run), read_manifest(run), run, "my-model")  # doctest: +SKIP
    """
    from safetensors.numpy import save_file

    directory, run_dir = Path(directory), Path(run_dir)
    tensors, layout, config = hf_tensors(predictor)
    data = hf_config(predictor, manifest, layout, config)
    directory.mkdir(parents=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    predictor.tokenizer.save_pretrained(str(directory))
    shutil.copyfile(run_dir / "run_config.json", directory / RUN_CONFIG)
    if metrics is None:
        path = run_dir / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    (directory / "README.md").write_text(
        model_card(predictor.task, manifest, run_dir, data, metrics, verification), encoding="utf-8")
    return directory


class HFCheckpointRunner:
    """Runs a written Hugging Face folder on padded token ids, returning the run model's outputs.

    With PyTorch installed, through transformers' `AutoModelFor*Classification`
    (what a user runs). Without it, our encoder is read back from the folder
    and the family's head is applied as transformers computes it
    (`hf_heads.apply_head`): that checks the file, the names and the head
    mapping, not PyTorch's kernels. Outputs whose target scaling the export
    folded in (regression values) are scaled back to the Keras model's
    standardised outputs so both compare.

    Args:
        folder: the checkpoint folder.
        task: the run's task.
        engine: "auto" (PyTorch when importable), "pytorch" or "reference".
    """

    call_overhead_tokens = 16

    def __init__(self, folder, task, engine: str = "auto"):
        self.folder, self.task = Path(folder), task
        self.config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
        self.head = hf_head_of(task)
        self.token_level = self.head.token_level
        if engine == "auto":
            engine = "pytorch" if importlib.util.find_spec("torch") else "reference"
        self.kind = engine
        if engine == "pytorch":
            from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

            auto = AutoModelForTokenClassification if self.token_level else AutoModelForSequenceClassification
            self.model, info = auto.from_pretrained(str(self.folder), output_loading_info=True)
            self.model.eval()
            problems = {k: v for k, v in info.items() if v and k != "error_msgs"} | (
                {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {})
            if problems:
                raise ExportError(f"transformers loaded {str(self.folder)!r} with problems: {problems}.")
            self.description = f"transformers {_version('transformers')} {type(self.model).__name__} (PyTorch)"
        elif engine == "reference":
            from kerastune_nlp.backbones.encoder import load_encoder
            from kerastune_nlp.backbones.registry import get_family
            from safetensors.numpy import load_file

            self.encoder, _ = load_encoder(self.folder)
            self.tensors = load_file(str(self.folder / "model.safetensors"))
            self.prefix = get_family(self.config["model_type"]).base_model_prefix
            self.layout = hf_heads.head_layout(self.config["model_type"], self.token_level, self.config)
            self.description = ("our encoder read back from the folder + transformers' head computed in NumPy "
                                "(PyTorch is not installed)")
        else:
            raise ConfigError(f"Expected engine auto, pytorch or reference. Received: {engine!r}.")

    def __call__(self, features: dict) -> np.ndarray:
        if self.kind == "pytorch":
            import torch

            with torch.no_grad():
                outputs = self.model(**{k: torch.from_numpy(np.asarray(v, np.int64)) for k, v in features.items()})
            logits = outputs.logits.float().numpy()
        else:
            from kerastune_nlp._tf import tf

            hidden = self.encoder({k: tf.constant(v, tf.int32) for k, v in features.items()}).numpy()
            if not self.token_level:
                hidden = hidden[:, 0, :]
            logits = hf_heads.apply_head(self.layout, self.tensors, hidden, self.prefix)
        return self.head.unfold_scaling(logits).astype(np.float32)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _tokenizer_check(context, folder: Path) -> str:
    """The folder's tokenizer, read by `AutoTokenizer`, gives the run's ids on the scored examples."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(folder))
    examples = context.examples[:200]
    ours = context.task.encode(context.predictor.tokenizer, examples, context.predictor.max_length).rows
    theirs = context.task.encode(loaded, examples, context.predictor.max_length).rows
    same = sum(list(a.input_ids) == list(b.input_ids) for a, b in zip(ours, theirs))
    if same != len(ours) or len(ours) != len(theirs):
        raise ExportError(f"AutoTokenizer.from_pretrained({str(folder)!r}) ({type(loaded).__name__}) gives the "
                          f"run's ids on only {same} of {len(ours)} inputs. Nothing was published.")
    return f"{same}/{len(ours)} ({type(loaded).__name__})"


def export_hf(context, output: Path, manifest, run_dir, overwrite: bool = False, engine: str = "auto"):
    """The `hf` format of `export_run`: write, check and publish `<output>/hf`.

    Returns:
        The artifact's `ArtifactReport` (parity, metric, speed, how it was checked).
    """
    from kerastune_nlp.export.scoring import score_artifact
    from kerastune_nlp.export.report import ArtifactReport, directory_size

    final, staged = output / FOLDER, output / f".{FOLDER}.partial"
    if final.exists() and not overwrite:
        raise ExportError(f"{str(final)!r} exists (an earlier Hugging Face export). Pass --overwrite "
                          "(Python: overwrite=True) to replace it, or choose another --output.")
    if final.exists() and not _is_ours(final):
        raise ExportError(f"{str(final)!r} exists and was not written by kerastune_nlp (no `{MARKER_KEY}` block "
                          "in its config.json); refusing to replace it. Move it away or choose another --output.")
    if staged.exists():  # a crashed earlier attempt: our own staging name inside our export folder
        shutil.rmtree(staged)
    try:
        write_hf_checkpoint(context.predictor, manifest, run_dir, staged)
        runner = HFCheckpointRunner(staged, context.task, engine)
        row = ArtifactReport("hf", str(staged), directory_size(staged))
        row = score_artifact(context, runner, row, context.parity)
        row.extra["checked_with"] = runner.description
        if row.status == "failed":
            shutil.rmtree(staged)
            return row
        row.extra["tokenizer_ids"] = _tokenizer_check(context, staged)
        verification = {"max_abs_logit_diff": row.max_abs_logit_diff, "metric": row.metric,
                        "metric_name": context.task.metric_name, "checked_with": runner.description,
                        "examples": len(context.examples)}
        (staged / "README.md").write_text(
            model_card(context.task, manifest, Path(run_dir), json.loads((staged / "config.json").read_text()),
                       _metrics(run_dir), verification), encoding="utf-8")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if row.status != "published":
        shutil.rmtree(staged)
        row.path = ""
        return row
    if final.exists():
        shutil.rmtree(final)
    os.replace(staged, final)
    row.path = str(final)
    row.size_bytes = directory_size(final)
    return row


def _metrics(run_dir) -> dict:
    path = Path(run_dir) / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _is_ours(folder: Path) -> bool:
    try:
        return MARKER_KEY in json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
