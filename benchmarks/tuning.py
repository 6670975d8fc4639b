"""A real search on bundled data: does it beat the defaults, how long does each trial take, does memory stay flat?

Runs, in one process (so resident memory is comparable trial to trial):

1. the default recipe (`TrainConfig()`, or the --quick preset) trained once:
   its dev and test scores;
2. a RandomSearch (or Hyperband) of at least 10 trials over the default
   space (`--space` narrows it), with the data encoded once;
3. the best configuration retrained into a run directory: its dev and test.

Per trial it reports the objective, the wall time, the share spent outside
`model.fit` (goal under 10%) and resident memory (VmRSS from /proc) after
the trial's model was released (goal: after trial 10 within 15% of after
trial 2). A Markdown table goes to stdout and everything to --json.

    python benchmarks/tuning.py --quick                       # TREC subset, 10 trials, epochs 1-2
    python benchmarks/tuning.py --task ner --trials 12 --space epochs=2:3
    python benchmarks/tuning.py --tuner hyperband --quick
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="classification", help="classification (TREC) or ner (WNUT-17)")
    parser.add_argument("--tuner", default="random", choices=("random", "bayesian", "hyperband"))
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--hyperband-factor", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the 800/200/400 subset and epochs 1:2")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=SPEC")
    parser.add_argument("--backbone", default=None, help="backbone (default the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--search-dir", default="saved_models/bench-tuning")
    parser.add_argument("--json", default=None, help="write all numbers here (default <search-dir>.json)")
    args = parser.parse_args(argv)

    from kerastune_nlp.cli import console

    console.configure(False)
    logging.getLogger("kerastune_nlp").setLevel(logging.INFO)
    import kerastune_nlp as kt
    from kerastune_nlp.tuning import parse_overrides, tune
    from kerastune_nlp.tuning.trial import resident_mb

    task = kt.get_task(args.task)()
    data = kt.DataConfig(quick=args.quick, max_length=args.max_length)
    base = kt.TrainConfig(**{**task.recipe, **kt.config.QUICK_TRAINING}) if args.quick else task.default_train_config()
    splits, data_name = task.load_splits(data, base.seed)
    overrides = {"epochs": "1:2"} if args.quick else {}
    overrides.update(parse_overrides(args.space))
    search_dir = Path(args.search_dir)
    model = kt.ModelConfig(backbone=args.backbone) if args.backbone else kt.ModelConfig()

    started = time.perf_counter()
    default = kt.train(task, splits["train"], splits["dev"], splits["test"], output_dir=search_dir.with_name(
        search_dir.name + "-default"), data_config=data, model_config=model, train_config=base, overwrite=True,
        verbose=0)
    default_seconds = time.perf_counter() - started
    print(f"default recipe trained in {default_seconds:.0f}s; resident {resident_mb()} MiB", file=sys.stderr)

    started = time.perf_counter()
    result = tune(task, splits["train"], splits["dev"], splits["test"], search_dir=search_dir, tuner=args.tuner,
                  max_trials=args.trials, space=overrides, hyperband_factor=args.hyperband_factor,
                  data_config=data, model_config=model, train_config=base,
                  retrain_best=True, output_dir=search_dir.with_name(search_dir.name + "-best"), overwrite=True)
    search_seconds = time.perf_counter() - started

    headline = task.monitor.removeprefix("val_")
    rows = []
    for trial in result.trials:
        duration, fit = trial.get("duration_seconds") or 0.0, trial.get("fit_seconds") or 0.0
        rows.append({"trial": trial["trial_id"], "status": trial["status"],
                     "objective": (trial.get("objective") or {}).get("value"),
                     "epochs_run": trial.get("epochs_run"), "seconds": duration,
                     "outside_fit_share": round(1 - fit / duration, 3) if duration else None,
                     "resident_mb_after": trial.get("resident_mb_after"),
                     "hyperparameters": {k: v for k, v in trial["hyperparameters"].items()}})
    memory = [r["resident_mb_after"] for r in rows if r["resident_mb_after"]]
    report = {
        "task": args.task, "data": data_name, "tuner": args.tuner, "trials": len(rows),
        "default": {"train": kt.config.to_dict(base), "dev": _pick(default.metrics["dev"], headline),
                    "test": _pick(default.metrics["test"], headline), "seconds": round(default_seconds, 1)},
        "best": {"trial": result.best and result.best["trial_id"], "hyperparameters": result.best_hyperparameters,
                 "trial_dev": result.best and round(result.best["objective"]["value"], 4),
                 "retrained_dev": result.run and _pick(result.run.metrics["dev"], headline),
                 "retrained_test": result.run and _pick(result.run.metrics["test"], headline)},
        "search_seconds": round(search_seconds, 1),
        "memory_growth_trial2_to_last": (round(memory[-1] / memory[1] - 1, 3) if len(memory) >= 3 else None),
        "rows": rows,
    }
    Path(args.json or f"{search_dir}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(_markdown(report, headline))
    return 0


def _pick(scores: dict | None, name: str):
    """The headline number of a task's scores dict (accuracy, micro F1, entity F1 or loss)."""
    if not scores:
        return None
    for key in (name, "accuracy", "f1", "micro_f1", "loss"):
        value = scores.get(key)
        if isinstance(value, (int, float)):
            return round(float(value), 4)
        if isinstance(value, dict) and isinstance(value.get("f1"), (int, float)):
            return round(float(value["f1"]), 4)
    overall = scores.get("overall") or {}
    return round(float(overall["f1"]), 4) if "f1" in overall else None


def _markdown(report: dict, headline: str) -> str:
    lines = [f"## Search: {report['tuner']}, {report['trials']} trials, {report['task']} on {report['data']}",
             "", f"| trial | status | dev {headline} | epochs | seconds | outside fit | RSS after (MiB) | values |",
             "|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row["hyperparameters"].items())
        objective = f"{row['objective']:.4f}" if row["objective"] is not None else "-"
        share = f"{100 * row['outside_fit_share']:.1f}%" if row["outside_fit_share"] is not None else "-"
        lines.append(f"| {row['trial']} | {row['status']} | {objective} | {row['epochs_run']} | "
                     f"{row['seconds']:.0f} | {share} | {row['resident_mb_after']} | {values} |")
    default, best = report["default"], report["best"]
    lines += ["", f"| recipe | dev {headline} | test {headline} |", "|---|---|---|",
              f"| default ({default['train']['learning_rate']:g}, batch {default['train']['batch_size']}, "
              f"{default['train']['epochs']} epochs) | {default['dev']} | {default['test']} |",
              f"| best trial {best['trial']} retrained | {best['retrained_dev']} (trial: {best['trial_dev']}) | "
              f"{best['retrained_test']} |", "",
              f"Search wall time {report['search_seconds']:.0f}s; resident memory after the last trial vs after "
              f"trial 2: {report['memory_growth_trial2_to_last']:+.1%}" if report["memory_growth_trial2_to_last"]
              is not None else f"Search wall time {report['search_seconds']:.0f}s."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
