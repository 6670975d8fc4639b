"""CoNLL reading and writing: both layouts, separators, encodings, tag schemes, and every error."""

import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerastune_nlp.data import Sentence, read_conll, write_conll
from kerastune_nlp.data.conll import to_iob2
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
    assert [s.tokens for s in sentences] == [("EU", "rejects", "German"), ("Peter", "Blackburn")]
    assert [s.tags for s in sentences] == [("B-ORG", "O", "B-MISC"), ("B-PER", "I-PER")]
    assert [s.line for s in sentences] == [3, 9]


def test_four_column_with_tabs_and_chosen_columns(tmp_path):
    path = _write(tmp_path, "EU\tNNP\tB-NP\tB-ORG\nrejects\tVBZ\tB-VP\tO\n")
    assert read_conll(path)[0].tags == ("B-ORG", "O")
    # The chunk column as tags, the POS column as tokens.
    sentence = read_conll(path, token_column=1, tag_column=2)[0]
    assert sentence.tokens == ("NNP", "VBZ") and sentence.tags == ("B-NP", "B-VP")


def test_docstart_without_blank_line_closes_the_sentence(tmp_path):
    sentences = read_conll(_write(tmp_path, "a\tO\n-DOCSTART-\tO\nb\tO\n"))
    assert [s.tokens for s in sentences] == [("a",), ("b",)]


def test_crlf_whitespace_only_separators_and_bom(tmp_path):
    sentences = read_conll(_write(tmp_path, "\ufeffa\tO\r\nb\tO\r\n \t \r\n\r\nc\tO\r\n"))
    assert [s.tokens for s in sentences] == [("a", "b"), ("c",)]
    assert sentences[1].line == 5


def test_unicode_whitespace_stays_inside_tokens(tmp_path):
    # Space-separated: only ASCII spaces split; NBSP, U+2028 and U+0085 stay in the token.
    text = "New\u00a0York B-location\nx\u2028y O\nz\u0085w O\n"
    assert read_conll(_write(tmp_path, text))[0].tokens == ("New\u00a0York", "x\u2028y", "z\u0085w")
    # Tab-separated: ASCII spaces inside a token stay too.
    assert read_conll(_write(tmp_path, "New York\tB-location\n", "t.conll"))[0].tokens == ("New York",)


IOB1 = "EU I-ORG\nrejects O\nGerman I-MISC\ncall O\nBritish I-MISC\nlamb I-MISC\nand O\nUK I-LOC\nEU B-LOC\n"
IOB2 = ("B-ORG", "O", "B-MISC", "O", "B-MISC", "I-MISC", "O", "B-LOC", "B-LOC")


def test_iob1_is_converted_to_iob2(tmp_path):
    assert read_conll(_write(tmp_path, IOB1), tag_scheme="iob1")[0].tags == IOB2


def test_auto_converts_and_logs_the_count(tmp_path, caplog):
    path = _write(tmp_path, IOB1)
    with caplog.at_level(logging.INFO, logger="kerastune_nlp.data"):
        assert read_conll(path)[0].tags == IOB2
    assert "converted 4 IOB1 tag(s) to IOB2 (first at line 1" in caplog.text


def test_auto_leaves_iob2_alone_and_logs_nothing(tmp_path, caplog):
    path = _write(tmp_path, "a\tB-x\nb\tI-x\nc\tB-x\n")
    with caplog.at_level(logging.INFO, logger="kerastune_nlp.data"):
        assert read_conll(path)[0].tags == ("B-x", "I-x", "B-x")
    assert "converted" not in caplog.text


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["I-a"], ["B-a"]),
        (["O", "I-a", "I-a"], ["O", "B-a", "I-a"]),
        (["I-a", "I-b"], ["B-a", "B-b"]),
        (["I-a", "B-a", "I-a"], ["B-a", "B-a", "I-a"]),
        (["B-a", "I-a", "O"], ["B-a", "I-a", "O"]),
    ],
)
def test_to_iob2_cases(tags, expected):
    assert to_iob2(tags)[0] == expected


@pytest.mark.parametrize(
    "text, line",
    [("a\tO\n\nb\tO\nc\tI-person\n", 4), ("a\tI-person\n", 1), ("a\tB-group\nb\tI-person\n", 2)],
)
def test_strict_iob2_names_the_line_of_a_chunk_starting_with_i(tmp_path, text, line):
    path = _write(tmp_path, text)
    with pytest.raises(DataFormatError, match=rf"data\.conll, line {line}: 'I-person' starts.*tag_scheme=\"iob1\" or \"auto\""):
        read_conll(path, tag_scheme="iob2")


def test_wrong_column_count_names_line_expected_and_found(tmp_path):
    path = _write(tmp_path, "a\tO\nb\tO\n\nc\tx\tO\n")
    with pytest.raises(DataFormatError, match=r"data\.conll, line 4: expected 2 columns like the first data line \(line 1\), found 3"):
        read_conll(path)


def test_single_column_is_refused(tmp_path):
    with pytest.raises(DataFormatError, match=r"line 2: expected at least 2 columns.*Received: 'lonely'"):
        read_conll(_write(tmp_path, "\nlonely\n"))


@pytest.mark.parametrize("bad_tag", ["PER", "B-", "I-", "X-person", "b-person", "S-person"])
def test_invalid_tag_names_line_and_column(tmp_path, bad_tag):
    path = _write(tmp_path, f"ok\tO\nBob\t{bad_tag}\n")
    with pytest.raises(DataFormatError, match=rf"line 2, column 5: expected a tag .*Received: {bad_tag!r}"):
        read_conll(path)


def test_invalid_tag_column_counts_characters_with_spaces(tmp_path):
    path = _write(tmp_path, "EU NNP B-NP B-ORG\nBob  NNP  B-NP  PER\n")
    with pytest.raises(DataFormatError, match=r"line 2, column 17: expected a tag"):
        read_conll(path)


def test_empty_token_names_line_and_column(tmp_path):
    with pytest.raises(DataFormatError, match=r"line 2, column 1: empty or whitespace-only token"):
        read_conll(_write(tmp_path, "a\tO\n\tO\n"))
    with pytest.raises(DataFormatError, match=r"line 1, column 1: empty or whitespace-only token"):
        read_conll(_write(tmp_path, "\u00a0\tO\n", "nbsp.conll"))


@pytest.mark.parametrize("text", ["", "\n\n", "  \n\t\n", "-DOCSTART- -X- -X- O\n\n"])
def test_empty_file_or_no_sentences(tmp_path, text):
    with pytest.raises(DataFormatError, match=r"data\.conll: expected `token<TAB>tag`.*no sentences"):
        read_conll(_write(tmp_path, text))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataFileNotFoundError, match=r"missing\.conll', which does not exist.*Check the path"):
        read_conll(tmp_path / "missing.conll")
    (tmp_path / "train.conll").write_text("a\tO\n")
    with pytest.raises(DataFileNotFoundError, match=r"the directory .*train\.conll.*Pass one file"):
        read_conll(tmp_path)


def test_latin1_file_fails_clearly_with_utf8_and_reads_with_latin1(tmp_path):
    path = _write(tmp_path, "ok\tO\n\nCaf\u00e9\tB-location\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match=r"line 3, byte column 4: .*not valid utf-8.*encoding=\"latin-1\""):
        read_conll(path)
    assert read_conll(path, encoding="latin-1")[1].tokens == ("Caf\u00e9",)


def test_truncated_utf8_at_end_of_file_names_the_last_line(tmp_path):
    path = tmp_path / "cut.conll"
    path.write_bytes(b"a\tO\nb\tO\xc3")
    with pytest.raises(DataFormatError, match=r"cut\.conll, line 2, byte column 4: "):
        read_conll(path)


def test_utf16_file_reads_with_its_encoding(tmp_path):
    path = _write(tmp_path, "Caf\u00e9\tB-location\nis\tO\n", encoding="utf-16")
    assert read_conll(path, encoding="utf-16")[0].tokens == ("Caf\u00e9", "is")


def test_bad_arguments_name_the_argument(tmp_path):
    path = _write(tmp_path, "a\tO\n")
    with pytest.raises(ConfigError, match="`encoding`='klingon'"):
        read_conll(path, encoding="klingon")
    with pytest.raises(ConfigError, match="`tag_scheme`='bioes'"):
        read_conll(path, tag_scheme="bioes")
    with pytest.raises(ConfigError, match=r"`tag_column` within the 2 columns.*first data line 1.*`tag_column`=3"):
        read_conll(path, tag_column=3)
    with pytest.raises(ConfigError, match="different token and tag columns"):
        read_conll(path, token_column=1)


def test_sentence_checks_lengths_and_stores_tuples():
    sentence = Sentence(["a", "b"], ["O", "O"])
    assert sentence.tokens == ("a", "b") and hash(sentence)
    with pytest.raises(ConfigError, match="one tag per token.*2 tokens and 1 tags"):
        Sentence(("a", "b"), ("O",))


def test_write_then_read_round_trip_and_layout(tmp_path):
    path = tmp_path / "sub" / "out.conll"
    write_conll(path, [["Paris", "is"], ["New York"]], [["B-location", "O"], ["B-location"]])
    assert path.read_text() == "Paris\tB-location\nis\tO\n\nNew York\tB-location\n\n"
    assert [s.tokens for s in read_conll(path)] == [("Paris", "is"), ("New York",)]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert os.listdir(path.parent) == ["out.conll"]  # no temporary file left


def test_write_is_atomic_and_checks_before_touching_the_file(tmp_path):
    path = tmp_path / "out.conll"
    path.write_text("old\tO\n")
    with pytest.raises(ConfigError, match=r"sentence 1, token 0.*Received: 'a\\tb'"):
        write_conll(path, [["ok"], ["a\tb"]], [["O"], ["O"]])
    with pytest.raises(ConfigError, match=r"tag `O`, `B-<type>` or `I-<type>` at sentence 0, token 1.*'PER'"):
        write_conll(path, [["a", "b"]], [["O", "PER"]])
    with pytest.raises(ConfigError, match="2 sentences and 1 tag lists"):
        write_conll(path, [["a"], ["b"]], [["O"]])
    with pytest.raises(ConfigError, match="sentence 0 with 0 tokens"):
        write_conll(path, [[]], [[]])
    with pytest.raises(ConfigError, match="latin-1 can encode.*Write with encoding=\"utf-8\""):
        write_conll(path, [["\U0001f600"]], [["O"]], encoding="latin-1")
    assert path.read_text() == "old\tO\n"
    assert os.listdir(tmp_path) == ["out.conll"]


def test_write_latin1_reads_back_with_latin1(tmp_path):
    path = tmp_path / "l1.conll"
    write_conll(path, [["Caf\u00e9"]], [["B-loc"]], encoding="latin-1")
    with pytest.raises(DataFormatError, match="line 1, byte column 4"):
        read_conll(path)
    assert read_conll(path, encoding="latin-1")[0].tokens == ("Caf\u00e9",)


# Tokens without whitespace (Unicode categories Z*, and control characters
# such as tab and newline, excluded). -DOCSTART- is refused by write_conll,
# and a byte-order mark at the very start of a file is dropped by read_conll.
TOKENS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=8
).filter(lambda t: t.strip() and t != "-DOCSTART-" and not t.startswith("\ufeff"))
TAG = st.sampled_from(["O", "B-a", "I-a", "B-b", "I-b", "B-creative-work"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(TOKENS, TAG), min_size=1, max_size=6), min_size=1, max_size=5))
def test_write_then_read_gives_back_tokens_and_tags(tmp_path, rows):
    tokens = [[t for t, _ in sentence] for sentence in rows]
    tags = [to_iob2([g for _, g in sentence])[0] for sentence in rows]  # valid IOB2
    path = tmp_path / "rt.conll"
    write_conll(path, tokens, tags)
    back = read_conll(path, tag_scheme="iob2")
    assert [list(s.tokens) for s in back] == tokens
    assert [list(s.tags) for s in back] == tags
