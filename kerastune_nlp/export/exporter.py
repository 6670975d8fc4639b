"""`export_run`: a run directory -> verified, gated deployment artifacts and one report.

    <output>/
      serving/<name>/<version>/   SavedModel, TF Serving layout (signatures
                                  `serving_default` on raw strings, `ids`)
      serving/models.config       TF Serving model config list
      serving/batching_parameters.txt
      tflite/model-<variant>.tflite
      onnx/model.onnx, onnx/model-int8.onnx
      tokenizer/                  for clients of the id-based artifacts
      kerastune_export.json       task, labels, max length, input names
      export_report.md / .json    size, latency, throughput, metric, verdict

Every artifact is written under a temporary name, checked (logits against
the Keras model; the task metric on the run's test data against the
float32 Keras model) and only then renamed to its final name. An artifact
that loses more than `max_metric_drop` is not published; the report says by
how much it lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import shutil
from pathlib import Path
from typing import Sequence

from kerastune_nlp.noise import quiet
from kerastune_nlp.errors import ConfigError, ExportError, RunDirectoryError
from kerastune_nlp.export import report as reporting
from kerastune_nlp.export.report import ArtifactReport
from kerastune_nlp.export.scoring import FLOAT_PARITY, ScoringContext, score_artifact
from kerastune_nlp.export.steps import Steps
from kerastune_nlp.inference.artifacts import EXPORT_MARKER, EXPORT_TOKENIZER, SERVING_FOLDER
from kerastune_nlp.runs.owned_folder import FolderKind

logger = logging.getLogger("kerastune_nlp.export")

FORMATS = {
    "savedmodel": "SavedModel for TF Serving (raw-string and token-id signatures)",
    "tflite-float32": "TFLite float32",
    "tflite-float16": "TFLite float16 weights",
    "tflite-int8": "TFLite dynamic-range int8",
    "tflite-int8-full": "TFLite full-integer int8 (accuracy-gated; loses most of the signal on BERT here)",
    "onnx": "ONNX float32 (tf2onnx, verified with ONNX Runtime)",
    "onnx-int8": "ONNX Runtime dynamic int8, per channel",
    "hf": "Hugging Face folder for transformers v5 (PyTorch): config, model.safetensors, tokenizer, model card",
}
# The order the formats are converted in (the report keeps the order asked for): the converter
# that needs the most memory first, while the process holds least. Measured on MiniLM NER (90 MB
# of weights; the process holds 1.2 GB with TensorFlow, the model and the data loaded): the ONNX
# step needs 1.3 GB more at its peak, a TFLite conversion 0.75 GB, the SavedModel step 0.25 GB,
# and each step leaves 0.05-0.15 GB behind that no collection returns (TensorFlow's function
# library and kernel caches). In the default order asked for (ONNX last) the peak was 2.75 GB; here 2.52 GB.
_RUN_ORDER = ("onnx", "onnx-int8", "savedmodel", "tflite-float32", "tflite-float16", "tflite-int8",
              "tflite-int8-full", "hf")
DEFAULT_FORMATS = ("savedmodel", "tflite-float32", "tflite-float16", "tflite-int8", "onnx", "onnx-int8")
# What proves an export folder ours (`runs.owned_folder`); `_sidecar` writes the kind into the marker.
EXPORT_FOLDER = FolderKind("kerastune_nlp-export", EXPORT_MARKER, "export folder", "`kerastune-nlp export`")
TOKENIZER_AGREEMENT = 0.999
RAW_CHECK_BATCH = 32


@dataclasses.dataclass
class ExportResult:
    output_dir: Path
    artifacts: list[ArtifactReport]
    report_markdown: Path
    report_json: Path
    header: dict

    def artifact(self, name: str) -> ArtifactReport:
        return next(a for a in self.artifacts if a.format == name)


def parse_formats(formats) -> list[str]:
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    if not formats:
        raise ConfigError("Expected at least one export format. Received: none. Choose from "
                          + ", ".join(FORMATS) + ".")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        import difflib

        hints = [f"{u!r} (did you mean {difflib.get_close_matches(u, FORMATS, 1)[0]!r}?)"
                 if difflib.get_close_matches(u, FORMATS, 1) else repr(u) for u in unknown]
        raise ConfigError(f"Unknown export format {', '.join(hints)}. Expected some of: {', '.join(FORMATS)}.")
    if "onnx-int8" in formats and "onnx" not in formats:
        formats = ["onnx", *formats]
    return list(dict.fromkeys(formats))


def check_run(run_dir: Path):
    """The run's manifest, refusing incomplete runs and runs of another package version."""
    from kerastune_nlp.version import __version__
    from kerastune_nlp.runs.manifest import read_manifest

    manifest = read_manifest(run_dir)  # refuses a folder that is not a run, or an incomplete one
    ours, theirs = __version__.split(".")[:2], (manifest.package_version or "0.0").split(".")[:2]
    if ours != theirs:
        raise RunDirectoryError(f"The run {str(run_dir)!r} was written by kerastune_nlp {manifest.package_version} "
                                f"and this is {__version__}; the model files may differ. Export it with "
                                f"kerastune-nlp=={manifest.package_version} or retrain it with this version.")
    return manifest


def check_output(output: Path, overwrite: bool) -> None:
    """An output folder is new, empty, or an earlier export (new versions go beside old ones)."""
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {str(output)!r} is a file; pass a folder for the export.")
    if output.is_dir() and any(output.iterdir()) and not EXPORT_FOLDER.is_ours(output):
        raise RunDirectoryError(f"--output {str(output)!r} exists and is not an export folder (no {EXPORT_MARKER}); "
                                "refusing to write into it. Choose a new --output.")


def evaluation_examples(task, manifest, test_file=None, run_dir="the run"):
    """The labelled examples the gate scores on: `test_file`, else the run's test split (or dev)."""
    from kerastune_nlp.config import DataConfig

    if test_file:
        examples = task.read_file(test_file, DataConfig(encoding=manifest.data.encoding))
        task.check_examples(examples, "test")
        return examples, str(test_file)
    from kerastune_nlp.runs.splits import changed_splits, check_data_files

    check_data_files(run_dir, manifest.data, "run_config.json",
                     lambda name: "Pass --test FILE (Python: `test_file=`) with labelled examples in the run's "
                                  "format to score the artifacts on.")
    try:
        splits, _ = task.load_splits(manifest.data, manifest.train.seed)
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot re-read the run's data to score the artifacts ({error}). Pass --test FILE with "
                          "labelled examples in the run's format.") from error
    name = "test" if splits.get("test") else "dev"
    changed = changed_splits(task, splits, getattr(manifest, "fingerprint", {}))
    if name in changed:
        logger.warning("The run's %s split read again from %s is not the one %s was scored on (its examples "
                       "changed since training): the export's scores are on the data as it is now.", name,
                       getattr(manifest.data, name) or manifest.data.train or "its data", run_dir)
    return list(splits[name]), f"the run's {name} split"


@contextlib.contextmanager
def _silenced(*names: str):
    saved = {name: logging.getLogger(name).level for name in names}
    try:
        for name in names:
            logging.getLogger(name).setLevel(logging.WARNING)
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def agreement_examples(task, manifest, examples, evaluated_on: str):
    """What the in-graph tokenizer is checked on: every split of the run's data, else the scored examples.

    Returns `(examples, description)`. Reading the run's files again costs
    seconds; a raw-string signature that disagrees on training text is worth
    knowing before it is served.
    """
    if not evaluated_on.startswith("the run's"):
        return examples, evaluated_on
    with _silenced("kerastune_nlp.tasks", "kerastune_nlp.data"):  # evaluation_examples said how they were read
        splits, _ = task.load_splits(manifest.data, manifest.train.seed)
    names = [name for name in ("train", "dev", "test") if splits.get(name)]
    return [example for name in names for example in splits[name]], f"the run's {', '.join(names)} splits"


def representative_rows(task, predictor, examples, count: int = 64) -> list:
    return task.encode(predictor.tokenizer, examples[:count], predictor.max_length).rows


def export_run(run_dir, output_dir, *, formats: Sequence[str] | str = DEFAULT_FORMATS, name: str | None = None,
               version: int | None = None, max_metric_drop: float = 1.0, overwrite: bool = False,
               test_file=None, examples=None, measure: bool = True, agreement_inputs=None,
               raw_strings: str = "auto", parity_tolerance: float = FLOAT_PARITY) -> ExportResult:
    """Exports a run directory to the chosen formats, verified and gated, with a report.

    Args:
        run_dir: a finished run directory.
        output_dir: the export folder (new, or an earlier export to add a version to).
        formats: names from `FORMATS` (list or comma-separated string).
        name: the TF Serving model name. Defaults to the run folder's name.
        version: the SavedModel version number. Defaults to the next free one.
        max_metric_drop: float. Points of the task metric (percent of MAE for
            regression) an artifact may lose against the float32 Keras model.
        overwrite: bool. Replace an existing SavedModel version folder.
        test_file: labelled file to score on instead of the run's test split.
        examples: labelled examples to score on (Python API; wins over test_file).
        measure: bool. Time each artifact (latency, throughput). Defaults to True.
        agreement_inputs: more texts (or word lists for NER) on which the
            in-graph tokenizer must agree with the Hugging Face one.
        raw_strings: "auto" (a raw-string signature when the tokenizer has an
            in-graph twin), "require" (fail otherwise) or "skip".
        parity_tolerance: float. Largest logit difference a float32 artifact
            may show against Keras; a larger one fails the export.

    Returns:
        An `ExportResult`; `report_markdown` is the table to read before shipping.
    """
    with _quiet_loggers():
        return _export_run(run_dir, output_dir, formats, name, version, max_metric_drop, overwrite, test_file,
                           examples, measure, agreement_inputs, raw_strings, parity_tolerance)


@contextlib.contextmanager
def _quiet_loggers():
    """The same examples are encoded once per artifact: warn about truncation once (restored after)."""
    data = logging.getLogger("kerastune_nlp.data")
    saved = data.level
    try:
        yield
    finally:
        data.setLevel(saved)


def _export_run(run_dir, output_dir, formats, name, version, max_metric_drop, overwrite, test_file, examples,
                measure, agreement_inputs, raw_strings, parity_tolerance) -> ExportResult:
    from kerastune_nlp.inference.predictor import rebuild_model
    from kerastune_nlp.tasks import get_task

    run_dir, output = Path(run_dir), Path(output_dir)
    formats = parse_formats(formats)
    if raw_strings not in ("auto", "require", "skip"):
        raise ConfigError(f"Expected --raw-strings auto, require or skip. Received: {raw_strings!r}.")
    if max_metric_drop < 0:
        raise ConfigError(f"Expected --max-metric-drop >= 0. Received: {max_metric_drop}.")
    manifest = check_run(run_dir)
    check_output(output, overwrite)
    task = get_task(manifest.task)(manifest.task_config, manifest.task_state)
    steps = Steps()
    with steps.step("read the run and its data"):
        if examples is None:
            examples, evaluated_on = evaluation_examples(task, manifest, test_file, run_dir)
        else:
            evaluated_on = "the given examples"
        if not examples:
            raise ConfigError("Expected labelled examples to score the artifacts on. Received: none (the run has "
                              "no test or dev split). Pass --test FILE.")
        predictor, _ = rebuild_model(task, manifest, run_dir)  # the manifest and task read above, once
        rows = task.encode(predictor.tokenizer, examples, predictor.max_length).rows
        logging.getLogger("kerastune_nlp.data").setLevel(logging.ERROR)  # said once above
    with steps.step("keras-float32 reference"):
        reference_outputs = predictor.outputs(rows)
        reference_metric = task.primary_metric(task.evaluate(predictor, examples))
        output.mkdir(parents=True, exist_ok=True)
        _write_marker(output, manifest, predictor)
        predictor.tokenizer.save_pretrained(str(output / EXPORT_TOKENIZER))

        header = {"run": str(run_dir), "task": task.name, "metric_name": task.metric_name,
                  "higher_is_better": task.metric_higher_is_better, "evaluated_on": evaluated_on,
                  "examples": len(examples), "max_metric_drop": max_metric_drop,
                  "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", "notes": []}
        if predictor.document_context:
            from kerastune_nlp.export.context_check import context_note

            header["document_context"] = predictor.document_context
            header["notes"].append(context_note(predictor))
        keras_row = ArtifactReport("keras-float32", str(run_dir), reporting.directory_size(run_dir / "model.h5"),
                                   metric=round(reference_metric, 6), metric_change=0.0, status="reference")
        if measure:
            keras_row.__dict__.update(reporting.measure_speed(predictor, rows))
    results = [keras_row]
    graph, agreement = None, None
    if raw_strings != "skip":
        with steps.step("in-graph tokenizer check"):
            checked, checked_on = agreement_examples(task, manifest, examples, evaluated_on)
            graph, agreement = _graph_tokenizer(task, predictor, checked, agreement_inputs, header,
                                                required=raw_strings == "require")
            del checked  # every split of the run's data: not needed again
        if agreement is not None:
            header["tokenizer_agreement"]["checked_on"] = checked_on
    from kerastune_nlp.export.signatures import ServingModule

    module = ServingModule(predictor, graph)
    context = ScoringContext(task, predictor, examples, rows, reference_outputs, reference_metric, max_metric_drop,
                             measure, parity_tolerance)
    by_format = {}
    for fmt in sorted(formats, key=_RUN_ORDER.index):
        # quiet(): LiteRT prints its XNNPACK line when an artifact is scored (the converters are hushed
        # where they run). Native lines are held until the step ends; the rest is written back then.
        with steps.step(fmt) as outcome, quiet():
            if fmt == "savedmodel":
                row = _export_saved_model(context, module, output, name or run_dir.name, version, overwrite,
                                          manifest, graph, agreement)
            elif fmt.startswith("tflite"):
                row = _export_tflite(context, module, output, fmt)
            elif fmt == "onnx":
                row = _export_onnx(context, module, output)
            elif fmt == "onnx-int8":
                row = _export_onnx_int8(context, output)
            else:  # hf
                from kerastune_nlp.export.hf_checkpoint import export_hf

                row = export_hf(context, output, manifest, run_dir, overwrite)
            by_format[fmt] = row
            outcome["status"] = row.status + (f": {row.reason}" if row.reason else "")
    results += [by_format[fmt] for fmt in formats]  # the report lists them as asked
    header["step_seconds"] = steps.seconds
    json_path, md_path = reporting.write_report(output, header, results)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise ExportError("; ".join(f"{r.format} was not published: {r.reason}" for r in failed)
                          + f". The other artifacts and the report are in {str(output)!r}.")
    return ExportResult(output, results, md_path, json_path, header)


def _write_marker(output: Path, manifest, predictor) -> None:
    from kerastune_nlp.runs.layout import write_json

    write_json(output / EXPORT_MARKER, _sidecar(manifest, predictor))


def _sidecar(manifest, predictor) -> dict:
    from kerastune_nlp.version import __version__
    from kerastune_nlp.config import to_dict

    return {"kind": EXPORT_FOLDER.kind, "package_version": __version__, "task": manifest.task,
            "task_config": to_dict(manifest.task_config) if manifest.task_config is not None else None,
            "task_state": manifest.task_state, "max_length": predictor.max_length,
            "input_names": list(predictor.input_names), "backbone_config": predictor.backbone_config.to_dict()}


def _graph_tokenizer(task, predictor, examples, extra_inputs, header, required: bool):
    """The in-graph tokenizer, after checking it agrees with the HF one on the run's data."""
    from kerastune_nlp.data import graph_tokenizer as gt

    try:
        spec = gt.wordpiece_spec(predictor.tokenizer)
    except ConfigError as error:
        if required:
            raise ConfigError(f"--raw-strings require: {error}") from error
        header["notes"].append(f"No raw-string signature: {error}")
        return None, None
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        header["notes"].append("No raw-string signature: tensorflow-text is not installed "
                               "(pip install 'kerastune-nlp[export]').")
        return None, None
    graph = gt.GraphWordPiece(spec, predictor.max_length, truncation=task.truncation)
    agreement = task.tokenizer_agreement(predictor.tokenizer, graph, examples, extra_inputs or ())
    if agreement is None:
        header["notes"].append(f"No raw-string signature: the {task.name} task does not measure tokenizer "
                               "agreement (Task.tokenizer_agreement).")
        return None, None
    header["tokenizer_agreement"] = agreement.as_dict()
    if agreement.rate < TOKENIZER_AGREEMENT:
        raise ExportError(
            f"The in-graph tokenizer gives the Hugging Face ids on only {agreement.identical} of {agreement.total} "
            f"inputs ({agreement.rate:.2%}, at least {TOKENIZER_AGREEMENT:.1%} required). First differences: "
            + json.dumps(agreement.differing[:3], ensure_ascii=False)
            + ". Export the token-id formats only (drop `savedmodel`), or report the texts.")
    return graph, agreement


def _publish(row: ArtifactReport, staged: Path, final: Path) -> ArtifactReport:
    if row.status == "published":
        os.replace(staged, final)
        row.path = str(final)
    else:
        staged.unlink(missing_ok=True)
        row.path = ""
    return row


@contextlib.contextmanager
def _removed_on_error(staged: Path):
    """An error or Ctrl-C during a conversion or its check leaves no staged file (nor its `.partial`)."""
    try:
        yield
    except BaseException:
        staged.unlink(missing_ok=True)
        staged.with_name(staged.name + ".partial").unlink(missing_ok=True)
        raise


def _export_tflite(context, module, output: Path, fmt: str) -> ArtifactReport:
    from kerastune_nlp.export import tflite
    from kerastune_nlp.inference.runners import TFLiteRunner

    folder = output / "tflite"
    folder.mkdir(exist_ok=True)
    final = folder / f"model-{fmt.removeprefix('tflite-')}.tflite"
    staged = final.with_name("." + final.name + ".unverified")
    representative = None
    if fmt == "tflite-int8-full":
        calibration = representative_rows(context.task, context.predictor, context.examples)

        def representative():
            from kerastune_nlp.data.batching import pad_rows

            for row in calibration:
                features = pad_rows([row], context.predictor.input_names, context.predictor.pad_id, multiple=1)
                yield [features[name] for name in context.predictor.input_names]

    with _removed_on_error(staged):
        tflite.convert(module, fmt, staged, representative)
        row = ArtifactReport(fmt, str(staged), staged.stat().st_size)
        parity = context.parity * 10 if fmt == "tflite-float32" else None  # fused TFLite kernels round differently
        return _publish(score_artifact(context, TFLiteRunner(staged), row, parity), staged, final)


def _export_onnx(context, module, output: Path) -> ArtifactReport:
    from kerastune_nlp.export import onnx
    from kerastune_nlp.inference.runners import OnnxRunner

    folder = output / "onnx"
    folder.mkdir(exist_ok=True)
    final, staged = folder / "model.onnx", folder / ".model.onnx.unverified"
    with _removed_on_error(staged):
        onnx.convert(module, staged)
        row = ArtifactReport("onnx", str(staged), staged.stat().st_size)
        return _publish(score_artifact(context, OnnxRunner(staged), row, context.parity), staged, final)


def _export_onnx_int8(context, output: Path) -> ArtifactReport:
    from kerastune_nlp.export import onnx
    from kerastune_nlp.inference.runners import OnnxRunner

    source = output / "onnx" / "model.onnx"
    if not source.is_file():
        return ArtifactReport("onnx-int8", "", 0, status="failed", reason="the float32 ONNX model was not published")
    final, staged = output / "onnx" / "model-int8.onnx", output / "onnx" / ".model-int8.onnx.unverified"
    with _removed_on_error(staged):
        onnx.quantize_int8(source, staged)
        row = ArtifactReport("onnx-int8", str(staged), staged.stat().st_size)
        return _publish(score_artifact(context, OnnxRunner(staged), row, None), staged, final)


def _export_saved_model(context, module, output: Path, name, version, overwrite, manifest, graph, agreement):
    from kerastune_nlp.export import savedmodel
    from kerastune_nlp.export.signatures import CONTEXT_SIGNATURE, RAW_SIGNATURE, describe_signature
    from kerastune_nlp.inference.runners import SavedModelRunner

    base = output / SERVING_FOLDER
    target, version = savedmodel.version_folder(base, name, version, overwrite)
    row = ArtifactReport("savedmodel", str(target), 0)
    signatures = module.signatures()
    sidecar = {**_sidecar(manifest, context.predictor), "signatures": {
        key: describe_signature(fn) for key, fn in signatures.items()},
        "raw_string_signature": graph is not None}

    def verify(staged: Path):
        runner = SavedModelRunner(staged)
        scored = score_artifact(context, runner, row, context.parity)
        if scored.status != "published":
            raise ExportError(scored.reason)
        if graph is not None:
            _check_raw_signature(context, runner.loaded.signatures[RAW_SIGNATURE], row)
            if CONTEXT_SIGNATURE in runner.loaded.signatures:
                from kerastune_nlp.export.context_check import check_context_signature

                check_context_signature(context.task, context.predictor, context.examples[:200],
                                        runner.loaded.signatures[CONTEXT_SIGNATURE], row, RAW_CHECK_BATCH)

    try:
        savedmodel.write_saved_model(module, signatures, target, sidecar, context.predictor.tokenizer, verify)
    except ExportError as error:
        # No version folder was written. The row says why, and the report is written as for any
        # other artifact (the formats may run after others: see _RUN_ORDER).
        row.status = row.status if row.status != "published" else "failed"
        row.reason, row.path = str(error), ""
        return row
    row.size_bytes = reporting.directory_size(target)
    row.path = str(target)
    row.extra["version"] = version
    row.extra["raw_string_signature"] = graph is not None
    written = savedmodel.write_serving_config(base, sorted(p.name for p in base.iterdir()
                                                           if p.is_dir() and not p.name.startswith(".")),
                                              savedmodel.DEFAULT_BATCHING)
    row.extra["serving_files"] = [str(p) for p in written]
    row.extra["docker"] = savedmodel.docker_command(base)
    return row


def _check_raw_signature(context, signature, row: ArtifactReport) -> None:
    """The raw-string signature's predictions equal the Keras predictor's on the evaluation texts."""
    from kerastune_nlp._tf import tf

    task, predictor = context.task, context.predictor
    inputs = task.raw_inputs_of(context.examples[:200])
    expected = task.predict_raw(predictor, inputs)
    got = []
    # In batches as a server sends them: 200 texts in one call held 0.35 GB of activations (MiniLM).
    for begin in range(0, len(expected), RAW_CHECK_BATCH):
        outputs = signature(**{name: tf.constant(values[begin: begin + RAW_CHECK_BATCH])
                               for name, values in inputs.items()})
        got.extend(task.from_raw_outputs({name: value.numpy() for name, value in outputs.items()}))
    compared = [(a, b) for a, b in zip(got, expected) if a is not None]
    same = sum(task.same_prediction(a, b) for a, b in compared)
    row.extra["raw_signature_agreement"] = f"{same}/{len(compared)}"
    if len(compared) < len(expected):
        row.extra["raw_signature_too_long"] = len(expected) - len(compared)
    if same < len(compared):
        bad = next(i for i, (a, b) in enumerate(zip(got, expected))
                   if a is not None and not task.same_prediction(a, b))
        raise ExportError(f"the raw-string signature disagrees with the Keras model on {len(compared) - same} of "
                          f"{len(compared)} texts (first: #{bad}, {got[bad]!r} vs {expected[bad]!r})")


def remove_export(output: Path) -> None:
    """Deletes an export folder this package wrote (it must carry the marker)."""
    if not EXPORT_FOLDER.is_ours(output):
        raise RunDirectoryError(f"{str(output)!r} is not an export folder; not deleting it.")
    shutil.rmtree(output)
