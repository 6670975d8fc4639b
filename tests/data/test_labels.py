"""LabelMap: canonical order, lookups, coverage checks, save and load."""

import copy
import json
import pickle

import numpy as np
import pytest

from kerastune_nlp.data import LabelMap, Sentence, read_conll
from kerastune_nlp.errors import LabelError


def test_from_sentences_orders_o_then_b_i_per_sorted_type_and_completes_pairs():
    sentences = [Sentence(("a", "b"), ("B-person", "O")), Sentence(("c", "d"), ("B-group", "I-group"))]
    label_map = LabelMap.from_sentences(sentences)
    assert label_map.labels == ("O", "B-group", "I-group", "B-person", "I-person")
    assert len(label_map) == 5
    assert label_map.entity_types == ("group", "person")
    assert label_map.id("I-person") == 4 and label_map.tag(1) == "B-group"
    assert label_map.tag(np.int64(4)) == "I-person"
    assert LabelMap.from_sentences([Sentence(("a",), ("O",))]).labels == ("O",)


def test_from_labels_validates_and_round_trips_ids():
    label_map = LabelMap.from_labels(["O", "B-loc", "I-loc", "B-per", "I-per"])
    assert [label_map.tag(label_map.id(t)) for t in label_map.labels] == list(label_map.labels)
    assert label_map == LabelMap.from_types(["per", "loc"])
    with pytest.raises(LabelError, match=r"`O` first.*alphabetical.*Received: \['B-x', 'I-x', 'O'\]"):
        LabelMap.from_labels(["B-x", "I-x", "O"])
    with pytest.raises(LabelError, match=r"Received: \['O', 'B-x'\]"):  # I-x missing
        LabelMap.from_labels(["O", "B-x"])
    with pytest.raises(LabelError, match=r"Received: \['O', 'B-b', 'I-b', 'B-a', 'I-a'\]"):  # not sorted
        LabelMap.from_labels(["O", "B-b", "I-b", "B-a", "I-a"])
    with pytest.raises(LabelError, match=r"Expected tags .*Received: \['PER', 'B-'\]"):
        LabelMap.from_labels(["O", "PER", "B-"])
    with pytest.raises(LabelError, match="Received: the string"):
        LabelMap.from_labels("O")


def test_unknown_tag_and_id_are_label_errors():
    label_map = LabelMap.from_types(["per"])
    with pytest.raises(LabelError, match=r"Received: 'B-loc'"):
        label_map.id("B-loc")
    with pytest.raises(LabelError, match=r"label id from 0 to 2\. Received: 3"):
        label_map.tag(3)
    with pytest.raises(LabelError, match=r"from 0 to 2\. Received: -1"):
        label_map.tag(-1)
    with pytest.raises(LabelError, match="integer label id"):
        label_map.tag(1.0)


def test_label_map_is_immutable_hashable_and_copyable():
    label_map = LabelMap.from_types(["per"])
    with pytest.raises(AttributeError, match="immutable"):
        label_map.labels = ("O",)
    with pytest.raises(AttributeError):
        label_map._labels = ("O",)
    assert {label_map: 1}[LabelMap.from_types(["per"])] == 1
    assert pickle.loads(pickle.dumps(label_map)) == label_map == copy.deepcopy(label_map)


def test_from_sentences_names_a_bad_tag():
    with pytest.raises(LabelError, match=r"train\.conll, line 8: .*Received: 'PER'"):
        LabelMap.from_sentences([Sentence(("a", "b"), ("O", "PER"), "train.conll", 7)])


def test_unseen_entity_types_are_named_with_file_and_line(tmp_path):
    label_map = LabelMap.from_types(["person"])
    dev = tmp_path / "dev.conll"
    dev.write_text("a\tO\n\nx\tO\ny\tO\nz\tB-product\n\nw\tB-group\nv\tB-product\n")
    with pytest.raises(
        LabelError,
        match=r"dev split.*Received: 2 unseen type\(s\): 'group' first at .*dev\.conll, line 7; "
        r"'product' first at .*dev\.conll, line 5\. Add training examples.*map them to O",
    ):
        label_map.check_covers(read_conll(dev), "dev")
    label_map.check_covers([Sentence(("a",), ("B-person",))], "test")  # covered: no error


def test_unseen_type_in_memory_sentences_names_the_token():
    label_map = LabelMap.from_types(["person"])
    hub = [Sentence(("x", "y"), ("O", "B-MISC"), "user/data[validation] row 3")]
    with pytest.raises(LabelError, match=r"'MISC' first at user/data\[validation\] row 3, token 2"):
        label_map.check_covers(hub, "dev")


def test_save_and_load_round_trip(tmp_path):
    label_map = LabelMap.from_types(["loc", "per"])
    path = tmp_path / "labels.json"
    label_map.save(path)
    assert json.loads(path.read_text()) == {"labels": list(label_map.labels)}
    assert LabelMap.load(path) == label_map
    assert [p.name for p in tmp_path.iterdir()] == ["labels.json"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"Cannot read the label map .*labels\.json"),
        ('["O"]', r"labels\.json' to hold a JSON object with a list `labels`"),
        ('{"labels": "O"}', r"labels\.json' to hold a JSON object"),
        ('{"labels": ["B-x", "O"]}', r"In the label map .*labels\.json.*`O` first"),
    ],
)
def test_bad_label_files_are_named(tmp_path, content, message):
    path = tmp_path / "labels.json"
    path.write_text(content)
    with pytest.raises(LabelError, match=message):
        LabelMap.load(path)


def test_missing_label_file_is_named(tmp_path):
    with pytest.raises(LabelError, match=r"Cannot read the label map .*nope\.json"):
        LabelMap.load(tmp_path / "nope.json")
