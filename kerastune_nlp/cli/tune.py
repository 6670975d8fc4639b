"""`kerastune-nlp tune`: a hyperparameter search with every `train` flag as the base recipe.

    kerastune-nlp tune --task classification --max-trials 10 --search-dir saved_models/trec-search \\
        --space learning_rate=1e-5:1e-3:log --space batch_size=16,32 --space epochs=3
    kerastune-nlp tune --quick                     # a few short trials on bundled data, minutes on 2 cores
    kerastune-nlp tune --config search.yaml        # sections data/model/train/task_config, plus
                                                   # search_space: and tune: (tuner, max_trials, ...)

Settings merge as for `train` (defaults < --quick < --config < flags); the
search's own options merge the same way (defaults < --quick < the file's
`tune:` section < flags), and `--space` entries override the file's
`search_space:` entries name by name.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kerastune_nlp.errors import ConfigError

# The search's own options: name -> default (flags are named as the keys).
TUNE_DEFAULTS = {"tuner": "random", "max_trials": 10, "objective": None, "search_dir": None, "keep": "best",
                 "early_stop": "median", "hyperband_factor": 3, "retrain_best": False, "default_space": True}
# --quick: four one-epoch trials on the quick data subset (800 examples), rates high
# enough for so few steps; about 2 minutes on 2 idle cores.
QUICK_TUNE = {"max_trials": 4}
QUICK_SPACE = {"epochs": 1, "learning_rate": "5e-5:5e-4:log"}
FILE_KEYS = ("search_space", "tune")


def add_parser(commands) -> argparse.ArgumentParser:
    """Adds the `tune` subcommand to an argparse subparsers object."""
    from kerastune_nlp.cli.flags import add_train_arguments

    parser = commands.add_parser(
        "tune", help="search hyperparameters (KerasTuner) and write the best as a config file",
        description="Search hyperparameters with KerasTuner. Every `train` flag sets the base recipe; "
                    "--space changes the searched dimensions. Rerun the same command to resume.")
    add_train_arguments(parser)
    group = parser.add_argument_group("search")
    group.add_argument("--search-dir", dest="tune.search_dir", default=argparse.SUPPRESS, metavar="DIR",
                       help="search folder, resumed when rerun (default saved_models/search-<task>-<data>)")
    group.add_argument("--tuner", dest="tune.tuner", choices=("random", "bayesian", "hyperband"),
                       default=argparse.SUPPRESS, help="KerasTuner oracle (default random)")
    group.add_argument("--max-trials", dest="tune.max_trials", type=int, default=argparse.SUPPRESS, metavar="N",
                       help="trials to run; a cap for hyperband (default 10; with --quick 4 one-epoch trials, "
                            "learning_rate=5e-5:5e-4:log)")
    group.add_argument("--space", dest="space", action="append", default=[], metavar="NAME=SPEC",
                       help="a searched setting: NAME=MIN:MAX (uniform), NAME=MIN:MAX:log, NAME=A,B,C (choice), "
                            "NAME=VALUE (fixed) or NAME=none; repeat for several. Default space: "
                            "learning_rate=1e-5:5e-4:log batch_size=8,16,32 epochs=2:5 weight_decay=0:0.1 "
                            "warmup_ratio=0:0.2 dropout=0:0.3 layerwise_lr_decay=0.7:1.0")
    group.add_argument("--no-default-space", dest="tune.default_space", action="store_false",
                       default=argparse.SUPPRESS, help="search only the --space dimensions")
    group.add_argument("--objective", dest="tune.objective", default=argparse.SUPPRESS, metavar="NAME[:min|max]",
                       help="a logged metric to optimise (default the task's dev metric, e.g. val_entity_f1)")
    group.add_argument("--keep", dest="tune.keep", choices=("best", "none"), default=argparse.SUPPRESS,
                       help="per trial, keep its best weights or none (default best)")
    group.add_argument("--early-stop", dest="tune.early_stop", choices=("median", "none"),
                       default=argparse.SUPPRESS,
                       help="stop a trial below the median of finished trials at the same epoch (default median)")
    group.add_argument("--hyperband-factor", dest="tune.hyperband_factor", type=int, default=argparse.SUPPRESS,
                       metavar="N",
                       help="Hyperband's reduction factor (default 3)")
    group.add_argument("--retrain-best", dest="tune.retrain_best", action="store_true", default=argparse.SUPPRESS,
                       help="retrain the best configuration into a run directory (--output, default "
                            "<search-dir>/best_run)")
    return parser


def split_config_file(args) -> tuple[dict, dict]:
    """Takes `search_space:` and `tune:` out of --config; the rest reaches the usual settings merge.

    `train --config` refuses keys it does not know, so a file with search
    sections has its other sections handed over as if given by flags (flags
    given on the command line still win).
    """
    from kerastune_nlp.cli.flags import SHARED_SECTIONS, read_config_file

    if not getattr(args, "config", None):
        return {}, {}
    payload = read_config_file(args.config, extra_keys=FILE_KEYS)
    if not any(key in payload for key in FILE_KEYS):
        return {}, {}
    where = f"the config file {args.config!r}"
    search_space, options = payload.pop("search_space", None) or {}, payload.pop("tune", None) or {}
    for name, section in (("search_space", search_space), ("tune", options)):
        if not isinstance(section, dict):
            raise ConfigError(f"Expected `{name}` in {where} to be a mapping. Received: {type(section).__name__}.")
    unknown = sorted(set(options) - set(TUNE_DEFAULTS))
    if unknown:
        raise ConfigError(f"Unknown keys {unknown} in the `tune:` section of {where}. Expected a subset of "
                          f"{sorted(TUNE_DEFAULTS)}.")
    for section in (*SHARED_SECTIONS, "task_config"):
        for key, value in (payload.get(section) or {}).items():
            if not hasattr(args, f"{section}.{key}"):
                setattr(args, f"{section}.{key}", value)
    for key in ("task", "output"):
        if key in payload and not hasattr(args, key):
            setattr(args, key, payload[key])
            if key == "output":
                args.output_from_config = True
    args.config = None
    return search_space, options


def tune_options(args, from_file: dict, quick: bool) -> dict:
    options = dict(TUNE_DEFAULTS)
    if quick:
        options.update(QUICK_TUNE)
    options.update(from_file)
    options.update({dest.partition(".")[2]: value for dest, value in vars(args).items() if dest.startswith("tune.")})
    return options


def check_output_use(output, retrain_best: bool, output_from: str) -> None:
    """`--output` names the retrained best run; without --retrain-best nothing would be written there."""
    if output and not retrain_best:
        raise ConfigError(f"{output_from} {str(output)!r} is used only with --retrain-best: the search itself "
                          "goes to --search-dir. Add --retrain-best to retrain the best configuration into that "
                          "folder, or pass --search-dir DIR (and no output) to choose the search folder.")


def run(args) -> object:
    """Reads and checks everything, searches, prints where the results are."""
    from kerastune_nlp.cli import console
    from kerastune_nlp.cli.flags import settings_from_args
    from kerastune_nlp.tasks import get_task
    from kerastune_nlp.tuning import build_space, parse_overrides, tune

    config_path = getattr(args, "config", None)
    space_from_file, options_from_file = split_config_file(args)
    try:
        settings = settings_from_args(args)
    except ConfigError as error:
        if config_path and "the flags" in str(error):
            raise ConfigError(str(error).replace("the flags", f"--config {config_path} or the flags")) from None
        raise
    options = tune_options(args, options_from_file, settings.data.quick)
    check_output_use(settings.output, bool(options["retrain_best"]),
                     f"`output:` in {config_path}" if getattr(args, "output_from_config", False) else "`--output`")
    overrides = dict(QUICK_SPACE) if settings.data.quick else {}
    overrides.update(space_from_file)
    overrides.update(parse_overrides(args.space))
    where = "--space" + (f" / the search_space: section of {config_path}" if space_from_file else "")
    space = build_space(overrides, use_defaults=bool(options["default_space"]), where=where)
    task = get_task(settings.task)(settings.task_config)
    splits, data_name = task.load_splits(settings.data, settings.train.seed)
    task.check_splits(splits)
    search_dir = Path(options["search_dir"] or f"saved_models/search-{settings.task}-{data_name}")
    args.staging_hint = search_dir
    print(f"Searching {options['max_trials']} trials ({options['tuner']}) for {settings.task} on {data_name} "
          f"with {settings.model.backbone}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items() if v)
          + f". Space: {' '.join(f'{k}={v}' for k, v in space.to_dict().items())}. Folder: {search_dir}",
          flush=True)
    started = time.perf_counter()
    result = tune(task, splits["train"], splits["dev"], splits.get("test"), search_dir=search_dir,
                  tuner=options["tuner"], max_trials=options["max_trials"], space=space,
                  objective=options["objective"], data_config=settings.data, model_config=settings.model,
                  train_config=settings.train, overwrite=settings.overwrite, keep=options["keep"],
                  early_stop=options["early_stop"], hyperband_factor=options["hyperband_factor"],
                  retrain_best=bool(options["retrain_best"]), output_dir=settings.output,
                  verbose=console.fit_verbosity() if getattr(args, "verbose", False) else 0)
    counts = {}
    for trial in result.trials:
        counts[trial["status"]] = counts.get(trial["status"], 0) + 1
    print(f"\nSearch finished in {time.perf_counter() - started:.0f}s: "
          + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    if result.best is None:
        print("No trial finished; see the reasons in " + str(search_dir / "trials.md"))
        return result
    best = result.best
    print(f"Best trial {best['trial_id']}: {result.objective['name']} {best['objective']['value']:.4f} with "
          + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in result.best_hyperparameters.items()))
    print(f"Results: {search_dir / 'trials.md'}, {search_dir / 'trials.csv'}, plots beside them.")
    print(f"Reproduce the best: kerastune-nlp train --config {search_dir / 'best_config.yaml'}")
    if result.run is not None:
        print(f"Best configuration retrained into {result.run.run_dir}")
    return result


def tune_main(argv=None, *, task: str, description: str) -> int:
    """`kerastune-nlp tune` with a default task, for the example scripts."""
    import sys

    from kerastune_nlp.cli import console
    from kerastune_nlp.errors import KerastuneNLPError

    from kerastune_nlp.cli.parsing import Parser, add_verbose

    parser = Parser(description=description)
    add_verbose(parser)
    commands = parser.add_subparsers(dest="command")
    add_verbose(add_parser(commands), in_subcommand=True)
    args = parser.parse_args(["tune", *(sys.argv[1:] if argv is None else argv)])
    if not hasattr(args, "task"):
        args.task = task
    console.configure(args.verbose)
    try:
        run(args)
    except KerastuneNLPError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nInterrupted. Rerun the same command to resume the search in "
              f"{str(getattr(args, 'staging_hint', '') or 'its folder')!r}.", file=sys.stderr)
        return 130
    return 0
