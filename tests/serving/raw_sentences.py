"""1,000 raw sentences as users type them, from real data: tweets, questions, reviews, and hard cases.

The data sets are tokenized (CoNLL, TREC), so their words are joined back
the way text is written ("Paris ." -> "Paris."); the IMDb reviews are raw
already (quotes, HTML line breaks, ellipses). The hand-written cases cover
what the data lacks: URLs, e-mail, Unicode spaces, scripts with combining
marks, emoji, control characters.
"""

import csv
import re
from pathlib import Path

IMDB = Path(__file__).resolve().parents[3] / "shared" / "data" / "imdb" / "imdb_reviews_2500.csv"

HARD_CASES = [
    "Barack Obama visited Paris.", "Email me at jane.doe@example.com, or call +1 (555) 010-9999!",
    "See https://example.org/a?b=1&c=2, then www.example.com/x.", "@nasa and #SpaceX launched #Crew-7 today",
    "“Quoted,” she said — ‘single’ and «guillemets».", "a\u00a0b\u2003c\u3000d e\tf", "O'Neill’s U.S.-based e-mail",
    "हिन्दी भाषा में लिखा गया।", "日本語のテキスト、東京です。", "Great film 😀👍🏽 !!!", "zero\u200bwidth join",
    "Café naïve façade in Zürich, São Paulo", "It costs $1,000.50 (about 3.14 %) ...", "__init__ and snake_case",
    "Don't stop -- won't stop...", "'Tis the 90's", "Mr. Smith went to Washington D.C. yesterday.",
    "Привет, мир! Как дела?", "مرحبا بالعالم.", "ΑΒΓ αβγ; Ωmega", "C++ and C# vs. F#?", "x\x01y control",
]


def detokenize(words) -> str:
    text = " ".join(words)
    text = re.sub(r" ([.,!?;:%)\]}”’])", r"\1", text)
    text = re.sub(r"([(\[{“‘$]) ", r"\1", text)
    return re.sub(r" n't\b", "n't", text)


def raw_sentences(count: int = 1000) -> list[str]:
    import kerastune_nlp as kt
    from kerastune_nlp.data.bundled_trec import load_bundled_trec

    tweets = [detokenize(s.tokens) for s in kt.read_conll(kt.bundled_wnut17()["train"])]
    questions = [detokenize(e.text.split()) for e in load_bundled_trec()["train"]]
    with open(IMDB, newline="", encoding="utf-8") as handle:
        reviews = [row["review"] for row in csv.DictReader(handle)]
    review_sentences = [s for review in reviews for s in re.split(r"(?<=[.!?])\s+", review) if 3 < len(s) < 200]
    texts = list(HARD_CASES)
    per_source = (count - len(texts)) // 3
    for source in (tweets, questions, review_sentences):
        texts += [t for t in dict.fromkeys(source) if t.strip()][:per_source]
    texts += [t for t in dict.fromkeys(tweets) if t.strip()][per_source:per_source + count - len(texts)]
    return texts
