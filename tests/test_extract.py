"""extract(): the pipeline contract, rule files, and sentence-level cases from tests/cases/sentences.jsonl.

Each case is a short results text written by us (never copied from an abstract) with the
measurements it must yield; "only": true also forbids any other measurement. Title and
METHODS default to a two-arm trial of zumab versus placebo, so arms have names.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractor.arms import comparison_phrase
from extractor.attribution import AttributionRules, attribution_rules
from extractor.extract import _timepoint, extract
from extractor.models import Article, Section
from extractor.nlp import check_examples, find_endpoints, sentences
from extractor.outcomes import outcome_at
from extractor.rules import load_rules

CASES = Path(__file__).parent / "cases" / "sentences.jsonl"
TITLE = "Zumab versus placebo in advanced zoma"
METHODS = "Patients were randomly assigned in a 2:1 ratio to receive zumab or placebo."


def article(*sections: tuple[str | None, str], title: str = TITLE) -> Article:
    secs, off = [], 0
    for label, text in sections:
        secs.append(Section(label=label, text=text, offset=off))
        off += len(text) + 1
    return Article(pmid="1", title=title, sections=secs)


def load_cases() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def case_params() -> list:
    """Cases as pytest params; a case with "xfail" (its reason) is a known gap, kept visible."""
    return [pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(reason=c["xfail"], strict=True)] if c.get("xfail") else [])
            for c in load_cases()]


def _matches(want: dict, got: dict) -> bool:
    for k, v in want.items():
        g = got.get(k)
        if isinstance(v, float) or isinstance(v, int) and not isinstance(v, bool):
            if g is None or abs(float(g) - v) > 1e-6:
                return False
        elif isinstance(v, str) and isinstance(g, str):
            if v.lower() != g.lower():
                return False
        elif v != g:
            return False
    return True


@pytest.mark.parametrize("case", case_params())
def test_sentence_case(case: dict) -> None:
    a = article(("METHODS", case.get("methods", METHODS)), (case.get("label", "RESULTS"), case["results"]),
                title=case.get("title", TITLE))
    _, ms = extract(a)
    got = [m.model_dump() for m in ms]
    for want in case["expect"]:
        assert any(_matches(want, g) for g in got), f"missing {want}\n got {got}"
    if case.get("only", True):
        assert len(got) == len(case["expect"]), f"extra measurements: {got}"
    for m in ms:
        assert a.abstract[m.start:m.end] == m.evidence


def test_cases_are_many_and_unique() -> None:
    cases = load_cases()
    assert len({c["id"] for c in cases}) == len(cases) >= 150


def test_contract_spans_sections_and_trial() -> None:
    a = article(("BACKGROUND", "Zoma is rare; 40% of patients die."), ("METHODS", METHODS),
                ("RESULTS", "Median overall survival was 7.5 months with zumab and 5.0 months with placebo "
                 "(hazard ratio for death, 0.61; 95% CI, 0.45 to 0.83; P=0.002)."),
                ("CONCLUSIONS", "Zumab prolonged survival (7.5 vs 5.0 months). NCT01234567."))
    trial, ms = extract(a)
    assert trial.registration == ["NCT01234567"] and trial.arms == ["zumab", "placebo"]
    assert sorted((m.kind, m.value) for m in ms) == [("hazard_ratio", 0.61), ("median", 5.0), ("median", 7.5)]
    for m in ms:
        assert m.section == "RESULTS" and a.abstract[m.start:m.end] == m.evidence


def test_no_results_gives_nothing() -> None:
    _, ms = extract(article((None, "We describe the rationale and design of a randomized trial.")))
    assert ms == []
    _, ms = extract(article())
    assert ms == []


# Each rule of rules/attribution.json with examples: the compiled pattern's name and how the
# code applies it (search, match or fullmatch), and for captured rules the group(s) it reads.
_FLAGGED = {
    "skip_sections": ("skip_sections", "search"), "rate_block": ("rate_block", "search"),
    "rate_after_block": ("rate_after", "search"), "individual_ae": ("individual_ae", "search"),
    "median_block": ("median_block", "search"), "outcome_after": ("outcome_after", "search"),
    "outcome_block_near": ("outcome_block_near", "match"), "outcome_block": ("outcome_block", "search"),
    "arm_stop": ("arm_stop", "match"), "ae3_head": ("ae3_head", "match"),
    "fixed_time_death": ("fixed_time_death", "match"), "ae3_tail": ("ae3_tail", "search"),
    "subgroup_boundary": ("subgroup_boundary", "search"), "label_block": ("label_block", "search"),
    "outcome_abbrev_head": ("outcome_abbrev_head", "search"),
    "outcome_abbrev_block": ("outcome_abbrev_block", "search"), "endpoint_after": ("endpoint_after", "match"),
    "named_event": ("named_event", "match"), "rate_outcome_skip": ("rate_outcome_skip", "fullmatch"),
    "rate_outcome_block": ("rate_outcome_block", "search"), "immune_response": ("immune_response", "search"),
    "arms_after_list": ("arms_after_list", "match"), "landmark_block": ("landmark_block", "search"),
    "ratio_own_endpoint": ("ratio_own_endpoint", "search"), "landmark_after": ("landmark_after", "match"),
    "rate_stat_block": ("rate_stat_block", "search"), "pre_hit_block": ("pre_hit_block", "search"),
    "median_pre_block": ("median_pre_block", "search"), "primary_endpoint": ("primary_endpoint", "search"),
    "both_groups": ("both_groups", "search"), "death_words": ("death_words", "search"),
    "endpoint_words": ("endpoint_words", "search"), "comparator_before": ("comparator_before", "search"),
    "non_result_before": ("non_result_before", "search"), "duration_threshold": ("duration_threshold", "search"),
    "rate_subject_after": ("rate_subject_after", "match"), "both_arms": ("both_arms", "search"),
    "median_cue": ("median_cue", "search"), "group_after_count": ("group_after_count", "match"),
    "endpoint_join": ("endpoint_join", "fullmatch"),
}
_CAPTURED = {
    "landmark_list": ("landmark_list", "search", ("nums",)), "arm_after": ("arm_after", "match", ("arm",)),
    "arm_before": ("arm_before", "search", ("arm", "arm2")), "arm_before_known": ("arm_before_known", "search", ("a", "b")),
    "subgroup_label": ("subgroup_label", "match", ("label",)),
    "subgroup_label_after": ("subgroup_label_after", "match", ("label",)),
    "outcome_phrase": ("outcome_phrase", "search", ("name",)), "outcome_abbrev": ("outcome_abbrev", "search", ("abbr",)),
    "rate_outcome": ("rate_outcome", "search", ("name",)), "score_outcome": ("score_outcome", "search", ("name",)),
    "inline_population": ("inline_pop", "search", ("pop", "pop2", "pop3", "pop4", "pop5")),
}


def test_rule_files_validate_and_examples_hold() -> None:
    check_examples()
    r = attribution_rules()
    raw = load_rules("attribution", AttributionRules)
    for rule, (name, how) in _FLAGGED.items():
        for text, want in getattr(raw, rule).examples:
            assert bool(getattr(getattr(r, name), how)(text)) is want, (rule, text)
    for rule, (name, how, groups) in _CAPTURED.items():
        for text, want in getattr(raw, rule).examples:
            m = getattr(getattr(r, name), how)(text)
            assert m and next((m.group(g) for g in groups if m.group(g)), None) == want, (rule, text)
    for text, x, y in raw.comparison_phrases.examples:
        assert comparison_phrase(text) == [x, y], text  # x "" = the previous ratio's
    for text in ["Week 20", "CD20 expression", "at 20 weeks", "ACR 20%"]:
        assert not r.score_outcome.search(text), text
    for text, want in raw.outcome_examples:
        found = outcome_at(text, [], 0, len(text))
        assert found and found[1] == want, text
    for text, want in raw.landmark.examples:  # the time point a landmark names, as written in records
        m = r.landmark.search(text)
        assert m and _timepoint(m) == want, text
    for f, pat in zip(raw.population_frames, r.frames):
        for text, want in f.examples:
            m = pat.search(text)
            assert m and m.group("pop") == want, text


def test_every_attribution_rule_with_examples_is_checked() -> None:
    with_examples = {name for name, f in AttributionRules.model_fields.items()
                     if isinstance(f.annotation, type) and "examples" in getattr(f.annotation, "model_fields", {})}
    assert with_examples - {"comparison_phrases", "landmark"} == set(_FLAGGED) | set(_CAPTURED)


def test_endpoint_phrases_longest_and_case() -> None:
    hits = find_endpoints("progression-free survival and overall survival; the os of cr")
    assert [h.code for h in hits] == ["PFS", "OS"]


def test_sentence_split_keeps_vs_and_p() -> None:
    t = "Rates were 44.8% vs. 27.8% (P<.001). Grade 3 events occurred (P=0.005). 12-month OS was 40%."
    assert [t[s:e] for s, e in sentences(t)] == [
        "Rates were 44.8% vs. 27.8% (P<.001).", "Grade 3 events occurred (P=0.005).", "12-month OS was 40%."]


# ---------------------------------------------------------------- robustness (hypothesis)
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from extractor.models import Measurement  # noqa: E402

SEEDS = [
    "Median overall survival was 11.2 months with zumab and 8.1 months with placebo (hazard ratio for death, 0.72; 95% CI, 0.58 to 0.90; P=0.004).",
    "Objective responses occurred in 31% and 9% of patients in the zumab and placebo groups, respectively.",
    "Grade 3 or higher adverse events occurred in 205 [86%] of 237 vs 160 [70%] of 228 patients; p<0.0001.",
    "The 1-, 2-, and 3-year survival rates were 58%, 34%, and 17% (HR 0\u00b778, 95% CI 0\u00b765\u20130\u00b793).",
]
_NOISE = st.sampled_from(list("0123456789.,;:()[]%-\u2013\u00b7 <>=") + ["vs.", " and ", "95% CI", "HR", "months"])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = list(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 12))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.integers(0, 2))
        if op == 0:
            text.insert(i, draw(_NOISE))
        elif text:
            j = min(i, len(text) - 1)
            if op == 1:
                del text[j]
            else:
                text[j] = draw(_NOISE)
    return "".join(text)


def _check_valid(a: Article) -> None:
    _, ms = extract(a)
    for m in ms:
        Measurement.model_validate(m.model_dump())
        assert a.abstract[m.start:m.end] == m.evidence
        assert m.value == m.value  # never NaN


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    _check_valid(article(("METHODS", METHODS), ("RESULTS", text)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_result_sentences_yield_valid_records(text: str) -> None:
    _check_valid(article(("METHODS", METHODS), ("RESULTS", text)))
