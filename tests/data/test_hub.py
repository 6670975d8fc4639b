import pytest

from kerastune_nlp.data import load_hub_conll
from kerastune_nlp.errors import HubUnavailableError


def test_offline_hub_dataset_names_the_fix():
    with pytest.raises(HubUnavailableError, match=r"conll2003.*pass local CoNLL files with --train/--dev/--test"):
        load_hub_conll("conll2003")

