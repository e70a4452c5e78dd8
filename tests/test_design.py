"""Trial design facts: every rule example, our own abstract snippets, and the dev corpus floor."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from extractor import arm_spans, design
from extractor.design import Arm, Frame, find_arm, frame
from extractor.errors import RuleError
from extractor.models import Article, Section, Trial
from extractor.rules import load_rules

CASES = Path(__file__).parent / "cases" / "design.jsonl"
STOP = {"the", "of", "a", "an", "and", "with", "in", "group", "groups", "arm", "arms", "patients"}


def words(name: str, keep_stop: bool = False) -> set[str]:
    return {w for w in re.sub(r"[^a-z0-9+%<>=]+", " ", name.lower()).split() if keep_stop or w not in STOP}


def same(a: str, b: str) -> bool:
    """As the scorer compares names: one word set contains the other ("arm A": filler kept)."""
    wa, wb = words(a), words(b)
    if not wa or not wb:
        wa, wb = words(a, True), words(b, True)
    return bool(wa) and bool(wb) and (wa <= wb or wb <= wa)


def article(title: str, sections: list[list[str | None]], registry_ids: list[str] | None = None) -> Article:
    secs, off = [], 0
    for label, text in sections:
        secs.append(Section(label=label, text=text, offset=off))
        off += len(text) + 1
    return Article(pmid="1", title=title, sections=secs, registry_ids=registry_ids or [])


def load_cases() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------- rule file examples
R = design.DesignRules.model_validate(json.loads(
    (Path(design.__file__).parent / "rules" / "design.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("text,want", [e for r in R.registries for e in r.examples])
def test_registry_examples(text: str, want: list[str]) -> None:
    assert design.registrations(text) == want


@pytest.mark.parametrize("text,want,ok", [(t, r.phase, ok) for r in R.phases for t, ok in r.examples])
def test_phase_examples(text: str, want: str, ok: bool) -> None:
    assert (design.phase(text, []) == want) is ok


@pytest.mark.parametrize("text,skip", R.phase_skip.examples)
def test_phase_skip_examples(text: str, skip: bool) -> None:
    assert design.phase("", [("METHODS", text)]) is (None if skip else design.phase(text, []))


@pytest.mark.parametrize("text,want", [e for r in R.n_randomized for e in r.examples])
def test_n_randomized_examples(text: str, want: int) -> None:
    assert design.n_randomized(text) == want


def _example_texts(node: object) -> list[str]:
    """Every example text of the rule file (the first string of each example)."""
    if isinstance(node, dict):
        out = [ex[0] for ex in node.get("examples", []) if isinstance(ex, list) and ex and isinstance(ex[0], str)]
        return out + [t for k, v in node.items() if k != "examples" for t in _example_texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _example_texts(v)]
    return []


# every example of the rule file, and our own sentences where a start word is capitalised,
# repeated, inside a word, or next to a character (?i) folds onto a letter
_GATE_TEXTS = _example_texts(json.loads((Path(design.__file__).parent / "rules" / "design.json").read_text("utf-8"))) + [
    "Of 410 adults enrolled, among 398 recruited adults, 12 withdrew.",
    "AMONG 300 PATIENTS ENROLLED IN THIS TRIAL, INCLUDING 40 CHILDREN, MOST RECOVERED.",
    "In total 90 subjects were included in a within-subject design in 88 patients.",
    "The participants were 64 women; the sample was 80 infants; patients were 72 men.",
    "Within the study of 500 persons, in a randomized study in 90 people.",
    "In an analysis of 300 patients, we allocated 150 women to two diets; the team included 80 men.",
    "Thesis: they were then randomised to rest or to exercise, and this was randomized to receive A or B.",
    "Being randomly allocated, adults taking drug A or placebo, those given B, compared with C.",
    "Adults assigned by randomization to drug A or drug B.", "Adults allocated randomly to A or B.",
    "Each child was randomized to A or B.", "Mice are randomized to C or D.", "Eggs to be randomized to E or F.",
    "Adults given X or placebo daily.", "Adults treated with X or placebo.", "Adults consumed X or sham.",
    "Adults used Y or vehicle.", "All children were given drug A. A trial of drug B in adults; we gave drug C.", "The role of X versus Y in adults.", "The value of X compared with Y in adults.",
    "We randomly assigned 120 patients \u017fo; of 300 patients enrolled \u0131n 20 centres to receive X or Y.",
]


def _starts_rules() -> list[tuple[str, re.Pattern[str], tuple[str, ...]]]:
    comp = design.rules()
    return ([(f"n_randomized[{i}]", c.pattern, c.starts) for i, c in enumerate(comp.counts) if c.starts]
            + [(f"cue {c.pattern.pattern[:30]}", c.pattern, c.starts) for c in comp.arm_cues + comp.compare_cues if c.starts]
            + [(f"single-arm cue {cue.pattern[:30]}", cue, starts) for _, cue, starts in comp.single_arm_cues if starts])


@pytest.mark.parametrize("name,pattern,starts", _starts_rules(), ids=lambda x: x if isinstance(x, str) else "")
def test_rule_starts_are_where_its_matches_begin(name: str, pattern: re.Pattern[str], starts: tuple[str, ...]) -> None:
    """finditer_at (the pattern tried only at the rule's start words) finds what finditer does."""
    from extractor.design_rules import finditer_at
    for text in _GATE_TEXTS:
        got = [m.span() for m in finditer_at(pattern, text, text.lower(), starts)]
        assert got == [m.span() for m in pattern.finditer(text)], text


@pytest.mark.parametrize("text", _GATE_TEXTS + [
    "one hundred and twenty 1,000 2 000 3.5 12% <5 \u2265 6 \u017fix, 1:2, 10-20, x12, 5 %, twenty-one, TWO HUNDRED",
    "Forty-two\u00a0000 adults and 7 of 250, eighteen or nineteen; seventy\u2011five, \u0661\u0662 patients",
])
def test_number_starts_are_the_number_pattern_matches(text: str) -> None:
    from extractor.facts import number_starts
    assert number_starts(text, text.lower()) == [m.start() for m in design.rules().number.finditer(text)]


def test_rule_gates_never_hide_a_match() -> None:
    """A rule's keywords / require pattern hold wherever its pattern matches (they only skip texts)."""
    comp = design.rules()
    gated = [(comp.group_mention, comp.group_keywords, None), (comp.described_gate, comp.described_keywords, None),
             (comp.historical_own, (), comp.historical_require)]
    gated += [(c.pattern, c.keywords, c.require) for c in comp.counts]
    gated += [(c.pattern, c.keywords, None) for c in comp.arm_cues + comp.compare_cues]
    gated += [(g.pattern, g.keywords, None) for g in comp.arm_strip_first + comp.arm_strip + comp.arm_synonyms if g.keywords]
    phrases = [raw for raw, _ in R.arm_clean_examples] + [t for t, _ in R.arm_separator_examples + R.title_examples] + [
        "two 5-mg tablets of drugol on days 1, 8 and 15 every 3 weeks", "DRUGOL 5 MG/KG IV Q3W PLUS TAXOL (AUC 6)",
        "up to six cycles of the combination of A and B [ref] at a dose of 2 mg", "3 Capsules of drugol orally, twice-daily",
        "the intervention therapy condition", "a target area under the curve of 5 mg/mL x min", "Drug A added to B",
        "combining drugol with taxol", "matching placebo", "One sachet of powder", "those treated with drug"]
    matched = 0
    for pattern, keywords, require in gated:
        for text in _GATE_TEXTS + phrases:
            for m in pattern.finditer(text):
                matched += 1
                assert not keywords or any(k in text.lower() for k in keywords), (pattern.pattern, text)
                assert not require or require.search(m.group()), (pattern.pattern, text)
    assert matched > 50


@pytest.mark.parametrize("text,want", R.allocation.examples)
def test_allocation_examples(text: str, want: str) -> None:
    assert design.allocation_ratio(text) == want


@pytest.mark.parametrize("text,want", [e for r in R.arm_list_cues for e in r.examples])
def test_arm_cue_examples(text: str, want: str) -> None:
    assert any(m and m.group("arms") == want and any(k in text.lower() for k in c.keywords)
               for c in R.arm_list_cues for m in [re.search(c.pattern, text)])


@pytest.mark.parametrize("text,want", [e for r in R.population_cues for e in r.examples])
def test_population_examples(text: str, want: list[str]) -> None:
    assert design._populations(text) == want


def test_bad_rule_file_is_a_rule_error() -> None:
    class Strict(BaseModel):
        model_config = {"extra": "forbid"}
        registries: list[str]

    with pytest.raises(RuleError):
        load_rules("design", Strict)


# ---------------------------------------------------------------- our own abstract snippets
@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c["id"])
def test_case(case: dict) -> None:
    fr = frame(article(case.get("title", ""), case.get("sections", []), case.get("registry_ids")))
    want = case["expect"]
    for key in ("registration", "phase", "n_randomized", "allocation_ratio"):
        if key in want:
            assert getattr(fr.trial, key) == want[key], key
    if "arms" in want:
        assert len(fr.trial.arms) == len(want["arms"]), fr.trial.arms
        for got, exp in zip(fr.trial.arms, want["arms"]):
            assert same(got, exp), (fr.trial.arms, want["arms"])
    if "arms_exact" in want:  # where the scorer's word-subset match would hide a cut name
        assert fr.trial.arms == want["arms_exact"]
    if "populations" in want:
        assert fr.populations == want["populations"]
    for sentence, names in want.get("find_arm", []):
        got = [n for _, _, n in find_arm(sentence, fr)]
        assert len(got) == len(names) and all(same(g, n) for g, n in zip(got, names)), (sentence, got)


def test_find_arm_spans_are_ordered_and_disjoint() -> None:
    fr = Frame(trial=Trial(arms=["drugamab plus chemotherapy", "placebo plus chemotherapy"]),
               arms=[Arm("drugamab plus chemotherapy", ["drugamab"], True),
                     Arm("placebo plus chemotherapy", ["placebo"], False)])
    text = "PFS was 9.1 months in the drugamab group and 5.0 months with placebo plus chemotherapy."
    spans = find_arm(text, fr)
    assert [n for _, _, n in spans] == ["drugamab plus chemotherapy", "placebo plus chemotherapy"]
    assert text[spans[1][0]:spans[1][1]] == "placebo plus chemotherapy"
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_no_arms_no_spans() -> None:
    fr = frame(article("", [[None, "Nothing here."]]))
    assert fr.arms == [] and find_arm("placebo", fr) == []


@pytest.mark.parametrize("text,guarded", R.n_list_guard_examples)
def test_n_list_guard_examples(text: str, guarded: bool) -> None:
    comp = design.rules()
    m = re.match(r"\d+", text)
    assert bool(comp.n_list_guard.match(text, m.end())) is guarded


@pytest.mark.parametrize("text,want", R.arm_separator_examples)
def test_arm_separator_examples(text: str, want: list[str]) -> None:
    assert [c.name for c in design._split_arms(text)] == want


@pytest.mark.parametrize("text,want", R.group_mention.examples)
def test_group_mention_examples(text: str, want: list[str]) -> None:
    cands = design._group_arms([(None, text)])
    got = [f"{c.name} ({c.aliases[0]})" if c.aliases else c.name for c in cands]
    assert got == want


@pytest.mark.parametrize("text,want", R.arm_either.examples)
def test_arm_either_examples(text: str, want: list[str]) -> None:
    assert [c.name for c in design._split_arms(text)] == want


@pytest.mark.parametrize("text,want", [e for r in R.title_cues for e in r.examples])
def test_title_cue_examples(text: str, want: str) -> None:
    assert any(m and m.group("arms") == want for m in (re.search(c.pattern, text) for c in R.title_cues))
    assert len(design._title_arms(text)) == 2


# ---------------------------------------------------------------- the dev corpus (when ../shared is there)
def _scorer(shared_dir: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("score", shared_dir / "corpus" / "score.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_dev_corpus_floor(shared_dir: Path) -> None:
    """Measured 2026-12-02: registration 1.00, phase 1.00, n 0.87, arm recall 0.77; floors just under."""
    from extractor.parse import ParsedArticle, iter_records

    sc = _scorer(shared_dir)
    gold = {d["pmid"]: d["trial"] for d in map(json.loads, (shared_dir / "corpus" / "dev.jsonl").open())}
    arts = [r.article for r in iter_records(shared_dir / "corpus" / "dev.xml") if isinstance(r, ParsedArticle)]
    assert {a.pmid for a in arts} == set(gold)
    reg = ph = n = hit = total = 0
    for a in arts:
        t, g = frame(a).trial, gold[a.pmid]
        reg += set(t.registration) == set(g["registration"])
        ph += t.phase == g["phase"]
        n += t.n_randomized == g["n_randomized"]
        hit += sum(1 for x in g["arms"] if any(sc.same_name(x, y) for y in t.arms))
        total += len(g["arms"])
    k = len(arts)
    assert reg / k >= 0.97 and ph / k >= 0.95 and n / k >= 0.8 and hit / total >= 0.72, (reg / k, ph / k, n / k, hit / total)


def test_real_corpus_sample_frames_without_error(shared_dir: Path) -> None:
    """The first 400 real abstracts: no exception, valid Trial, arm spans inside the text."""
    from itertools import islice

    from extractor.parse import ParsedArticle, iter_records

    recs = islice((r for r in iter_records(shared_dir / "corpus" / "real.xml.gz") if isinstance(r, ParsedArticle)), 400)
    for r in recs:
        fr = frame(r.article)
        Trial.model_validate(fr.trial.model_dump())
        assert len(fr.trial.arms) == len(fr.arms) and all(a.name for a in fr.arms)
        for s in r.article.sections:
            for start, end, name in find_arm(s.text, fr):
                assert 0 <= start < end <= len(s.text) and name in fr.trial.arms


@pytest.mark.parametrize("text,rejected", R.arm_not_names_examples)
def test_arm_not_names_examples(text: str, rejected: bool) -> None:
    assert design._plausible(text) is not rejected


# ---------------------------------------------------------------- robustness
_PIECES = st.sampled_from([
    "Patients were randomly assigned in a 2:1 ratio to receive ", "drugamab", " or ", "placebo", ".",
    " versus ", "(n = 120)", "(arm A)", "; ", ", ", "NCT0123456", "7", "Phase II", "/", "(", ")", "[", "]",
    " 40 mg/m(2) ", " and either ", " the ", " group", "\u00b7", "\u2013", " with or without ", "EudraCT 2011-",
])


@settings(max_examples=150, deadline=None)
@given(title=st.text(max_size=80), body=st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=40))
def test_frame_never_raises_and_spans_are_valid(title: str, body: list[str]) -> None:
    text = "".join(body)
    fr = frame(article(title, [["METHODS", text], [None, text[::-1]]]))
    assert len(fr.trial.arms) == len(fr.arms)
    assert all(a.name and a.name == a.name.strip() for a in fr.arms)
    for start, end, name in find_arm(text, fr):
        assert 0 <= start < end <= len(text) and name in fr.trial.arms


@pytest.mark.parametrize("text,want", R.label_groups.examples)
def test_label_group_examples(text: str, want: list[str]) -> None:
    assert [c.name for c in design._label_arms(text)] == want


@pytest.mark.parametrize("text,control", R.strict_control_examples)
def test_strict_control_examples(text: str, control: bool) -> None:
    assert bool(design.rules().strict_control.match(text)) is control


@pytest.mark.parametrize("name,control", R.control_examples)
def test_control_examples(name: str, control: bool) -> None:
    assert design._is_control(name) is control


@pytest.mark.parametrize("raw,want", R.arm_clean_examples)
def test_arm_clean_examples(raw: str, want: str) -> None:
    """Doses, routes, schedules, parentheticals and lead-ins leave the short name."""
    assert design._clean(raw).name == want


@pytest.mark.parametrize("title,want", R.title_examples)
def test_title_examples(title: str, want: list[str]) -> None:
    assert [c.name for c in design._title_arms(title)] == want


@pytest.mark.parametrize("title,rejected", R.title_or_not_list.examples)
def test_title_or_not_list_examples(title: str, rejected: bool) -> None:
    assert bool(design.rules().title_or_not_list.search(title)) is rejected
    assert (design._title_arms(title) == []) is rejected


@pytest.mark.parametrize("span,want", R.arm_labels.examples)
def test_arm_label_examples(span: str, want: list[str]) -> None:
    assert [c.name for c in design._labelled_arms(span)] == want


@pytest.mark.parametrize("text,want", [e for r in R.single_arm_cues for e in r.examples])
def test_single_arm_cue_examples(text: str, want: str) -> None:
    assert any(m and m.group("arm") == want for m in (re.search(c.pattern, text) for c in R.single_arm_cues))


@pytest.mark.parametrize("text,single", R.single_arm_gate.examples)
def test_single_arm_gate_examples(text: str, single: bool) -> None:
    assert bool(design.rules().single_arm_gate.search(text)) is single


@pytest.mark.parametrize("text,want", R.historical_own.examples + R.historical_other.examples)
def test_historical_examples(text: str, want: list[str]) -> None:
    found = [m.group("id") for r in (R.historical_own, R.historical_other) for m in [re.search(r.pattern, text)] if m]
    assert found == want


@pytest.mark.parametrize("text,gated", R.described_gate.examples)
def test_described_gate_examples(text: str, gated: bool) -> None:
    assert bool(design.rules().described_gate.search(text)) is gated


@pytest.mark.parametrize("text,want", R.described_arm.examples)
def test_described_arm_examples(text: str, want: str) -> None:
    assert design.rules().described_arm.search(text).group("arm") == want


@pytest.mark.parametrize("span,want", R.dose_list.examples)
def test_dose_list_examples(span: str, want: list[str]) -> None:
    assert [c.name for c in design._split_arms(span)] == want


@pytest.mark.parametrize("label,text,want", R.list_section.examples)
def test_list_section_examples(label: str, text: str, want: list[str]) -> None:
    """An INTERVENTIONS section listing the arms; a long description is known by its short form."""
    assert [c.name for o in design._listed_interventions([(label, text)]) for c in o] == want
    assert design._listed_interventions([("METHODS", text)]) == []


@pytest.mark.parametrize("text,want", R.add_on_tail.examples)
def test_add_on_tail_examples(text: str, want: str) -> None:
    m = design.rules().add_on_tail.match(text)
    assert (m.group("extra").strip() if m else "") == want


@pytest.mark.parametrize("text,want", R.role_regimen.examples)
def test_role_regimen_examples(text: str, want: list[str]) -> None:
    assert (design._role_regimen(want[0], text) or "") == want[1]


@pytest.mark.parametrize("text,want", R.semicolon_list.examples)
def test_semicolon_list_examples(text: str, want: str) -> None:
    m = design.rules().semicolon_list.match(text)
    assert (m.group("rest") if m else "") == want


# ---------------------------------------------------------------- speed-ups that must match nothing else
PIECES = ["group", "arm", "Group", "ARMS", "s", " ", "  ", "-", "/", "+", "A", "II", "IV", "ab", "ZA", "(ZA)",
          "(ZA", "Z", ",", "(", ")", "\n", "_", "1", "sub", "\u00e9", "\u017f", "\u212a", "placebo", "Placebo",
          "the ", "The ", "drug", "high-dose", "PD1", "anti-", "-based", " alone", "-controlled", "\u0130"]
fragments = st.lists(st.sampled_from(PIECES), max_size=16).map("".join)


@settings(max_examples=300, deadline=None)
@given(fragments)
def test_definitions_are_finditer(text: str) -> None:
    """_long_form's windowed search finds what a plain finditer over the whole text finds."""
    plain = re.finditer(r"((?:[\w-]+\s+){0,5}[\w-]+)\s*\(ZA\)", text)
    assert design._definitions("ZA", text) == [m.group(1) for m in plain]


@settings(max_examples=300, deadline=None)
@given(fragments)
def test_group_phrases_are_finditer(text: str) -> None:
    """_add_aliases' "the X group" phrases: searched near each "group"/"arm", found as by finditer."""
    plain = design._GROUP_PHRASE.finditer(text)
    assert [m.span(1) for m in design._group_phrases(text)] == [m.span(1) for m in plain]


@settings(max_examples=1000, deadline=None)
@given(fragments)
def test_find_arm_precheck_drops_no_match(text: str) -> None:
    """find_arm's literal pre-check leaves out only terms that cannot match, and _find_literal
    matches as the pattern would: the result is that of one alternation of every term."""
    fr = Frame(trial=Trial(), arms=[Arm("placebo", ["placebo group", "PL"]), Arm("ZA (arm A)", ["ZA", "arm A", "sub"]),
                                    Arm("high-dose drug", ["the drug", "anti- PD1", "drug \u00e9"])])
    got = find_arm(text, fr)
    terms = arm_spans._matcher(fr)
    pat = arm_spans._arm_pattern(tuple(alt for alt, *_ in terms))
    want = [(m.start(), m.end(), terms[next(int(k[1:]) for k, v in m.groupdict().items() if v is not None)][1])
            for m in pat.finditer(text)]
    assert got == want
