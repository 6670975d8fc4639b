"""Export an NER run to every format, print the report, and tag a sentence from the raw-string SavedModel.

With no arguments it trains a quick NER run on the bundled WNUT-17 (a few
minutes on 2 cores) and exports it; `--run DIR` exports an existing run
directory instead. The SavedModel is then loaded in a fresh Python process
(no kerastune_nlp, no Hugging Face tokenizer) to show what a serving system
sees: words, labels and character spans from a raw string.

    python examples/export_ner.py
    python examples/export_ner.py --run saved_models/wnut17 --output saved_models/wnut17-export
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

# Runs in a fresh process: only TensorFlow and tensorflow-text, as a server would have.
TAGGER = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the in-graph tokenizer's ops
model = tf.saved_model.load(sys.argv[1])
out = {k: v.numpy() for k, v in model.signatures["serving_default"](text=tf.constant([sys.argv[2]])).items()}
count = int(out["word_count"][0])
print(json.dumps([{"word": w.decode(), "label": l.decode(), "start": int(s), "end": int(e), "score": float(p)}
                  for w, l, s, e, p in zip(out["words"][0][:count], out["labels"][0][:count],
                                           out["start"][0][:count], out["end"][0][:count], out["scores"][0][:count])]))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="an existing NER run directory (default: train a quick one)")
    parser.add_argument("--output", help="export folder (default saved_models/<run>-export)")
    parser.add_argument("--formats", default="savedmodel,tflite-float32,tflite-float16,tflite-int8,onnx,onnx-int8")
    parser.add_argument("--sentence", default="Empire State Building is in New York , says Barack Obama")
    args = parser.parse_args(argv)

    from kerastune_nlp.cli import main as cli

    run = Path(args.run) if args.run else Path(f"saved_models/ner-quick-{time.strftime('%Y%m%d-%H%M%S')}")
    if not args.run:
        if cli(["train", "--task", "ner", "--quick", "--output", str(run)]) != 0:
            return 2
    output = Path(args.output or f"{run}-export")
    if cli(["export", str(run), "--output", str(output), "--formats", args.formats]) != 0:
        return 2
    report = json.loads((output / "export_report.json").read_text())
    saved = next(a for a in report["artifacts"] if a["format"] == "savedmodel" and a["status"] == "published")
    tagged = subprocess.run([sys.executable, "-c", TAGGER, saved["path"], args.sentence], capture_output=True,
                            text=True, check=True).stdout.strip().splitlines()[-1]
    print(f"\nRaw-string SavedModel {saved['path']} in a fresh process:\n  {args.sentence}")
    for word in json.loads(tagged):
        if word["label"] != "O":
            span = args.sentence[word["start"]:word["end"]]
            print(f"  {word['label']:15} {span!r} [{word['start']}:{word['end']}] score {word['score']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
