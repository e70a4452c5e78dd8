"""normalise: one char for one char, so offsets found in the result hold in the original;
literal_spans: the regex it stands in for, span for span."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from extractor.parse import ParsedArticle, iter_records
from extractor.text import _DOT_BETWEEN_DIGITS, _FOLD, _TABLE, fold_case, literal_spans, normalise


def test_decimal_middle_dot_between_digits_only() -> None:
    assert normalise("HR 0\u00b738 (0\u00b725\u20130\u00b759)") == "HR 0.38 (0.25-0.59)"
    assert normalise("A \u00b7 B") == "A \u00b7 B"  # a dot used as a separator stays
    assert normalise("0\u22c538 and 1\u221925") == "0.38 and 1.25"


def test_dashes_and_minus_become_hyphen() -> None:
    for dash in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d":
        assert normalise(f"0.25{dash}0.59") == "0.25-0.59"


def test_spaces_become_plain_spaces() -> None:
    for space in "\u00a0\u2009\u202f\u2002\u200a\u3000\u200b":
        assert normalise(f"95{space}% CI") == "95 % CI"


def test_slanted_inequalities_and_fullwidth_signs() -> None:
    assert normalise("\u2a7e5% and \u2a7d3") == "\u22655% and \u22643"
    assert normalise("\u2265 and \u2264 stay") == "\u2265 and \u2264 stay"
    assert normalise("P\uff1c0\uff0e05"[:3]) == "P<0"
    assert normalise("\uff11\uff12\uff05") == "12%"


def test_ascii_text_is_unchanged() -> None:
    s = "Median PFS was 8.4 months (95% CI, 6.1 to 10.2; P<0.001)."
    assert normalise(s) == s


@given(st.text(max_size=200))
def test_length_always_kept(text: str) -> None:
    out = normalise(text)
    assert len(out) == len(text)
    # every character either stays or is replaced by an ASCII (or <=/>=) stand-in
    for a, b in zip(text, out):
        assert a == b or b.isascii() or b in "\u2264\u2265"


# ---------------------------------------------------------------- literal_spans == the regex it replaces
_TRICKY = "aAbBkKsSiI-_ 1(\u0130\u0131\u017f\u212a\u00e9\u00df"


def test_fold_covers_every_char_re_ignorecase_equates_with_an_ascii_letter() -> None:
    chars = "".join(map(chr, range(128, 0x110000)))
    special = {c for c in re.findall(r"(?i)[a-z]", chars)}
    assert special == {"\u0130", "\u0131", "\u017f", "\u212a"}
    assert all(re.fullmatch("(?i)" + fold_case(c), c) for c in special)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aAkKsSiI -", min_size=1, max_size=4), st.text(alphabet=_TRICKY, max_size=40))
def test_literal_spans_case_insensitive_equals_regex(needle: str, text: str) -> None:
    want = [m.span() for m in re.finditer(r"(?<![\w-])" + re.escape(needle), text, re.IGNORECASE)]
    assert literal_spans(needle, text, folded=fold_case(text)) == want


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aAB-1", min_size=1, max_size=3), st.text(alphabet=_TRICKY, max_size=40))
def test_literal_spans_whole_word_equals_regex(needle: str, text: str) -> None:
    want = [m.span() for m in re.finditer(r"(?<![\w-])" + re.escape(needle) + r"(?![\w-])", text)]
    assert literal_spans(needle, text, word_end=True) == want


@given(st.text(alphabet="ab 1.-\t\u00b7\u2013\u00a0\u2009\u00d7\uff05\u2a7d", max_size=30))
def test_normalise_shortcut_equals_full_translation(text: str) -> None:
    assert normalise(text) == _DOT_BETWEEN_DIGITS.sub(".", text.translate(_TABLE))


def test_normalise_equals_full_translation_on_real_abstracts(shared_dir: Path) -> None:
    texts = [rec.article.title + "\n" + rec.article.abstract for rec in itertools.islice(
        iter_records(shared_dir / "corpus" / "real.xml.gz"), 3000) if isinstance(rec, ParsedArticle)]
    assert sum(normalise(t) != t for t in texts) >= 10
    for t in texts:
        assert normalise(t) == _DOT_BETWEEN_DIGITS.sub(".", t.translate(_TABLE))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_TRICKY + "\u00c9\u03a3\u0130", max_size=40))
def test_fold_case_finds_what_the_full_translation_finds(text: str) -> None:
    folded = fold_case(text)
    assert len(folded) == len(text)
    full = text.translate(_FOLD)
    assert [i for i, c in enumerate(folded) if c.isascii()] == [i for i, c in enumerate(full) if c.isascii()]
    assert "".join(c for c in folded if c.isascii()) == "".join(c for c in full if c.isascii())
