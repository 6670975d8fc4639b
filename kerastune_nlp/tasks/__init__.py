"""Tasks and their registry: a task name -> the class that owns everything task-specific.

Built-in tasks: ner, classification, multilabel, regression. A new task
subclasses `Task` and registers itself with `@register_task`; the trainer,
the run directory, the CLI and the later stages then handle it with no
other change.

Example:
>>> from kerastune_nlp.tasks import get_task, task_names
>>> task_names()
['classification', 'multilabel', 'ner', 'regression']
>>> get_task("ner").monitor
'val_entity_f1'
"""

from __future__ import annotations

import importlib

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.tasks.base import DevScore, EncodedSplit, Task
from kerastune_nlp.tasks.hf_head import HFHead

__all__ = ["Task", "EncodedSplit", "DevScore", "HFHead", "register_task", "get_task", "task_names"]

# Built-in tasks are imported on first use, so listing names stays cheap.
_BUILT_IN = {
    "ner": "kerastune_nlp.tasks.ner",
    "classification": "kerastune_nlp.tasks.classification",
    "multilabel": "kerastune_nlp.tasks.multilabel",
    "regression": "kerastune_nlp.tasks.regression",
}
_REGISTRY: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: makes `cls` available under `cls.name` everywhere."""
    if not (isinstance(cls, type) and issubclass(cls, Task)) or not cls.name:
        raise ConfigError(f"Expected a Task subclass with a `name`. Received: {cls!r}.")
    _REGISTRY[cls.name] = cls
    return cls


def task_names() -> list[str]:
    return sorted(set(_BUILT_IN) | set(_REGISTRY))


def get_task(name: str) -> type[Task]:
    """The task class registered under `name`."""
    if name not in _REGISTRY and name in _BUILT_IN:
        importlib.import_module(_BUILT_IN[name])
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown task. Expected one of {task_names()}. Received: `task`={name!r}.")
    return _REGISTRY[name]
