"""What a number measures: the endpoint or other outcome a ratio, median or rate is a result of.

The governing phrase is the nearest endpoint phrase (rules/endpoints.json, via nlp.py) or
outcome word (rules/attribution.json) before the number, a ratio's own cue ("HR for death")
first; outcomes the abstract abbreviates ("sustained remission rate (SRR)") are named by their
long form.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator

from .attribution import PARENS, RATE_CODES, Context, attribution_rules, outcome_words
from .mentions import Mention
from .nlp import Hit, find_endpoints
from .text import WHITESPACE, WORD_GAP, literal_spans


# "median time from sick leave to return to work" names the same outcome as "time to return to work"
MEDIAN_OTHER = re.compile(r"(?i)\bmedian\s+(?:time (?:from [a-z -]{3,40}? )?(?P<to>to [a-z -]{3,30}?)|(?P<dur>duration of [a-z -]{3,30}?))"
                           r"(?=\s+(?:was|of|were|is)\b|,|\s*\()")


# precompiled: a module-level re.sub/search with a pattern string looks it up in re's cache each call
_BLANK = re.compile(r"\s*")
_CLAUSE_VERB = re.compile(r"[;]|\b(was|were)\b|\d%")
_RATE_TAIL = re.compile(r"(?i)\s+(?:rates?|proportions?)$")


def time_to(text: str) -> tuple[int, str] | None:
    """The last "median time to X" / "duration of X" outcome named in text, as (start, code)."""
    found = list(MEDIAN_OTHER.finditer(text))
    if not found:
        return None
    tm = found[-1]
    return tm.start(), "other:" + ("time " + tm["to"] if tm["to"] else tm["dur"]).lower().strip()


def nearest_before(hits: list[Hit], pos: int, floor: int = 0) -> Hit | None:
    best = None
    for h in hits:
        if floor <= h.start and h.end <= pos:
            best = h
    return best


@lru_cache(maxsize=64)
def _outcomes_in(text: str) -> tuple[tuple[int, str], ...]:
    """Every outcome word of a sentence, scanned once (rates of one sentence share the scan)."""
    r = attribution_rules()
    found = [(m.start(), name) for m, name in outcome_words(text)]
    found += [(m.start("name"), m.group("name").lower()) for m in r.outcome_phrase.finditer(text)]
    found += [(m.start(), WORD_GAP.sub(" ", m.group("name")).lower())  # "PASI 75", "ACR20"
              for m in r.score_outcome.finditer(text)]
    found += rate_names(text)
    return tuple(sorted(found))  # "the proportion of patients achieving ACR20" names its own


@lru_cache(maxsize=64)
def rate_names(text: str) -> list[tuple[int, str]]:
    """Outcomes named only as "<name> rates were 61% and 47%" ("back-to-school rates"): the
    name without determiners or landmarks, unless it names no outcome (dropout, heart rate)."""
    if "rate" not in text.lower():
        return []  # the pattern needs the word; most sentences lack it
    r = attribution_rules()
    out: list[tuple[int, str]] = []
    for m in r.rate_outcome.finditer(text):
        words = [(w.start(), w.group()) for w in _TOKEN.finditer(m.group("name"))]
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


def outcome_at(text: str, hits: list[Hit], lo: int, hi: int, skip_death: bool = False) -> tuple[int, str] | None:
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


def score_named(sent: str, h: Hit) -> bool:
    """A response phrase right after a score outcome ("ACR20 response") is that outcome, not ORR."""
    if h.code not in ("ORR", "CR"):
        return False
    head = sent[max(0, h.start - 16):h.start]
    return any(m.end() == len(head.rstrip()) and head[m.end():].isspace()
               for m in attribution_rules().score_outcome.finditer(head))


def death_like(sent: str, h: Hit) -> bool:
    return bool(attribution_rules().death_words.search(sent, h.start, h.end))


def ratio_endpoint(sent: str, m: Mention, hits: list[Hit], ctx: Context) -> str | None:
    """A ratio's own cue names its endpoint ("for death"); else the nearest endpoint phrase or
    outcome word before it; else the endpoint the previous sentence was about."""
    cue_start = m.cue_start if m.cue_start is not None else m.start
    own = [h for h in hits if cue_start <= h.start and h.end <= m.value_start]
    for h in own:
        if h.cue:
            return _death_kind(sent, h, m)
    if own:
        return _death_kind(sent, own[-1], m)
    later = endpoint_after(sent, m, hits)
    if later is not None:  # "relapse (HR ...) and X (HR ...) were associated with shorter survival"
        return later
    before = nearest_before(hits, cue_start)
    timed = time_to(sent[:cue_start])
    if timed and (before is None or timed[0] > before.end):
        return timed[1]  # "median time to healing was 21 vs 30 days (HR 1.45)": the same outcome
    word = outcome_at(sent, hits, 0, cue_start, skip_death=True)
    if word is not None and (before is None or word[0] > before.end or death_like(sent, before)):
        return f"other:{word[1]}"
    if before is not None:
        return _death_kind(sent, before, m)
    after = [h for h in hits if m.end <= h.start <= m.end + 60]
    if after:  # "a hazard ratio of 0.87 (13% reduction in the risk of death)"
        return _death_kind(sent, after[0], m)
    word = outcome_at(sent, hits, 0, cue_start)
    if word:
        return f"other:{word[1]}"
    if m.ratio_kind == "odds_ratio" and ctx.endpoint not in RATE_CODES:
        return None  # odds of what? a carried survival endpoint is not one
    return ctx.endpoint


def endpoint_after(sent: str, m: Mention, hits: list[Hit]) -> str | None:
    """The endpoint a clause names after its ratios ("... were associated with shorter OS")."""
    r = attribution_rules()
    after = [h for h in hits if h.start >= m.end]
    words = [(pos, name) for pos, name in _outcomes_in(sent) if pos >= m.end
             and not any(h.start <= pos < h.end for h in hits)]
    cands: list[tuple[int, Hit | str]] = [(h.start, h) for h in after] + [(p, f"other:{n}") for p, n in words]
    for pos, what in sorted(cands, key=lambda x: x[0]):
        gap = sent[m.end:pos]
        while "(" in gap and PARENS.search(gap):  # the other factors' own "(HR, 1.66; 95% CI ...)"
            gap = PARENS.sub("", gap)
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
    name = WHITESPACE.sub(" ", sent[h.start:x.end()]).lower().replace(">=", "≥")
    return "other:" + name


def _death_kind(sent: str, h: Hit, m: Mention) -> str:
    """Death is OS for a hazard ratio (time to event), a binary outcome for odds and risk ratios."""
    if h.code == "OS" and death_like(sent, h) and (
            m.ratio_kind in ("odds_ratio", "risk_ratio") or attribution_rules().fixed_time_death.match(sent[h.end:])):
        return "other:death"
    return h.code


def rate_endpoint(sent: str, m: Mention, hits: list[Hit], floor: int,
                   list_end: int) -> tuple[str | None, Hit | None, int]:
    """Endpoint of a percentage: the phrase right after it ("3% complete responses"), the one
    its list is said to have ("26% of X patients had stable disease"), else the nearest before."""
    free = hits
    after = [h for h in free if h.start >= m.end]
    if after and _BLANK.fullmatch(sent, m.end, after[0].start):
        return after[0].code, after[0], after[0].start
    after = [h for h in free if h.start >= list_end]
    if after:
        gap = sent[list_end:after[0].start]
        if len(gap) <= 60 and attribution_rules().outcome_after.search(gap) \
                and not _CLAUSE_VERB.search(gap):
            return after[0].code, after[0], after[0].start
    before = nearest_before(free, m.start, floor)
    word = outcome_at(sent, hits, floor, m.start, skip_death=True)
    if word is not None and (before is None or word[0] > before.end):
        return f"other:{word[1]}", None, word[0]
    if before is not None:
        return before.code, before, before.start
    subject = attribution_rules().rate_subject_after.match(sent, m.end)
    if subject:  # "43.9% of participants in the A group were continuously abstinent"
        named = next((h for h in hits if h.start == subject.end()), None)
        if named is not None:  # "(25%) in the experimental group had a partial response"
            return named.code, named, named.start
        word = outcome_at(sent, hits, subject.end(), min(len(sent), subject.end() + 30))
        if word is not None:
            return f"other:{word[1]}", None, word[0]
    reach = 70 if attribution_rules().group_after_count.match(sent, m.end) else 40  # "12 of 19 patients with <a long group name> died"
    word = outcome_at(sent, hits, floor, m.start) or outcome_at(sent, hits, m.end, min(len(sent), m.end + reach))
    return (f"other:{word[1]}" if word else None), None, (word[0] if word else m.start)


_LONG_RUN_BACK = re.compile(r"[\w'\s-]*")  # what the long form of rules' outcome_abbrev is made of, read backwards


_LONG_WORDS = 10  # at least the words it may have (8)


_OPEN = re.compile(r"\((?=[A-Za-z])")  # its short form starts with a letter


_TOKEN = re.compile(r"\S+")


_LETTER = re.compile(r"[A-Za-z]")


def abbrev_definitions(pat: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """pat.finditer(text) for the outcome_abbrev rule ("long form (ABBR)"), tried only from the
    run of word, space, ' and - characters before each "(" and a letter (its last _LONG_WORDS
    words; the run is read backwards, in the reversed text) up to the next ")": a match cannot start anywhere else, and the rule searched over a
    whole abstract backtracks at every letter (3 ms an abstract). tests/test_perf.py checks it
    against plain finditer."""
    back = text[::-1]  # the run ending at q is the one starting at len(text) - q in `back`
    last = 0
    for o in _OPEN.finditer(text):
        q = o.start()
        if q < last:
            continue
        run = len(_LONG_RUN_BACK.match(back, len(text) - q).group())  # type: ignore[union-attr]  # never None: * may be empty
        words = list(_TOKEN.finditer(text, max(q - run, last), q))[-_LONG_WORDS:]
        close = text.find(")", q)
        end = len(text) if close < 0 else close + 1
        if not words or _match_in(pat, text, words[-1], end) is None:
            continue  # a match ends at this "(", its long form with the last word: none starts earlier
        for w in words:  # a match starts at a word's first letter or not in that word at all
            m = _match_in(pat, text, w, end)
            if m:
                yield m
                last = m.end()
                break


def _match_in(pat: re.Pattern[str], text: str, word: re.Match[str], end: int) -> re.Match[str] | None:
    """pat.match from the first letter of `word` (None without one)."""
    first = _LETTER.search(text, word.start(), word.end())
    return pat.match(text, first.start(), end) if first else None


def outcome_abbrevs(text: str, arm_acronyms: dict[str, str]) -> dict[str, str]:
    """Short forms the abstract defines for an outcome ("sustained remission rate (SRR)"):
    the long form starts with the short form's first letter and (before a "rate" word)
    ends in an outcome; the name is the long form ("sustained remission"): gold names are
    descriptive, and a shorter name is matched by any longer one holding its words."""
    r = attribution_rules()
    out: dict[str, str] = {}
    for d in abbrev_definitions(r.outcome_abbrev, text):
        abbr = d.group("abbr")
        if abbr in out or abbr in arm_acronyms or find_endpoints(abbr) or r.outcome_abbrev_block.search(abbr):
            continue
        words = d.group("long").split()
        start = next((k for k in range(max(0, len(words) - len(abbr) - 2), len(words))
                      if words[k][0].lower() == abbr[0].lower()), None)
        if start is None:
            continue
        long = " ".join(words[start:])
        core = _RATE_TAIL.sub("", long)
        ends = [h for h in find_endpoints(core) if not h.cue and h.end == len(core)]
        if ends and ends[0].start == 0:
            out[abbr] = ends[0].code  # "objective response rates (ORRs)": a known endpoint
        elif ends or r.outcome_abbrev_head.search(core) or any(
                m.end() == len(core) for m, _ in outcome_words(core)):
            out[abbr] = f"other:{core.lower()}"
    return out


def abbrev_hits(sent: str, abbrevs: dict[str, str]) -> list[Hit]:
    return [Hit(s, e, code, False) for abbr, code in abbrevs.items() for s, e in literal_spans(abbr, sent, word_end=True)]
