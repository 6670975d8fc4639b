"""Small data sets and a tiny training run for every built-in task, shared by the task, export,
inference, serving and distillation tests (`from tests.tasks.harness import TASK_DATA, train_tiny`).

A new built-in task must add its small data set to `TASK_DATA`; tests/tasks/test_harness.py fails
until it does.
"""

import dataclasses

import kerastune_nlp as kt
from kerastune_nlp.tasks import task_names
from kerastune_nlp.tasks.base import Task


def _trec():
    from kerastune_nlp.data.bundled_trec import load_bundled_trec

    splits = load_bundled_trec()
    train, dev = splits["train"][:96], splits["train"][96:128]
    known = {e.label for e in train}
    return train, [e for e in dev if e.label in known]


def _ner():
    paths = kt.bundled_wnut17()
    return kt.read_conll(paths["train"])[:40], kt.read_conll(paths["dev"])[:16]


def _multilabel():
    def tags(example):
        return dataclasses.replace(example, label=(example.label,) + (("long",) if len(example.text) > 40 else ()))

    train, dev = (list(map(tags, split)) for split in _trec())
    known = {label for e in train for label in e.label}
    return train, [e for e in dev if set(e.label) <= known]


def _regression():
    return tuple([dataclasses.replace(e, label=float(len(e.text.split()))) for e in split] for split in _trec())


TASK_DATA = {"ner": _ner, "classification": _trec, "multilabel": _multilabel, "regression": _regression}
BUILT_IN = [name for name in task_names() if kt.get_task(name).__module__.startswith("kerastune_nlp.")]


def inputs_of(task: Task, examples):
    """What `predict` takes for these labelled examples: token lists (NER sentences) or texts."""
    return [e.tokens for e in examples] if hasattr(examples[0], "tokens") else [e.text for e in examples]


def train_tiny(name, backbone, output, epochs=1, callbacks=()):
    """A one-epoch run of task `name` on the harness data and a tiny backbone folder, in `output`."""
    train, dev = TASK_DATA[name]()
    return kt.train(name, train, dev, dev, output_dir=output, model_config=kt.ModelConfig(backbone=str(backbone)),
                    data_config=kt.DataConfig(max_length=32), callbacks=callbacks, verbose=0,
                    train_config=kt.TrainConfig(epochs=epochs, batch_size=16, learning_rate=1e-3))
