"""Data: CoNLL reading and writing, label maps, bundled and hub data sets,
sub-word alignment with windows, and tf.data batching."""

from kerastune_nlp.data.bundled import bundled_wnut17
from kerastune_nlp.data.conll import Sentence, read_conll, write_conll
from kerastune_nlp.data.hub import load_hub_conll
from kerastune_nlp.data.labels import LabelMap

__all__ = ["LabelMap", "Sentence", "bundled_wnut17", "load_hub_conll", "read_conll", "write_conll"]
