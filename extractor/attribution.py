"""The attribution rules and the records the attribution steps share.

rules/attribution.json holds every cue of attribution as data (with examples tests run);
`attribution_rules()` validates it (RuleError on a bad file) and compiles it once. `Item` is
one number while outcomes.py names what it measures and arms.py whose result it is;
`Context` is what carries from one sentence of an abstract to the next.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from .mentions import Mention
from .rules import Flagged, Rule, load_rules
from .text import fold_case

__all__ = ["AttributionRules", "Context", "Item", "RATE_CODES", "SURVIVAL", "attribution_rules", "may_match", "outcome_words"]


SURVIVAL = ("OS", "PFS", "DFS", "EFS", "RFS", "MFS", "TTP", "DOR")
RATE_CODES = ("ORR", "CR", "PCR", "DCR", "AE3")


class Captured(Rule):
    pattern: str
    examples: list[tuple[str, str]]


def _lower_ascii(words: list[str]) -> list[str]:
    bad = [w for w in words if not w.isascii() or w != w.lower()]
    if bad:
        raise ValueError(f"keywords must be lower-case ASCII: {bad}")
    return words


# literals one of which every match of a pattern holds, case-folded (text.fold_case): a text,
# or a window of it, without any need not be searched
Keywords = Annotated[list[str], Field(min_length=1), AfterValidator(_lower_ascii)]


class Keyed(Flagged):
    """A pattern with keywords."""

    keywords: Keywords


class Outcome(Rule):
    name: str
    pattern: str
    keywords: Keywords


class ComparisonRule(Rule):
    patterns: list[str]
    examples: list[tuple[str, str, str]]


class ArmWords(Rule):
    filler: list[str]
    control: list[str]
    negation: list[str]


class AttributionRules(Rule):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    comment: str = Field("", alias="_comment")
    skip_sections: Flagged
    population_frames: list[Captured]
    inline_population: Captured
    rate_block: Flagged
    rate_after_block: Flagged
    individual_ae: Flagged
    outcomes: list[Outcome]
    outcome_examples: list[tuple[str, str]]
    outcome_block: Flagged
    outcome_phrase: Captured
    score_outcome: Captured
    arms_after_list: Flagged
    immune_response: Flagged
    rate_outcome: Captured
    rate_outcome_skip: Flagged
    rate_outcome_block: Flagged
    endpoint_after: Flagged
    named_event: Flagged
    outcome_abbrev: Captured
    outcome_abbrev_head: Flagged
    outcome_abbrev_block: Flagged
    outcome_after: Flagged
    outcome_block_near: Flagged
    median_cue: Flagged
    median_block: Flagged
    landmark: Captured
    landmark_list: Captured
    landmark_block: Flagged
    landmark_after: Flagged
    ratio_own_endpoint: Flagged
    rate_stat_block: Flagged
    median_pre_block: Flagged
    rate_subject_after: Flagged
    group_after_count: Flagged
    pre_hit_block: Flagged
    primary_endpoint: Keyed
    both_groups: Flagged
    death_words: Flagged
    endpoint_words: Keyed
    arm_words: ArmWords
    median_carry_words: list[str]
    comparator_before: Flagged
    endpoint_join: Flagged
    duration_threshold: Flagged
    non_result_before: Keyed
    both_arms: Flagged
    arm_after: Captured
    arm_before: Captured
    arm_before_known: Captured
    arm_stop: Flagged
    comparison_phrases: ComparisonRule
    ae3_head: Flagged
    ae3_tail: Flagged
    fixed_time_death: Flagged
    subgroup_label: Captured
    subgroup_label_after: Captured
    subgroup_boundary: Flagged
    label_block: Flagged


@dataclass(frozen=True)
class _Compiled:
    skip_sections: re.Pattern[str]
    frames: list[re.Pattern[str]]
    inline_pop: re.Pattern[str]
    rate_block: re.Pattern[str]
    rate_after: re.Pattern[str]
    individual_ae: re.Pattern[str]
    outcomes: list[tuple[str, re.Pattern[str]]]
    outcome_any: re.Pattern[str]
    outcome_names: list[str]
    outcome_keywords: list[tuple[str, ...]]
    outcome_phrase: re.Pattern[str]
    score_outcome: re.Pattern[str]
    arms_after_list: re.Pattern[str]
    immune_response: re.Pattern[str]
    rate_outcome: re.Pattern[str]
    rate_outcome_skip: re.Pattern[str]
    rate_outcome_block: re.Pattern[str]
    endpoint_after: re.Pattern[str]
    named_event: re.Pattern[str]
    outcome_abbrev: re.Pattern[str]
    outcome_abbrev_head: re.Pattern[str]
    outcome_abbrev_block: re.Pattern[str]
    outcome_block: re.Pattern[str]
    outcome_after: re.Pattern[str]
    outcome_block_near: re.Pattern[str]
    median_cue: re.Pattern[str]
    median_block: re.Pattern[str]
    landmark: re.Pattern[str]
    landmark_list: re.Pattern[str]
    landmark_block: re.Pattern[str]
    landmark_after: re.Pattern[str]
    ratio_own_endpoint: re.Pattern[str]
    rate_stat_block: re.Pattern[str]
    median_pre_block: re.Pattern[str]
    rate_subject_after: re.Pattern[str]
    group_after_count: re.Pattern[str]
    pre_hit_block: re.Pattern[str]
    primary_endpoint: re.Pattern[str]
    both_groups: re.Pattern[str]
    death_words: re.Pattern[str]
    endpoint_words: re.Pattern[str]
    filler: frozenset[str]
    control: frozenset[str]
    negation: frozenset[str]
    median_carry_words: frozenset[str]
    comparator_before: re.Pattern[str]
    endpoint_join: re.Pattern[str]
    duration_threshold: re.Pattern[str]
    non_result_before: re.Pattern[str]
    both_arms: re.Pattern[str]
    arm_after: re.Pattern[str]
    arm_before: re.Pattern[str]
    arm_before_known: re.Pattern[str]
    arm_stop: re.Pattern[str]
    comparisons: list[re.Pattern[str]]
    ae3_head: re.Pattern[str]
    ae3_tail: re.Pattern[str]
    fixed_time_death: re.Pattern[str]
    subgroup_label: re.Pattern[str]
    subgroup_label_after: re.Pattern[str]
    subgroup_boundary: re.Pattern[str]
    label_block: re.Pattern[str]
    keywords: dict[str, tuple[str, ...]]  # rule name -> its keywords (the Keyed rules)


def _alternatives(pattern: str) -> list[str]:
    """The top-level `|` branches of a regex (outside groups and character classes)."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
        elif c == "[":  # a class: "]" right after "[" or "[^" is literal
            i += 2 if pattern.startswith("[^", i) else 1
            i += pattern[i] == "]"
            while pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*out, pattern[start:]]


def _any_of(patterns: list[str], flags: int) -> re.Pattern[str]:
    """One regex matching any of `patterns`, the k-th as group `o<k>` (m.lastgroup names it).
    When every branch starts at a word boundary, the `\\b` is also put before the whole
    alternation: the engine then tries the branches only where a word starts, not at every
    character (twice as fast; same matches, tests/test_perf.py)."""
    body = "|".join(f"(?P<o{k}>{p})" for k, p in enumerate(patterns))
    if all(b.startswith(r"\b") for p in patterns for b in _alternatives(p)):
        body = r"\b(?:" + body + ")"
    return re.compile(body, flags)


@lru_cache(maxsize=1)
def attribution_rules() -> _Compiled:
    """rules/attribution.json, validated (RuleError on a bad file) and compiled once."""
    r = load_rules("attribution", AttributionRules)
    i = re.IGNORECASE
    return _Compiled(
        skip_sections=re.compile(r.skip_sections.pattern, i),
        frames=[re.compile(f.pattern, i) for f in r.population_frames],
        inline_pop=re.compile(r.inline_population.pattern, i),
        rate_block=re.compile(r.rate_block.pattern, i),
        rate_after=re.compile(r.rate_after_block.pattern, i),
        individual_ae=re.compile(r.individual_ae.pattern, i),
        outcomes=[(o.name, re.compile(o.pattern, i)) for o in r.outcomes],
        outcome_any=_any_of([o.pattern for o in r.outcomes], i),
        outcome_names=[o.name for o in r.outcomes],
        outcome_keywords=[tuple(o.keywords) for o in r.outcomes],
        outcome_phrase=re.compile(r.outcome_phrase.pattern, i),
        score_outcome=re.compile(r.score_outcome.pattern),
        arms_after_list=re.compile(r.arms_after_list.pattern, i),
        immune_response=re.compile(r.immune_response.pattern),
        rate_outcome=re.compile(r.rate_outcome.pattern, i),
        rate_outcome_skip=re.compile(r.rate_outcome_skip.pattern, i),
        rate_outcome_block=re.compile(r.rate_outcome_block.pattern, i),
        endpoint_after=re.compile(r.endpoint_after.pattern, i),
        named_event=re.compile(r.named_event.pattern, i),
        outcome_abbrev=re.compile(r.outcome_abbrev.pattern),
        outcome_abbrev_head=re.compile(r.outcome_abbrev_head.pattern, i),
        outcome_abbrev_block=re.compile(r.outcome_abbrev_block.pattern),
        outcome_block=re.compile(r.outcome_block.pattern, i),
        outcome_after=re.compile(r.outcome_after.pattern, i),
        outcome_block_near=re.compile(r.outcome_block_near.pattern.lstrip("^"), i),
        median_cue=re.compile(r.median_cue.pattern, i),
        median_block=re.compile(r.median_block.pattern, i),
        landmark=re.compile(r.landmark.pattern, i),
        landmark_list=re.compile(r.landmark_list.pattern, i),
        landmark_block=re.compile(r.landmark_block.pattern, i),
        landmark_after=re.compile(r.landmark_after.pattern, i),
        ratio_own_endpoint=re.compile(r.ratio_own_endpoint.pattern, i),
        rate_stat_block=re.compile(r.rate_stat_block.pattern, i),
        median_pre_block=re.compile(r.median_pre_block.pattern, i),
        rate_subject_after=re.compile(r.rate_subject_after.pattern, i),
        group_after_count=re.compile(r.group_after_count.pattern, i),
        pre_hit_block=re.compile(r.pre_hit_block.pattern, i),
        primary_endpoint=re.compile(r.primary_endpoint.pattern, i),
        both_groups=re.compile(r.both_groups.pattern, i),
        death_words=re.compile(r.death_words.pattern, i),
        endpoint_words=re.compile(r.endpoint_words.pattern, i),
        filler=frozenset(r.arm_words.filler),
        control=frozenset(r.arm_words.control),
        negation=frozenset(r.arm_words.negation),
        median_carry_words=frozenset(r.median_carry_words),
        comparator_before=re.compile(r.comparator_before.pattern, i),
        endpoint_join=re.compile(r.endpoint_join.pattern),
        duration_threshold=re.compile(r.duration_threshold.pattern, i),
        non_result_before=re.compile(r.non_result_before.pattern, i),
        both_arms=re.compile(r.both_arms.pattern, i),
        arm_after=re.compile(r.arm_after.pattern),
        arm_before=re.compile(r.arm_before.pattern),
        arm_before_known=re.compile(r.arm_before_known.pattern),
        arm_stop=re.compile(r.arm_stop.pattern, i),
        comparisons=[re.compile(x) for x in r.comparison_phrases.patterns],
        ae3_head=re.compile(r.ae3_head.pattern, i),
        ae3_tail=re.compile(r.ae3_tail.pattern, i),
        fixed_time_death=re.compile(r.fixed_time_death.pattern, i),
        subgroup_label=re.compile(r.subgroup_label.pattern, i),
        subgroup_label_after=re.compile(r.subgroup_label_after.pattern, i),
        subgroup_boundary=re.compile(r.subgroup_boundary.pattern, i),
        label_block=re.compile(r.label_block.pattern),
        keywords={k: tuple(v.keywords) for k, v in r if isinstance(v, Keyed)},
    )


def may_match(name: str, folded: str, pos: int = 0, endpos: int | None = None) -> bool:
    """False when rule `name` cannot match in folded[pos:endpos] (`folded` is fold_case of
    the text searched): none of its keywords is there. True for a rule without keywords."""
    words = attribution_rules().keywords.get(name)
    end = len(folded) if endpos is None else endpos
    return words is None or any(folded.find(w, pos, end) >= 0 for w in words)


def outcome_words(text: str) -> list[tuple[re.Match[str], str]]:
    """outcome_any.finditer(text), each match with its outcome's name. The alternation is cut
    to the outcomes whose keywords `text` holds: one that cannot match anywhere changes no
    match of it, and most sentences hold none (then nothing is searched)."""
    r = attribution_rules()
    folded = fold_case(text)
    kept = tuple(sorted({k for w, k in _keyword_index() if w in folded}))
    if not kept:
        return []
    return [(m, r.outcome_names[kept[int(m.lastgroup[1:])]])  # type: ignore[index]
            for m in _outcome_subset(kept).finditer(text)]


@lru_cache(maxsize=1)
def _keyword_index() -> tuple[tuple[str, int], ...]:
    """(keyword, index of its outcome) for every outcome keyword: one flat loop of `in` tests."""
    return tuple((w, k) for k, words in enumerate(attribution_rules().outcome_keywords) for w in words)


@lru_cache(maxsize=256)
def _outcome_subset(kept: tuple[int, ...]) -> re.Pattern[str]:
    """outcome_any for the outcomes `kept` only (group o<i> is the i-th of them)."""
    r = attribution_rules()
    return _any_of([r.outcomes[k][1].pattern for k in kept], re.IGNORECASE)


@dataclass
class Context:
    """What carries from one sentence to the next: the population frame, the last endpoint."""

    population: str | None = None
    endpoint: str | None = None
    ci95: bool = False
    acronyms: dict[str, str] = field(default_factory=dict)
    outcome_abbrevs: dict[str, str] = field(default_factory=dict)


@dataclass
class Item:
    mention: Mention
    kind: str
    endpoint: str | None = None
    arm: str | None = None
    comparison: list[str] | None = None
    population: str | None = None
    timepoint: str | None = None
    extra_arms: list[str] = field(default_factory=list)
    extra_populations: list[str] = field(default_factory=list)
    listed_population: bool = False


PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
