"""Distillation on bundled data: a half-depth student against its teacher and against the same model without it.

    python benchmarks/distillation.py --teacher saved_models/wnut17 --output /tmp/distill-bench
    python benchmarks/distillation.py --task classification      # trains a TREC teacher first

Students, all with half the teacher's blocks (evenly spread, top kept) and
the teacher's recipe (epochs, batch, rate, seed):

- distilled: initialised from the fine-tuned teacher, alpha 0.5, temperature 2;
- no-teacher-loss: the same initialisation, trained on the labels only (alpha 1);
- plain half-depth: the same blocks of the teacher's PRETRAINED backbone with a
  new head, fine-tuned on the labels only: the model a user would get
  without any teacher.

Each student's metric, size and batch-1 CPU latency (teacher measured in the
same process) go to a table and `distillation.json` in --output.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = {
    "distilled": {"student_init": "teacher", "alpha": 0.5, "temperature": 2.0},
    "no-teacher-loss": {"student_init": "teacher", "alpha": 1.0},
    "plain half-depth": {"student_init": "pretrained", "alpha": 1.0},
    # Optional (--variants): the teacher's term without softening.
    "distilled-t1": {"student_init": "teacher", "alpha": 0.5, "temperature": 1.0},
}
DEFAULT_VARIANTS = ("distilled", "no-teacher-loss", "plain half-depth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", help="a finished run directory (default: train one on the task's bundled data)")
    parser.add_argument("--task", default="ner", help="task of the teacher trained when --teacher is not given")
    parser.add_argument("--output", default="/tmp/distill-bench", help="folder for the runs and distillation.json")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help="comma-separated, from: " + ", ".join(VARIANTS))
    args = parser.parse_args()

    import kerastune_nlp as kt
    from kerastune_nlp.distillation import DistillConfig, distill

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    teacher = Path(args.teacher) if args.teacher else output / f"teacher-{args.task}"
    if not teacher.exists():
        started = time.perf_counter()
        kt.train(args.task, output_dir=teacher, verbose=2)
        print(f"teacher trained in {time.perf_counter() - started:.0f}s")
    results_file = output / "distillation.json"
    # Earlier variants of the same output folder stay in the table.
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in args.variants.split(","):
        started = time.perf_counter()
        run = distill(teacher, output / name.replace(" ", "-"), config=DistillConfig(**VARIANTS[name]),
                      overwrite=True, verbose=2)
        block = run.metrics["distillation"]
        block["seconds"] = round(time.perf_counter() - started, 1)
        results[name] = block
        print(f"{name}: {block['seconds']}s, test {block['student']['metric']['test']}", flush=True)
        results_file.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def table(results: dict) -> str:
    first = next(iter(results.values()))
    teacher, name = first["teacher"], first["student_vs_teacher"]["metric_name"]
    rows = [("model", "blocks", "params M", "MB", "batch-1 predict ms", "speed-up", f"dev {name}", f"test {name}",
             "test kept")]

    def row(label, side, versus=None):
        return (label, str(side["blocks"]), f"{side['parameters'] / 1e6:.1f}", f"{side['weights_bytes'] / 1e6:.1f}",
                f"{side['latency_batch1_cpu']['predict_ms']:.2f}",
                f"{versus['speedup_predict']:.2f}x" if versus else "1.00x",
                f"{side['metric']['dev']:.4f}", f"{side['metric']['test']:.4f}" if side["metric"]["test"] else "-",
                f"{100 * versus['metric_kept']['test']:.1f}%" if versus and versus["metric_kept"]["test"] else "100%")

    rows.append(row("teacher", teacher))
    rows.extend(row(label, block["student"], block["student_vs_teacher"]) for label, block in results.items())
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
