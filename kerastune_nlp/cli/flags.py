"""Settings from flags and config files: one flag per config field, one merge order.

Every field of `DataConfig`, `ModelConfig`, `TrainConfig` and of each task's
own config gets a flag named as the field (`learning_rate` ->
`--learning-rate`); `config.FLAG_ALIASES` adds the historical short names.
Values merge as: dataclass defaults < the `--quick` preset < a config file
(`--config run.yaml|run.json`, or a run's own run_config.json) < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from kerastune_nlp import config as cfg
from kerastune_nlp.errors import ConfigError, DataFileNotFoundError
from kerastune_nlp.tasks import get_task, task_names

SHARED_SECTIONS = {"data": cfg.DataConfig, "model": cfg.ModelConfig, "train": cfg.TrainConfig}
SECTION_TITLES = {"data": "data (every task)", "model": "model", "train": "training",
                  "task_config": "task settings (each names the tasks it applies to)"}
CONFIG_FILE_KEYS = ("task", "output", *SHARED_SECTIONS, "task_config")


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def task_config_fields() -> dict[str, tuple[dataclasses.Field, list[str]]]:
    """Every task-config field name -> (field, the tasks whose config has it)."""
    fields: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name in task_names():
        for field in dataclasses.fields(get_task(name).config_class):
            fields.setdefault(field.name, (field, []))[1].append(name)
    return fields


def type_name(field: dataclasses.Field) -> str:
    """The annotation as text ("int | None"), whether or not its module postpones annotations."""
    return field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))


def _converter(field: dataclasses.Field):
    kind = type_name(field)
    optional = "None" in kind

    def convert(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        try:
            if kind.startswith("int"):
                return int(text)
            if kind.startswith("float"):
                return float(text)
        except ValueError:
            if "str" in kind:  # e.g. `int | str`: a number, or a word such as "auto"
                return text
            raise argparse.ArgumentTypeError(f"expected a {kind.split(' ')[0]}, got {text!r}") from None
        return text

    return convert


def _add_field(group, field: dataclasses.Field, dest: str, extra_help: str = "") -> None:
    help_text = field.metadata.get("help", "") + extra_help
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    names = [flag_name(field.name)]
    section, _, name = dest.partition(".")
    names += [alias for alias, target in cfg.FLAG_ALIASES.items() if target == (section, name)]
    if type_name(field) == "bool":
        group.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=f"{help_text} (default {'on' if default else 'off'})")
        for negative, target in cfg.NEGATIVE_FLAGS.items():
            if target == (section, name):
                group.add_argument(negative, dest=dest, action="store_false", default=argparse.SUPPRESS,
                                   help=f"same as --no-{name.replace('_', '-')}")
        return
    choices = field.metadata.get("choices")
    if choices and not isinstance(field.default, tuple) and field.default_factory is dataclasses.MISSING:
        help_text += f"; one of {', '.join(choices)}"
    elif choices:
        help_text += f"; comma-separated, from {', '.join(choices)}"
    group.add_argument(*names, dest=dest, type=_converter(field), default=argparse.SUPPRESS,
                       metavar=field.name.upper(), help=f"{help_text} (default {default})")


def add_train_arguments(parser: argparse.ArgumentParser, default_task: str | None = None) -> None:
    """Every training setting as a flag, plus --task, --config, --output, --overwrite."""
    names = task_names()
    parser.add_argument("--task", choices=names, default=argparse.SUPPRESS,
                        help="; ".join(f"{n}: {get_task(n).description}" for n in names)
                        + f" (default {default_task or 'ner'})")
    parser.add_argument("--config", metavar="FILE",
                        help="settings from a YAML or JSON file (sections data, model, train, task_config; "
                             "keys named as the flags with underscores), or a run's run_config.json to "
                             "reproduce it; flags given here override the file")
    for section, config_class in SHARED_SECTIONS.items():
        group = parser.add_argument_group(SECTION_TITLES[section])
        for field in dataclasses.fields(config_class):
            _add_field(group, field, f"{section}.{field.name}")
    group = parser.add_argument_group(SECTION_TITLES["task_config"])
    for name, (field, tasks) in task_config_fields().items():
        _add_field(group, field, f"task_config.{name}", f" [{', '.join(tasks)}]")
    run = parser.add_argument_group("run")
    run.add_argument("--output", default=argparse.SUPPRESS,
                     help="run directory (default saved_models/<task>-<data>-<time>)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing RUN directory once the new run completes (anything else "
                          "at --output is refused), or discard an interrupted run of another command")
    parser.set_defaults(default_task=default_task or "ner")


def read_config_file(path, extra_keys=()) -> dict:
    """A YAML or JSON settings file (or a run manifest) as a dict of sections.

    Args:
        path: the file.
        extra_keys: more top-level keys a command accepts (`tune` adds
            `search_space` and `tune`); checked by that command.
    """
    from kerastune_nlp.runs.manifest import RECORD_ONLY_KEYS
    from kerastune_nlp.runs.staging import MANIFEST_KIND

    payload = read_mapping_file(path, "Pass a YAML or JSON file, or a run directory's run_config.json.")
    if payload.get("kind") == MANIFEST_KIND:  # a run's own manifest: settings only
        payload = {k: v for k, v in payload.items() if k not in RECORD_ONLY_KEYS}
    unknown = sorted(set(payload) - set(CONFIG_FILE_KEYS) - set(extra_keys))
    if unknown:
        raise ConfigError(f"Unknown keys {unknown} in the config file {str(path)!r}. Expected a subset of "
                          f"{[*CONFIG_FILE_KEYS, *extra_keys]}.")
    for section in (*SHARED_SECTIONS, "task_config"):
        if not isinstance(payload.get(section) or {}, dict):
            raise ConfigError(f"Expected `{section}` in {str(path)!r} to be a mapping of settings.")
    return payload


@dataclasses.dataclass
class RunSettings:
    """Everything `train` needs, resolved from defaults, preset, file and flags."""

    task: str
    data: cfg.DataConfig
    model: cfg.ModelConfig
    train: cfg.TrainConfig
    task_config: object
    output: str | None
    overwrite: bool


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """Merges defaults < the task's recipe < --quick preset < --config file < flags into validated configs."""
    given: dict[str, dict] = {section: {} for section in (*SHARED_SECTIONS, "task_config")}
    for dest, value in vars(args).items():
        section, dot, name = dest.partition(".")
        if dot and section in given:
            given[section][name] = value
    from_file = read_config_file(args.config) if getattr(args, "config", None) else {}
    task_name = getattr(args, "task", None) or from_file.get("task") or args.default_task
    task_class = get_task(task_name)
    own_fields = {f.name for f in dataclasses.fields(task_class.config_class)}
    foreign = sorted(set(given["task_config"]) - own_fields)
    if foreign:
        owners = task_config_fields()
        raise ConfigError(
            "; ".join(f"{flag_name(n)} is a setting of --task {'/'.join(owners[n][1])}" for n in foreign)
            + f", not of --task {task_name}. Drop it or pick the task it belongs to."
        )
    merged = {}
    for section in given:
        values = dict(from_file.get(section) or {})
        values.update(given[section])
        merged[section] = values
    where = f"--config {args.config}" if getattr(args, "config", None) else "the flags"
    data = cfg.from_dict(cfg.DataConfig, merged["data"], where)
    if data.quick:
        for name, value in cfg.QUICK_TRAINING.items():
            merged["train"].setdefault(name, value)
    for name, value in task_class.recipe.items():  # the task's measured defaults, under everything given
        merged["train"].setdefault(name, value)
    return RunSettings(
        task=task_name,
        data=data,
        model=cfg.from_dict(cfg.ModelConfig, merged["model"], where),
        train=cfg.from_dict(cfg.TrainConfig, merged["train"], where),
        task_config=cfg.from_dict(task_class.config_class, merged["task_config"], where),
        output=getattr(args, "output", None) or from_file.get("output"),
        overwrite=bool(getattr(args, "overwrite", False)),
    )


def read_mapping_file(path, hint: str = "Pass a YAML or JSON file.") -> dict:
    """A YAML or JSON file holding a mapping; errors name the file and how to fix it."""
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"Config file not found. Received: `--config`={str(path)!r}. {hint}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            payload = yaml.safe_load(text)
        else:
            payload = json.loads(text)
    except Exception as error:  # yaml.YAMLError or json.JSONDecodeError, both with a position
        raise ConfigError(f"Cannot parse the config file {str(path)!r}: {error}. Fix its syntax.") from error
    if not isinstance(payload, dict):
        raise ConfigError(f"Expected the config file {str(path)!r} to hold a mapping of sections. "
                          f"Received: {type(payload).__name__}.")
    return payload
