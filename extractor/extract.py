"""Article -> (Trial, [Measurement]): every outcome number of an abstract, attributed.

mentions.py finds and types the numbers of a sentence; design.py frames the trial (arms,
registry ids); this module decides, for each number, what it is a result OF: the endpoint
(nearest governing phrase, ratio cues naming their own), the arm (the arm phrase bound to
it, or list order), the comparison of a ratio, the population (a sentence-initial frame
holding until replaced) and the landmark time of a rate. Cue words are data in
rules/attribution.json and rules/endpoints.json.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

from pydantic import ConfigDict, Field

from . import design
from .consistency import check
from .mentions import Mention, find_mentions
from .models import Article, Measurement, Trial
from .nlp import Hit, find_endpoints, sentences
from .rules import Rule, load_rules
from .text import fold_case, literal_spans, normalise

__all__ = ["extract", "attribution_rules"]

SURVIVAL = ("OS", "PFS", "DFS", "EFS", "RFS", "MFS", "TTP", "DOR")
RATE_CODES = ("ORR", "CR", "PCR", "DCR", "AE3")
_WORDNUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
            "nine": 9, "ten": 10, "twelve": 12, "eighteen": 18, "twenty-four": 24, "thirty": 30,
            "sixty": 60, "ninety": 90}


# ---------------------------------------------------------------- rules (validated data)
_Rule = Rule  # rule-file models reject unknown keys


class Flagged(_Rule):
    pattern: str
    examples: list[tuple[str, bool]]


class Captured(_Rule):
    pattern: str
    examples: list[tuple[str, str]]


class Outcome(_Rule):
    name: str
    pattern: str


class ComparisonRule(_Rule):
    patterns: list[str]
    examples: list[tuple[str, str, str]]


class ArmWords(_Rule):
    filler: list[str]
    control: list[str]
    negation: list[str]


class AttributionRules(_Rule):
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
    group_after_count: Flagged
    pre_hit_block: Flagged
    primary_endpoint: Flagged
    both_groups: Flagged
    death_words: Flagged
    endpoint_words: Flagged
    arm_words: ArmWords
    median_carry_words: list[str]
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
    )


# ---------------------------------------------------------------- small helpers
_GATE = re.compile(r"\d")
_VS_GAP = re.compile(r"[\s\])]*(?:\[[^\]]*\])?[\s)\]]*(?:vs\.?|versus|v|and|compared with)\s*")
_DURATION = re.compile(r"(?i)duration|durable")
# "median time from sick leave to return to work" names the same outcome as "time to return to work"
_MEDIAN_OTHER = re.compile(r"(?i)\bmedian\s+(?:time (?:from [a-z -]{3,40}? )?(?P<to>to [a-z -]{3,30}?)|(?P<dur>duration of [a-z -]{3,30}?))"
                           r"(?=\s+(?:was|of|were|is)\b|,|\s*\()")


def _time_to(text: str) -> tuple[int, str] | None:
    """The last "median time to X" / "duration of X" outcome named in text, as (start, code)."""
    found = list(_MEDIAN_OTHER.finditer(text))
    if not found:
        return None
    tm = found[-1]
    return tm.start(), "other:" + ("time " + tm["to"] if tm["to"] else tm["dur"]).lower().strip()


_RATE_WORD = re.compile(r"(?i)\brates?\b|probabilit|estimate")


@dataclass
class _Context:
    """What carries from one sentence to the next: the population frame, the last endpoint."""

    population: str | None = None
    endpoint: str | None = None
    ci95: bool = False
    acronyms: dict[str, str] = field(default_factory=dict)
    outcome_abbrevs: dict[str, str] = field(default_factory=dict)


@dataclass
class _Item:
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


def _timepoint(m: re.Match[str]) -> str:
    n = m.group("n") or m.group("n2")
    unit = m.group("unit") or (m.group("unit2") or "").rstrip("s")
    if m.group("wn"):
        n, unit = m.group("wn"), "week"
    num = _WORDNUM.get(n.lower(), None) if n else None
    val = num if num is not None else n
    try:
        plural = float(val) != 1
    except (TypeError, ValueError):
        plural = True
    return f"{val} {unit.lower()}{'s' if plural else ''}"


def _clean_pop(p: str) -> str:
    return re.sub(r"\s+", " ", p).strip(" ,;:.")


def _frame_population(sent: str) -> str | None:
    for pat in attribution_rules().frames:
        m = pat.search(sent)
        if m:
            return _clean_pop(m.group("pop"))
    return None


def _nearest_before(hits: list[Hit], pos: int, floor: int = 0) -> Hit | None:
    best = None
    for h in hits:
        if floor <= h.start and h.end <= pos:
            best = h
    return best


@lru_cache(maxsize=64)
def _outcomes_in(text: str) -> tuple[tuple[int, str], ...]:
    """Every outcome word of a sentence, scanned once (rates of one sentence share the scan)."""
    r = attribution_rules()
    found = [(m.start(), r.outcome_names[int(m.lastgroup[1:])])  # type: ignore[index]
             for m in r.outcome_any.finditer(text)]
    found += [(m.start("name"), m.group("name").lower()) for m in r.outcome_phrase.finditer(text)]
    found += [(m.start(), re.sub(r"[\s-]+", " ", m.group("name")).lower())  # "PASI 75", "ACR20"
              for m in r.score_outcome.finditer(text)]
    found += _rate_names(text)
    return tuple(sorted(found))  # "the proportion of patients achieving ACR20" names its own


@lru_cache(maxsize=64)
def _rate_names(text: str) -> list[tuple[int, str]]:
    """Outcomes named only as "<name> rates were 61% and 47%" ("back-to-school rates"): the
    name without determiners or landmarks, unless it names no outcome (dropout, heart rate)."""
    if "rate" not in text.lower():
        return []  # the pattern needs the word; most sentences lack it
    r = attribution_rules()
    out: list[tuple[int, str]] = []
    for m in r.rate_outcome.finditer(text):
        words = [(w.start(), w.group()) for w in re.finditer(r"\S+", m.group("name"))]
        while words and r.rate_outcome_skip.fullmatch(words[0][1]):
            words = words[1:]
        if not words:
            continue
        name = " ".join(w for _, w in words).lower()
        if r.rate_outcome_block.search(name) or r.rate_block.search(name) or r.individual_ae.search(name) \
                or find_endpoints(name):
            continue
        out.append((m.start("name") + words[0][0], name))
    return out


def _outcome_at(text: str, hits: list[Hit], lo: int, hi: int, skip_death: bool = False) -> tuple[int, str] | None:
    """The last outcome word of text[lo:hi] (a non-oncology outcome: stroke, relapse, cure ...)
    that is not part of an endpoint phrase: (position, name)."""
    best: tuple[int, str] | None = None
    for pos, name in _outcomes_in(text):
        if pos < lo or pos >= hi or (skip_death and name == "death"):
            continue
        if any(h.start <= pos < h.end for h in hits):
            continue
        best = (pos, name)
    return best


def _score_named(sent: str, h: Hit) -> bool:
    """A response phrase right after a score outcome ("ACR20 response") is that outcome, not ORR."""
    if h.code not in ("ORR", "CR"):
        return False
    head = sent[max(0, h.start - 16):h.start]
    return any(m.end() == len(head.rstrip()) and head[m.end():].isspace()
               for m in attribution_rules().score_outcome.finditer(head))


def _death_like(sent: str, h: Hit) -> bool:
    return bool(attribution_rules().death_words.search(sent, h.start, h.end))


def _is_result(sent: str, m: Mention) -> bool:
    """Drop follow-up times and time points, unless a median cue governs the duration closely
    ("a median survival of 7.9 months" is a result, "survival at 12 months" is not)."""
    if "follow_up" in m.flags or "adjective" in m.flags or "difference" in m.flags:
        return False
    if "timepoint" not in m.flags:
        return True
    if m.type != "duration":
        return False
    window = sent[max(0, m.value_start - 45):m.value_start]
    cue = None
    for c in attribution_rules().median_cue.finditer(window):
        cue = c
    return cue is not None and not re.search(r"\d|\b(?:at|after|within|by|follow)", window[cue.end():])


def _subgroup_label(sent: str, m: Mention, hits: list[Hit], spans: list[tuple[int, int, str]]) -> str | None:
    """The short subgroup name written right before a ratio ("A1C >8.5%: HR 1.64")."""
    r = attribution_rules()
    at = m.cue_start if m.cue_start is not None else m.value_start
    lo = max(0, at - 70)
    lab = None
    for b in [lo, *(x.end() for x in r.subgroup_boundary.finditer(sent, lo, at))][::-1]:
        cand = r.subgroup_label.match(sent[:at], b)  # nearest boundary first
        if cand and not r.label_block.search(cand.group("label")):
            lab = cand
            break
    group = "label"
    if lab is None:
        lab = r.subgroup_label_after.match(sent, m.end)  # "compared with 0.96, 0.72-1.27, in nonusers"
    if lab is None:
        return None
    label = lab.group(group).strip()
    a, b = lab.start(group), lab.end(group)
    if r.label_block.search(label) or len(label.split()) > 6:
        return None
    if any(a <= h.start < b for h in hits) or any(a <= s < b for s, _, _ in spans) \
            or _outcome_at(sent, hits, a, b):  # "relapse (HR 2.0)": a factor or an endpoint, no subgroup
        return None
    return re.sub(r"([<>\u2264\u2265=])\s+", r"\1", label)  # "> Q1" is written ">Q1" in names


def _ratio_endpoint(sent: str, m: Mention, hits: list[Hit], ctx: _Context) -> str | None:
    """A ratio's own cue names its endpoint ("for death"); else the nearest endpoint phrase or
    outcome word before it; else the endpoint the previous sentence was about."""
    cue_start = m.cue_start if m.cue_start is not None else m.start
    own = [h for h in hits if cue_start <= h.start and h.end <= m.value_start]
    for h in own:
        if h.cue:
            return _death_kind(sent, h, m)
    if own:
        return _death_kind(sent, own[-1], m)
    later = _endpoint_after(sent, m, hits)
    if later is not None:  # "relapse (HR ...) and X (HR ...) were associated with shorter survival"
        return later
    before = _nearest_before(hits, cue_start)
    timed = _time_to(sent[:cue_start])
    if timed and (before is None or timed[0] > before.end):
        return timed[1]  # "median time to healing was 21 vs 30 days (HR 1.45)": the same outcome
    word = _outcome_at(sent, hits, 0, cue_start, skip_death=True)
    if word is not None and (before is None or word[0] > before.end or _death_like(sent, before)):
        return f"other:{word[1]}"
    if before is not None:
        return _death_kind(sent, before, m)
    after = [h for h in hits if m.end <= h.start <= m.end + 60]
    if after:  # "a hazard ratio of 0.87 (13% reduction in the risk of death)"
        return _death_kind(sent, after[0], m)
    word = _outcome_at(sent, hits, 0, cue_start)
    if word:
        return f"other:{word[1]}"
    if m.ratio_kind == "odds_ratio" and ctx.endpoint not in RATE_CODES:
        return None  # odds of what? a carried survival endpoint is not one
    return ctx.endpoint


_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def _endpoint_after(sent: str, m: Mention, hits: list[Hit]) -> str | None:
    """The endpoint a clause names after its ratios ("... were associated with shorter OS")."""
    r = attribution_rules()
    after = [h for h in hits if h.start >= m.end]
    words = [(pos, name) for pos, name in _outcomes_in(sent) if pos >= m.end
             and not any(h.start <= pos < h.end for h in hits)]
    cands: list[tuple[int, Hit | str]] = [(h.start, h) for h in after] + [(p, f"other:{n}") for p, n in words]
    for pos, what in sorted(cands, key=lambda x: x[0]):
        gap = sent[m.end:pos]
        while "(" in gap and _PARENS.search(gap):  # the other factors' own "(HR, 1.66; 95% CI ...)"
            gap = _PARENS.sub("", gap)
        if r.endpoint_after.match(gap):
            return what if isinstance(what, str) else _named_event(sent, what) or _death_kind(sent, what, m)
    return None


def _named_event(sent: str, h: Hit) -> str | None:
    """A grade >=3 phrase naming one kind of event ("grade >=3 cardiac events"): that event,
    not AE3 (any grade >=3 adverse event)."""
    if h.code != "AE3":
        return None
    r = attribution_rules()
    if r.ae3_head.match(sent[h.end:]):
        return None
    x = r.named_event.match(sent, h.end)
    if x is None:
        return None
    name = re.sub(r"\s+", " ", sent[h.start:x.end()]).lower().replace(">=", "≥")
    return "other:" + name


def _death_kind(sent: str, h: Hit, m: Mention) -> str:
    """Death is OS for a hazard ratio (time to event), a binary outcome for odds and risk ratios."""
    if h.code == "OS" and _death_like(sent, h) and (
            m.ratio_kind in ("odds_ratio", "risk_ratio") or attribution_rules().fixed_time_death.match(sent[h.end:])):
        return "other:death"
    return h.code


def _rate_endpoint(sent: str, m: Mention, hits: list[Hit], floor: int,
                   list_end: int) -> tuple[str | None, Hit | None, int]:
    """Endpoint of a percentage: the phrase right after it ("3% complete responses"), the one
    its list is said to have ("26% of X patients had stable disease"), else the nearest before."""
    free = hits
    after = [h for h in free if h.start >= m.end]
    if after and re.fullmatch(r"\s*", sent[m.end:after[0].start]):
        return after[0].code, after[0], after[0].start
    after = [h for h in free if h.start >= list_end]
    if after:
        gap = sent[list_end:after[0].start]
        if len(gap) <= 60 and attribution_rules().outcome_after.search(gap) \
                and not re.search(r"[;]|\b(was|were)\b|\d%", gap):
            return after[0].code, after[0], after[0].start
    before = _nearest_before(free, m.start, floor)
    word = _outcome_at(sent, hits, floor, m.start, skip_death=True)
    if word is not None and (before is None or word[0] > before.end):
        return f"other:{word[1]}", None, word[0]
    if before is not None:
        return before.code, before, before.start
    reach = 70 if attribution_rules().group_after_count.match(sent, m.end) else 40  # "12 of 19 patients with <a long group name> died"
    word = _outcome_at(sent, hits, floor, m.start) or _outcome_at(sent, hits, m.end, min(len(sent), m.end + reach))
    return (f"other:{word[1]}" if word else None), None, (word[0] if word else m.start)


# ---------------------------------------------------------------- arms
def _bind(sent: str, spans: list[tuple[int, int, str]], lo: int, hi: int, m: Mention,
          used: set[int]) -> str | None:
    """The free arm phrase nearest to the value inside its own segment (lo..hi)."""
    best: tuple[int, int, str] | None = None
    for i, (s, e, name) in enumerate(spans):
        if i in used or s < lo or e > hi:
            continue
        if e <= m.start:
            d = m.start - e
        elif e <= m.value_start:  # inside the mention's head ("with X [265/4687 (5.7%)]")
            d = m.value_start - e
        elif s >= m.end:
            if _COMPARATOR.search(sent, m.end, s):
                continue  # "(4.0%) than in placebo patients": that arm is the next value's
            d = s - m.end
        elif s >= m.value_end:  # inside its tail ("9.3 months in the X arm (p = 0.78)")
            d = s - m.value_end
        else:
            continue
        if best is None or d < best[0]:
            best = (d, i, name)
    if best is None:
        return None
    used.add(best[1])
    return best[2]




def _words(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in attribution_rules().filler}




def _best_arm(want: set[str], fr: design.Frame) -> str | None:
    """The trial arm a phrase names: same words first, then a longer name, then a shorter one;
    never across a negation ("not at risk" is not "at risk")."""
    best: tuple[int, str] | None = None
    neg = attribution_rules().negation
    for arm in fr.arms:
        for name in (arm.name, *arm.aliases):
            have = _words(name)
            if not have or bool(have & neg) != bool(want & neg):
                continue
            rank = 3 if have == want else 2 if want <= have else 1 if have <= want else 0
            if rank and (best is None or rank > best[0]):
                best = (rank, arm.name)
    return best[1] if best else None


def _text_arm(sent: str, m: Mention, lo: int, hi: int, fr: design.Frame) -> str | None:
    """An arm the text names next to the value ("in the X group", "arm B, 8 months") when
    design.find_arm knows no alias for it: mapped onto the trial's arm sharing its words."""
    r = attribution_rules()
    phrase, known_only = None, False
    a = r.arm_after.match(sent[m.value_end:hi])
    if a:
        phrase = a.group("arm")
    else:
        b = r.arm_before.search(sent[lo:m.value_start])
        if b:
            phrase = b.group("arm") or b.group("arm2")
        else:
            b = r.arm_before_known.search(sent[lo:m.value_start])
            if b:  # "response to X was", "and X (": only when X is one of the trial's arms
                phrase, known_only = b.group("a") or b.group("b"), True
    phrase = phrase.strip(" .,;:") if phrase else phrase
    if not phrase or r.arm_stop.match(phrase.strip()) or re.fullmatch(r"[\d.\s%]+", phrase):
        return None
    want = _words(phrase)
    if not want:
        return None
    mapped = _best_arm(want, fr)
    if mapped:
        return mapped
    if want & r.control:
        controls = [x.name for x in fr.arms if not x.experimental]
        if len(controls) == 1:
            return controls[0]
    return None if known_only else phrase.strip()


_CLAUSE_BREAK = re.compile(r"(?i)\b(?:whereas|while|but|although|however)\b")
_COMPARATOR = re.compile(r"(?i)\b(?:than|versus|vs\.?|v|compared|whereas|while)\b")
_NEGATED = re.compile(r"(?i)\b(?:no|not|without|non)[\s-]*$")
_ACRONYM = re.compile(r"\s*\((?P<acr>[A-Z][A-Za-z0-9+/-]{0,7})\)")


def _arm_acronyms(text: str, fr: design.Frame) -> dict[str, str]:
    """Short forms the abstract defines for an arm: "preoperative chemotherapy (PCT)" -> PCT."""
    out: dict[str, str] = {}
    folded = fold_case(text)
    for arm in fr.arms:
        for name in (arm.name, *arm.aliases):
            if len(name) < 4:
                continue
            spans = literal_spans(name, text, folded=folded) if name.isascii() else \
                [m.span() for m in re.finditer(r"(?<![\w-])" + re.escape(name), text, re.IGNORECASE)]
            for start, end in spans:
                if _NEGATED.search(text, max(0, start - 12), start):
                    continue  # "no chemotherapy (NoC)" is not chemotherapy's short form
                a = _ACRONYM.match(text, end)
                if a and a.group("acr") not in ("CI", "HR", "OR", "RR", "IQR") and a.group("acr") != name:
                    out.setdefault(a.group("acr"), arm.name)
    return out


def _acronym_spans(sent: str, acronyms: dict[str, str]) -> list[tuple[int, int, str]]:
    return [(s, e, arm) for acr, arm in acronyms.items() for s, e in literal_spans(acr, sent, word_end=True)]


_LONG_RUN = re.compile(r"[\w'\s-]+")  # what the long form of rules' outcome_abbrev is made of
_LONG_WORDS = 10  # at least the words it may have (8)
_OPEN = re.compile(r"\((?=[A-Za-z])")  # its short form starts with a letter
_TOKEN = re.compile(r"\S+")
_LETTER = re.compile(r"[A-Za-z]")


def _abbrev_definitions(pat: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """pat.finditer(text) for the outcome_abbrev rule ("long form (ABBR)"), tried only from the
    run of word, space, ' and - characters before each "(" and a letter (its last _LONG_WORDS
    words) up to the next ")": a match cannot start anywhere else, and the rule searched over a
    whole abstract backtracks at every letter (3 ms an abstract). tests/test_perf.py checks it
    against plain finditer."""
    runs = {m.end(): m.start() for m in _LONG_RUN.finditer(text)}
    last = 0
    for o in _OPEN.finditer(text):
        q = o.start()
        if q < last:
            continue
        words = list(_TOKEN.finditer(text, max(runs.get(q, q), last), q))[-_LONG_WORDS:]
        close = text.find(")", q)
        end = len(text) if close < 0 else close + 1
        for w in words:  # a match starts at a word's first letter or not in that word at all
            first = _LETTER.search(text, w.start(), w.end())
            m = pat.match(text, first.start(), end) if first else None
            if m:
                yield m
                last = m.end()
                break


def _outcome_abbrevs(text: str, arm_acronyms: dict[str, str]) -> dict[str, str]:
    """Short forms the abstract defines for an outcome ("sustained remission rate (SRR)"):
    the long form starts with the short form's first letter and (before a "rate" word)
    ends in an outcome; the name is the long form ("sustained remission"): gold names are
    descriptive, and a shorter name is matched by any longer one holding its words."""
    r = attribution_rules()
    out: dict[str, str] = {}
    for d in _abbrev_definitions(r.outcome_abbrev, text):
        abbr = d.group("abbr")
        if abbr in out or abbr in arm_acronyms or find_endpoints(abbr) or r.outcome_abbrev_block.search(abbr):
            continue
        words = d.group("long").split()
        start = next((k for k in range(max(0, len(words) - len(abbr) - 2), len(words))
                      if words[k][0].lower() == abbr[0].lower()), None)
        if start is None:
            continue
        long = " ".join(words[start:])
        core = re.sub(r"(?i)\s+(?:rates?|proportions?)$", "", long)
        ends = [h for h in find_endpoints(core) if not h.cue and h.end == len(core)]
        if ends and ends[0].start == 0:
            out[abbr] = ends[0].code  # "objective response rates (ORRs)": a known endpoint
        elif ends or r.outcome_abbrev_head.search(core) or any(
                o.end() == len(core) for o in r.outcome_any.finditer(core)):
            out[abbr] = f"other:{core.lower()}"
    return out


def _abbrev_hits(sent: str, abbrevs: dict[str, str]) -> list[Hit]:
    return [Hit(s, e, code, False) for abbr, code in abbrevs.items() for s, e in literal_spans(abbr, sent, word_end=True)]


def _uniq(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _assign_arms(sent: str, items: list[_Item], spans: list[tuple[int, int, str]], fr: design.Frame,
                 all_mentions: list[Mention]) -> None:
    """Give each median and rate its arm: bound phrase, list order, or the trial's arm order."""
    values = sorted((it for it in items if it.kind in ("median", "rate") and it.arm is None),
                    key=lambda it: it.mention.start)  # landmark runs may have named theirs
    if not values:
        return
    r = attribution_rules()
    arms, populations = [a.name for a in fr.arms], fr.populations
    bounds = sorted(all_mentions, key=lambda x: x.start)

    def segment(m: Mention) -> tuple[int, int]:
        i = bounds.index(m)
        return (bounds[i - 1].end if i else 0, bounds[i + 1].start if i + 1 < len(bounds) else len(sent))

    used: set[int] = set()
    groups: dict[int, list[_Item]] = {}
    for it in values:
        if it.mention.group is not None:
            groups.setdefault(it.mention.group, []).append(it)
    done: set[int] = set()
    for members in groups.values():
        if len(members) < 2 or len({it.endpoint for it in members}) > 1:
            continue  # "median PFS was 6 months and median OS 14 months": not one arm each
        if len({it.timepoint for it in members}) == len(members):
            continue  # "1-, 2-, and 3-year rates of 58%, 34% and 17%": one value per time point
        first, last = members[0].mention, members[-1].mention
        k = len(members)
        inside = [i for i, sp in enumerate(spans) if first.end <= sp[0] and sp[1] <= last.start]
        resp = any(x.mention.respectively for x in members)
        if inside and not resp:
            continue  # interleaved "8 months with A and 5 months with B": bind one by one below
        lo, hi = segment(first)[0], segment(last)[1]
        before = _uniq([sp[2] for sp in spans if lo <= sp[0] and sp[1] <= first.start])
        after = _uniq([sp[2] for sp in spans if sp[0] >= last.end and sp[1] <= hi])
        if resp:
            chosen = after[:k] if len(after) >= k else []
            if not chosen and not after:
                named = _uniq([sp[2] for sp in spans if sp[1] <= first.start])
                chosen = named if len(named) == k else (list(arms) if len(arms) == k and not named else [])
            if not chosen and len(before) == 1:
                chosen = before * k
                if len(populations) == k:
                    for it, pop in zip(members, populations):
                        it.population, it.listed_population = pop, True
        else:
            controls = [a.name for a in fr.arms if not a.experimental]
            chosen = before[-k:] if len(before) >= k else []
            if not chosen and k == 2 and len(before) == 1 and not after and len(controls) == 1 \
                    and before[0] != controls[0] and len(arms) > 2:
                chosen = [before[0], controls[0]]  # "erlotinib (median, 2.9 v 1.9 months)"
            if not chosen and len(before) < k and not after:
                wide = _uniq([sp[2] for sp in spans if sp[1] <= first.start])
                chosen = wide[-k:] if len(wide) >= k else []
            if not chosen:
                texts = [_text_arm(sent, it.mention, *segment(it.mention), fr) for it in members]
                if all(texts) and len(set(texts)) == k:
                    chosen = texts  # type: ignore[assignment]
            if not chosen and not before and len(after) == k and r.arms_after_list.match(
                    _PARENS.sub("", sent[last.end:min(sp[0] for sp in spans if sp[0] >= last.end)])):
                chosen = after  # "86% and 83% (p = 0.6) for the A group and B group": in order
            if not chosen and len(arms) == k and len(before) + len(after) <= 1:
                chosen = list(arms)
        if len(chosen) == k:
            for it, name in zip(members, chosen):
                it.arm = name
                done.add(id(it))
    ghosts = [_Item(x, "median") for x in all_mentions if x.not_reached]  # they claim their arm too
    for it in sorted([*values, *ghosts], key=lambda x: x.mention.start):
        if id(it) in done:
            continue
        m = it.mention
        lo, hi = segment(m)
        it.arm = _bind(sent, spans, lo, hi, m, used)
        if it.arm is None and len(arms) >= 2 and (r.both_arms.search(sent[m.end:m.end + 40])
                                                   or attribution_rules().both_groups.search(sent[:m.start])):
            it.arm, it.extra_arms = arms[0], arms[1:]  # "32% for both arms (partial response = 31%)"
        if it.arm is None:
            it.arm = _text_arm(sent, m, lo, hi, fr)
        if it.arm is None and len(arms) == 2 and not m.not_reached:
            for g in ghosts:  # "(not reached vs. 6.3 months)": the pair in the trial's order
                if g.mention.end <= m.start and _VS_GAP.fullmatch(sent[g.mention.end:m.start]):
                    it.arm = arms[1]
                elif g.mention.start >= m.end and _VS_GAP.fullmatch(sent[m.end:g.mention.start]):
                    it.arm = arms[0]
        if it.arm is None and len(arms) == 1:
            it.arm = arms[0]
    named = _uniq([sp[2] for sp in spans])
    if len(named) == 1 and all(it.arm in (None, named[0]) for it in values):
        for it in values:  # "median PFS was 6.0 months and median OS 14.1 months in the X group"
            if it.arm is None and it.mention.group is not None:
                it.arm = named[0]


def _map_arm(phrase: str, fr: design.Frame) -> str:
    """The trial arm whose words contain (or are contained in) the phrase's, else the phrase."""
    want = _words(phrase)
    for arm in fr.arms:
        for name in (arm.name, *arm.aliases):
            have = _words(name)
            if want and have and (want <= have or have <= want) and len(have) >= len(want) - 1:
                return arm.name
    return phrase.strip()


def comparison_phrase(text: str, fr: design.Frame | None = None) -> list[str] | None:
    """"comparing A with A plus B" -> [A plus B, A]; "A compared with B was" / "A vs B:" -> [A, B]."""
    r = attribution_rules()
    found = None
    for pat in r.comparisons:
        for m in pat.finditer(text):
            found = m
    if found is None:
        return None
    y = found.group("y").strip()
    if "x" not in found.re.groupindex:  # "... and compared with B was 0.93": A is the previous one's
        return None if r.arm_stop.match(y) else ["", _map_arm(y, fr) if fr is not None else y]
    x = re.split(r"\bfor\s+", found.group("x"))[-1].strip()
    if r.arm_stop.match(x) or r.arm_stop.match(y):
        return None
    wx, wy = _words(x), _words(y)
    pair = [y, x] if wx and wx < wy else [x, y]
    return [_map_arm(n, fr) for n in pair] if fr is not None else pair


def _comparison(sent: str, m: Mention, spans: list[tuple[int, int, str]], fr: design.Frame,
                items: list[_Item]) -> list[str] | None:
    """[experimental, reference] of a ratio: the trial's pair, a "comparing A with B" phrase,
    or the arms named around it in a multi-arm trial."""
    arms = [a.name for a in fr.arms]
    head = sent[:m.value_start]
    clause = head[max(head.rfind(";"), head.rfind(". ")) + 1:]
    named = comparison_phrase(clause, fr)
    if named and not named[0]:
        prior = [it.comparison for it in items if it.comparison and it.mention.end <= m.start]
        named = [prior[-1][0], named[1]] if prior else None
    if named and (len(arms) != 2 or set(named) <= set(arms) or not set(named) & set(arms)):
        return named  # the text says which arms this ratio compares
    if len(arms) == 2:
        return list(arms)
    pair = _uniq([it.arm for it in items if it.arm and it.kind in ("median", "rate")
                  and it.mention.end <= m.start and not any(
                      x.type == "ratio" and it.mention.end <= x.start < m.start for x in (i.mention for i in items))])
    if len(pair) >= 2:
        return pair[-2:]  # the arms of the values this ratio compares ("2.9 v 1.9 months; HR 0.69")
    if len(arms) < 2:
        return None
    before = list(dict.fromkeys(s[2] for s in spans if s[1] <= m.end + 5))
    inside = list(dict.fromkeys(s[2] for s in spans if s[0] >= (m.cue_start or m.start) and s[1] <= m.end))
    if inside:
        ref = inside[-1]
        prior = [it.arm for it in items if it.arm and it.mention.end <= m.start and it.arm != ref]
        exp = prior[-1] if prior else next((a for a in reversed(before) if a != ref), None)
        return [exp, ref] if exp else None
    if len(before) >= 2:
        pair = before[-2:]
        return sorted(pair, key=arms.index)
    if len(before) == 1:
        return [before[0], arms[-1]] if before[0] != arms[-1] else None
    return None


# ---------------------------------------------------------------- the entry point
def extract(article: Article) -> tuple[Trial, list[Measurement]]:
    """The trial facts and every attributed outcome measurement of one article."""
    fr = design.frame(article)
    trial = fr.trial
    arms = [a.name for a in fr.arms]
    raw = article.abstract
    text = normalise(raw)
    r = attribution_rules()
    ctx = _Context()
    ctx.acronyms = _arm_acronyms(normalise(article.title) + "\n" + text, fr)
    ctx.outcome_abbrevs = _outcome_abbrevs(text, ctx.acronyms) if "(" in text else {}
    titled = [h.code for h in find_endpoints(normalise(article.title))] if _GATE.search(raw) else []
    ctx.endpoint = next((c for c in titled if c in SURVIVAL or c in RATE_CODES), None)  # last resort
    out: list[Measurement] = []
    seen: set[tuple] = set()
    for sec in article.sections:
        if sec.label and r.skip_sections.search(sec.label.strip()):
            primary = attribution_rules().primary_endpoint.search(text, sec.offset, sec.offset + len(sec.text))
            if primary:  # "The primary end point was PFS": the default (over the title's)
                named = [h.code for h in find_endpoints(text[primary.end():primary.end() + 80])]
                if named and (named[0] in SURVIVAL or named[0] in RATE_CODES):
                    ctx.endpoint = named[0]
            continue
        base = sec.offset
        sec_text = text[base:base + len(sec.text)]
        for s0, e0 in sentences(sec_text):
            s, e = base + s0, base + e0
            sent = text[s:e]
            if "95%" in sent or "95 %" in sent or "95 percent" in sent:
                ctx.ci95 = True
            pop = _frame_population(sent)
            if pop is not None:
                ctx.population = pop
            if not _GATE.search(sent):
                if attribution_rules().endpoint_words.search(sent):  # "Overall survival was longer. The HR was 0.77"
                    named = [h.code for h in find_endpoints(sent) if h.code in SURVIVAL or h.code in RATE_CODES]
                    if named:
                        ctx.endpoint = named[-1]
                continue
            mentions = find_mentions(sent)
            if not mentions:
                continue
            items = _attribute(sent, mentions, ctx, fr, arms)
            for it in items:
                for arm, pop in [(a, p) for a in [it.arm, *it.extra_arms]
                                 for p in [it.population, *it.extra_populations]]:
                    meas = _measurement(article, raw, s, e, it, arm, pop, ctx)
                    if meas is None:
                        continue
                    key = (meas.kind, meas.endpoint, meas.arm, tuple(meas.comparison or ()), meas.value,
                           meas.ci_low, meas.ci_high, meas.population, meas.timepoint)
                    if key in seen:
                        continue
                    seen.add(key)
                    out.append(meas)
    return trial, out


def _ratio_item(sent: str, m: Mention, hits: list[Hit], ctx: _Context) -> _Item | None:
    if m.value_start >= 2 and sent[m.value_start - 1] == "-" and sent[m.value_start - 2].isalpha():
        return None  # "YKL-40": a name, not a ratio
    return _Item(m, m.ratio_kind or "hazard_ratio", _ratio_endpoint(sent, m, hits, ctx))


def _median_item(sent: str, m: Mention, mentions: list[Mention], hits: list[Hit], ctx: _Context) -> _Item | None:
    """A duration is a median result when a median cue (or a survival phrase over a "vs" list)
    governs it and nothing between says follow-up, age or dose."""
    r = attribution_rules()
    before = sent[:m.value_start]
    cue = None
    for c in r.median_cue.finditer(before):
        cue = c
    ep_hit = _nearest_before(hits, m.value_start)
    if cue is None and not (ep_hit and ep_hit.code in SURVIVAL and m.group is not None):
        return None
    if cue is not None and r.median_pre_block.search(sent, max(0, cue.start() - 12), cue.start()):
        return None  # "recurrence developed at a median of 35 months": when, not how long
    w0 = cue.end() if cue else ep_hit.start  # type: ignore[union-attr]
    first = min([x.start for x in mentions if x.start >= w0] or [m.value_start])
    if r.median_block.search(sent, w0, first):
        return None  # "Median follow-up was 27.9 months ... and 24.8 months"
    w0 = max([w0, *(x.end for x in mentions if x is not m and x.end <= m.start)])
    window = sent[w0:m.value_start]  # the words between, not another value's CI
    if r.median_block.search(window) and not (ep_hit and (cue is None or ep_hit.start > cue.start())):
        return None
    code = ep_hit.code if ep_hit and ep_hit.code in SURVIVAL else None
    if code is None and ep_hit and ep_hit.code in ("ORR", "CR") and _DURATION.search(
            sent, max(0, ep_hit.start - 30), ep_hit.end):
        code = "DOR"
    if code is None:
        tm = _MEDIAN_OTHER.search(before)
        if tm:
            code = "other:" + ("time " + tm["to"] if tm["to"] else tm["dur"]).lower().strip()
        elif cue is not None and ctx.endpoint in SURVIVAL and not ep_hit and set(
                re.findall(r"[a-z]+", sent[cue.end():m.value_start].lower())) <= r.median_carry_words:
            code = ctx.endpoint  # "(median, 3.8 v 1.9 months)" after "PFS was prolonged"
    return _Item(m, "median", code) if code else None


def _rate_item(sent: str, m: Mention, mentions: list[Mention], hits: list[Hit]) -> _Item | None:
    """A percentage is a rate when an outcome governs it and no cue says it is something else
    (baseline make-up, a reduction, a named adverse event, a survey response ...)."""
    r = attribution_rules()
    list_end = max((x.end for x in mentions if m.group is not None and x.group == m.group), default=m.end)
    code, hit, gov = _rate_endpoint(sent, m, hits, 0, list_end)
    if code is None:
        return None
    gov_end = hit.end if hit is not None and hit.end <= m.start else m.start
    between = sent[gov_end:m.start]
    if r.rate_block.search(between) or r.rate_after.search(sent[m.end:m.end + 60]) \
            or r.rate_stat_block.search(sent, max(0, m.start - 80), m.start) \
            or (hit is not None and r.pre_hit_block.search(sent, max(0, hit.start - 30), hit.start)):
        return None  # "a 25% reduction", "at baseline", "the median percentage of days"
    if hit is not None and code == "OS" and _death_like(sent, hit):
        code = "other:death"
    if code.startswith("other:") and (r.outcome_block.search(sent, 0, m.start)
                                      or r.outcome_block_near.match(sent, m.end)):
        return None
    if code == "AE3" and (r.individual_ae.search(between) or (hit is not None and not (
            r.ae3_head.match(sent[hit.end:]) or r.ae3_tail.search(sent[max(0, hit.start - 40):hit.start])))):
        return None  # "grade 3 renal toxicity (9% vs 3%)": a named event, not all grade >=3 AEs
    timepoint = None
    first = min((x.start for x in mentions if m.group is not None and x.group == m.group), default=m.start)
    region = sent[max(0, (hit.start if hit is not None else first) - 30):m.start]  # the list's, not each value's
    for x in r.landmark.finditer(region):
        if not r.landmark_block.search(region[:x.start()]):  # "under the age of 60 years"
            timepoint = _timepoint(x)
    if timepoint is None:  # "51.5% vs. 46.2% at five years": the landmark after the list
        gap = r.landmark_after.match(sent, list_end)
        x = r.landmark.match(sent, gap.end()) if gap else None
        if x is not None and x.group("n2") or x is not None and x.group("wn"):
            timepoint = _timepoint(x)
    if code in SURVIVAL and timepoint is None and not _RATE_WORD.search(sent, max(0, m.start - 80), m.start):
        return None  # "survival improved in 30%": not a landmark rate
    return _Item(m, "rate", code, timepoint=timepoint)


def _population(sent: str, m: Mention, inline: list[tuple[int, str]], kept: list[Mention],
                ctx: _Context) -> str | None:
    """An inline population before the value, else one right after its list, else the frame."""
    before = [p for pos, p in inline if pos < m.start]
    if before:
        return before[-1]
    later = [p for pos, p in inline if pos > m.end and ";" not in sent[m.end:pos]
             and not _CLAUSE_BREAK.search(sent, m.end, pos)  # "(HR ..), whereas in N0 disease (HR ..)"
             and not any(m.end < x.start < pos and x.type != m.type for x in kept)]
    return later[0] if later else ctx.population


def _attribute(sent: str, mentions: list[Mention], ctx: _Context, fr: design.Frame,
               arms: list[str]) -> list[_Item]:
    """Every result of one sentence with its endpoint, population, arm or comparison."""
    r = attribution_rules()
    hits = find_endpoints(sent)
    if ctx.outcome_abbrevs:  # "the SRR was": an outcome the abbreviation's definition named
        hits = sorted(hits + [h for h in _abbrev_hits(sent, ctx.outcome_abbrevs)
                              if not any(x.start < h.end and h.start < x.end for x in hits)], key=lambda h: h.start)
    spans = design.find_arm(sent, fr)
    spans = sorted(spans + [sp for sp in _acronym_spans(sent, ctx.acronyms)
                            if not any(a < sp[1] and sp[0] < b for a, b, _ in spans)])
    ratio_spans = [(m.cue_start if m.cue_start is not None else m.start, m.end) for m in mentions if m.type == "ratio"]
    hits = [h for h in hits if h.cue or not any(a <= h.start < b for a, b in ratio_spans)
            or r.ratio_own_endpoint.search(sent, max(0, h.start - 25), h.start)]  # "the HR for OS was"
    hits = [h for h in hits if not _score_named(sent, h) and not (  # "IgG3 responses": immune, not tumour
        h.code in ("ORR", "CR") and r.immune_response.search(sent, max(0, h.start - 40), h.start))]
    spans_free = [sp for sp in spans if not any(a <= sp[0] and sp[1] <= b for a, b in ratio_spans)]
    framed = _frame_population(sent) is not None
    found = [x for x in r.inline_pop.finditer(sent) if x.start() > 0 or not framed or x.group("pop5")]
    inline = [(x.start(), _clean_pop(x.group("pop") or x.group("pop2") or x.group("pop3") or x.group("pop4")))
              for x in found if not x.group("pop5")]  # a sentence-initial one is the frame
    owned = [(x.start(), x.end(), _clean_pop(x.group("pop5"))) for x in found if x.group("pop5")]
    kept = [m for m in mentions if not m.not_reached and _is_result(sent, m)]
    bounds = [m for m in mentions if m.not_reached or m in kept]
    items: list[_Item] = []
    last_endpoint: str | None = None
    for m in kept:
        if m.type == "ratio":
            it = _ratio_item(sent, m, hits, ctx)
        elif m.type == "duration":
            it = _median_item(sent, m, mentions, hits, ctx)
        elif m.type == "percent":
            it = _rate_item(sent, m, mentions, hits)
        else:
            it = None
        if it is None or it.endpoint is None:
            continue
        if it.endpoint in SURVIVAL or it.endpoint in RATE_CODES:
            last_endpoint = it.endpoint
        it.population = next((p for a, b, p in owned if a <= m.start < b), None) \
            or _population(sent, m, inline, kept, ctx)  # "9 of the 15 patients with X died": its own
        items.append(it)
    ratios = [it for it in items if it.kind not in ("median", "rate")]
    if len(ratios) >= 2:  # subgroup listings: "history of X (HR 1.95 ...) versus no history of X (0.99 ...)"
        for it in ratios:
            if _endpoint_after(sent, it.mention, hits) is not None:
                continue  # "X (HR ..) and Y (HR ..) were associated with Z": risk factors, not subgroups
            label = _subgroup_label(sent, it.mention, hits, spans)
            if label:
                it.population = label
    _landmark_lists(sent, items, arms)
    _assign_arms(sent, items, spans_free, fr, bounds)
    listed = [it for it in items if it.listed_population]
    for it in items:  # "5% and 19% among A and B, respectively, as compared with 0% with placebo"
        if not it.listed_population and any(x.endpoint == it.endpoint and x.mention.end < it.mention.start
                                             and x.arm != it.arm for x in listed):
            pops = _uniq([x.population for x in listed if x.population])
            it.population, it.extra_populations = pops[0], pops[1:]
    if len(arms) >= 2:  # a rate that no arm claims is pooled over arms: SCHEMA does not annotate it
        items = [it for it in items if it.kind != "rate" or it.arm is not None]
    else:  # an outcome known only from "<name> rates" is a trial outcome when arms compare it
        opened = {f"other:{n}" for _, n in _rate_names(sent)}
        items = [it for it in items if it.kind != "rate" or it.endpoint not in opened]
    for it in items:
        if it.kind not in ("median", "rate"):
            it.comparison = _comparison(sent, it.mention, spans, fr, items)
    if last_endpoint is not None:
        ctx.endpoint = last_endpoint
    return items


def _landmark_lists(sent: str, items: list[_Item], arms: list[str]) -> None:
    """"1-, 2-, and 3-year survival rates of 38%, 12% and 2% versus 45%, 12% and 6%": time
    points in order, then arms in order when the list holds one run per arm."""
    for tl in attribution_rules().landmark_list.finditer(sent):
        nums = re.findall(r"\d+", tl.group("nums"))
        unit = tl.group("unit").lower()
        k = len(nums)
        nxt = sent.find(";", tl.end())
        stop = nxt if nxt >= 0 else len(sent)
        rates = [it for it in items if it.kind == "rate" and tl.end() <= it.mention.start < stop]
        if k < 2 or not rates or len(rates) % k:
            continue
        runs = len(rates) // k
        for i, it in enumerate(rates):
            n = nums[i % k]
            it.timepoint = f"{n} {unit}{'' if n == '1' else 's'}"
            if runs > 1 and runs == len(arms):
                it.arm, it.extra_arms = arms[i // k], []


def _measurement(article: Article, raw: str, s: int, e: int, it: _Item, arm: str | None,
                 population: str | None, ctx: _Context) -> Measurement | None:
    m = it.mention
    ci_level = m.ci_level
    if ci_level is None and m.ci_low is not None and ctx.ci95:
        ci_level = 95.0
    unit = m.unit if it.kind == "median" else ("%" if it.kind == "rate" else None)
    flags, log_value, se = check(it.kind, m.value, m.ci_low, m.ci_high, ci_level, m.p_value, m.n, m.n_total)
    sec = article.section_at(s)
    return Measurement(
        kind=it.kind, endpoint=it.endpoint or "other:unknown", arm=arm,
        comparison=it.comparison, population=population, value=m.value, unit=unit,
        ci_low=m.ci_low, ci_high=m.ci_high, ci_level=ci_level, p_value=m.p_value,
        timepoint=it.timepoint, n=m.n, n_total=m.n_total, evidence=raw[s:e],
        section=sec.label if sec else None, start=s, end=e,
        log_value=log_value, se=se, flags=list(flags),
    )
