"""What an epoch's end costs: NER on bundled WNUT-17 with the default settings.

Trains (the `examples/ner_conll.py` run, 1 epoch unless `--epochs`) and
prints, from the run's metrics.json, each epoch's end broken down (dev
scoring, decoding, best checkpoint, crash backups), the bytes each epoch
wrote, and the epoch end's share of the epoch (goal: at most 10%).

    python benchmarks/epoch_end.py                            # the defaults
    python benchmarks/epoch_end.py -- --checkpoint-every 200 \\
        --checkpoint-every-seconds none --keep-optimizer-state  # the old behaviour
    python benchmarks/epoch_end.py --metrics saved_models/x/metrics.json  # an existing run

Flags after `--` go to the training command unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

GOAL = 0.10


def report(metrics: dict) -> str:
    epoch_end = metrics.get("epoch_end") or {}
    rows = epoch_end.get("per_epoch") or []
    if not rows:
        return "metrics.json has no epoch_end section (a run written before it existed)."
    lines = [f"{'epoch':>5} {'epoch s':>8} {'train s':>8} {'end s':>6} {'share':>6} {'dev s':>6} "
             f"{'decode s':>8} {'best s':>6} {'backup s':>8} {'backups':>7} {'MB written':>10}"]
    for r in rows:
        lines.append(f"{r['epoch']:>5} {r['epoch_seconds']:>8.1f} {r['train_seconds']:>8.1f} "
                     f"{r['epoch_end_seconds']:>6.1f} {100 * r['epoch_end_share']:>5.1f}% "
                     f"{r.get('dev_scoring_seconds', 0):>6.2f} {r.get('decoding_seconds', 0):>8.3f} "
                     f"{r.get('checkpoint_seconds', 0):>6.2f} {r.get('backup_seconds', 0):>8.2f} "
                     f"{r.get('backups', 0):>7} {r['bytes_written'] / 1e6:>10.1f}")
    mean = epoch_end["mean"]
    share = mean["epoch_end_share"]
    lines.append(f"mean epoch end {mean['epoch_end_seconds']:.1f}s of {mean['epoch_seconds']:.1f}s "
                 f"({100 * share:.1f}%, goal <= {100 * GOAL:.0f}%: {'met' if share <= GOAL else 'NOT met'}); "
                 f"backups also cost {mean.get('backup_seconds', 0):.2f}s/epoch in all; "
                 f"{mean['bytes_written'] / 1e6:.1f} MB written per epoch "
                 f"(backups {mean.get('backup_bytes', 0) / 1e6:.1f}, best {mean.get('checkpoint_bytes', 0) / 1e6:.1f}, "
                 f"other {mean.get('other_bytes', 0) / 1e6:.1f}); test entity F1 "
                 f"{(metrics.get('test') or {}).get('overall', {}).get('f1', float('nan')):.4f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--output", help="run directory (a temporary one by default)")
    parser.add_argument("--metrics", help="only report this existing metrics.json")
    args = parser.parse_args(argv)
    if args.metrics:
        print(report(json.loads(Path(args.metrics).read_text())))
        return 0
    from kerastune_nlp.cli import train_main

    output = Path(args.output or tempfile.mkdtemp(prefix="epoch_end_")) / "run"
    code = train_main(["--output", str(output), "--epochs", str(args.epochs), "--overwrite", *extra], task="ner",
                      description="epoch-end benchmark")
    if code:
        return code
    print(report(json.loads((output / "metrics.json").read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
