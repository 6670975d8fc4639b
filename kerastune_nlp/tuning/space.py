"""The search space: which settings a search varies, over what values, and how users change it.

Each dimension is named as the config field it sets (`learning_rate` ->
`TrainConfig.learning_rate`, `dropout` -> `ModelConfig.dropout`), so a best
trial becomes a config file `train --config` accepts with no renaming.

One written form serves Python, the command line and the config file:

    learning_rate=1e-5:5e-4:log   a range (log-uniform); `2:5` for integers
    batch_size=8,16,32            a choice
    dropout=0.1                   fixed (not searched)
    layerwise_lr_decay=none       fixed to None (the setting switched off)

From Python a dimension may also be `(low, high)`, `(low, high, "log")`,
a list (a choice), a scalar (fixed), or a `Range`/`Choice`/`Fixed`; in a
config file's `search_space:` section also `{min: .., max: .., log: true}`
or `{values: [..]}`.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Mapping

from kerastune_nlp import config as cfg
from kerastune_nlp.errors import ConfigError

# TrainConfig fields a search must not vary: devices, reproducibility and
# bookkeeping, not the recipe.
NOT_TUNABLE = ("strategy", "precision", "deterministic", "checkpoint_every_steps", "keep_optimizer_state",
               "lora_targets")
# Where each tunable name lives: "train" (TrainConfig), "model" (ModelConfig),
# "data" (DataConfig: the encoding) or "task" (a task's own config: the
# settings its config class lists in `TUNABLE`, e.g. `truncation`, `context_size`).
MODEL_FIELDS = ("dropout",)
DATA_FIELDS = ("max_length",)
SECTION_CLASSES = {"train": cfg.TrainConfig, "model": cfg.ModelConfig, "data": cfg.DataConfig}


def task_fields() -> dict[str, list]:
    """Tunable task setting -> the config classes (of registered tasks) that have it."""
    from kerastune_nlp.tasks import get_task, task_names

    owners: dict[str, list] = {}
    for name in task_names():
        config_class = get_task(name).config_class
        for field in getattr(config_class, "TUNABLE", ()):
            if config_class not in owners.setdefault(field, []):
                owners[field].append(config_class)
    return owners


def tunable_fields() -> dict[str, dataclasses.Field]:
    """Every name a search space may use -> its config field."""
    fields = {f.name: f for f in dataclasses.fields(cfg.TrainConfig) if f.name not in NOT_TUNABLE}
    fields.update({f.name: f for f in dataclasses.fields(cfg.ModelConfig) if f.name in MODEL_FIELDS})
    fields.update({f.name: f for f in dataclasses.fields(cfg.DataConfig) if f.name in DATA_FIELDS})
    for name, classes in task_fields().items():
        fields.setdefault(name, {f.name: f for f in dataclasses.fields(classes[0])}[name])
    return fields


def section_of(name: str) -> str:
    for section, names in (("model", MODEL_FIELDS), ("data", DATA_FIELDS), ("task", task_fields())):
        if name in names:
            return section
    return "train"


def _kind(name: str) -> str:
    """"int", "float", "bool" or "str" from the field's annotation."""
    field = tunable_fields()[name]
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return annotation.split("|")[0].strip()


def _takes_words(name: str) -> bool:
    """An `int | str` setting (`context_size`: a number or "auto")."""
    field = tunable_fields()[name]
    annotation = field.type if isinstance(field.type, str) else str(field.type)
    return "str" in [part.strip() for part in annotation.split("|")]


def _optional(name: str) -> bool:
    field = tunable_fields()[name]
    annotation = field.type if isinstance(field.type, str) else str(field.type)
    return "None" in annotation


@dataclasses.dataclass(frozen=True)
class Range:
    """Values between `low` and `high` (inclusive); log-uniform with `log`.

    Args:
        low, high: int or float. Integers for integer settings (epochs).
        log: bool. Sample uniformly in log space (rates). Defaults to False.
    """

    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"{self.low:g}:{self.high:g}{':log' if self.log else ''}"


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of `values`."""

    values: tuple

    def describe(self) -> str:
        return ",".join(str(v) for v in self.values)


@dataclasses.dataclass(frozen=True)
class Fixed:
    """Not searched: every trial uses `value`."""

    value: Any

    def describe(self) -> str:
        return "none" if self.value is None else str(self.value)


Dimension = Range | Choice | Fixed

# The default space: it contains today's defaults (2e-4, batch 8,
# 3 epochs, weight decay 0.01, warmup 0.1) and the Trainer-like 5e-5 / 16.
DEFAULT_SPACE: dict[str, Dimension] = {
    "learning_rate": Range(1e-5, 5e-4, log=True),
    "batch_size": Choice((8, 16, 32)),
    "epochs": Range(2, 5),
    "weight_decay": Range(0.0, 0.1),
    "warmup_ratio": Range(0.0, 0.2),
    "dropout": Range(0.0, 0.3),
    "layerwise_lr_decay": Range(0.7, 1.0),
}


def _unknown(name: str, where: str) -> ConfigError:
    names = sorted(tunable_fields())
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"Unknown hyperparameter in {where}. Expected one of {names}. Received: `{name}`.{hint}"
    )


def _number(name: str, text: str, where: str):
    kind = _kind(name)
    text = text.strip()
    if kind == "str":  # "none" is a value of `peft`, not a missing one
        return text
    if kind == "int" and _takes_words(name) and not text.lstrip("-").replace(".", "", 1).isdigit():
        return text  # `context_size=auto`: the setting itself says which words it takes
    if text.lower() in ("none", "null"):
        if not _optional(name):
            raise ConfigError(f"`{name}` cannot be None in {where}; it is not an optional setting. "
                              f"Received: `{name}`={text!r}. Pass a value.")
        return None
    try:
        if kind == "int":
            value = float(text)
            if value != int(value):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(text)
        if kind == "bool":
            if text.lower() in ("true", "yes", "on", "1"):
                return True
            if text.lower() in ("false", "no", "off", "0"):
                return False
            raise ValueError
    except ValueError:
        raise ConfigError(f"Expected {'an integer' if kind == 'int' else 'a ' + kind} for `{name}` in "
                          f"{where}. Received: `{name}`={text!r}.") from None
    return text


def parse_dimension(name: str, value, where: str = "the search space") -> Dimension:
    """One user-written dimension -> `Range`, `Choice` or `Fixed`, checked.

    Raises:
        ConfigError: unknown name, empty or inverted range, a value the
            setting does not accept (checked by building the config).
    """
    if name not in tunable_fields():
        raise _unknown(name, where)
    if isinstance(value, (Range, Choice, Fixed)):
        dimension = value
    elif isinstance(value, str):
        dimension = _parse_text(name, value, where)
    elif isinstance(value, Mapping):
        dimension = _parse_mapping(name, value, where)
    elif isinstance(value, tuple) and len(value) in (2, 3):
        log = len(value) == 3 and str(value[2]).lower() == "log"
        if len(value) == 3 and not log and str(value[2]).lower() != "linear":
            raise ConfigError(f"Expected `(low, high)` or `(low, high, 'log')` for `{name}` in {where}. "
                              f"Received: `{name}`={value!r}.")
        dimension = Range(_coerce(name, value[0], where), _coerce(name, value[1], where), log)
    elif isinstance(value, (list, tuple)):
        dimension = Choice(tuple(_coerce(name, v, where) for v in value))
    else:
        dimension = Fixed(_coerce(name, value, where))
    _check(name, dimension, where)
    return dimension


def _coerce(name: str, value, where: str):
    return _number(name, str(value), where) if not isinstance(value, bool) or _kind(name) != "bool" else value


def _parse_text(name: str, text: str, where: str) -> Dimension:
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        scale = parts[2].strip().lower() if len(parts) == 3 else "linear"
        if len(parts) not in (2, 3) or scale not in ("log", "linear"):
            raise ConfigError(f"Expected `{name}=MIN:MAX` or `{name}=MIN:MAX:log` in {where}. "
                              f"Received: `{name}`={text!r}.")
        return Range(_number(name, parts[0], where), _number(name, parts[1], where), scale == "log")
    if "," in text:
        return Choice(tuple(_number(name, part, where) for part in text.split(",") if part.strip()))
    return Fixed(_number(name, text, where))


def _parse_mapping(name: str, value: Mapping, where: str) -> Dimension:
    keys = set(value)
    if keys <= {"min", "max", "log"} and {"min", "max"} <= keys:
        return Range(_coerce(name, value["min"], where), _coerce(name, value["max"], where),
                     bool(value.get("log", False)))
    if keys == {"values"}:
        return Choice(tuple(_coerce(name, v, where) for v in value["values"]))
    if keys == {"value"}:
        return Fixed(_coerce(name, value["value"], where))
    raise ConfigError(f"Expected `{name}` in {where} as {{min, max[, log]}}, {{values: [...]}} or "
                      f"{{value: ...}}. Received: `{name}`={dict(value)!r}.")


def _check(name: str, dimension: Dimension, where: str) -> None:
    if isinstance(dimension, Range):
        low, high = dimension.low, dimension.high
        if low is None or high is None or isinstance(low, (bool, str)) or isinstance(high, (bool, str)):
            raise ConfigError(f"Expected numeric bounds for the range of `{name}` in {where}. "
                              f"Received: `{name}`={dimension.describe()!r}.")
        if low == high:
            raise ConfigError(f"Expected a range with MIN < MAX for `{name}` in {where}. Received: the empty "
                              f"range `{name}`={dimension.describe()}. To fix the value, write `{name}={low:g}`.")
        if low > high:
            raise ConfigError(f"Expected a range with MIN < MAX for `{name}` in {where}. Received: the inverted "
                              f"range `{name}`={dimension.describe()}. Write `{name}={high:g}:{low:g}"
                              f"{':log' if dimension.log else ''}`.")
        if dimension.log and low <= 0:
            raise ConfigError(f"Expected a log range of positive numbers for `{name}` in {where}. Received: "
                              f"`{name}`={dimension.describe()}. Drop `:log` or raise MIN above 0.")
        values = (low, high)
    elif isinstance(dimension, Choice):
        if not dimension.values:
            raise ConfigError(f"Expected at least one value for the choice `{name}` in {where}. Received: "
                              f"`{name}`={dimension.values!r}.")
        if len({type(v) for v in dimension.values}) > 1:  # KerasTuner's Choice holds one type
            raise ConfigError(f"Expected the values of `{name}` in {where} to share one type. Received: "
                              f"`{name}`={dimension.describe()}."
                              + (" `auto` is max_length // 4: list that number instead." if _takes_words(name) else ""))
        values = dimension.values
    else:
        values = (dimension.value,)
    # Each value must be one the config accepts (dropout < 1, warmup < 1, ...),
    # so a bad space fails now instead of as failed trials.
    section = section_of(name)
    config_classes = task_fields()[name] if section == "task" else [SECTION_CLASSES[section]]
    for value in values:
        for config_class in config_classes:
            try:
                config_class(**{name: value})
            except ConfigError as error:
                raise ConfigError(f"`{name}`={dimension.describe()} in {where} allows a value the setting "
                                  f"refuses: {error}") from None


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The dimensions of a search, by setting name (fixed ones included)."""

    dimensions: dict

    def searched(self) -> dict[str, Dimension]:
        return {k: v for k, v in self.dimensions.items() if not isinstance(v, Fixed)}

    def fixed(self) -> dict[str, Any]:
        return {k: v.value for k, v in self.dimensions.items() if isinstance(v, Fixed)}

    def to_dict(self) -> dict[str, str]:
        """The written form of every dimension (stable; part of the search fingerprint)."""
        return {name: dimension.describe() for name, dimension in sorted(self.dimensions.items())}


def build_space(overrides: Mapping | None = None, *, use_defaults: bool = True,
                where: str = "the search space") -> SearchSpace:
    """The default space (unless `use_defaults` is False) with `overrides` on top.

    Args:
        overrides: mapping of setting name -> dimension in any written form.
        use_defaults: bool. Start from `DEFAULT_SPACE`. Defaults to True.
        where: str. Where the overrides came from, for error messages.

    Example:
    >>> space = build_space({"learning_rate": "1e-5:1e-3:log", "batch_size": [16, 32], "epochs": 3})
    >>> space.to_dict()["epochs"]
    '3'
    """
    dimensions = dict(DEFAULT_SPACE) if use_defaults else {}
    for name, value in (overrides or {}).items():
        dimensions[name] = parse_dimension(name, value, where)
    if not any(not isinstance(d, Fixed) for d in dimensions.values()):
        raise ConfigError(f"Expected at least one searched (not fixed) hyperparameter in {where}. Received: "
                          f"{ {k: d.describe() for k, d in dimensions.items()} }. Give one a range or a choice.")
    return SearchSpace(dimensions)


def parse_overrides(items, where: str = "--space") -> dict[str, str]:
    """`["learning_rate=1e-5:1e-3:log", "batch_size=16,32"]` -> `{name: text}`."""
    overrides = {}
    for item in items or ():
        name, equals, text = str(item).partition("=")
        if not equals or not name.strip() or not text.strip():
            raise ConfigError(f"Expected {where} as NAME=MIN:MAX[:log], NAME=A,B,C or NAME=VALUE. Received: "
                              f"{item!r}.")
        overrides[name.strip().replace("-", "_")] = text.strip()
    return overrides


def apply(values: Mapping, train: cfg.TrainConfig, model: cfg.ModelConfig) -> tuple[cfg.TrainConfig, cfg.ModelConfig]:
    """The configs of one trial: the base configs with `values` (setting -> value) set.

    Keys that are not settings (KerasTuner's `tuner/...`) are ignored.
    """
    train_values = _section_values(values, "train")
    model_values = _section_values(values, "model")
    return dataclasses.replace(train, **train_values), dataclasses.replace(model, **model_values)


def apply_encoding(values: Mapping, data: cfg.DataConfig, task_config):
    """The trial's DataConfig and task config: what decides how texts are encoded (max_length, truncation)."""
    data = dataclasses.replace(data, **_section_values(values, "data"))
    task_values = _section_values(values, "task")
    if task_values:
        task_config = dataclasses.replace(task_config, **task_values)
    return data, task_config


def check_task_fields(space: "SearchSpace", task) -> None:
    """Task settings in the space must exist for this task (NER has no `truncation`)."""
    from kerastune_nlp.tasks import get_task, task_names

    have = set(getattr(type(task.config), "TUNABLE", ()))
    for name in space.dimensions:
        if section_of(name) == "task" and name not in have:
            owners = [n for n in task_names() if name in getattr(get_task(n).config_class, "TUNABLE", ())]
            raise ConfigError(f"`{name}` is a setting of the {', '.join(owners)} task"
                              f"{'s' if len(owners) > 1 else ''}; the {task.name!r} task has none. "
                              f"Drop `{name}` from the search space.")


def _section_values(values: Mapping, section: str) -> dict:
    return {k: v for k, v in values.items() if k in tunable_fields() and section_of(k) == section}
