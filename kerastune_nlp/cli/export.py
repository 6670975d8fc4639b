"""`kerastune-nlp export RUN`: deployment artifacts with a report and an accuracy gate."""

from __future__ import annotations

import argparse


def add_parser(commands) -> argparse.ArgumentParser:
    from kerastune_nlp.export.exporter import DEFAULT_FORMATS, FORMATS
    from kerastune_nlp.pruning import QAT_NOTE

    formats = "\n".join(f"  {name:17} {text}" for name, text in FORMATS.items())
    parser = commands.add_parser(
        "export", help="export a run directory (SavedModel for TF Serving, TFLite, ONNX) with a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export a run directory, check every artifact against the Keras model (logits and the "
                    "task metric on the run's test data), refuse artifacts that lose more than "
                    "--max-metric-drop, and write export_report.md.\n\nFormats:\n" + formats
                    + "\n\n" + QAT_NOTE)
    parser.add_argument("run", help="run directory written by `train` (or `prune`)")
    parser.add_argument("--output", required=True, help="export folder (new, or an earlier export to add a version)")
    parser.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                        help=f"comma-separated formats (default {','.join(DEFAULT_FORMATS)})")
    parser.add_argument("--name", help="TF Serving model name (default: the run folder's name)")
    parser.add_argument("--version", type=int, help="SavedModel version number (default: the next free one)")
    parser.add_argument("--max-metric-drop", type=float, default=1.0,
                        help="points of the task metric an artifact may lose (percent of MAE for regression); "
                             "default 1.0")
    parser.add_argument("--test", help="labelled file to score on instead of the run's test split")
    parser.add_argument("--raw-strings", choices=("auto", "require", "skip"), default="auto",
                        help="the raw-string serving_default signature: when the tokenizer has an in-graph twin "
                             "(auto), or fail without one (require), or never (skip)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing SavedModel version folder")
    parser.add_argument("--no-timing", action="store_true", help="skip the latency and throughput measurements")
    return parser


def run(args) -> None:
    from kerastune_nlp.export.exporter import export_run, parse_formats

    parse_formats(args.formats)  # a typo is refused before TensorFlow loads
    result = export_run(args.run, args.output, formats=args.formats, name=args.name, version=args.version,
                        max_metric_drop=args.max_metric_drop, overwrite=args.overwrite, test_file=args.test,
                        measure=not args.no_timing, raw_strings=args.raw_strings)
    print(result.report_markdown.read_text())
    saved = [a for a in result.artifacts if a.format == "savedmodel" and a.status == "published"]
    if saved:
        print(f"TF Serving: {saved[0].extra['docker']}")
    refused = [a for a in result.artifacts if a.status in ("refused", "failed")]
    print(f"Report: {result.report_markdown}" + (f"; {len(refused)} artifact(s) not published." if refused else ""))
