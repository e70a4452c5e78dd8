"""find_mentions: typed numbers with their CI, p, counts and lists (cases in tests/cases/mentions.jsonl)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractor.mentions import Mention, _modifier_before, compiled, find_mentions, in_context, rules

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "mentions.jsonl").read_text(
    encoding="utf-8").splitlines() if line.strip() and not line.startswith("//")]


def _same(got: object, want: object) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and math.isclose(float(got), float(want), abs_tol=1e-9)  # type: ignore[arg-type]
    return got == want


def _describe(ms: list[Mention]) -> str:
    keep = ("type", "value", "unit", "ratio_kind", "cue", "ci_low", "ci_high", "ci_level", "p_value", "n",
            "n_total", "group", "group_index", "respectively", "not_reached", "flags")
    return "\n".join(str({k: getattr(m, k) for k in keep if getattr(m, k) not in (None, False, ())}) for m in ms)


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:60] for c in CASES])
def test_case(case: dict) -> None:
    got = find_mentions(case["text"])
    want = case["expect"]
    if not case.get("partial"):
        assert len(got) == len(want), f"{len(got)} mentions, expected {len(want)}:\n{_describe(got)}"
    pool = list(got)
    for w in want:
        hit = next((m for m in pool if all(_same(getattr(m, k), tuple(v) if isinstance(v, list) else v)
                                          for k, v in w.items() if k != "text")
                    and ("text" not in w or case["text"][m.value_start:m.value_end] == w["text"])), None)
        assert hit is not None, f"no mention like {w}; got:\n{_describe(got)}"
        pool.remove(hit)


def test_enough_cases() -> None:
    assert len(CASES) >= 100


@pytest.mark.parametrize("name", sorted(rules().patterns))
def test_pattern_examples(name: str) -> None:
    """Every pattern of rules/patterns.json matches its examples and none of its counter-examples."""
    rx = compiled().p[name]
    rule = rules().patterns[name]
    apply = getattr(rx, rule.mode)
    for ex in rule.examples:
        assert apply(ex), f"{name} should match {ex!r}"
        assert not rule.requires or any(lit in ex for lit in rule.requires), f"{name}: {ex!r} lacks `requires`"
        assert not rule.prefilter or re.search(rule.prefilter, ex), f"{name}: {ex!r} lacks `prefilter`"
    for ex in rule.counter_examples:
        assert not apply(ex), f"{name} should not match {ex!r}"


def test_prefilters_are_necessary() -> None:
    """A pattern's prefilter only skips texts it cannot match: wherever the pattern matches
    in a case sentence (or a window of one), the prefilter is found too."""
    from extractor.text import normalise
    texts = [normalise(c["text"]) for c in CASES] + [  # and odd letter cases
        "95% cOnFiDeNcE interval 1.2-3.4", "CredI 0.1-0.5", "UI, 1-2", "UNCERTAINTY INTERVAL 1 to 2",
        "Credible intervals 3-4", "median nOt yet reached", "OS was NE", "12 OF 40 patients (30%)"]
    texts += [t[i:i + 40] for t in texts for i in range(0, len(t), 7)]
    for name, rule in rules().patterns.items():
        if rule.prefilter:
            rx = compiled().p[name]
            for t in texts:
                if rx.search(t):
                    assert re.search(rule.prefilter, t), f"{name} matches {t!r} but its prefilter does not"


@pytest.mark.parametrize("name", sorted(rules().context))
def test_context_examples(name: str) -> None:
    """Each context rule marks the text of its examples (the words before a number), not its counter-examples."""
    rule = rules().context[name]
    for ex in rule.examples:
        assert in_context(name, ex), f"{name} should hold before {ex!r}"
    for ex in rule.counter_examples:
        assert not in_context(name, ex), f"{name} should not hold before {ex!r}"


def test_ratio_cues_cover_all_kinds() -> None:
    """Every cue example is found whole, as its own kind, and passes the literal pre-check."""
    cue = compiled().cue
    examples = rules().ratio_cue_examples
    assert set(examples) == {"hazard_ratio", "odds_ratio", "risk_ratio"}
    for kind, texts in examples.items():
        for text in texts:
            m = cue.search(text)
            assert m and m.lastgroup == kind and m.end() == len(text), text
            assert any(lit in text for lit in compiled().cue_literals), f"{text!r} escapes the literal pre-check"
    assert not any(m.lastgroup == "risk_ratio" for m in cue.finditer("relative risk reduction"))
    assert cue.search("ORR and CR were higher") is None


def _starts(items: list) -> tuple[set[str], bool] | None:  # type: ignore[type-arg]
    """(characters a match of parsed regex `items` can start with, whether it can be empty);
    None where that is not worked out (a class like \\w, a backreference ...)."""
    out: set[str] = set()
    for op, av in items:
        op = str(op)
        if op == "LITERAL":
            return out | {chr(av)}, False
        if op == "IN":
            for o, a in av:
                if str(o) == "LITERAL":
                    out.add(chr(a))
                elif str(o) == "RANGE":
                    out.update(map(chr, range(a[0], a[1] + 1)))
                else:
                    return None
            return out, False
        if op in ("ASSERT", "ASSERT_NOT", "AT"):
            continue  # consumes nothing
        if op == "SUBPATTERN":
            if av[1] & re.IGNORECASE:
                return None  # other cases would start it too
            subs, rep_min = [list(av[3])], 1
        elif op == "BRANCH":
            subs, rep_min = [list(b) for b in av[1]], 1
        elif op in ("MAX_REPEAT", "MIN_REPEAT"):
            subs, rep_min = [list(av[2])], av[0]
        else:
            return None
        found = [_starts(x) for x in subs]
        if any(f is None for f in found):
            return None
        out.update(*(f[0] for f in found))  # type: ignore[index]
        if rep_min and not any(f[1] for f in found):  # type: ignore[index]
            return out, False
    return out, True


def test_every_ratio_cue_starts_with_a_listed_character() -> None:
    """The cue regex is tried only at ratio_cue_starts: every cue alternative must start there."""
    from re import _parser  # type: ignore[attr-defined]

    starts = set(rules().ratio_cue_starts)
    for kind, alts in rules().ratio_cues.items():
        for alt in alts:
            parsed = _parser.parse(alt)
            first = None if parsed.state.flags & re.IGNORECASE else _starts(list(parsed))
            assert first is not None and not first[1], alt
            assert first[0] <= starts, f"{alt!r} can start with {sorted(first[0] - starts)}"


def test_rule_files_are_validated() -> None:
    """A rule file with a key the model does not know, or no file at all, is a RuleError."""
    from pydantic import BaseModel, ConfigDict

    from extractor.errors import RuleError
    from extractor.rules import load_rules

    class OnlyNum(BaseModel):
        model_config = ConfigDict(extra="forbid")
        num: str

    with pytest.raises(RuleError, match="patterns.json"):
        load_rules("patterns", OnlyNum)
    with pytest.raises(RuleError, match="not found"):
        load_rules("no_such_rules", OnlyNum)


def _sane(text: str, ms: list[Mention]) -> None:
    for m in ms:
        assert m.type in ("ratio", "duration", "percent")
        assert 0 <= m.start <= m.value_start < m.value_end <= m.end <= len(text)
        assert m.not_reached or math.isfinite(m.value)
        if m.type == "ratio":
            assert m.unit is None
        if m.type == "percent":
            assert m.unit == "%"
        if m.type == "duration":
            assert m.unit in (None, "months", "weeks", "days", "years")
        if m.cue is not None:
            assert m.cue_start is not None and text[m.cue_start:m.cue_start + len(m.cue)] == m.cue
        if m.n is not None and m.n_total is not None:
            assert m.n >= 0 and m.n_total >= 0
        assert (m.group is None) == (m.group_index is None)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    _sane(text, find_mentions(text))


_TEMPLATES = [c["text"] for c in CASES]
_MUTATIONS = st.lists(st.tuples(st.integers(0, 400), st.sampled_from(
    list("0123456789.,;:()[]%-–−·  /=<>≥") + [" ", "", "vs", " to ", "95% CI", "P", "months", "HR"])), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_TEMPLATES), _MUTATIONS, st.booleans())
def test_mutated_sentences_never_raise(text: str, edits: list[tuple[int, str]], delete: bool) -> None:
    for pos, s in edits:
        pos = pos % (len(text) + 1)
        text = text[:pos] + s + text[pos + (1 if delete else 0):]
    _sane(text, find_mentions(text))


def test_spans_point_into_original_text() -> None:
    text = "median 8\u00b74 months (95% CI 6\u00b71\u201310\u00b72) vs 5\u00b70 months; HR 0\u00b752 (0\u00b740\u20130\u00b768)"
    ms = find_mentions(text)
    assert [text[m.value_start:m.value_end] for m in ms] == ["8\u00b74", "5\u00b70", "0\u00b752"]
    assert re.sub(r"\s", "", text[ms[2].cue_start:ms[2].value_start]).startswith("HR")


_TYPE = {"median": "duration", "hazard_ratio": "ratio", "odds_ratio": "ratio", "risk_ratio": "ratio", "rate": "percent"}


def test_dev_corpus_values_are_found(shared_dir: Path) -> None:
    """Each gold result of the dev corpus has a mention of its type, value and CI in its evidence span."""
    from extractor.text import normalise

    total = found = 0
    for line in (shared_dir / "corpus" / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        texts = [s["text"] for s in doc["sections"]]
        cache: dict[str, list[Mention]] = {}
        for g in doc["measurements"]:
            total += 1
            ev = normalise(g["evidence"])
            where = next(((tx, normalise(tx).find(ev)) for tx in texts if ev in normalise(tx)), None)
            if where is None:
                continue
            tx, a = where
            ms = cache.setdefault(tx, find_mentions(tx))
            tol = 0.51 if g["kind"] == "rate" and g.get("n") is not None else 1e-6
            if any(m.type == _TYPE[g["kind"]] and a - 5 <= m.value_start and m.value_end <= a + len(ev) + 5
                   and abs(m.value - g["value"]) <= tol
                   and all(g[f] is None or (getattr(m, f) is not None and abs(getattr(m, f) - g[f]) < 1e-6)
                           for f in ("ci_low", "ci_high")) for m in ms):
                found += 1
    assert total > 250
    assert found / total >= 0.98, f"mention recall {found}/{total}"


def test_real_abstracts_never_raise(shared_dir: Path) -> None:
    """The first few hundred real abstracts: no exception, and every mention sane."""
    from extractor.parse import ParsedArticle, iter_records

    seen = 0
    for rec in iter_records(shared_dir / "corpus" / "real.xml.gz"):
        if not isinstance(rec, ParsedArticle):
            continue
        for sec in rec.article.sections:
            _sane(sec.text, find_mentions(sec.text))
        seen += 1
        if seen >= 300:
            break
    assert seen == 300


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["adjusted", "Adjusted", "un", "-", " ", "  ", "\u00a0", "Cox", "cause-specific",
                                 "multivariable", "HR", "the", "\u212aM", "ratio", "("]), max_size=12))
def test_modifier_pre_check_never_changes_the_search(pieces: list[str]) -> None:
    text = "".join(pieces)
    found = _modifier_before(text, len(text))
    want = compiled().modifier.search(text[-60:])
    assert (found and found.span()) == (want and want.span())
