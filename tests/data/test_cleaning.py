"""Cleaning steps: what each changes, what each reports, and that non-ASCII text survives all."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerastune_nlp.data.cleaning import STEPS, clean_examples
from kerastune_nlp.data.text_examples import TextExample
from kerastune_nlp.errors import ConfigError

NON_ASCII = "Café naïve 東京タワー 😀 — Ünïcödé 👩‍👩‍👧 ñandú"


def _clean(text, *steps, pair=None):
    cleaned, _ = clean_examples([TextExample(text, "a", pair)], list(steps))
    return cleaned[0].text if cleaned else None


@pytest.mark.parametrize("step", STEPS)
def test_every_step_keeps_chinese_accents_and_emoji(step):
    text = f"<p>{NON_ASCII}</p> &amp; see https://example.com/x  {NON_ASCII}"
    cleaned, report = clean_examples([TextExample(text, "a", NON_ASCII)], [step])
    (example,) = cleaned
    for fragment in ("東京タワー", "😀", "👩‍👩‍👧"):
        assert example.text.count(fragment) == 2 and fragment in example.text_pair
    for fragment in ("café", "naïve", "ünïcödé", "ñandú"):
        assert fragment in example.text.lower()


def test_all_steps_together_keep_non_ascii_and_report_changes():
    examples = [TextExample(f"<b>{NON_ASCII}</b> &amp; http://x.io/a  ok", "a")]
    cleaned, report = clean_examples(
        examples, ["nfc", "nfkc", "html", "urls", "whitespace", "lowercase", "dedupe", "drop_empty"]
    )
    assert cleaned[0].text == "café naïve 東京タワー 😀 — ünïcödé 👩‍👩‍👧 ñandú & ok"
    changed = {step["step"]: step["changed"] for step in report.steps}
    assert changed == {
        "nfc": 0,
        "nfkc": 0,
        "html": 1,
        "urls": 1,
        "whitespace": 1,
        "lowercase": 1,
        "dedupe": 0,
        "drop_empty": 0,
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "東京",
                "é",
                "ü",
                "ñ",
                "😀",
                "✓",
                "日本語",
                "Ж",
                "ا",
                " ",
                ".",
                ",",
                "!",
                "a",
                "B",
                "\t",
                "\n",
                "-",
            ]
        ),
        max_size=30,
    )
)
def test_property_no_step_removes_a_non_ascii_character(pieces):
    text = "".join(pieces)
    wanted = sorted(c for c in text.lower() if ord(c) > 127 and not c.isspace())
    cleaned = _clean(text, *[s for s in STEPS if s not in ("drop_empty", "dedupe")])
    assert sorted(c for c in cleaned if ord(c) > 127) == wanted


def test_unicode_normalisation():
    assert _clean("Cafe\u0301", "nfc") == "Café"
    assert _clean("ＡＢＣ１ ﬁne ①", "nfkc") == "ABC1 fine 1"
    assert _clean("ＡＢＣ", "nfc") == "ＡＢＣ"  # NFC leaves compatibility forms alone


def test_whitespace_collapses_unicode_spaces():
    assert _clean("  a \t b\n\nc\u3000d\u00a0e  ", "whitespace") == "a b c d e"


def test_html_tags_entities_comments_and_scripts():
    text = "<div class='x'>Hello<br/>world</div><!-- note --><script>var a = 1 < 2;</script> caf&eacute; &lt;3"
    assert _clean(text, "html", "whitespace") == "Hello world café <3"
    # Comparison signs are not tags.
    assert _clean("a < b and c > d, x<y", "html") == "a < b and c > d, x<y"


def test_url_removal_keeps_neighbouring_text_and_punctuation():
    assert (
        _clean("see https://example.com/a?b=1, then www.foo.org.", "urls", "whitespace")
        == "see , then ."
    )
    assert _clean("見てhttp://x.io/a東京", "urls") == "見て 東京"
    assert _clean("ftp://files.example.com/x (mirror)", "urls", "whitespace") == "(mirror)"


def test_lowercase_changes_case_only():
    assert _clean("ÉCOLE Straße 東京", "lowercase") == "école straße 東京"


def test_dedupe_keeps_the_first_of_same_text_and_pair_and_counts_label_conflicts(caplog):
    examples = [
        TextExample("same", "a", source="f", line=1),
        TextExample("same", "b", source="f", line=2),
        TextExample("same", "a", "other"),
        TextExample("same", "a", source="f", line=3),
        TextExample("x", "a"),
    ]
    cleaned, report = clean_examples(examples, ["dedupe"])
    assert [(e.text, e.text_pair, e.line) for e in cleaned] == [
        ("same", None, 1),
        ("same", "other", 0),
        ("x", None, 0),
    ]
    assert report.steps == [{"step": "dedupe", "changed": 0, "dropped": 2, "label_conflicts": 1}]
    assert "1 duplicate(s) had a different label" in caplog.text


def test_dedupe_after_normalising_catches_near_duplicates():
    examples = [TextExample("Good  film", "a"), TextExample("good film", "a")]
    assert len(clean_examples(examples, ["dedupe"])[0]) == 2
    assert len(clean_examples(examples, ["whitespace", "lowercase", "dedupe"])[0]) == 1


def test_drop_empty_after_other_steps_and_report():
    examples = [
        TextExample("<br>", "a"),
        TextExample("  ", "a"),
        TextExample("ok", "a"),
        TextExample("ok", "b", " "),
    ]
    cleaned, report = clean_examples(examples, ["html", "drop_empty"])
    assert [e.text for e in cleaned] == ["ok"]
    assert [(s["step"], s["changed"], s["dropped"]) for s in report.steps] == [
        ("html", 1, 0),
        ("drop_empty", 0, 3),
    ]
    assert (report.before, report.after, report.dropped) == (4, 1, 3)
    assert (
        str(report)
        == "4 -> 1 examples (html: 1 changed, 0 dropped, drop_empty: 0 changed, 3 dropped)"
    )
    assert json.loads(json.dumps(report.to_dict()))["after"] == 1


def test_default_steps_and_custom_functions():
    cleaned, report = clean_examples([TextExample(" a  b ", "x"), TextExample(" ", "y")])
    assert [e.text for e in cleaned] == ["a b"] and [s["step"] for s in report.steps] == [
        "nfc",
        "whitespace",
        "drop_empty",
    ]

    def strip_hashtags(text):
        return text.replace("#", "")

    cleaned, report = clean_examples([TextExample("#東京 #tokyo", "x")], [strip_hashtags])
    assert cleaned[0].text == "東京 tokyo" and report.steps[0]["step"] == "strip_hashtags"


def test_bad_steps_are_refused():
    examples = [TextExample("a", "x")]
    with pytest.raises(
        ConfigError, match=r"Unknown cleaning steps \['strip_accents'\]\. Expected names from"
    ):
        clean_examples(examples, ["nfc", "strip_accents"])
    with pytest.raises(
        ConfigError, match=r"Expected a list of step names\. Received: `steps`='nfc'"
    ):
        clean_examples(examples, "nfc")
    with pytest.raises(
        ConfigError, match="A cleaning function must return str. Received: NoneType"
    ):
        clean_examples(examples, [lambda text: None])


def test_nothing_to_clean_is_unchanged():
    examples = [TextExample("fine", "x")]
    cleaned, report = clean_examples(examples, STEPS)
    assert cleaned == examples and all(s["changed"] == s["dropped"] == 0 for s in report.steps)
