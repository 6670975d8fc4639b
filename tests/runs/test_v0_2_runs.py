"""Run directories written by 0.2 (transformers 4.x TF backbone in model.h5) load into our encoders.

tests/fixtures/runs_v0_2 holds an NER and a classification run that 0.2
trained on the tiny BERT of seed 0 (make_fixture.py, run with 0.2's
environment), with the labels 0.2 predicted for their dev inputs.
"""

import json
import shutil
from pathlib import Path

import h5py
import pytest

import kerastune_nlp as kt
from kerastune_nlp.backbones import families
from kerastune_nlp.errors import RunDirectoryError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "runs_v0_2"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", ["ner", "classification"])
def test_a_0_2_run_loads_into_our_encoder_and_predicts_what_0_2_predicted(name):
    predictor = kt.load_run(FIXTURES / name)
    assert any(families.is_own_encoder(layer) for layer in predictor.model.layers)
    assert predictor.predict(EXPECTED[name]["inputs"]) == EXPECTED[name]["predictions"]


def test_a_0_2_run_missing_an_encoder_tensor_is_refused_with_the_name(tmp_path):
    run = tmp_path / "ner"
    shutil.copytree(FIXTURES / "ner", run)
    with h5py.File(run / "model.h5", "r+") as handle:
        group = handle["tf_bert_model_1"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        dropped = next(n for n in names if "layer_._1/output/dense/kernel" in n)
        del group[dropped]
        group.attrs["weight_names"] = [n for n in names if n != dropped]
    with pytest.raises(RunDirectoryError, match=r"model\.h5'.*missing tensor.*encoder\.layer\.1\.output\.dense\.weight"):
        kt.load_run(run)
