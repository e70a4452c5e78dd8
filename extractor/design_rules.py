"""The design rules: rules/design.json (registries, phase words, count cues, arm cues,
vocabularies), validated (RuleError on a bad file) and compiled once for facts.py and design.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import StringConstraints

from .rules import Flagged, Rule, load_rules

__all__ = ["CASE_FOLDS", "Cue", "DesignRules", "finditer_at", "has_case_folds", "lowered", "rules"]

# Characters that (?i) matches to an ASCII letter although their lower() is not that letter
# ("\u212a" Kelvin sign ~ "k", long s ~ "s", dotted/dotless I ~ "i"; the dotted I is also the one
# character whose lower() is two long): a text holding one gets no literal pre-check.
CASE_FOLDS = frozenset("\u0130\u0131\u017f\u212a")


def lowered(text: str) -> str:
    """text.lower(), cached for a non-ASCII text: lower() reads those about ten times slower
    than ASCII, and the same abstract, section or sentence is lower-cased by several rules."""
    return text.lower() if text.isascii() else _lowered(text)


@lru_cache(maxsize=512)
def _lowered(text: str) -> str:
    return text.lower()


def has_case_folds(text: str) -> bool:
    """Whether `text` holds a CASE_FOLDS character (an ASCII text, the usual one, is told at once)."""
    return not text.isascii() and any(c in text for c in CASE_FOLDS)


class Registry(Rule):
    name: str
    hints: list[str]  # lower-case literals one of which every id (or its context) contains: else skipped
    require: str | None = None  # a pattern every id's own text matches, cheap to search (starts with a literal)
    pattern: str
    format: str
    upper: bool  # ids written in lower case ("chictr-inr-...") are upper-cased after the prefix
    examples: list[tuple[str, list[str]]]


class PhaseRule(Rule):
    pattern: str
    phase: str
    examples: list[tuple[str, bool]]


class CountRule(Rule):
    keywords: list[str]  # lower-case words a sentence must contain one of before `pattern` is tried
    pattern: str
    # lower-case words one of which every match begins with: the pattern is tried only where one
    # occurs (a pattern opening with \b or a lookbehind is slow to search for)
    starts: list[Annotated[str, StringConstraints(pattern=r"^[a-z]+$")]] = []
    require: str | None = None  # a pattern every match contains, cheap to search (opens with a literal)
    weight: int
    nonrandomized_only: bool
    examples: list[tuple[str, int | None]]


class ValueRule(Rule):
    pattern: str
    examples: list[tuple[str, str]]


class CueRule(Rule):
    kind: Literal["randomization", "compare"]
    keywords: list[str]
    pattern: str
    starts: list[Annotated[str, StringConstraints(pattern=r"^[a-z]+$")]] = []  # as CountRule's
    examples: list[tuple[str, str]]


class TitleRule(Rule):
    kind: Literal["placebo", "pair"]  # "trial of X" + placebo, or "comparison of A and B"
    pattern: str
    examples: list[tuple[str, str]]


class ListRule(Rule):
    pattern: str
    examples: list[tuple[str, list[str]]]


class EitherRule(Rule):
    pattern: str
    examples: list[tuple[str, list[str]]]


class PopulationRule(ListRule):
    keywords: list[str]  # lower-case words the text must contain one of before `pattern` is tried


class SingleArmRule(Rule):
    source: Literal["title", "abstract"]
    pattern: str  # group "arm": the treatment phrase
    starts: list[Annotated[str, StringConstraints(pattern=r"^[a-z]+$")]] = []  # as CountRule's
    examples: list[tuple[str, str]]


class ListSectionRule(Rule):
    label: str  # sections whose label says they list the arms
    count: str  # a group size; two or more in a sentence make it the list
    examples: list[tuple[str, str, list[str]]]


class GroupRule(Rule):
    keywords: list[str]  # lower-case words a text must contain one of before `pattern` is tried
    pattern: str
    generic: str
    organization: str  # "Southwest Oncology Group" is a trial group, not an arm
    examples: list[tuple[str, list[str]]]


class GatedFlag(Flagged):
    keywords: list[str]  # lower-case words a text must contain one of before `pattern` is tried


class RequiringRule(ListRule):
    require: str  # a pattern every match contains, cheap to search (opens with a literal)


class GatedPattern(Rule):
    pattern: str
    keywords: list[str]  # lower-case words one of which every match in an ASCII text holds


class DesignRules(Rule):
    registries: list[Registry]
    phases: list[PhaseRule]
    phase_skip: Flagged
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
    title_or_not_list: Flagged
    shared_head_modifiers: str
    group_mention: GroupRule
    label_groups: ListRule
    arm_labels: ListRule
    arm_list_end: str
    historical_own: RequiringRule
    described_gate: GatedFlag
    role_label: str
    list_section: ListSectionRule
    dose_list: ListRule
    described_arm: ValueRule
    add_on_tail: ValueRule  # "X alone" vs a bare "X": what the text adds to X names the other arm
    role_regimen: ListRule  # "the experimental regimen of A plus B": what a role-named arm gives
    semicolon_list: ValueRule  # the arms after the first of "A (DC); B (DCb); or C (VC)."
    historical_other: ListRule
    single_arm_gate: Flagged
    single_arm_cues: list[SingleArmRule]
    single_arm_not: str
    arm_strip_first: list[str | GatedPattern]
    arm_tail_cut: str
    arm_synonyms: list[tuple[str, str] | tuple[str, str, list[str]]]  # pattern, replacement[, keywords as GatedPattern's]
    arm_strip: list[str | GatedPattern]
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
class _Count:
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    weight: int
    nonrandomized_only: bool
    leading_num: bool  # the pattern opens with the number: tried where rules().number finds one
    starts: tuple[str, ...]
    require: re.Pattern[str] | None


@dataclass(frozen=True)
class Cue:
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    starts: tuple[str, ...]


@dataclass(frozen=True)
class Gated:
    """A compiled pattern, and the lower-case words one of which every match in an ASCII text
    holds (None: no such words): may_match is False only where the pattern cannot match."""

    pattern: re.Pattern[str]
    keywords: tuple[str, ...] | None
    replacement: str = ""

    def may_match(self, text: str) -> bool:
        # (?i) matches an ASCII letter of the pattern only to an ASCII letter in an ASCII text
        return self.keywords is None or not text.isascii() or any(map(text.lower().__contains__, self.keywords))


def _gated(rule: str | GatedPattern) -> Gated:
    if isinstance(rule, str):
        return Gated(re.compile(rule), None)
    return Gated(re.compile(rule.pattern), tuple(rule.keywords))


@dataclass(frozen=True)
class _ListSection:
    label: re.Pattern[str]
    count: re.Pattern[str]


@dataclass(frozen=True)
class _Compiled:
    registries: list[tuple[tuple[str, ...], re.Pattern[str] | None, re.Pattern[str], str, bool]]
    phases: list[tuple[re.Pattern[str], str]]
    phase_skip: re.Pattern[str]
    counts: list[_Count]
    number: re.Pattern[str]  # a number: digits or spelled out (facts.number_starts finds the same faster)
    number_digits: re.Pattern[str]
    number_spelled: re.Pattern[str]
    number_word_list: tuple[str, ...]
    number_word_set: frozenset[str]
    n_list_guard: re.Pattern[str]
    number_words: dict[str, int]
    allocation: re.Pattern[str]
    arm_cues: list[Cue]
    compare_cues: list[Cue]
    arm_either: re.Pattern[str]
    arm_sep: re.Pattern[str]
    title_cues: list[tuple[str, re.Pattern[str]]]
    title_prefix: re.Pattern[str]
    title_or_not_list: re.Pattern[str]
    shared_head: re.Pattern[str]
    group_mention: re.Pattern[str]
    group_keywords: tuple[str, ...]
    group_generic: re.Pattern[str]
    group_org: re.Pattern[str]
    label_groups: re.Pattern[str]
    arm_labels: re.Pattern[str]
    arm_list_end: re.Pattern[str]
    historical_own: re.Pattern[str]
    historical_require: re.Pattern[str]
    described_gate: re.Pattern[str]
    described_keywords: tuple[str, ...]
    role_label: re.Pattern[str]
    list_section: "_ListSection"
    dose_list: re.Pattern[str]
    described_arm: re.Pattern[str]
    add_on_tail: re.Pattern[str]
    role_regimen: str
    semicolon_list: re.Pattern[str]
    historical_other: re.Pattern[str]
    single_arm_gate: re.Pattern[str]
    single_arm_cues: list[tuple[str, re.Pattern[str], tuple[str, ...]]]
    single_arm_not: re.Pattern[str]
    arm_synonyms: list[Gated]
    arm_tail: re.Pattern[str]
    arm_strip_first: list[Gated]
    arm_strip: list[Gated]
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
    digits = (r"\b(?=[\dzotfsenhZOTFSENH])(?<![\d.,:/<>\u2264\u2265+-])(?<![<>\u2264\u2265][\s\xa0])"
              r"(?:\d{1,3}(?:[,\s\xa0]\d{3})+(?!\d)|\d+)(?![\d:%]|[.,]\d|\s?%)")
    spelled = r"\b(?:(?:" + alt + r")(?:[\s-]+(?:and\s+)?(?:" + alt + r"))*)\b"
    num = "(?:" + digits + "|" + spelled + ")"
    # the same digits as a pattern that opens with the digit (each lookbehind one character
    # longer), which re scans for quickly; NUM inside the count patterns keeps the form above
    digits_first = (r"\d(?<!\w\d)(?<![\d.,:/<>\u2264\u2265+-]\d)(?<![<>\u2264\u2265][\s\xa0]\d)"
                    r"(?:\d{0,2}(?:[,\s\xa0]\d{3})+(?!\d)|\d*)(?![\d:%]|[.,]\d|\s?%)")
    person = "(?:" + "|".join(map(re.escape, r.person_words)) + ")"
    return _Compiled(
        registries=[(tuple(g.hints), re.compile(g.require) if g.require else None, re.compile(g.pattern), g.format, g.upper)
                    for g in r.registries],
        phases=[(re.compile(p.pattern, re.I), p.phase) for p in r.phases],
        phase_skip=re.compile(r.phase_skip.pattern, re.I),
        counts=[_Count(tuple(c.keywords), re.compile(c.pattern.replace("NUM", num).replace("PERSON", person)),
                       c.weight, c.nonrandomized_only, c.pattern.startswith("(?i)(NUM)"), tuple(c.starts),
                       re.compile(c.require) if c.require else None)
                for c in r.n_randomized],
        number=re.compile("(?i)" + num),
        number_digits=re.compile(digits_first),
        number_spelled=re.compile("(?i)" + spelled),
        number_word_list=tuple(words),
        number_word_set=frozenset(words),
        n_list_guard=re.compile(r.n_list_guard.replace("NUM", num)),
        number_words=r.number_words,
        allocation=re.compile(r.allocation.pattern),
        arm_cues=[Cue(tuple(c.keywords), re.compile(c.pattern), tuple(c.starts))
                  for c in r.arm_list_cues if c.kind == "randomization"],
        compare_cues=[Cue(tuple(c.keywords), re.compile(c.pattern), tuple(c.starts))
                      for c in r.arm_list_cues if c.kind == "compare"],
        arm_either=re.compile(r.arm_either.pattern),
        arm_sep=re.compile(r.arm_separators),
        title_cues=[(c.kind, re.compile(c.pattern)) for c in r.title_cues],
        title_prefix=re.compile(r.title_prefix),
        title_or_not_list=re.compile(r.title_or_not_list.pattern),
        shared_head=re.compile(r.shared_head_modifiers),
        group_mention=re.compile(r.group_mention.pattern),
        group_keywords=tuple(r.group_mention.keywords),
        group_generic=re.compile(r.group_mention.generic),
        group_org=re.compile(r.group_mention.organization),
        label_groups=re.compile(r.label_groups.pattern),
        arm_labels=re.compile(r.arm_labels.pattern),
        arm_list_end=re.compile(r.arm_list_end),
        historical_own=re.compile(r.historical_own.pattern),
        historical_require=re.compile(r.historical_own.require),
        described_gate=re.compile(r.described_gate.pattern),
        described_keywords=tuple(r.described_gate.keywords),
        role_label=re.compile(r.role_label),
        list_section=_ListSection(re.compile(r.list_section.label), re.compile(r.list_section.count)),
        dose_list=re.compile(r.dose_list.pattern),
        described_arm=re.compile(r.described_arm.pattern),
        add_on_tail=re.compile(r.add_on_tail.pattern),
        role_regimen=r.role_regimen.pattern,
        semicolon_list=re.compile(r.semicolon_list.pattern),
        historical_other=re.compile(r.historical_other.pattern),
        single_arm_gate=re.compile(r.single_arm_gate.pattern),
        single_arm_cues=[(c.source, re.compile(c.pattern), tuple(c.starts)) for c in r.single_arm_cues],
        single_arm_not=re.compile(r.single_arm_not),
        arm_synonyms=[Gated(re.compile(p), tuple(kw[0]) if kw else None, rep) for p, rep, *kw in r.arm_synonyms],
        arm_tail=re.compile(r.arm_tail_cut),
        arm_strip_first=[_gated(s) for s in r.arm_strip_first],
        arm_strip=[_gated(s) for s in r.arm_strip],
        arm_not_names=re.compile(r.arm_not_names),
        abbr_not=re.compile(r.abbreviations_not_arms),
        control=re.compile(r.control_words),
        strict_control=re.compile(r.strict_control),
        experimental=re.compile(r.experimental_words),
        filler=frozenset(r.filler_words),
        alias_stop=frozenset(r.alias_stopwords),
        populations=[(tuple(p.keywords), re.compile(p.pattern)) for p in r.population_cues],
    )


def finditer_at(pat: re.Pattern[str], text: str, low: str, starts: tuple[str, ...]) -> list[re.Match[str]]:
    """pat.finditer(text) for a pattern whose every match begins with one of `starts` (ASCII,
    lower-case): the same matches, the pattern tried only where `low` (text.lower()) holds one.

    Leftmost first, each search resuming where the last match ended, as finditer does. A text
    holding a CASE_FOLDS character (where `low` could miss a place (?i) matches) is searched."""
    if has_case_folds(text):
        return list(pat.finditer(text))
    places = set()
    for w in starts:
        i = low.find(w)
        while i >= 0:
            places.add(i)
            i = low.find(w, i + 1)
    out: list[re.Match[str]] = []
    end = 0
    for p in sorted(places):
        if p >= end and (m := pat.match(text, p)):
            out.append(m)
            end = m.end()
    return out
