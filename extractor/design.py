"""Frame an abstract: the trial's design facts (registry ids, phase, size, arms, cohorts).

Attribution needs to know, before it reads any number, which groups the abstract compares
and how the text names them; this module answers that from the title and METHODS, with
every vocabulary and cue pattern kept as data in rules/design.json.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from .models import Article, Trial
from .rules import Rule, load_rules

__all__ = ["Arm", "Frame", "frame", "find_arm", "registrations", "phase", "n_randomized", "allocation_ratio", "rules"]


# ---------------------------------------------------------------- rules (validated data)
_Rule = Rule  # rule-file models reject unknown keys


class Registry(_Rule):
    name: str
    hints: list[str]  # lower-case literals one of which every id (or its context) contains: else skipped
    require: str | None = None  # a pattern every id's own text matches, cheap to search (starts with a literal)
    pattern: str
    format: str
    upper: bool  # ids written in lower case ("chictr-inr-...") are upper-cased after the prefix
    examples: list[tuple[str, list[str]]]


class PhaseRule(_Rule):
    pattern: str
    phase: str
    examples: list[tuple[str, bool]]


class SkipRule(_Rule):
    pattern: str
    examples: list[tuple[str, bool]]


class CountRule(_Rule):
    keywords: list[str]  # lower-case words a sentence must contain one of before `pattern` is tried
    pattern: str
    weight: int
    nonrandomized_only: bool
    examples: list[tuple[str, int | None]]


class ValueRule(_Rule):
    pattern: str
    examples: list[tuple[str, str]]


class CueRule(_Rule):
    kind: Literal["randomization", "compare"]
    keywords: list[str]
    pattern: str
    examples: list[tuple[str, str]]


class TitleRule(_Rule):
    kind: Literal["placebo", "pair"]  # "trial of X" + placebo, or "comparison of A and B"
    pattern: str
    examples: list[tuple[str, str]]


class ListRule(_Rule):
    pattern: str
    examples: list[tuple[str, list[str]]]


class EitherRule(_Rule):
    pattern: str
    examples: list[tuple[str, list[str]]]


class PopulationRule(ListRule):
    keywords: list[str]  # lower-case words the text must contain one of before `pattern` is tried


class SingleArmRule(_Rule):
    source: Literal["title", "abstract"]
    pattern: str  # group "arm": the treatment phrase
    examples: list[tuple[str, str]]


class ListSectionRule(_Rule):
    label: str  # sections whose label says they list the arms
    count: str  # a group size; two or more in a sentence make it the list
    examples: list[tuple[str, str, list[str]]]


class GroupRule(_Rule):
    pattern: str
    generic: str
    organization: str  # "Southwest Oncology Group" is a trial group, not an arm
    examples: list[tuple[str, list[str]]]


class DesignRules(_Rule):
    registries: list[Registry]
    phases: list[PhaseRule]
    phase_skip: SkipRule
    number_words: dict[str, int]
    person_words: list[str]
    n_randomized: list[CountRule]
    n_list_guard: str
    n_list_guard_examples: list[tuple[str, bool]]
    allocation: ValueRule
    arm_list_cues: list[CueRule]
    arm_either: EitherRule
    arm_separators: str
    arm_separator_examples: list[tuple[str, list[str]]]
    title_cues: list[TitleRule]
    title_prefix: str
    title_or_not_list: SkipRule
    shared_head_modifiers: str
    group_mention: GroupRule
    label_groups: ListRule
    arm_labels: ListRule
    arm_list_end: str
    historical_own: ListRule
    described_gate: SkipRule
    role_label: str
    list_section: ListSectionRule
    dose_list: ListRule
    described_arm: ValueRule
    add_on_tail: ValueRule  # "X alone" vs a bare "X": what the text adds to X names the other arm
    role_regimen: ListRule  # "the experimental regimen of A plus B": what a role-named arm gives
    semicolon_list: ValueRule  # the arms after the first of "A (DC); B (DCb); or C (VC)."
    historical_other: ListRule
    single_arm_gate: SkipRule
    single_arm_cues: list[SingleArmRule]
    single_arm_not: str
    arm_strip_first: list[str]
    arm_tail_cut: str
    arm_synonyms: list[tuple[str, str]]
    arm_strip: list[str]
    arm_not_names: str
    abbreviations_not_arms: str
    arm_not_names_examples: list[tuple[str, bool]]
    control_words: str
    strict_control: str
    strict_control_examples: list[tuple[str, bool]]
    experimental_words: str
    control_examples: list[tuple[str, bool]]
    filler_words: list[str]
    alias_stopwords: list[str]
    population_cues: list[PopulationRule]
    arm_clean_examples: list[tuple[str, str]]
    title_examples: list[tuple[str, list[str]]]


@dataclass(frozen=True)
class _ListSection:
    label: re.Pattern[str]
    count: re.Pattern[str]


@dataclass(frozen=True)
class _Compiled:
    registries: list[tuple[tuple[str, ...], re.Pattern[str] | None, re.Pattern[str], str, bool]]
    phases: list[tuple[re.Pattern[str], str]]
    phase_skip: re.Pattern[str]
    counts: list[tuple[tuple[str, ...], re.Pattern[str], int, bool, bool]]
    number: re.Pattern[str]
    n_list_guard: re.Pattern[str]
    number_words: dict[str, int]
    allocation: re.Pattern[str]
    arm_cues: list[tuple[tuple[str, ...], re.Pattern[str]]]
    compare_cues: list[tuple[tuple[str, ...], re.Pattern[str]]]
    arm_either: re.Pattern[str]
    arm_sep: re.Pattern[str]
    title_cues: list[tuple[str, re.Pattern[str]]]
    title_prefix: re.Pattern[str]
    title_or_not_list: re.Pattern[str]
    shared_head: re.Pattern[str]
    group_mention: re.Pattern[str]
    group_generic: re.Pattern[str]
    group_org: re.Pattern[str]
    label_groups: re.Pattern[str]
    arm_labels: re.Pattern[str]
    arm_list_end: re.Pattern[str]
    historical_own: re.Pattern[str]
    described_gate: re.Pattern[str]
    role_label: re.Pattern[str]
    list_section: "_ListSection"
    dose_list: re.Pattern[str]
    described_arm: re.Pattern[str]
    add_on_tail: re.Pattern[str]
    role_regimen: str
    semicolon_list: re.Pattern[str]
    historical_other: re.Pattern[str]
    single_arm_gate: re.Pattern[str]
    single_arm_cues: list[tuple[str, re.Pattern[str]]]
    single_arm_not: re.Pattern[str]
    arm_synonyms: list[tuple[re.Pattern[str], str]]
    arm_tail: re.Pattern[str]
    arm_strip_first: list[re.Pattern[str]]
    arm_strip: list[re.Pattern[str]]
    arm_not_names: re.Pattern[str]
    abbr_not: re.Pattern[str]
    control: re.Pattern[str]
    strict_control: re.Pattern[str]
    experimental: re.Pattern[str]
    filler: frozenset[str]
    alias_stop: frozenset[str]
    populations: list[tuple[tuple[str, ...], re.Pattern[str]]]


@lru_cache(maxsize=1)
def rules() -> _Compiled:
    """design.json, validated and compiled once (a bad pattern fails here, not mid-corpus)."""
    r = load_rules("design", DesignRules)
    words = sorted(r.number_words, key=len, reverse=True)
    alt = "|".join(words)
    num = (r"\b(?=[\dzotfsenhZOTFSENH])(?<![\d.,:/<>\u2264\u2265+-])(?<![<>\u2264\u2265][\s\xa0])(?:\d{1,3}(?:[,\s\xa0]\d{3})+(?!\d)|\d+)"
           r"(?![\d:%]|[.,]\d|\s?%)|\b(?:(?:" + alt
           + r")(?:[\s-]+(?:and\s+)?(?:" + alt + r"))*)\b")
    num = "(?:" + num + ")"
    person = "(?:" + "|".join(map(re.escape, r.person_words)) + ")"
    return _Compiled(
        registries=[(tuple(g.hints), re.compile(g.require) if g.require else None, re.compile(g.pattern), g.format, g.upper)
                    for g in r.registries],
        phases=[(re.compile(p.pattern, re.I), p.phase) for p in r.phases],
        phase_skip=re.compile(r.phase_skip.pattern, re.I),
        counts=[(tuple(c.keywords), re.compile(c.pattern.replace("NUM", num).replace("PERSON", person)),
                 c.weight, c.nonrandomized_only, c.pattern.startswith("(?i)(NUM)")) for c in r.n_randomized],
        number=re.compile("(?i)" + num),
        n_list_guard=re.compile(r.n_list_guard.replace("NUM", num)),
        number_words=r.number_words,
        allocation=re.compile(r.allocation.pattern),
        arm_cues=[(tuple(c.keywords), re.compile(c.pattern)) for c in r.arm_list_cues if c.kind == "randomization"],
        compare_cues=[(tuple(c.keywords), re.compile(c.pattern)) for c in r.arm_list_cues if c.kind == "compare"],
        arm_either=re.compile(r.arm_either.pattern),
        arm_sep=re.compile(r.arm_separators),
        title_cues=[(c.kind, re.compile(c.pattern)) for c in r.title_cues],
        title_prefix=re.compile(r.title_prefix),
        title_or_not_list=re.compile(r.title_or_not_list.pattern),
        shared_head=re.compile(r.shared_head_modifiers),
        group_mention=re.compile(r.group_mention.pattern),
        group_generic=re.compile(r.group_mention.generic),
        group_org=re.compile(r.group_mention.organization),
        label_groups=re.compile(r.label_groups.pattern),
        arm_labels=re.compile(r.arm_labels.pattern),
        arm_list_end=re.compile(r.arm_list_end),
        historical_own=re.compile(r.historical_own.pattern),
        described_gate=re.compile(r.described_gate.pattern),
        role_label=re.compile(r.role_label),
        list_section=_ListSection(re.compile(r.list_section.label), re.compile(r.list_section.count)),
        dose_list=re.compile(r.dose_list.pattern),
        described_arm=re.compile(r.described_arm.pattern),
        add_on_tail=re.compile(r.add_on_tail.pattern),
        role_regimen=r.role_regimen.pattern,
        semicolon_list=re.compile(r.semicolon_list.pattern),
        historical_other=re.compile(r.historical_other.pattern),
        single_arm_gate=re.compile(r.single_arm_gate.pattern),
        single_arm_cues=[(c.source, re.compile(c.pattern)) for c in r.single_arm_cues],
        single_arm_not=re.compile(r.single_arm_not),
        arm_synonyms=[(re.compile(p), rep) for p, rep in r.arm_synonyms],
        arm_tail=re.compile(r.arm_tail_cut),
        arm_strip_first=[re.compile(s) for s in r.arm_strip_first],
        arm_strip=[re.compile(s) for s in r.arm_strip],
        arm_not_names=re.compile(r.arm_not_names),
        abbr_not=re.compile(r.abbreviations_not_arms),
        control=re.compile(r.control_words),
        strict_control=re.compile(r.strict_control),
        experimental=re.compile(r.experimental_words),
        filler=frozenset(r.filler_words),
        alias_stop=frozenset(r.alias_stopwords),
        populations=[(tuple(p.keywords), re.compile(p.pattern)) for p in r.population_cues],
    )


# ---------------------------------------------------------------- public types
@dataclass
class Arm:
    """One compared group: its short name, other ways the text names it, and its role."""

    name: str
    aliases: list[str] = field(default_factory=list)
    experimental: bool = True


@dataclass
class Frame:
    """What attribution needs to know about the trial before reading its numbers."""

    trial: Trial
    arms: list[Arm]
    populations: list[str] = field(default_factory=list)
    # find_arm's terms (built on first use): regex, arm name, pre-check words, literal words (see _matcher)
    _terms: list[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[tuple[str, bool], ...] | None]] | None = field(
        default=None, repr=False, compare=False)


# ---------------------------------------------------------------- registry ids, phase, size
def registrations(text: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Registry ids named in `text` and in `extra` (DataBankList), normalised as the gold writes them."""
    found: list[tuple[int, str]] = []
    for src_i, src in enumerate([text, *extra]):
        low = src.lower()
        for hints, require, pat, fmt, upper in rules().registries:
            if not any(h in low for h in hints) or require and not require.search(src):
                continue  # the patterns start with \b or a lookbehind: slow to scan for
            for m in pat.finditer(src):
                groups = [g for g in m.groups() if g is not None]
                groups = [g.upper() for g in groups] if upper else groups
                found.append((src_i * 10**9 + m.start(), fmt.format(*groups)))
    out: list[str] = []
    for _, rid in sorted(found):
        if rid not in out:
            out.append(rid)
    return out


_SENT_END = re.compile(r"[.;!?](?<!\bvs.)(?<!\bv.)(?<!\be\.g.)(?<!\bi\.e.)(?<!\bet al.)(?=\s+[A-Z0-9(\[])|\n")


@lru_cache(maxsize=64)
def _sentences(text: str) -> tuple[tuple[int, str], ...]:
    """Rough sentence split that keeps offsets ("vs." and "e.g." do not end a sentence)."""
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        if m.group() == ";" and text.count("(", start, m.start()) > text.count(")", start, m.start()):
            continue  # "(N=140; 13-19 years)"
        out.append((start, text[start:m.end()]))
        start = m.end()
    if start < len(text):
        out.append((start, text[start:]))
    return tuple((s + len(t) - len(t.lstrip()), t.strip()) for s, t in out if t.strip())


def phase(title: str, sections: list[tuple[str | None, str]]) -> str | None:
    """The trial's own phase: the title's first, else the first body mention not about another trial."""
    comp = rules()
    for label, text in [(None, title), *sections]:
        if label and re.search(r"(?i)conclusion|interpretation|discussion", label):
            continue
        for _, sent in _sentences(text):
            if "phase" not in sent.lower():
                continue
            hits = []
            for pat, ph in comp.phases:
                hits += [(m.start(), ph) for m in pat.finditer(sent)]
            if not hits:
                continue
            if label is not None or text is not title:
                if comp.phase_skip.search(sent):
                    continue
            return min(hits)[1]
    return None


def _to_int(token: str, words: dict[str, int]) -> int | None:
    token = token.strip().lower()
    if re.fullmatch(r"\d{1,3}(?:[,\s\xa0]\d{3})+|\d+", token):
        return int(re.sub(r"\D", "", token))
    total = current = 0
    for w in re.split(r"[\s-]+", token):
        if w == "and":
            continue
        v = words.get(w)
        if v is None:
            return None
        if v == 100:
            current = (current or 1) * 100
        elif v == 1000:
            total += (current or 1) * 1000
            current = 0
        else:
            current += v
    return total + current or None


_RANDOMIZED = re.compile(r"(?i)\brandomi[sz]|\brandomly\b")


def n_randomized(text: str, design_text: str | None = None) -> int | None:
    """Total randomized (else enrolled, else treated) when the abstract states it as one number.

    A count followed by "and N to/were ..." is one arm of a list, not the total: skipped.
    Weakest cues ("in 560 patients") are read only in `design_text` (not RESULTS) when given.
    """
    comp = rules()
    sentences = _sentences(text)
    randomized = any(_RANDOMIZED.search(s) and not comp.phase_skip.search(s) for _, s in sentences)
    design_sents = sentences if design_text is None else _sentences(design_text)
    best: tuple[int, int, int] | None = None
    lower = {s: s.lower() for _, s in (*sentences, *design_sents)}
    numbers: dict[str, list[int]] = {}
    for keywords, pat, weight, nonrandomized_only, leading_num in comp.counts:
        if nonrandomized_only and randomized or best is not None and weight < best[0]:
            continue  # a lighter cue never beats the count already found
        for start, sent in (sentences if weight >= 0 else design_sents):
            if best is not None and weight == best[0] and start >= -best[1]:
                break  # nor does a later one of the same weight
            low = lower[sent]
            if not any(k in low for k in keywords):
                continue
            if leading_num:  # try the pattern only where a number starts
                if sent not in numbers:
                    numbers[sent] = [m.start() for m in comp.number.finditer(sent)]
                found = (pat.match(sent, pos) for pos in numbers[sent])
                matches = [m for m in found if m]
            else:
                matches = list(pat.finditer(sent))
            for m in matches:
                n = _to_int(next(g for g in m.groups() if g), comp.number_words)
                if n is None or n < 6 or comp.n_list_guard.match(sent, m.end(m.lastindex or 1)):
                    continue
                key = (weight, -(start + m.start()), n)
                if best is None or key[:2] > best[:2]:
                    best = key
    return best[2] if best else None


_RATIO_HINT = re.compile(r"\d\s?:\s?\d")


def allocation_ratio(text: str) -> str | None:
    """The allocation ratio as written ("2:1", "1:1:1"), else None."""
    if not _RATIO_HINT.search(text):
        return None  # the pattern's ratio needs "digit:digit"; its searched-for prefixes are slow to scan
    m = rules().allocation.search(text)
    return re.sub(r"\s", "", m.group(1)) if m else None


# ---------------------------------------------------------------- arms
_ABBR = re.compile(r"\(([A-Z][A-Za-z0-9/+-]{0,11}|[a-z]?[A-Z]{2,}[A-Za-z0-9/+-]{0,8})(?:\)|[;,]\s)")  # "(mEOC+P; dosing ...)"
_LABEL = re.compile(r"(?i)[(\[;,]\s*((?:arm|group|cohort)\s+[A-Z0-9]{1,2})\s*[)\];,]")
_DOSE = re.compile(r"(?i)\b\d+(?:[.\u00b7]\d+)?\s*(?:mg|g|\u03bcg|\u00b5g|mcg|ml|IU|Gy)(?:/(?:kg|ml|day|d))?\b")


@dataclass
class _Cand:
    name: str
    aliases: list[str]
    dose: str | None = None
    control: bool = False


def _clean(part: str) -> _Cand:
    """A raw arm phrase -> short name, the aliases it defines ("(PemOx)", "(arm A)"), its dose."""
    comp = rules()
    aliases = [m.group(1) for m in _LABEL.finditer(part + ")")]
    abbrs = [m.group(1) for m in _ABBR.finditer(part) if not comp.abbr_not.match(m.group(1))]
    dose = _DOSE.search(part)
    s = part
    for pat, rep in comp.arm_synonyms:
        s = pat.sub(rep, s)
    raw = s  # everything but the dose stripped: kept when the dose is the arm ("2 x 8 Gy")
    for pat in comp.arm_strip_first[1:]:
        raw = pat.sub("", raw)
    raw = comp.arm_tail.sub("", raw)
    for pat in comp.arm_strip_first:
        s = pat.sub("", s)
    s = comp.arm_tail.sub("", s)
    control = _is_control(re.sub(r"\s*\([^()]*\)?", "", s))
    for pat in comp.arm_strip:
        s = pat.sub(" ", s).strip()
    s = re.sub(r"\s*:.*$", "", s)  # "A (n = 40): either 40000 IU ..." - the dosing detail
    if not re.search(r"[A-Za-z]{2}", re.sub(r"(?i)\b(?:to|either|receive|or|and)\b", "", s)):
        s = raw  # the dose is the arm ("2 x 8 Gy")
    s = re.sub(r"\s*\([^()]*\)?", "", s)  # remaining parentheticals: abbreviations, kept as aliases
    s = re.sub(r"\s+", " ", s).strip(" ,;:-")
    for _ in range(2):
        s = re.sub(r"(?i)^(?:to|either|receive|with|the|an?|in|or|and|our|their|of)\s+", "", s)
        s = re.sub(r"(?i)\s+(?:and|or|plus|with|in|of|the|a|at|to|on|group|arm)$", "", s).strip(" ,;:-")
    for a in abbrs:
        if a.lower() not in {x.lower() for x in aliases} and not re.fullmatch(r"(?i)arm|group|n|[A-Z]", a):
            aliases.append(a)
    s = " ".join(w.lower() if re.fullmatch(r"[A-Z][a-z]{2,}(?:-[A-Z]?[a-z]+)*", w) else w for w in s.split())
    return _Cand(s, aliases, dose.group(0) if dose else None, control)


def _plausible(name: str) -> bool:
    words = name.split()
    if not words or len(words) > 6 or len(name) < 2:
        return False
    if re.match(r"(?i)(?:this|these|that|which|patients?|participants?|subjects?|we|our|their|its|it|them|"
                r"one|two|three|four|five|p\b|ci\b|hr\b|median|months?|years?|weeks?|days?)\b", name):
        return False
    if re.match(r"\d", name) and not re.search(
            r"(?i)^\d+(?:[.,]\d+)?(?:\s*(?:x\s*\d+(?:[.,]\d+)?\s*)?(?:Gy|mg|g|ml|IU)\b|-[a-z]{2,})", name):
        return False
    if rules().arm_not_names.search(name):
        return False
    return bool(re.search(r"[A-Za-z]{2}", name))


_BRACKETS = re.compile(r"[()\[\]]")
_HIDE = str.maketrans({",": "\0", ";": "\1", " ": "\2", ".": "\3"})


@lru_cache(maxsize=256)
def _protect(span: str) -> str:
    """Hide separators inside parentheses/brackets so "(arm A, 159; arm B)" is not split."""
    if "(" not in span and "[" not in span:
        return span
    out, depth, last = [], 0, 0
    for m in _BRACKETS.finditer(span):
        seg = span[last:m.start()]
        out.append(seg.translate(_HIDE) if depth else seg)
        depth = depth + 1 if m.group() in "([" else max(0, depth - 1)
        out.append(m.group())
        last = m.end()
    seg = span[last:]
    out.append(seg.translate(_HIDE) if depth else seg)
    return "".join(out)


def _unprotect(s: str) -> str:
    return s.replace("\0", ",").replace("\1", ";").replace("\2", " ").replace("\3", ".")


_LAST_OR = re.compile(r"(?i)\s(?:or|versus|vs\.?)\s(?!.*\s(?:or|versus|vs\.?)\s)")


_TWO_GROUPS = re.compile(r"(?i)^(?P<a>(?:(?:an?|the)\s+[^,;]+?|.+?\b(?:group|arm)(?:\s*\([^()]*\))?))\s*,?\s+and\s+"
                         r"(?P<b>(?:an?|the)\s+[^,;]+?\b(?:group|arm)s?\b.*)$")


def _split_arms(span: str, short_forms: bool = False) -> list[_Cand]:
    comp = rules()
    two = _TWO_GROUPS.match(span)
    if two:  # "an experimental group (X) and a control group (Y)"
        span = two.group("a") + " or " + two.group("b")
    labelled = _labelled_arms(span) or _dose_arms(span)
    if labelled:
        return labelled
    text = _protect(span)
    wow = re.match(r"(?i)^(?P<base>.+?)\s+with\s+or\s+without\s+(?P<x>[^,;]+)", text)
    if wow:  # "six cycles of gemtabine and cisplatin with or without necitab"
        base, x = _clean(_unprotect(wow.group("base"))), _clean(_unprotect(wow.group("x")))
        if _plausible(base.name) and _plausible(x.name):
            return [_Cand(f"{x.name} plus {base.name}", x.aliases, None, False),
                    _Cand(f"{base.name} alone", base.aliases, None, True)]
    m = comp.arm_either.match(text)
    parts: list[str]
    if m:
        base = _clean(_unprotect(m.group("base"))).name
        parts = [p for p in comp.arm_sep.split(m.group("rest")) if p and p.strip()]
        cands = [_clean(_unprotect(p)) for p in parts]
        for c in cands:
            if base and _plausible(base) and c.name:
                c.name = f"{c.name} plus {base}"
    else:
        colon = text.find(":")
        if colon > 0 and comp.arm_sep.search(text[:colon]) and not re.search(
                r"(?i)\b(?:regimens|groups|arms|treatments|strategies|conditions|interventions|options)\s*$", text[:colon]):
            text = text[:colon]  # "A (n = 40) versus B (n = 40): either 40000 IU or 20000 IU"
        end = comp.arm_list_end.search(text)
        if end and comp.arm_sep.search(text[:end.start()]):
            text = text[:end.start()]  # "A (AC), B (BC), or C (ABC) every 3 weeks for four or six cycles, ..."
        last = _LAST_OR.search(text)
        if last and "," in text[last.end():]:
            text = text[:text.index(",", last.end())]  # "A or B, starting at 50 mg, ..."
        parts = [p for p in comp.arm_sep.split(text) if p and p.strip()]
        cands = [_clean(_unprotect(p)) for p in parts]
    out = []
    for c in cands:
        if short_forms and not _plausible(c.name) and c.aliases and _plausible(c.aliases[0]) and len(c.name.split()) > 6:
            c.name, c.aliases = c.aliases[0], c.aliases[1:]  # a long description known by its short form
        if _plausible(c.name):
            out.append(c)
    return out


def _dose_arms(span: str) -> list[_Cand]:
    """'3.75 or 7.5 mg of (a depot form of) drugrelin': one drug at two doses, named with each."""
    m = rules().dose_list.match(span)
    if not m:
        return []
    drug = re.split(r"(?i)\bof\s+", _clean(m.group("drug")).name)[-1].split()
    name = drug[-1] if len(drug) > 3 else " ".join(drug)
    if not _plausible(name) or not re.search(r"[A-Za-z]{3}", name):
        return []
    unit = m.group("unit")
    return [_Cand(f"{name} {d} {unit}", [f"{d} {unit}"], f"{d} {unit}") for d in (m.group("d1"), m.group("d2"))]


def _labelled_arms(span: str) -> list[_Cand]:
    """'A (5 mg), B and C every 3 weeks (ABC group; n = 40) or no treatment (control group)': each
    parenthesised group label closes one arm and names it, however many drugs the arm lists."""
    comp = rules()
    labels = list(comp.arm_labels.finditer(span))
    if len(labels) < 2:
        return []
    out, start = [], 0
    for m in labels:
        name = m.group("name").strip()
        if comp.group_generic.match(name) or comp.group_org.search(name) or not _plausible(name):
            return []
        part = _clean(span[start:m.start()])
        short = _plausible(part.name) and len(part.name.split()) <= 4
        control = part.control or _is_control(name)
        if short and comp.role_label.match(name) and not comp.strict_control.match(part.name):
            # "docetaxel (control arm)": a role is no name; the regimen is (SCHEMA: drug or regimen)
            out.append(_Cand(part.name, [f"{name} {m.group('kind')}", *part.aliases], part.dose, control))
        else:
            out.append(_Cand(name, ([part.name] if short else []) + part.aliases, part.dose, control))
        start = m.end()
    return out if len({c.name.lower() for c in out}) == len(out) else []


_TITLE_SEP = re.compile(r"(?i)\s(?:versus|vs\.?|v\.?|(?:as\s+)?compared\s+(?:with|to)|in\s+comparison\s+(?:with|to)|"
                        r"with\s+or\s+without|with\s+vs\.?\s+without|or)\s")


def _title_arms(title: str) -> list[_Cand]:
    """'A versus B in ...', 'A or B for ...', 'X with or without Y': the arms a title names."""
    for kind, cue in rules().title_cues:
        m = cue.search(title)
        if not m:
            continue
        if kind == "placebo":
            x = _clean(m.group("arms"))
            if _plausible(x.name):
                return [x, _Cand("placebo", [], None, True)]
        else:
            span = m.group("arms")
            sep = "and" if " and " in span else "with" if re.search(r"(?i)\swith\s", span) else "to"
            pair = re.split(r"(?i)\s+" + sep + r"\s+", span, maxsplit=1)
            pair[0] = re.split(r"(?i)\b(?:of|with|between)\s+", pair[0])[-1]  # "effects of premedication with A"
            arms = [c for c in map(_clean, pair) if _plausible(c.name)]
            if len(arms) == 2:
                return arms
    comp = rules()
    for piece in re.split(r":\s|(?<!\bvs)(?<!\bv)\.\s", title):
        piece = piece.strip()
        if not _TITLE_SEP.search(piece):
            continue  # cheap pre-check: the search below is quadratic in the title's length
        m = re.search(r"(?i)(?P<a>[^:;]+?)\s+(?P<sep>versus|vs\.?|v\.?|(?:as\s+)?compared\s+(?:with|to)|"
                      r"in\s+comparison\s+(?:with|to)|with\s+or\s+without|with\s+vs\.?\s+without|or)\s+(?P<b>[^:;]+)", piece)
        if m and m.group("sep").lower() == "or" and re.search(r"(?i)\s(?:versus|vs\.?|compared|comparison)\s", piece):
            m = re.search(r"(?i)(?P<a>[^:;]+?)\s+(?P<sep>versus|vs\.?|(?:as\s+)?compared\s+(?:with|to)|"
                          r"in\s+comparison\s+(?:with|to))\s+(?P<b>[^:;]+)", piece)
        if not m or m.group("sep").lower() == "or" and comp.title_or_not_list.search(piece):
            continue  # "stage II or III", "on or after": the "or" joins no arms
        a = comp.title_prefix.sub("", m.group("a"))
        for pat, rep in comp.arm_synonyms:
            a = pat.sub(rep, a)
        tail = re.split(r"(?i)\b(?:of|with|treated\s+with|receiving|comparing|between|after|following)\s+", a)[-1]
        a = tail if " or " not in tail else re.sub(r"(?i)\s+with\s+.*$", "", a)
        if " or " in a and m.group("sep").lower() != "or":  # "A or B in comparison with C": three arms
            arms = [c for c in map(_clean, re.split(r"(?i)\s+or\s+", a) + [comp.arm_tail.sub("", m.group("b"))])
                    if _plausible(c.name)]
            if len(arms) >= 3:
                return arms
        b = comp.arm_tail.sub("", m.group("b"))
        if "without" in m.group("sep").lower():
            y = _clean(b)
            if not _plausible(y.name):
                continue
            return [y, _Cand("no " + y.name, [], None, True)]
        if m.group("sep").lower() == "or":
            arms = [c for c in (_clean(a), _clean(b)) if _plausible(c.name)]
        else:
            ca, cb = _clean(a), _clean(re.sub(r"(?i)\s+with\s+.*$", "", b))
            words_b = cb.name.split()
            if comp.shared_head.match(ca.name) and len(words_b) >= 2 and comp.shared_head.match(words_b[0]):
                # "Standard-dose versus high-dose radiotherapy": the head is shared; the text may
                # name each arm by its modifier alone ("intensive compared with standard ...")
                ca.aliases += [ca.name, f"{ca.name} {words_b[1]}"]
                cb.aliases += [words_b[0], f"{words_b[0]} {words_b[1]}"]
                ca.name = " ".join([ca.name, *words_b[1:]])
            arms = [c for c in (ca, cb) if _plausible(c.name)]
            factor = re.search(r"(?i)\bwith\s+or\s+without\s+(?P<x>[^:;]+)", m.group("b"))
            if factor and len(arms) == 2:  # a factorial design: two more arms
                x = _clean(factor.group("x"))
                if _plausible(x.name):
                    arms += [x, _Cand("no " + x.name, [], None, True)]
        if len(arms) >= 2:
            return arms
    return []


def _label_arms(text: str) -> list[_Cand]:
    """Last fallback: groups known only by label ("Group A", "arm 2", "group II")."""
    labels = sorted({m.group(1) for m in rules().label_groups.finditer(text)},
                    key=lambda x: (len(x), x) if not x.isdigit() else (0, x))
    return [_Cand(f"group {x}", []) for x in labels] if 2 <= len(labels) <= 6 else []


@lru_cache(maxsize=64)
def _group_mentions(text: str) -> tuple[tuple[str, str | None], ...]:
    """The "the X group" names of one text that may be arms, each with the last abbreviation of
    its parenthesis; cached, as _arms reads METHODS, then often every section, for them."""
    comp = rules()
    out = []
    for m in comp.group_mention.finditer(text):
        name = m.group("name").strip()
        if re.search(r"(?i)\b(?:or|versus|vs)\b", name):
            continue  # "the treatment or control group": two groups
        if comp.group_org.search(name):
            continue
        if comp.group_generic.match(name) or not _plausible(name) and not re.match(r"\d", name):
            continue
        abbr = re.findall(r"\b([A-Z][A-Z0-9/-]{1,9})\b", m.group("inner") or "")
        out.append((name, abbr[-1] if abbr else None))
    return tuple(out)


def _group_arms(sections: list[tuple[str | None, str]]) -> list[_Cand]:
    """Fallback: the groups the text names as "the X group" / "the X arm" ("(ABBR, N=65)" kept)."""
    found: dict[str, _Cand] = {}
    for _, text in sections:
        for name, abbr in _group_mentions(text):
            key = name.lower()
            if key not in found:
                found[key] = _Cand(name, [abbr] if abbr else [], None, _is_control(name))
            elif abbr and abbr not in found[key].aliases:
                found[key].aliases.append(abbr)
    cands = list(found.values())
    for c in cands:  # "(FOBT alone, n = 382)" and "(FOBT plus a reminder)": a shared word is no abbreviation
        c.aliases = [a for a in c.aliases if sum(a in o.aliases for o in cands) == 1]
    return cands if len(cands) >= 2 else []


def _is_control(name: str) -> bool:
    return bool(rules().control.search(name)) and not rules().experimental.search(name)


def _tokens(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in rules().filler and len(w) > 2}


_COMPARE_SEP = re.compile(r"(?i)\s+(?:versus|vs\.?|compared\s+with|compared\s+to)\s+")
_COMPARE_WEAK = re.compile(r"(?i)\s+(?:with|to)\s+")
_COMPARE_OVER = re.compile(r"(?i)\s+over\s+")


def _compare_arms(span: str) -> list[_Cand]:
    """'A with B in 500 patients' / 'A versus B or C': split at the comparison word."""
    for pat, rep in rules().arm_synonyms:
        span = pat.sub(rep, span)  # "A combined with B versus B alone": the "with" is not the comparison
    span = re.sub(r"(?i)\s+(?:were|was)\s+(?=compared\s+(?:with|to)\s)", " ", span)  # "A were compared with B"
    parts = _COMPARE_SEP.split(span, maxsplit=1)
    if len(parts) != 2:
        over = _COMPARE_OVER.split(span, maxsplit=1)  # "favoring A over B"
        found = _compare_sides(*over) if len(over) == 2 else []
        if len(found) >= 2:
            return found
        parts = _COMPARE_WEAK.split(span, maxsplit=1)
    if len(parts) != 2:
        return []
    return _compare_sides(*parts)


def _compare_sides(a: str, b: str) -> list[_Cand]:
    b = re.sub(r"(?i)\s+(?:in|among|for|who|when)\s+.*$", "", b)
    b = _protect(b).split(",")[0]  # "with those of study S9, with identical criteria, staging, ...": one arm
    side_a = _split_arms(a) if "," not in _protect(a) else [_clean(a)]
    return [c for c in side_a if _plausible(c.name)] + _split_arms(_unprotect(b))


def _cue_arms(sections: list[tuple[str | None, str]],
              cues: list[tuple[re.Pattern[str], re.Pattern[str]]], compare: bool = False) -> list[list[_Cand]]:
    """Every arm list the cue sentences of `sections` announce, in text order."""
    out = []
    for _, text in sections:
        low_text = text.lower()  # a cue whose keywords the section lacks can skip all its sentences
        active = [(keywords, cue) for keywords, cue in cues if any(k in low_text for k in keywords)]
        if not active:
            continue
        for _, sent in _sentences(text):
            sent = _protect(sent)
            low = sent.lower()
            for keywords, cue in active:
                if not any(k in low for k in keywords):
                    continue
                for m in cue.finditer(sent):
                    span = _unprotect(m.group("arms"))
                    cand = _compare_arms(span) if compare else _split_arms(span)
                    more = None if compare else rules().semicolon_list.match(sent, m.end("arms"))
                    if more and len(cand) == 1:  # "A (DC); B (DCb); or C (VC)": one arm a clause
                        rest = re.split(r";\s*(?:or\s+|and\s+)?", _unprotect(more.group("rest")))
                        cand += [c for c in map(_clean, rest) if _plausible(c.name)]
                    if len(cand) >= 2:
                        out.append(cand)
    return out


def _support(cands: list[_Cand], text: str, results: str = "") -> float:
    """How well a candidate arm list fits the abstract: names used in the text, short names."""
    if len(cands) < 2:
        return -1.0
    low = text.lower()
    units = r"(?i)\b(?:mg|g|ml|gy|cgy|iu|x|kg|mcg|\u00b5g|\u03bcg|mmol|%)(?=\W|$)"
    dose_only = [not re.search(r"[A-Za-z]", re.sub(units, "", c.name)) for c in cands]
    score = -0.5 * len(cands) if any(dose_only) and not all(dose_only) else 0.0
    for c in cands:
        toks = _tokens(c.name) or {c.name.lower()}
        used = sum(1 for t in toks if low.count(t) >= 2) / len(toks)
        if any(text.count(a) >= 2 for a in c.aliases if len(a) >= 2):
            used = max(used, 1.0) + 0.2  # "arm A", "(PemOx)": defined names the text then uses
        if len(c.name.split()) >= 2 and re.sub(r"[\s-]+", " ", c.name.lower()) in results:
            used += 0.3  # RESULTS use this very phrase: the name the abstract gives the group
        score += used - 0.25 * max(0, len(c.name.split()) - 3)
    return score / len(cands)


def _arms(article: Article) -> list[Arm]:
    comp = rules()
    title = article.title or ""
    secs = [(s.label, s.text) for s in article.sections]
    is_method = lambda lab: lab is None or re.search(  # noqa: E731  ("UNLABELLED": the whole abstract)
        r"(?i)method|design|patient|participant|intervention|setting|procedure|material|^unlabell?ed$", lab or "")
    methods = [x for x in secs if is_method(x[0])]
    rest = [x for x in secs if not is_method(x[0])]
    body = title + "\n" + article.abstract
    # (list, prior): a randomization sentence of METHODS is the best source, then the title
    options: list[tuple[list[_Cand], float]] = []
    from_methods = _cue_arms(methods, comp.arm_cues)
    options += [(o, 0.4 - 0.02 * i) for i, o in enumerate(from_methods)]
    options += [(o, 0.25 - 0.02 * i) for i, o in enumerate(_cue_arms(rest, comp.arm_cues))]
    from_title = _title_arms(title)
    # a randomization list the title confirms ("A with or without X" and "A" / "A plus X" with
    # their doses and short forms) names the arms better than the title's fragments
    options = [(o, prior + 0.3 if _agrees(from_title, o) is not None else prior) for o, prior in options]
    options += [(from_title, 0.9 if len(from_title) >= 4 and re.search(r"(?i)factorial", body) else 0.3)]
    framing = [x for x in secs if not re.search(r"(?i)result|finding|conclusion|interpretation|discussion", x[0] or "")]
    framed = _cue_arms(framing, comp.compare_cues, compare=True)
    randomized = from_methods  # read only, before any candidate is changed
    options += [(o, (0.7 if _add_on(o, randomized) else 0.1) - 0.02 * i) for i, o in enumerate(framed)]
    reporting = [x for x in secs if x not in framing]  # RESULTS compare outcomes as often as arms: a last resort
    options += [(o, -0.4 - 0.02 * i) for i, o in enumerate(_cue_arms(reporting, comp.compare_cues, compare=True))]
    options += [(_group_arms(methods) or _group_arms(secs), 0.0)]
    options += [(_historical_arms(article), 0.3)]
    options += [(o, 0.3) for o in _described_groups(methods)]
    options += [(o, 0.4) for o in _listed_interventions(secs)]
    results = re.sub(r"[\s-]+", " ", " ".join(t for lab, t in secs if re.search(r"(?i)result|finding", lab or "")).lower())
    scored = [(_support(o, body, results) + prior, -i, o) for i, (o, prior) in enumerate(options) if len(o) >= 2]
    found = max(scored, key=lambda x: (x[0], x[1]))[2] if scored else _label_arms(body) or _single_arm(article)
    for i in _agrees(from_title, found) or []:
        found[i].control = True  # the arm without the title's "with or without X" is the reference
    bare = lambda n: re.sub(r"(?i)\s+(?:alone|only)$", "", re.sub(r"[\s-]+", " ", n.lower()))  # noqa: E731
    controls = [bare(c.name) for o, _ in options for c in o if c.control]
    for c in found:  # "our standard 10 x 3 Gy" in PURPOSE marks the control of the METHODS list
        low = bare(c.name)
        c.control = c.control or any(k == low or k.endswith(" " + low) for k in controls)
    # same drug at several doses: keep the doses in the names when RESULTS report them apart
    names = [c.name.lower() for c in found]
    results = " ".join(t for lab, t in rest) or article.abstract
    for c in found:
        if names.count(c.name.lower()) > 1 and c.dose and c.dose not in c.name:
            num = re.match(r"[\d.,]+", c.dose)
            if num and re.search(r"(?<![\d.])" + re.escape(num.group()) + r"\s*(?:mg|g|\u03bcg|\u00b5g|mcg|ml|IU)\b", results):
                c.name = f"{c.name} {c.dose}"
    generic = {"standard", "control", "intervention", "experimental", "conventional", "usual"}
    found = [c for c in found if not (c.name.lower() in generic and any(
        o is not c and o.name.lower().startswith(c.name.lower() + " ") for o in found))]  # "standard" + "standard treatment"
    _name_add_on(found, body)
    seen: dict[str, _Cand] = {}
    for c in found:
        key = c.name.lower()
        if key in seen:
            seen[key].aliases.extend(a for a in c.aliases if a not in seen[key].aliases)
        else:
            seen[key] = c
    for c in seen.values():
        long = _long_form(c.name, body)
        if long:  # "ZA" defined as "zoledronic acid (ZA)": the name carries both
            c.aliases = [c.name, *c.aliases]
            c.name = long
    arms = []
    for c in seen.values():
        label = next((a for a in c.aliases if re.match(r"(?i)(?:arm|group|cohort)\s", a)), None)
        abbr = next((a for a in c.aliases if not re.match(r"(?i)(?:arm|group|cohort)\s", a)
                     and not re.search(r"(?i)\s(?:arm|group|cohort)$", a)), None)  # "control arm": a role
        name = f"{c.name} ({abbr})" if abbr and abbr.lower() not in c.name.lower() else c.name
        if label:
            name = f"{label} ({name})"
        aliases = ([c.name] if name != c.name else []) + [a for a in c.aliases]
        arms.append(Arm(name=name, aliases=aliases, experimental=not (c.control or _is_control(c.name))))
    if len(arms) >= 2 and not any(a.experimental for a in arms):
        for a in arms:  # "an observation group and a control group": the one not a plain control is tested
            a.experimental = not rules().strict_control.match(a.name)
    _name_roles(arms, body)
    arms = _order(arms, title, article.abstract)
    _add_aliases(arms, article)
    return arms


def _role_regimen(role: str, text: str) -> str | None:
    """The regimen the text gives a role ('an experimental ... regimen of A plus B'), if one."""
    m = re.search(rules().role_regimen.replace("ROLE", re.escape(role)), text)
    return re.sub(r"\s+", " ", m.group("x")) if m else None


def _name_roles(found: list[Arm], body: str) -> None:
    """'experimental treatment' vs 'standard treatment': name each by the regimen the text gives it."""
    for c in found:
        m = re.fullmatch(r"(?i)(?P<role>experimental|investigational|standard|conventional|control)"
                         r"(?:\s+(?:treatment|regimen|therapy|arm|group))?", c.name)
        x = _role_regimen(m.group("role"), body) if m else None
        if m and x:
            c.aliases.append(c.name)
            c.name = f"{m.group('role').lower()} ({x})"


def _name_add_on(found: list[_Cand], body: str) -> None:
    """'X alone' beside a bare 'X' (a cut 'X with Y'): the bare arm is X plus what the text adds."""
    alone = {re.sub(r"(?i)\s+(?:alone|only)$", "", c.name).lower() for c in found
             if re.search(r"(?i)\s(?:alone|only)$", c.name)}
    for c in found:
        if c.name.lower() not in alone:
            continue
        for m in re.finditer(r"(?i)(?<!\w)" + re.escape(c.name) + r"(?!\w)", body):
            tail = rules().add_on_tail.match(body, m.end())
            if tail:
                extra = re.sub(r"\s+", " ", tail.group("extra")).strip()
                extra = " ".join(w.lower() if re.fullmatch(r"[A-Z][a-z]+", w) else w for w in extra.split())
                c.name = f"{c.name} plus {extra}"
                break


def _add_on(compared: list[_Cand], randomized: list[list[_Cand]]) -> bool:
    """'A plus X vs. A alone' framing a 'randomized to X or placebo' on a background A: the
    compared regimens are the arms the RESULTS name (combination vs. monotherapy)."""
    if len(compared) != 2:
        return False
    with_x, without = _tokens(compared[0].name), _tokens(compared[1].name)
    shared = with_x & without
    for o in randomized:
        tested = [c for c in o if not _is_control(c.name)]
        if len(o) == 2 and len(tested) == 1 and shared:
            x = _tokens(tested[0].name)
            if x and x <= with_x and not x & without:
                return True
    return False


def _listed_interventions(sections: list[tuple[str | None, str]]) -> list[list[_Cand]]:
    """An INTERVENTIONS section that is the arm list itself: 'A (n = 34) or B (B1; n = 70)'."""
    comp = rules()
    out = []
    for label, text in sections:
        if not label or not comp.list_section.label.search(label):
            continue
        for _, sent in _sentences(text):
            if len(comp.list_section.count.findall(sent)) >= 2:
                cands = _split_arms(sent.rstrip(". "), short_forms=True)
                if len(cands) >= 2:
                    out.append(cands)
    return out


def _described_groups(sections: list[tuple[str | None, str]]) -> list[list[_Cand]]:
    """'Two datasets were compared: pooled patients from trials A and B (drug X 80 mg, n = 405),
    and the control arm of study C (regimen Y, n = 61)': each group's treatment is in its
    parenthesis, before its count."""
    comp = rules()
    out = []
    for _, text in sections:
        for _, sent in _sentences(text):
            gate = comp.described_gate.search(sent)
            if not gate:
                continue
            cands, start = [], gate.end()
            for m in comp.described_arm.finditer(sent, gate.end()):
                c = _clean(m.group("arm"))
                c.control = c.control or bool(re.search(r"(?i)\bcontrol\s+(?:arm|group|cohort)\b", sent[start:m.start()]))
                cands.append(c)  # "patients from the control arm of study C (regimen Y, n = 61)"
                start = m.end()
            cands = [c for c in cands if _plausible(c.name)]
            if len(cands) >= 2 and len({c.name.lower() for c in cands}) == len(cands):
                out.append(cands)
    return out


def _historical_arms(article: Article) -> list[_Cand]:
    """'this phase II trial (S9504) ... compared with those of the predecessor study (S9019)':
    a one-arm trial read against an earlier trial; the trial's own name is the first arm."""
    comp = rules()
    text = article.title + "\n" + article.abstract
    if "(" not in text:
        return []
    own = comp.historical_own.search(text)
    earlier = comp.historical_other.search(text) if own else None
    if not own or not earlier or own.group("id") == earlier.group("id"):
        return []
    return [_Cand(own.group("id"), []), _Cand(earlier.group("id"), [], None, True)]


def _single_arm(article: Article) -> list[_Cand]:
    """A single-arm study: the one treatment every patient received, when the text says so
    ("a phase 2, single-arm trial", or no randomization at all) and names it again."""
    comp = rules()
    text = article.title + "\n" + article.abstract
    if not comp.single_arm_gate.search(text) and any(
            _RANDOMIZED.search(t) and not comp.phase_skip.search(t) for _, t in _sentences(text)):
        return []  # randomized, unless only a future or earlier trial is ("a randomized trial is warranted")
    low = text.lower()
    best: tuple[float, int, _Cand] | None = None
    for i, (src, cue) in enumerate(comp.single_arm_cues):
        for m in cue.finditer(article.title if src == "title" else article.abstract):
            c = _clean(m.group("arm"))
            toks = _tokens(c.name)
            if not toks or not _plausible(c.name) or c.control or comp.single_arm_not.search(c.name):
                continue
            uses = min(low.count(t) for t in toks)
            if uses < 2:
                continue  # a treatment named once is not what the abstract reports on
            key = (uses + (1 if all(t in article.title.lower() for t in toks) else 0), -i, c)
            if best is None or key[:2] > best[:2]:
                best = key
    return [best[2]] if best else []


def _agrees(title: list[_Cand], listed: list[_Cand]) -> list[int] | None:
    """A title "A with or without X" and a list of as many arms, each title arm one listed arm
    (a listed name holds its words, or, for "no X", lacks X): the listed arms without X, else None."""
    if len(title) < 2 or len(title) != len(listed) or not any(c.name.lower().startswith("no ") for c in title):
        return None
    toks = [_tokens(c.name) for c in listed]
    used: set[int] = set()
    without = []
    for c in title:
        neg = re.match(r"(?i)no\s+(.+)$", c.name)
        want = _tokens(neg.group(1) if neg else c.name)
        if not want:
            return None
        hits = [i for i, t in enumerate(toks) if i not in used and (not want & t if neg else want <= t)]
        if neg and len(hits) != 1 or not neg and len(hits) < 1:
            return None
        used.add(hits[0])
        if neg:
            without.append(hits[0])
    return without


@lru_cache(maxsize=256)
def _long_form(abbr: str, text: str) -> str | None:
    """The words an abbreviation stands for when the text defines it: "zoledronic acid (ZA)"."""
    if not re.fullmatch(r"[A-Z][A-Za-z0-9/-]{1,7}", abbr) or sum(ch.isupper() for ch in abbr) < 2:
        return None
    if f"({abbr})" not in text:
        return None  # the pattern below needs it literally; compiling one per abbreviation costs more
    letters = [ch.lower() for ch in abbr if ch.isalpha() and ch.isupper()]
    for phrase in _definitions(abbr, text):
        words = phrase.split()
        for k in range(1, len(words) + 1):
            tail = words[-k:]
            initials = [w[0].lower() for part in tail for w in part.split("-") if w]
            if initials == letters:
                return " ".join(tail)
    return None


_DEFINED = re.compile(r"((?:[\w-]+\s+){0,5}[\w-]+)\s*\(")


def _definitions(abbr: str, text: str) -> list[str]:
    r"""Group 1 of each re.finditer(r"((?:[\w-]+\s+){0,5}[\w-]+)\s*\(ABBR\)", text), in order.

    A match lies in the run of word, space and hyphen characters before a literal "(ABBR)" (the
    "(" is the run's first other character), so the pattern is tried only in that run, up to that
    "(": the same words, with one pattern for every abbreviation instead of one compiled for each."""
    lit = f"({abbr})"
    out: list[str] = []
    pos, q = 0, text.find(lit)
    while q >= 0:
        run = q
        while run > pos and (text[run - 1].isalnum() or text[run - 1] in "_-" or text[run - 1].isspace()):
            run -= 1  # [\w\s-] as re reads them: str.isalnum() or "_", str.isspace(), "-"
        m = _DEFINED.search(text, run, q + 1)
        if m:
            out.append(m.group(1))
            pos = q + len(lit)
        q = text.find(lit, max(q + 1, pos))
    return out


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _word_at(word: str, text: str) -> int:
    """Where `word` (word characters only) first stands as a whole word in `text`, else -1:
    re.search(r"\b" + re.escape(word) + r"\b") without compiling a pattern per arm word."""
    i = text.find(word)
    while i >= 0:
        j = i + len(word)
        if (i == 0 or not _is_word_char(text[i - 1])) and (j == len(text) or not _is_word_char(text[j])):
            return i
        i = text.find(word, i + 1)
    return -1


def _order(arms: list[Arm], title: str, text: str = "") -> list[Arm]:
    """Experimental first: title order when the title names the arms, controls last."""
    tl = title.lower()

    toks = {id(a): _tokens(a.name) for a in arms}

    def pos(a: Arm) -> int:  # where the title first names this arm by a word no other arm has
        others = set().union(*(t for k, t in toks.items() if k != id(a)))
        mine = (toks[id(a)] - others) or toks[id(a)]
        ps = [p for p in (_word_at(t, tl) for t in mine) if p >= 0]
        for abbr in re.findall(r"[A-Z][A-Za-z0-9/-]+", a.name):  # the title spells out "ALND"
            long = _long_form(abbr, text) if abbr.lower() in mine else None
            if long and long.lower() in tl:
                ps.append(tl.index(long.lower()))
        return min(ps) if ps else 10**6

    if sum(1 for a in arms if pos(a) < 10**6) >= 2:
        idx = {id(a): i for i, a in enumerate(arms)}
        arms = sorted(arms, key=lambda a: (pos(a), idx[id(a)]))
    return sorted(arms, key=lambda a: not a.experimental)


_GROUP_PHRASE = re.compile(r"(?i)\b((?:[\w/+-]+\s+){0,2}?[\w/+-]+)[\s-]+(?:group|arm)s?\b(?!\s+(?-i:[A-Z0-9]{1,2}|I{1,3}|IV)\b)")
_GROUP_WORD = re.compile(r"(?i)group|arm")
_PHRASE_RUN = re.compile(r"[\w/+\s-]*")


def _phrase_char(c: str) -> bool:
    r"""[\w/+\s-] as re reads it (\w is str.isalnum() or "_", \s is str.isspace())."""
    return c.isalnum() or c in "_/+-" or c.isspace()


def _group_phrases(text: str) -> list[re.Match[str]]:
    r"""_GROUP_PHRASE.finditer(text), tried only near each "group"/"arm" instead of at every position.

    A match is made of [\w/+\s-] characters only, and before its "group"/"arm" (or any such word
    inside it) come at most three space-separated chunks and a run of spaces and hyphens; so the
    earliest possible start is three chunks back from the first such word not yet passed, and the
    match ends within that run of characters: the same matches, in the same order."""
    out: list[re.Match[str]] = []
    pos = 0
    while word := _GROUP_WORD.search(text, pos):
        i = word.start()
        while i > pos and (text[i - 1].isspace() or text[i - 1] == "-"):
            i -= 1
        for chunk in range(3):
            while i > pos and not text[i - 1].isspace() and _phrase_char(text[i - 1]):
                i -= 1
            while chunk < 2 and i > pos and text[i - 1].isspace():
                i -= 1
        end = _PHRASE_RUN.match(text, word.start()).end()
        m = _GROUP_PHRASE.search(text, i, end)
        if m:
            out.append(m)
            pos = m.end()
        else:
            pos = end
    return out


def _add_aliases(arms: list[Arm], article: Article) -> None:
    """Distinctive words of each name, and "the X group" phrases of the text that contain them."""
    if not arms:
        return
    toks = [_tokens(a.name) for a in arms]
    distinct = []
    for i, a in enumerate(arms):
        others = set().union(*(t for j, t in enumerate(toks) if j != i))
        distinct.append(toks[i] - others)
        for t in sorted(distinct[i]):
            if t.isdigit() or t in rules().alias_stop or len(t) < 4 and not t.isalpha():
                continue  # "180" (a dose) would also name "180 patients"; "lung", "high" name no arm alone
            if t not in {x.lower() for x in a.aliases} and t != a.name.lower():
                a.aliases.append(t)
    text = article.title + "\n" + article.abstract
    controls = [a for a in arms if not a.experimental]
    experimentals = [a for a in arms if a.experimental]
    for m in _group_phrases(text):
        phrase = re.sub(r"(?i)^(?:(?:the|in|of|to|with|for|and|a|or|than|vs|versus)\s+)+", "", m.group(1))
        low = phrase.lower()
        if re.fullmatch(r"(?i)(?:control|placebo|usual[- ]care|comparator|reference)", phrase) and len(controls) == 1:
            target = controls[0]
        elif re.fullmatch(r"(?i)(?:intervention|interventional|experimental|active)", phrase) and len(experimentals) == 1 and controls:
            target = experimentals[0]
        else:
            hits = [a for a, d in zip(arms, distinct) if any(_word_at(x, low) >= 0 for x in d)]
            if len(hits) != 1:
                continue
            target = hits[0]
        alias = re.sub(r"(?i)^(?:(?:the|in|of|to|with|for|and|a|or|than|vs|versus)\s+)+", "", m.group(0)).strip()
        keys = distinct[arms.index(target)] | {"control", "placebo", "usual", "comparator", "reference",
                                                "intervention", "interventional", "experimental", "active"}
        words = alias.split()
        first = next((i for i, w in enumerate(words) if any(k in w.lower() for k in keys)), 0)
        alias = " ".join(words[first:])  # "whilst the control group" -> "control group"
        if re.search(r"(?i)\b(?:versus|vs|or|than|compared|and\s+\w+\s+(?:group|arm)s)\b", alias):
            continue  # "bandage versus arm", "treatment and placebo groups": not one group
        if alias.lower() != target.name.lower() and alias not in target.aliases and len(alias) <= 60:
            target.aliases.append(alias)


def _populations(text: str) -> list[str]:
    low = text.lower()
    for keywords, pat in rules().populations:
        m = pat.search(text) if any(k in low for k in keywords) else None
        if m:
            return [g.strip() for g in m.groups() if g]
    return []


# ---------------------------------------------------------------- entry points
def frame(article: Article) -> Frame:
    """The design facts of one abstract, from its title, METHODS and registry list."""
    text = article.abstract
    sections = [(s.label, s.text) for s in article.sections]
    arms = _arms(article)
    trial = Trial(
        registration=registrations(article.title + "\n" + text, article.registry_ids),
        phase=phase(article.title, sections),
        n_randomized=n_randomized(text, "\n".join(
            s.text for s in article.sections if not re.search(r"(?i)result|finding|conclusion|interpretation", s.label or ""))),
        arms=[a.name for a in arms],
        allocation_ratio=allocation_ratio(text),
    )
    return Frame(trial=trial, arms=arms, populations=_populations(text))


# Characters that (?i) matches to an ASCII letter although their lower() is not that letter
# ("\u212a" Kelvin sign ~ "k", long s ~ "s", dotted/dotless I ~ "i"): a text holding one gets no
# literal pre-check, so the pre-check below can never drop a term the pattern would match.
_FOLDS = frozenset("\u0130\u0131\u017f\u212a")


def _matcher(fr: Frame) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[tuple[str, bool], ...] | None]]:
    """The alternatives find_arm matches, longest term first: (regex, arm name, the term's
    ASCII words lower-cased, its case-kept words, its words for _find_literal), the words
    serving as a literal pre-check. The last is None for a term _find_literal cannot read (a
    non-ASCII word, or one after the first that starts with "-")."""
    terms: list[tuple[str, str]] = []
    for a in fr.arms:
        for t in [a.name, *a.aliases]:
            if len(t) >= 2:
                terms.append((t, a.name))
    terms.sort(key=lambda x: -len(x[0]))
    out = []
    for t, name in terms:
        words, folded, exact, literal = [], [], [], []
        for w in t.split():  # abbreviations ("ZA", "PemOx", the "A" of "group A") keep their case
            esc = re.escape(w)
            if re.search(r"[A-Z]", w[1:]) or (len(w) <= 3 and w.isupper()):
                words.append("(?-i:" + esc + ")")
                exact.append(w)
                literal.append((w, True))
            else:
                words.append(esc)
                if w.isascii():
                    folded.append(w.lower())
                literal.append((w.lower(), False))
        simple = t.isascii() and not any(w.startswith("-") for w, _ in literal[1:])
        out.append((r"[\s-]+".join(words), name, tuple(folded), tuple(exact), tuple(literal) if simple else None))
    return out


# after an arm's term: "-based", " alone", " group"; "placebo-controlled" names no arm
_ARM_TAIL = (r"(?:-(?:based|containing|combination|alone|treated))?"
             r"(?:[\s-]+(?:combination|alone|monotherapy|therapy|treatment|regimen))?"
             r"(?:[\s-]+(?:group|arm|cohort)s?)?(?![\w-])")
_ARM_TAIL_AT = re.compile("(?i)" + _ARM_TAIL)


@lru_cache(maxsize=1024)
def _arm_pattern(alts: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation of arm terms (group a<i> = the i-th), compiled once per distinct set."""
    body = "|".join(rf"(?P<a{i}>{alt})" for i, alt in enumerate(alts))
    return re.compile(r"(?i)(?<![\w])(?:the\s+)?(?:" + body + r")" + _ARM_TAIL)


def _term_end(words: tuple[tuple[str, bool], ...], text: str, low: str, q: int) -> int:
    r"""Where a term's words, joined by [\s-]+, end if they start at q, else -1 (case kept for
    the words marked so). No word but the first starts with "-", so the run is taken whole."""
    n = len(text)
    for k, (w, exact) in enumerate(words):
        if k:
            r = q
            while r < n and (text[r].isspace() or text[r] == "-"):
                r += 1
            if r == q:
                return -1
            q = r
        if not (text.startswith(w, q) if exact else low.startswith(w, q)):
            return -1
        q += len(w)
    return q


def _find_literal(text: str, low: str, kept: list[tuple[tuple[str, bool], ...]], names: list[str]) -> list[tuple[int, int, str]]:
    r"""_arm_pattern(kept terms).finditer(text) without compiling it: the same leftmost-first
    matches, for ASCII terms in a text without the characters (?i) folds onto ASCII letters.

    A match starts at a term's first word or at the "the\s+" before it; at such a start the
    pattern tries "the" + each term in order, then each term alone, each followed by _ARM_TAIL."""
    n = len(text)
    starts = set()
    for words in kept:
        w, exact = words[0]
        src = text if exact else low
        i = src.find(w)
        while i >= 0:
            starts.add(i)
            r = i
            while r > 0 and text[r - 1].isspace():
                r -= 1
            if r < i and r >= 3 and low.startswith("the", r - 3):
                starts.add(r - 3)
            i = src.find(w, i + 1)
    out: list[tuple[int, int, str]] = []
    pos = 0
    for p in sorted(starts):
        if p < pos or p and (text[p - 1].isalnum() or text[p - 1] == "_"):  # (?<![\w])
            continue
        heads = []
        if low.startswith("the", p) and p + 3 < n and text[p + 3].isspace():
            q = p + 3
            while q < n and text[q].isspace():
                q += 1
            heads.append(q)
        heads.append(p)
        hit = next(((e.end(), name) for q in heads for words, name in zip(kept, names)
                    if (end := _term_end(words, text, low, q)) >= 0 and (e := _ARM_TAIL_AT.match(text, end))), None)
        if hit:
            out.append((p, hit[0], hit[1]))
            pos = hit[0]
    return out


def find_arm(text: str, frame: Frame) -> list[tuple[int, int, str]]:
    """Every place in `text` that names an arm: (start, end, arm name), longest first, no overlaps.

    Only the terms whose every word occurs in `text` are tried: a term that cannot match
    changes no match of an alternation. Those are matched by _find_literal, or, when it cannot
    read them, by a pattern compiled (and cached) for them alone."""
    if frame._terms is None:
        frame._terms = _matcher(frame)
    low = text.lower()
    check = _FOLDS.isdisjoint(text)
    kept = [(alt, name, literal) for alt, name, folded, exact, literal in frame._terms
            if not check or all(w in low for w in folded) and all(w in text for w in exact)]
    if not kept:
        return []
    if check and all(literal is not None for _, _, literal in kept):
        return _find_literal(text, low, [literal for _, _, literal in kept], [name for _, name, _ in kept])
    pat = _arm_pattern(tuple(alt for alt, _, _ in kept))
    out = []
    for m in pat.finditer(text):
        idx = next(int(k[1:]) for k, v in m.groupdict().items() if v is not None)
        out.append((m.start(), m.end(), kept[idx][1]))
    return out
