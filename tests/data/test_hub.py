"""Hub data sets: fast, clear failures offline, and ClassLabel ids turned into IOB2 tags.

No test touches the network: offline mode, the reachability probe or
`datasets.load_dataset` are replaced where needed.
"""

import socket

import datasets
import huggingface_hub
import pytest
import requests
from huggingface_hub import constants
from huggingface_hub.errors import RepositoryNotFoundError

from kerastune_nlp.data import hub, load_hub_conll
from kerastune_nlp.errors import ConfigError, DataFormatError, HubUnavailableError

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture
def imported_online(monkeypatch):
    """As if datasets and huggingface_hub were imported with offline mode off."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def offline(monkeypatch, imported_online):
    """Offline mode requested after import, as a user might in a notebook."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _fake_load(monkeypatch, splits: dict):
    def load_dataset(path, cache_dir=None):
        return datasets.DatasetDict(splits)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


def _table(rows, names=NAMES):
    features = datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")),
         "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))}
    )
    return datasets.Dataset.from_dict(
        {"tokens": [r[0] for r in rows], "ner_tags": [r[1] for r in rows]}, features=features
    )


def test_offline_fails_fast_with_the_fix_even_if_set_after_import(offline, tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "_check_reachable", lambda *a: pytest.fail("offline mode must not probe the hub"))
    # Without forcing offline mode, datasets tries the network and retries for ~25 s: checked by
    # recording connection attempts, not by timing (a wall-clock bound fails on a loaded machine).
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"no network in this test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(
        HubUnavailableError,
        match=r"Could not download the data set 'lhoestq/conll2003'.*offline mode.*"
        r"Received: `name`='conll2003'\. Pass local CoNLL files with --train/--dev/--test",
    ):
        load_hub_conll("conll2003", cache_dir=tmp_path)
    assert attempts == []
    assert datasets.config.HF_HUB_OFFLINE is False and constants.HF_HUB_OFFLINE is False  # restored


def _connection_errors() -> list:
    """The connection error of each HTTP library huggingface_hub has used: requests (0.x), httpx (1.x), httpx2 (2.x)."""
    import importlib

    errors = [requests.ConnectionError]
    for module in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(module).ConnectError)
        except ImportError:
            pass
    return errors


def test_the_installed_hubs_http_library_is_covered():
    import huggingface_hub.utils._http as http

    used = {name for name in ("requests", "httpx", "httpx2") if hasattr(http, name)}
    assert used and used <= {error.__module__.split(".")[0] for error in _connection_errors()}


@pytest.mark.parametrize("error", _connection_errors(), ids=lambda e: e.__module__.split(".")[0])
def test_unreachable_hub_fails_fast_before_datasets_retries(imported_online, monkeypatch, error):
    def unreachable(self, repo_id, **kwargs):
        raise error("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", unreachable)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("must not be reached"))
    with pytest.raises(
        HubUnavailableError, match=r"'lhoestq/conll2003': the Hugging Face hub cannot be reached.*--train/--dev/--test"
    ):
        load_hub_conll()


def test_unknown_data_set_names_the_argument(imported_online, monkeypatch):
    def not_found(self, repo_id, **kwargs):
        response = requests.Response()
        response.status_code = 404
        raise RepositoryNotFoundError("404", response=response)

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", not_found)
    with pytest.raises(ConfigError, match=r"Received: `name`='someone/nothing'.*was not found"):
        load_hub_conll("someone/nothing")


def test_script_only_repository_is_explained(offline, monkeypatch):
    def script(path, cache_dir=None):
        raise RuntimeError("Dataset scripts are no longer supported, but found conll2003.py")

    monkeypatch.setattr(datasets, "load_dataset", script)
    with pytest.raises(ConfigError, match=r"`name`='eriktks/conll2003'.*loading script.*name=\"conll2003\""):
        load_hub_conll("eriktks/conll2003")


def test_class_label_ids_become_iob2_tags_and_validation_becomes_dev(offline, monkeypatch):
    _fake_load(monkeypatch, {
        "train": _table([(["Bob", "Smith", "in", "Rome"], [1, 2, 0, 3]), ([], []), (["Ann"], [2])]),
        "validation": _table([(["Paris"], [3])]),
        "test": _table([(["x"], [0])]),
        "unsupervised": _table([(["y"], [0])]),
    })
    splits = load_hub_conll("user/ner")
    assert sorted(splits) == ["dev", "test", "train"]
    first, iob1 = splits["train"]
    assert first.tags == ("B-PER", "I-PER", "O", "B-LOC") and first.tokens == ("Bob", "Smith", "in", "Rome")
    assert iob1.tags == ("B-PER",)  # a chunk starting with I- is converted
    assert (iob1.source, iob1.line) == ("user/ner[train]", 3)  # the empty row 2 is skipped
    assert splits["dev"][0].tags == ("B-LOC",)


def test_string_tags_are_accepted(offline, monkeypatch):
    table = datasets.Dataset.from_dict({"tokens": [["Rome"]], "ner_tags": [["B-LOC"]]})
    _fake_load(monkeypatch, {"train": table})
    assert load_hub_conll("user/ner")["train"][0].tags == ("B-LOC",)


def test_unsuitable_data_sets_are_data_format_errors(offline, monkeypatch):
    _fake_load(monkeypatch, {"train": datasets.Dataset.from_dict({"text": ["a"], "label": [0]})})
    with pytest.raises(DataFormatError, match=r"'user/ner' \(train\) to have `tokens` and `ner_tags`.*Received: columns \['text', 'label'\]"):
        load_hub_conll("user/ner")
    _fake_load(monkeypatch, {"train": _table([(["Rome"], [1])], names=["O", "LOC"])})
    with pytest.raises(DataFormatError, match=r"user/ner\[train\], row 1, word 1: expected a tag .*Received: 'LOC'"):
        load_hub_conll("user/ner")
    _fake_load(monkeypatch, {"test": _table([(["Rome"], [3])])})
    with pytest.raises(DataFormatError, match=r"Expected a train split .*Received: splits \['test'\]"):
        load_hub_conll("user/ner")


@pytest.mark.parametrize("reader", ["text", "corpus"])
def test_every_reader_goes_through_the_gateway_and_honours_offline_set_after_import(offline, tmp_path, monkeypatch,
                                                                                     reader):
    from kerastune_nlp.data.text_datasets import read_hub_dataset
    from kerastune_nlp.pretraining import corpus

    monkeypatch.setattr(hub, "_check_reachable", lambda *a: pytest.fail("offline mode must not probe the hub"))
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"no network in this test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    read, fix = {
        "text": (lambda: read_hub_dataset("nobody/no-such-set", "train", parse_label=lambda v, w, c: v,
                                          cache_dir=str(tmp_path)), "pass a local file"),
        "corpus": (lambda: corpus.read_hub_dataset("nobody/no-such-set", cache_dir=str(tmp_path)), "--corpus"),
    }[reader]
    with pytest.raises(HubUnavailableError, match=rf"'nobody/no-such-set' from the Hugging Face hub \(offline mode "
                                                  rf"is on.*{fix}"):
        read()
    assert attempts == []


def test_a_document_column_groups_rows_into_documents_and_names_rows_without_one(offline, monkeypatch):
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NAMES)),
                                  "doc_id": datasets.Value("string")})
    rows = {"tokens": [["Bob"], ["in"], ["Rome"]], "ner_tags": [[1], [0], [3]], "doc_id": ["a", "b", "a"]}
    _fake_load(monkeypatch, {"train": datasets.Dataset.from_dict(rows, features=features)})
    train = load_hub_conll("user/ner", document_column="doc_id")["train"]
    assert [(s.tokens, s.document, s.line) for s in train] == [(("Bob",), 0, 1), (("in",), 1, 2), (("Rome",), 0, 3)]
    with pytest.raises(ConfigError, match=r"'user/ner' \(train\) has no document column 'doc' \(--document-column\)\. "
                                          r"Received: columns \['tokens', 'ner_tags', 'doc_id'\]"):
        load_hub_conll("user/ner", document_column="doc")
    _fake_load(monkeypatch, {"train": datasets.Dataset.from_dict({**rows, "doc_id": ["a", "", None]},
                                                                  features=features)})
    with pytest.raises(DataFormatError, match=r"user/ner\[train\]: 2 row\(s\) have no document id in 'doc_id' "
                                              r"\(missing, null or empty\): rows 2, 3"):
        load_hub_conll("user/ner", document_column="doc_id")
