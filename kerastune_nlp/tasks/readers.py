"""`read_text_file` and `read_hub_dataset` for a text task named by the user: the task's label rule
handed to the data readers.

Example:
>>> from kerastune_nlp.tasks.readers import read_text_file
>>> examples, report = read_text_file("tags.csv", task="multilabel", multilabel_separator=";")
"""

from __future__ import annotations

import functools

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.tasks import get_task, task_names
from kerastune_nlp.tasks.text import TextTask


def text_task(task) -> TextTask:
    """A `TextTask` instance from a task name (or the instance itself)."""
    if isinstance(task, TextTask):
        return task
    names = [name for name in task_names() if issubclass(get_task(name), TextTask)]
    if task not in names:
        raise ConfigError(f"Expected `task` to be one of {names}. Received: `task`={task!r}.")
    return get_task(task)()


def _parser(task, separator: str):
    if not separator:
        raise ConfigError(f"Expected a non-empty `multilabel_separator`. Received: `multilabel_separator`={separator!r}.")
    return functools.partial(text_task(task).parse_label, separator=separator)


def read_text_file(path, *, task="classification", text_column: str = "text", text_pair_column: str | None = None,
                   label_column: str = "label", encoding: str = "utf-8", file_format: str | None = None,
                   multilabel_separator: str = ",", empty: str = "drop"):
    """Reads labelled texts from a local file, with the labels as `task` writes them.

    Args:
        path: str or Path. The file.
        task: str or TextTask. "classification", "multilabel", "regression"
            or any registered text task. Defaults to "classification".
        text_column, text_pair_column, label_column, encoding, file_format,
            empty: as in `kerastune_nlp.data.text_files.read_text_file`.
        multilabel_separator: str. Separates labels in a multi-label cell; a
            JSON list (in the cell or as the JSON value) works too. An empty
            cell means "no label applies". Defaults to ",".

    Returns:
        `ReadResult(examples, report)`: a list of `TextExample` and a `ReadReport`.

    Example:
    >>> from kerastune_nlp.data.bundled_trec import bundled_trec
    >>> examples, report = read_text_file(bundled_trec()["train"], encoding="latin-1")
    >>> len(examples), examples[0].label
    (5452, '0')
    """
    from kerastune_nlp.data.text_files import read_text_file as read

    return read(path, parse_label=_parser(task, multilabel_separator), text_column=text_column,
                text_pair_column=text_pair_column, label_column=label_column, encoding=encoding,
                file_format=file_format, empty=empty)


def read_hub_dataset(name_or_path: str, split: str, *, task="classification", multilabel_separator: str = ",",
                     **options):
    """One split of a hub data set, local data file or folder, with the labels as `task` writes them.

    `options` are those of `kerastune_nlp.data.text_datasets.read_hub_dataset`
    (`text_column`, `text_pair_column`, `label_column`, `config_name`,
    `data_files`, `empty`, `cache_dir`).

    Example:
    >>> dev = read_hub_dataset("stanfordnlp/imdb", "test[:500]")   # needs the hub or its cache
    """
    from kerastune_nlp.data.text_datasets import read_hub_dataset as read

    return read(name_or_path, split, parse_label=_parser(task, multilabel_separator), **options)
