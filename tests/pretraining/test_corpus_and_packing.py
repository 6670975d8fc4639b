"""Reading the corpus, holding out text, packing and the settings: every bad input names its problem."""

from __future__ import annotations

import pytest

from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError
from kerastune_nlp.pretraining import PretrainConfig
from kerastune_nlp.pretraining.corpus import hold_out, load_corpus, read_hub_dataset
from kerastune_nlp.pretraining.packing import pack, special_layout


def test_text_file_keeps_lines_in_order_and_skips_blank_ones(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("\ufeffone line\n\n  two  \r\n   \nthree".encode("utf-8"))
    corpus = load_corpus(path)
    assert corpus.texts == ("one line", "two", "three") and corpus.skipped == 2 and corpus.kind == "text-file"


def test_missing_corpus_names_the_path(tmp_path):
    with pytest.raises(DataFileNotFoundError, match=r"Corpus file not found.*nope\.txt"):
        load_corpus(tmp_path / "nope.txt")


def test_empty_corpus_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n\n")
    with pytest.raises(DataFormatError, match=r"empty\.txt.*holds no text \(3 line\(s\), all blank\)"):
        load_corpus(tmp_path / "empty.txt")


def test_non_utf8_corpus_names_path_and_line(tmp_path):
    (tmp_path / "latin.txt").write_bytes(b"fine\nstill fine\ncaf\xe9 au lait\n")
    with pytest.raises(DataFormatError, match=r"latin\.txt', line 3 \(byte 4 of the line\): not valid utf-8"):
        load_corpus(tmp_path / "latin.txt")
    assert load_corpus(tmp_path / "latin.txt", encoding="latin-1").texts[2] == "café au lait"


def test_folder_that_is_not_a_saved_dataset_is_refused(tmp_path):
    with pytest.raises(DataFormatError, match="folder without them"):
        load_corpus(tmp_path)


def test_saved_datasets_column_split_and_token_lists(tmp_path):
    import datasets

    table = datasets.Dataset.from_dict({"text": ["a b", None, "  ", "c"], "tokens": [["x", "y"], ["z"], [], ["w"]],
                                        "n": [1, 2, 3, 4]})
    table.save_to_disk(str(tmp_path / "single"))
    corpus = load_corpus(tmp_path / "single")
    assert corpus.texts == ("a b", "c") and corpus.skipped == 2 and corpus.kind == "saved-dataset"
    assert load_corpus(tmp_path / "single", text_column="tokens").texts == ("x y", "z", "w")
    with pytest.raises(DataFormatError, match=r"has no column 'body'.*columns are \['text', 'tokens', 'n'\]"):
        load_corpus(tmp_path / "single", text_column="body")
    with pytest.raises(DataFormatError, match="row 1: expected text in column 'n'. Received: a int"):
        load_corpus(tmp_path / "single", text_column="n")
    datasets.DatasetDict({"train": table, "validation": table}).save_to_disk(str(tmp_path / "dict"))
    assert load_corpus(tmp_path / "dict", split="validation").source.endswith("[validation]")
    with pytest.raises(ConfigError, match=r"split that the data set .* has: \['train', 'validation'\]"):
        load_corpus(tmp_path / "dict", split="test")


def test_hub_dataset_offline_is_a_clear_error():
    from kerastune_nlp.errors import HubUnavailableError

    with pytest.raises(HubUnavailableError, match="offline mode is on.*--corpus"):
        read_hub_dataset("someone/not-cached-anywhere")


def test_hold_out_is_seeded_and_disjoint(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("\n".join(f"line {i}" for i in range(50)))
    corpus = load_corpus(path)
    train, held = hold_out(corpus, 0.1, seed=3)
    assert len(held.texts) == 5 and len(train.texts) == 45 and not set(train.texts) & set(held.texts)
    assert hold_out(corpus, 0.1, seed=3)[1].texts == held.texts != hold_out(corpus, 0.1, seed=4)[1].texts
    assert list(train.texts) == sorted(train.texts, key=lambda t: int(t.split()[1]))  # source order kept
    assert hold_out(corpus, 0.0, seed=3) == (corpus, None)


@pytest.mark.parametrize("field, value, message", [
    ("mlm_probability", 0.0, r"Expected `mlm_probability` in \(0, 1\)"),
    ("mlm_probability", 1.0, r"Received: `mlm_probability`=1.0"),
    ("mlm_probability", float("nan"), "to be a finite number"),
    ("eval_share", 0.5, r"Expected `eval_share` in \[0, 0.5\)"),
    ("batch_size", 0, "Expected `batch_size` to be an integer >= 1"),
    ("epochs", 1.5, "Expected `epochs` to be an integer"),
    ("max_length", 4, "Expected `max_length` to be an integer >= 8"),
    ("learning_rate", -1e-5, r"Expected `learning_rate` in \(0, 1\)"),
    ("encoding", "utf-9", "text encoding Python knows"),
    ("checkpoint_every_steps", 0, "Expected `checkpoint_every_steps` to be an integer >= 1"),
])
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        PretrainConfig(**{field: value})


def test_packing_keeps_every_token_and_the_last_partial_sequence(tiny_bert):
    from kerastune_nlp.models.backbones import load_tokenizer

    tokenizer = load_tokenizer(tiny_bert)
    texts = ["the quick brown fox jumps over the lazy dog", "Empire State Building", "in Berlin"]
    packed = pack(texts, tokenizer, 8)
    expected = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    sep, cls, pad = tokenizer.sep_token_id, tokenizer.cls_token_id, tokenizer.pad_token_id
    stream = [i for row, n in zip(packed.input_ids, packed.lengths) for i in row[1:n - 1]]
    assert stream == expected[0] + [sep] + expected[1] + [sep] + expected[2]
    assert packed.tokens == sum(map(len, expected)) and packed.texts == 3
    assert all(row[0] == cls and row[n - 1] == sep for row, n in zip(packed.input_ids, packed.lengths))
    assert packed.lengths[:-1].tolist() == [8] * (packed.sequences - 1) and packed.lengths[-1] < 8
    last = packed.input_ids[-1]
    assert (last[packed.lengths[-1]:] == pad).all()
    # Specials, separators and padding carry no word; words are numbered from 0 in each row.
    special = (packed.input_ids == cls) | (packed.input_ids == sep) | (packed.input_ids == pad)
    assert ((packed.word_ids == -1) == special).all()
    assert all(row[row >= 0][0] == 0 for row in packed.word_ids)


def test_packing_word_ids_follow_the_tokenizer(tiny_bert):
    from kerastune_nlp.models.backbones import load_tokenizer

    tokenizer = load_tokenizer(tiny_bert)
    text = "Empire State Building iPhone [SEP] Merkel"
    packed = pack([text], tokenizer, 64)
    encoded = tokenizer(text, add_special_tokens=False)
    ids = packed.input_ids[0][1:packed.lengths[0] - 1]
    words = packed.word_ids[0][1:packed.lengths[0] - 1]
    assert ids.tolist() == encoded["input_ids"]
    for k in range(1, len(ids)):
        same = encoded.word_ids()[k] == encoded.word_ids()[k - 1]
        if words[k] >= 0 and words[k - 1] >= 0:
            assert (words[k] == words[k - 1]) == same
    # A literal "[SEP]" in the text is a special token: never a word, never masked.
    assert words[ids.tolist().index(tokenizer.sep_token_id)] == -1
    assert len(set(words[words >= 0].tolist())) == 5
    assert special_layout(tokenizer).capacity(64) == 62
