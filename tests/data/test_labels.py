import pytest

from kerastune_nlp.data import LabelMap, Sentence
from kerastune_nlp.errors import LabelError


def test_label_map_orders_o_then_b_i_per_type_and_completes_pairs():
    sentences = [Sentence(("a", "b"), ("B-person", "O")), Sentence(("c", "d"), ("B-group", "I-group"))]
    label_map = LabelMap.from_sentences(sentences)
    assert label_map.labels == ("O", "B-group", "I-group", "B-person", "I-person")
    assert label_map.id("I-person") == 4 and label_map.tag(1) == "B-group"
    assert label_map.entity_types == ("group", "person")


def test_unseen_entity_types_are_named_with_file_and_line():
    label_map = LabelMap.from_types(["person"])
    dev = [Sentence(("x", "y", "z"), ("O", "O", "B-product"), "dev.conll", 10)]
    with pytest.raises(LabelError, match=r"dev split.*'product' first at dev\.conll, line 12.*map them to O"):
        label_map.check_covers(dev, "dev")


def test_save_and_load_round_trip(tmp_path):
    label_map = LabelMap.from_types(["loc", "per"])
    label_map.save(tmp_path / "labels.json")
    assert LabelMap.load(tmp_path / "labels.json") == label_map


def test_bad_label_files_are_named(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("{not json")
    with pytest.raises(LabelError, match="labels.json"):
        LabelMap.load(path)
    with pytest.raises(LabelError, match="`O` as the first label"):
        LabelMap(["B-x", "O"])
