"""Fast paths must give what the slow paths give: the literal pre-check of find_endpoints and
its tokenizing of the stretches around anchors only, the windowed search for outcome short
forms, the boundary-anchored outcome alternation and its cut to the outcomes whose keywords
a text holds."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractor import nlp
from extractor.attribution import AttributionRules, _alternatives, _any_of, attribution_rules, outcome_words
from extractor.outcomes import abbrev_definitions
from extractor.parse import ParsedArticle, iter_records
from extractor.rules import load_rules
from extractor.text import fold_case

_OWN = [
    "Median progression-free survival was 7.1 months with drug A.",
    "The hazard ratio for death was 0.71 (95% CI, 0.60-0.84).",
    "Grade 3 or higher adverse events occurred in 12% of patients.",
    "\u2265grade 3 toxicity was rare; the ORR was 41% and pCR 18%.",
    "Patients were seen at 3 and 6 months; no values here.",
    "OS and DFS did not differ, nor did dose intensity.",
    "",
]


def _texts() -> list[str]:
    r = nlp.endpoint_rules()
    return [t for e in r.endpoints for t, _ in e.examples] + [t for t, _ in r.cue_examples] + \
        [p for e in r.endpoints for p in e.phrases] + _OWN


def test_pre_check_never_changes_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    fast = [nlp.find_endpoints(t) for t in texts]
    monkeypatch.setattr(nlp, "_anchors", lambda: None)  # no pre-check: tokenize everything
    assert [nlp.find_endpoints(t) for t in texts] == fast
    assert any(fast) and not all(fast)


def test_every_phrase_has_an_anchor() -> None:
    anchors = nlp._anchors()
    assert anchors is not None  # else the pre-check is silently off
    lower, exact = anchors
    for phrase in [p for e in nlp.endpoint_rules().endpoints for p in e.phrases]:
        assert any(a in phrase.lower() for a in lower) or any(a in phrase for a in exact), phrase


def _whole(text: str) -> tuple[nlp.Hit, ...]:
    return nlp._matched(text) if nlp._anchored(text) else ()


_PIECES = ["overall", "survival", "Overall", "OS", "PFS", "progression", "-free", "free", "response",
           "rate", "(", ")", "1.2", ",", ".", "grade", "\u22653", "\u0130", "\u212a", " ", " ", " ", "  ", "\n", "\xa0"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_stretches_give_the_whole_texts_hits_on_random_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert nlp._endpoints.__wrapped__(text) == _whole(text)


def test_stretches_give_the_whole_texts_hits_on_real_sentences(shared_dir: Path) -> None:
    found = 0
    for rec in itertools.islice(iter_records(shared_dir / "corpus" / "real.xml.gz"), 300):
        if isinstance(rec, ParsedArticle):
            text = rec.article.abstract
            for s, e in nlp.sentences(text):
                hits = nlp._endpoints.__wrapped__(text[s:e])
                assert hits == _whole(text[s:e])
                found += len(hits)
            assert nlp._endpoints.__wrapped__(text) == _whole(text)
    assert found > 100


# ---------------------------------------------------------------- outcome short forms, windowed
_ABBR_TEXTS = [
    "The sustained remission rate (SRR) was higher; SRR at week 8 was 41%.",
    "biochemical progression-free survival (bPFS) and overall survival (OS) (95% CI 1-2) (HR)",
    "a (b (SRR)) c (95% CI) d's long-term in-field (FFR) e  (TTF) ((ABC))",
    "word " * 30 + "(ABCD)",
    "(SRR) at the start, then x (n = 4) and (P < 0.01)",
]


def _same_as_finditer(text: str) -> None:
    pat = attribution_rules().outcome_abbrev
    assert [m.span() for m in abbrev_definitions(pat, text)] == [m.span() for m in pat.finditer(text)]


def test_abbrev_definitions_equal_finditer_on_own_sentences() -> None:
    for text in _ABBR_TEXTS:
        _same_as_finditer(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aSRb( )-'1_,.\n", max_size=60))
def test_abbrev_definitions_equal_finditer_on_random_text(text: str) -> None:
    _same_as_finditer(text)


def test_abbrev_definitions_equal_finditer_on_real_abstracts(shared_dir: Path) -> None:
    for i, rec in enumerate(iter_records(shared_dir / "corpus" / "real.xml.gz")):
        if i >= 150:
            break
        if isinstance(rec, ParsedArticle):
            _same_as_finditer(rec.article.title + "\n" + rec.article.abstract)


# ---------------------------------------------------------------- one regex for many outcome words
def test_alternatives_split_only_at_top_level() -> None:
    assert _alternatives(r"\ba|\bb(?:c|d)|[|x]\|e") == [r"\ba", r"\bb(?:c|d)", r"[|x]\|e"]
    assert _alternatives(r"[]|]x|y") == ["[]|]x", "y"]


def test_any_of_anchors_only_when_every_branch_starts_at_a_boundary() -> None:
    assert _any_of([r"\bcure\b", r"\bquit\w*|\babstain"], 0).pattern.startswith(r"\b(?:")
    assert not _any_of([r"\bcure\b", r"\bquit|abstain"], 0).pattern.startswith(r"\b(?:")


def test_outcome_words_match_as_the_plain_alternation(shared_dir: Path) -> None:
    r = attribution_rules()
    assert r.outcome_any.pattern.startswith(r"\b(?:")  # else the fast path is silently off
    plain = re.compile("|".join(f"(?P<o{k}>{p.pattern})" for k, (_, p) in enumerate(r.outcomes)), re.I)
    texts = _OWN + _ABBR_TEXTS + [rec.article.abstract for rec in itertools.islice(
        iter_records(shared_dir / "corpus" / "real.xml.gz"), 300) if isinstance(rec, ParsedArticle)]
    found = [[(m.span(), m.lastgroup) for m in r.outcome_any.finditer(t)] for t in texts]
    assert found == [[(m.span(), m.lastgroup) for m in plain.finditer(t)] for t in texts]
    assert sum(map(len, found)) > 100


def _real_texts(shared_dir: Path, n: int) -> list[str]:
    return [rec.article.title + "\n" + rec.article.abstract for rec in itertools.islice(
        iter_records(shared_dir / "corpus" / "real.xml.gz"), n) if isinstance(rec, ParsedArticle)]


def test_every_outcome_match_holds_a_keyword(shared_dir: Path) -> None:
    r = attribution_rules()
    texts = _OWN + _ABBR_TEXTS + [t for t, _ in _outcome_examples()] + _real_texts(shared_dir, 1000)
    seen = 0
    for (name, pat), words in zip(r.outcomes, r.outcome_keywords):
        for t in texts:
            for m in pat.finditer(t):
                assert any(w in fold_case(m.group()) for w in words), (name, m.group())
                seen += 1
    assert seen > 500


def _outcome_examples() -> list[tuple[str, str]]:
    return load_rules("attribution", AttributionRules).outcome_examples


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["DIED", "died", "Stroke", "R0", "r0", "cure", "CURED", " ", "-", ".", "lost",
                                 "weight", "ſtroke", "\u212aill", "D\u0130ED", "heal", "ing", "relaps"]), max_size=20))
def test_outcome_words_equal_the_whole_alternation_on_random_text(pieces: list[str]) -> None:
    text = " ".join(pieces)
    r = attribution_rules()
    want = [(m.span(), r.outcome_names[int(m.lastgroup[1:])]) for m in r.outcome_any.finditer(text)]  # type: ignore[index]
    assert [(m.span(), name) for m, name in outcome_words(text)] == want


def test_outcome_words_equal_the_whole_alternation_on_real_abstracts(shared_dir: Path) -> None:
    r = attribution_rules()
    texts = _OWN + _ABBR_TEXTS + _real_texts(shared_dir, 300)
    want = [[(m.span(), r.outcome_names[int(m.lastgroup[1:])]) for m in r.outcome_any.finditer(t)] for t in texts]  # type: ignore[index]
    assert [[(m.span(), name) for m, name in outcome_words(t)] for t in texts] == want
    assert sum(map(len, want)) > 100


def test_every_keyed_rule_match_holds_a_keyword(shared_dir: Path) -> None:
    """may_match skips a text without a rule's keywords: every match of the rule holds one."""
    r = attribution_rules()
    raw = load_rules("attribution", AttributionRules)
    assert r.keywords  # else the pre-checks are silently off
    texts = _OWN + _real_texts(shared_dir, 1000)
    for name, words in r.keywords.items():
        pat = getattr(r, name)
        found = [m.group() for t in texts + [x for x, _ in getattr(raw, name).examples] for m in pat.finditer(t)]
        assert found, name
        for hit in found:
            assert any(w in fold_case(hit) for w in words), (name, hit)
