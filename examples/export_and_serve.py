"""Train (or take) a model, export it, serve it on 127.0.0.1 with TF Serving's REST API, and query it.

With no arguments it trains a quick NER run on the bundled WNUT-17 (a few
minutes on 2 cores); `--run DIR` takes an existing run directory of any task.
The SavedModel is served exactly as `kerastune-nlp serve` serves it (same
routes as TF Serving, plus `:entities` for NER), and the client below is the
one that also talks to a real TF Serving:

    python examples/export_and_serve.py
    python examples/export_and_serve.py --run saved_models/wnut17 --formats savedmodel,tflite-int8

The same server from the command line, and a query with curl:

    kerastune-nlp serve saved_models/wnut17-export/serving/wnut17 --port 8501
    curl -d '{"instances": ["Barack Obama visited Paris"]}' localhost:8501/v1/models/wnut17:predict
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

TEXTS = ["Empire State Building is in New York, says Barack Obama.",
         "I just bought a new iPhone from the Apple store in London"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="an existing run directory (default: train a quick NER run)")
    parser.add_argument("--output", help="export folder (default <run>-export)")
    parser.add_argument("--formats", default="savedmodel,tflite-int8",
                        help="what to export (the SavedModel is served; default savedmodel,tflite-int8)")
    parser.add_argument("--port", type=int, default=0, help="REST port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--text", action="append", help="a text to send (repeatable; default two examples)")
    args = parser.parse_args(argv)

    from kerastune_nlp.cli import main as cli
    from kerastune_nlp.serving.background import serve_in_background
    from kerastune_nlp.serving.client import ServingClient

    run = Path(args.run) if args.run else Path(f"saved_models/ner-quick-{time.strftime('%Y%m%d-%H%M%S')}")
    if not args.run and cli(["train", "--task", "ner", "--quick", "--output", str(run)]) != 0:
        return 2
    output = Path(args.output or f"{run}-export")
    if cli(["export", str(run), "--output", str(output), "--formats", args.formats]) != 0:
        return 2
    model_folder = output / "serving" / run.name
    texts = args.text or TEXTS
    with serve_in_background(model_folder, "127.0.0.1", args.port) as server:
        print(f"\nServing {model_folder} at {server.url}/v1/models/{run.name}")
        with ServingClient(server.url, run.name) as client:
            status = client.status()["model_version_status"]
            print("status:", ", ".join(f"version {v['version']} {v['state']}" for v in status))
            for text, answer in zip(texts, client.predict(texts)):
                print(f"\n:predict  {text}")
                print(_describe(answer))
            if "words" in client.metadata()["metadata"]["signature_def"]["signature_def"]["serving_default"][
                    "outputs"]:
                for text, spans in zip(texts, client.entities(texts)):
                    print(f"\n:entities {text}")
                    for span in spans:
                        print(f"  {span['text']!r} [{span['start']}:{span['end']}] {span['label']} "
                              f"{span['score']:.2f}")
    return 0


def _describe(answer: dict) -> str:
    """One `:predict` answer in a line or two, whatever the task."""
    if "words" in answer:
        count = answer["word_count"]
        return "  " + " ".join(f"{w}/{t}" if t != "O" else w
                               for w, t in zip(answer["words"][:count], answer["labels"][:count]))
    return "  " + json.dumps(answer)


if __name__ == "__main__":
    raise SystemExit(main())
