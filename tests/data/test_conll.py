"""CoNLL reading: both layouts, separators, encodings, tag schemes, and every error."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerastune_nlp.data import bundled_wnut17, read_conll, write_conll
from kerastune_nlp.errors import ConfigError, DataFileNotFoundError, DataFormatError


def _write(tmp_path, text, name="data.conll", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_two_column_tab_format(tmp_path):
    path = _write(tmp_path, "Paris\tB-location\nis\tO\n\nBob\tB-person\nSmith\tI-person\n")
    sentences = read_conll(path)
    assert [s.tokens for s in sentences] == [("Paris", "is"), ("Bob", "Smith")]
    assert sentences[1].tags == ("B-person", "I-person")
    assert (sentences[0].line, sentences[1].line) == (1, 4)
    assert sentences[0].source == str(path)


def test_four_column_conll2003_with_docstart_and_spaces(tmp_path):
    text = (
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
        "-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n"
    )
    sentences = read_conll(_write(tmp_path, text))
    assert [s.tags for s in sentences] == [("B-ORG", "O", "B-MISC"), ("B-PER", "I-PER")]
    assert sentences[1].line == 9


def test_crlf_and_whitespace_only_separator_lines(tmp_path):
    sentences = read_conll(_write(tmp_path, "a\tO\r\nb\tO\r\n   \r\nc\tO\r\n"))
    assert [s.tokens for s in sentences] == [("a", "b"), ("c",)]


def test_no_break_space_stays_inside_a_token(tmp_path):
    sentences = read_conll(_write(tmp_path, "New\u00a0York\tB-location\n"))
    assert sentences[0].tokens == ("New\u00a0York",)


def test_iob1_is_converted_to_iob2(tmp_path):
    text = "EU I-ORG\nrejects O\nGerman I-MISC\ncall O\nto O\nboycott O\nBritish I-MISC\nlamb I-MISC\n"
    sentences = read_conll(_write(tmp_path, text), tag_scheme="iob1")
    assert sentences[0].tags == ("B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "I-MISC")
    assert read_conll(_write(tmp_path, text, "b.conll")) == [
        s.__class__(s.tokens, s.tags, str(tmp_path / "b.conll"), s.line) for s in sentences
    ]


def test_strict_iob2_names_the_line_of_a_chunk_starting_with_i(tmp_path):
    path = _write(tmp_path, "a\tO\n\nb\tO\nc\tI-person\n")
    with pytest.raises(DataFormatError, match=r"line 4.*I-person.*tag_scheme=\"iob1\""):
        read_conll(path, tag_scheme="iob2")


def test_wrong_column_count_names_line(tmp_path):
    path = _write(tmp_path, "a\tO\nb\tO\n\nc\tx\tO\n")
    with pytest.raises(DataFormatError, match=r"data\.conll, line 4: expected 2 columns.*found 3"):
        read_conll(path)


def test_single_column_is_refused(tmp_path):
    with pytest.raises(DataFormatError, match=r"line 1: expected at least 2 columns"):
        read_conll(_write(tmp_path, "lonely\n"))


@pytest.mark.parametrize("bad_tag", ["PER", "B-", "X-person", "b-person"])
def test_invalid_tag_names_line_and_column(tmp_path, bad_tag):
    path = _write(tmp_path, f"ok\tO\nBob\t{bad_tag}\n")
    with pytest.raises(DataFormatError, match=rf"line 2, column 5: expected a tag .*{bad_tag!r}"):
        read_conll(path)


def test_empty_file(tmp_path):
    with pytest.raises(DataFormatError, match="contains no sentences"):
        read_conll(_write(tmp_path, "\n\n"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="not found.*missing.conll"):
        read_conll(tmp_path / "missing.conll")
    with pytest.raises(DataFileNotFoundError, match="directory"):
        read_conll(tmp_path)


def test_wrong_encoding_names_line_and_column(tmp_path):
    path = _write(tmp_path, "ok\tO\n\nCaf\u00e9\tB-location\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match=r"line 3, column 4: .*not valid utf-8.*latin-1"):
        read_conll(path)
    assert read_conll(path, encoding="latin-1")[1].tokens == ("Caf\u00e9",)


def test_unknown_encoding_and_scheme_name_the_argument(tmp_path):
    path = _write(tmp_path, "a\tO\n")
    with pytest.raises(ConfigError, match="`encoding`='klingon'"):
        read_conll(path, encoding="klingon")
    with pytest.raises(ConfigError, match="`tag_scheme`='bioes'"):
        read_conll(path, tag_scheme="bioes")


def test_bundled_wnut17_counts():
    counts = {}
    for split, path in bundled_wnut17().items():
        sentences = read_conll(path)
        counts[split] = (len(sentences), sum(len(s.tokens) for s in sentences))
    assert counts["train"] == (3394, 62730)
    assert counts["test"] == (1287, 23394)
    assert counts["dev"][0] == 1009


TOKENS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=8
).filter(lambda t: t != "-DOCSTART-" and t.strip() == t and t.strip())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(TOKENS, st.sampled_from(["O", "B-a", "I-a", "B-b"])), min_size=1, max_size=6),
                min_size=1, max_size=5))
def test_write_then_read_round_trips(tmp_path_factory, rows):
    tokens = [[t for t, _ in s] for s in rows]
    tags = [[g for _, g in s] for s in rows]
    # Keep valid IOB2: an I- must continue the same type.
    for sentence in tags:
        for i, tag in enumerate(sentence):
            if tag.startswith("I-") and (i == 0 or sentence[i - 1][2:] != tag[2:]):
                sentence[i] = "B-" + tag[2:]
    path = tmp_path_factory.mktemp("rt") / "out.conll"
    write_conll(path, tokens, tags)
    back = read_conll(path, tag_scheme="iob2")
    assert [list(s.tokens) for s in back] == tokens
    assert [list(s.tags) for s in back] == tags
