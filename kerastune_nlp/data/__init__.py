"""Data: CoNLL reading and writing, labelled texts from files and data sets, the one hub gateway
(`hub`), label maps, bundled data, sub-word alignment with windows, and tf.data batching.

Nothing here knows a task by name: task rules (how a label is written, how
splits are stratified) come in as plain callables from `tasks/`."""

from kerastune_nlp.data.bundled import bundled_wnut17
from kerastune_nlp.data.conll import Sentence, read_conll, write_conll
from kerastune_nlp.data.hub import load_hub_conll
from kerastune_nlp.data.labels import LabelMap

__all__ = ["LabelMap", "Sentence", "bundled_wnut17", "load_hub_conll", "read_conll", "write_conll"]
