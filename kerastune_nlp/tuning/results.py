"""What a search leaves in its folder: one record per trial, tables, plots and the best configuration.

Each trial writes `trials/<id>/trial_result.json` itself (status, values,
per-epoch curve, timing, failure reason), so the tables can be rebuilt from
the folder alone: after a resume, by the chief of a distributed search, or
by a later `tune` call that only reports.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Sequence

from kerastune_nlp import config as cfg
from kerastune_nlp.runs.layout import write_json

logger = logging.getLogger("kerastune_nlp.tuning")

TRIALS_DIR = "trials"
TRIAL_RESULT = "trial_result.json"
TRIALS_CSV = "trials.csv"
TRIALS_MD = "trials.md"
OBJECTIVE_PLOT = "objective_per_trial.png"
LEARNING_RATE_PLOT = "objective_vs_learning_rate.png"
BEST_HYPERPARAMETERS = "best_hyperparameters.json"
BEST_CONFIG = "best_config.yaml"
# Statuses a trial record can hold; "stopped" trials finished early but count.
SCORED = ("completed", "stopped")


def trial_dir(search_dir: Path, trial_id: str) -> Path:
    return Path(search_dir) / TRIALS_DIR / f"trial_{trial_id}"


def read_trials(search_dir: Path) -> list[dict]:
    """Every trial record in the folder, in trial order."""
    records = []
    for path in sorted((Path(search_dir) / TRIALS_DIR).glob(f"trial_*/{TRIAL_RESULT}")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            logger.warning("Skipping %s: not valid JSON (written while the process was killed?).", path)
    return sorted(records, key=lambda r: str(r["trial_id"]))


def is_better(value: float, than: float | None, direction: str) -> bool:
    if than is None or (isinstance(than, float) and math.isnan(than)):
        return True
    return value > than if direction == "max" else value < than


def best_trial(trials: Sequence[dict], direction: str) -> dict | None:
    """The scored trial with the best objective (the first one on ties)."""
    best = None
    for trial in trials:
        value = (trial.get("objective") or {}).get("value")
        if trial.get("status") in SCORED and value is not None and math.isfinite(value):
            if best is None or is_better(value, best["objective"]["value"], direction):
                best = trial
    return best


def searched_names(trials: Sequence[dict]) -> list[str]:
    names = dict.fromkeys(k for t in trials for k in (t.get("hyperparameters") or {}) if not k.startswith("tuner/"))
    return list(names)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _rows(trials: Sequence[dict]) -> tuple[list[str], list[list]]:
    names = searched_names(trials)
    header = ["trial", "status", "objective", "best_epoch", "epochs_run", "duration_s", "fit_s", *names,
              "curve", "reason"]
    rows = []
    for t in trials:
        values = t.get("hyperparameters") or {}
        rows.append([t["trial_id"], t["status"], (t.get("objective") or {}).get("value"), t.get("best_epoch"),
                     t.get("epochs_run"), t.get("duration_seconds"), t.get("fit_seconds"),
                     *[values.get(n) for n in names], json.dumps([round(v, 5) for v in t.get("curve") or []]),
                     t.get("reason") or t.get("stop_reason") or ""])
    return header, rows


def write_csv(path: Path, trials: Sequence[dict]) -> None:
    header, rows = _rows(trials)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_markdown(path: Path, trials: Sequence[dict], objective: dict) -> None:
    """Trials sorted best first; failed trials last with their reason."""
    header, rows = _rows(trials)
    sign = -1 if objective["direction"] == "max" else 1

    def order(row):
        value = row[2]
        return (0, sign * value) if isinstance(value, (int, float)) and math.isfinite(value) else (1, 0)

    lines = [f"# Trials: {objective['name']} ({objective['direction']})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=order):
        cells = [_cell(c).replace("|", "\\|").replace("\n", " ") for c in row]
        cells[-1] = cells[-1][:200]
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_plots(search_dir: Path, trials: Sequence[dict], objective: dict) -> list[str]:
    """Objective per trial (with the best so far) and against the learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [t for t in trials if t["status"] in SCORED and (t.get("objective") or {}).get("value") is not None]
    written = []
    figure, axis = plt.subplots(figsize=(6, 4))
    xs = list(range(1, len(scored) + 1))
    ys = [t["objective"]["value"] for t in scored]
    axis.plot(xs, ys, "o", label="trial")
    best, running = None, []
    for y in ys:
        best = y if is_better(y, best, objective["direction"]) else best
        running.append(best)
    axis.step(xs, running, where="post", label="best so far")
    axis.set_xlabel("trial (in finishing order)")
    axis.set_ylabel(objective["name"])
    axis.legend()
    figure.tight_layout()
    figure.savefig(Path(search_dir) / OBJECTIVE_PLOT, dpi=100)
    plt.close(figure)
    written.append(OBJECTIVE_PLOT)

    figure, axis = plt.subplots(figsize=(6, 4))
    with_rate = [t for t in scored if "learning_rate" in (t.get("hyperparameters") or {})]
    axis.plot([t["hyperparameters"]["learning_rate"] for t in with_rate],
              [t["objective"]["value"] for t in with_rate], "o")
    if with_rate:
        axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel(objective["name"])
    figure.tight_layout()
    figure.savefig(Path(search_dir) / LEARNING_RATE_PLOT, dpi=100)
    plt.close(figure)
    written.append(LEARNING_RATE_PLOT)
    return written


def best_config(task, data: cfg.DataConfig, model: cfg.ModelConfig, train: cfg.TrainConfig) -> dict:
    """A settings file `kerastune-nlp train --config` reads (sections task, data, model, train, task_config)."""
    return {"task": task.name, "data": cfg.to_dict(data), "model": cfg.to_dict(model), "train": cfg.to_dict(train),
            "task_config": cfg.to_dict(task.config)}


def write_results(search_dir: Path, trials: Sequence[dict], objective: dict, best_settings: dict | None) -> list[str]:
    """Writes every results file; returns their names."""
    import yaml

    search_dir = Path(search_dir)
    write_csv(search_dir / TRIALS_CSV, trials)
    write_markdown(search_dir / TRIALS_MD, trials, objective)
    written = [TRIALS_CSV, TRIALS_MD, *write_plots(search_dir, trials, objective)]
    best = best_trial(trials, objective["direction"])
    if best is not None and best_settings is not None:
        write_json(search_dir / BEST_HYPERPARAMETERS, {
            "trial_id": best["trial_id"], "objective": objective | {"value": best["objective"]["value"]},
            "hyperparameters": {k: v for k, v in best["hyperparameters"].items() if not k.startswith("tuner/")},
            "best_epoch": best.get("best_epoch"),
        })
        header = (f"# Best trial {best['trial_id']} of the search in {search_dir}: {objective['name']} = "
                  f"{best['objective']['value']:.4f}.\n# Reproduce it with: kerastune-nlp train --config "
                  f"{search_dir / BEST_CONFIG}\n")
        (search_dir / BEST_CONFIG).write_text(header + yaml.safe_dump(best_settings, sort_keys=False),
                                              encoding="utf-8")
        written += [BEST_HYPERPARAMETERS, BEST_CONFIG]
    return written
