"""Find the numeric results of one sentence: ratios with CI and p, durations, percentages.

Numbers are found with regexes (data in rules/patterns.json) over normalised text that keeps
offsets, then typed by what surrounds them: a ratio cue before, a unit or "%" after, counts,
a CI and a p-value after. Coordinated values ("8.8 vs 4.9 months", "5% and 19% ...,
respectively") share a `group`. Nothing here knows endpoints or arms: that is extract.py's job.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from operator import methodcaller
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from extractor.consistency import log_asymmetry
from extractor.errors import RuleError
from extractor.rules import load_rules
from extractor.text import WHITESPACE, WORD_GAP, fold_case, normalise

__all__ = ["Mention", "find_mentions", "in_context", "rules", "compiled"]


@dataclass(frozen=True)
class Mention:
    """One number typed as a result, with its interval, p-value, counts and list position.

    Spans are offsets into the text given to find_mentions (normalisation keeps length);
    `start` may precede `value_start` ("12 of 95 patients (12.6%)" starts at "12"). A median
    "not reached" has `not_reached=True` and value NaN. A ratio with no cue of its own takes
    `ratio_kind` from a cue earlier in the same text, else None.
    `flags` carries hints consumers may use to drop non-results: "timepoint" ("at 12 months",
    "12-month"), "adjective" ("12-month"), "follow_up", "bare" (a ratio-like value with a CI
    but no cue of its own), "counts_only" ("12 of 95 patients", value computed), "difference"
    (a percent or duration after "difference", "reduction", "by"...: not a rate or median).
    """

    type: str
    value: float
    start: int
    end: int
    value_start: int
    value_end: int
    ratio_kind: str | None = None
    cue: str | None = None
    cue_start: int | None = None
    unit: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    p_value: str | None = None
    n: int | None = None
    n_total: int | None = None
    group: int | None = None
    group_index: int | None = None
    respectively: bool = False
    not_reached: bool = False
    flags: tuple[str, ...] = ()


# ---------------------------------------------------------------- rules (data) and their checks


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PatternRule(_Strict):
    description: str
    regex: str
    mode: Literal["search", "match", "fullmatch"] = "search"  # how mentions.py applies it
    requires: list[str] = Field(default_factory=list)  # tried only on text holding one of these
    # a regex found in every text `regex` matches, cheap to search (it starts with a literal or a
    # class): a whole-text scan skips a text without it (number-rich sentences hold `requires`)
    prefilter: str | None = None
    examples: list[str] = Field(min_length=1)
    counter_examples: list[str] = Field(default_factory=list)


class ContextRule(_Strict):
    """Words before a number that change what it is ('aged 65 years', 'group 1', 'at 12 months').

    Looked up as words, not regexes: a set lookup per number is ~50x faster than a
    `...$`-anchored alternation searched over the text before every number.
    """

    description: str
    window: int = Field(gt=0, le=80)  # characters before the number that are looked at
    last_words: list[str]             # phrases that, ending the window, mark the number
    any_words: list[str]              # words anywhere in the window after its last digit, ';' or '.'
    symbols: str                      # a window ending in one of these marks the number
    stop_chars: str                   # a window ending in one of these is not checked for last_words
    examples: list[str] = Field(min_length=1)
    counter_examples: list[str] = Field(default_factory=list)


class PatternRules(_Strict):
    comment: str = Field("", alias="_comment")
    num: str
    patterns: dict[str, PatternRule]
    context: dict[str, ContextRule]
    ratio_cues: dict[str, list[str]]
    ratio_cue_literals: list[str]  # every cue contains one of these (a fast pre-check)
    ratio_cue_starts: str  # every cue starts with one of these characters: tried only at them
    ratio_cue_examples: dict[str, list[str]]  # each must be found as a cue of its kind
    cue_modifiers: list[str]
    units: dict[str, str]
    number_words: dict[str, int]
    count_nouns: list[str]


_REQUIRED = ("number", "p_value", "ci", "bare_interval", "comma_interval", "other_interval", "ratio_value",
             "value_unit", "percent", "count_of_then_pct", "count_pct_of", "pct_then_counts", "count_only",
             "not_reached", "range_sep", "list_gap", "comparison_gap", "respectively", "after_age",
             "ci_level_after", "timepoint_after", "tail_phrase", "p_phrase", "ratio_list_next", "word_percent")
_CONTEXTS = ("label", "threshold", "age", "timepoint", "difference", "follow_up", "range_start", "not_ratio")


@lru_cache(maxsize=1)
def rules() -> PatternRules:
    """The validated pattern rules (loaded once)."""
    r = load_rules("patterns", PatternRules)
    missing = [k for k in _REQUIRED if k not in r.patterns] + [k for k in _CONTEXTS if k not in r.context]
    if missing:
        raise RuleError(f"rules/patterns.json: missing patterns {missing}")
    return r


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


def _numword_regex(words: dict[str, int]) -> str:
    units = [w for w, v in words.items() if 0 < v < 10]
    small = [w for w, v in words.items() if v < 20]
    tens = [w for w, v in words.items() if 20 <= v < 100 and v % 10 == 0]
    return (r"(?i:(?:one\s+)?hundred(?:\s+and\s+(?:" + _alternation(small) + r"))?|(?:" + _alternation(tens) + r")(?:[- ](?:"
            + _alternation(units) + r"))?|(?:" + _alternation(small) + r"))(?![a-z])")


@dataclass(frozen=True)
class _Context:
    window: int
    last: frozenset[str]
    any: frozenset[str]
    symbols: str
    stop_chars: str
    longest: int  # words in the longest of `last`: longer tails cannot match
    finals: frozenset[str]  # the last word of each of `last`: a window ending in another word cannot match
    any_hint: re.Pattern[str] | None  # finds one of `any` in the lower-cased window (else none is a word of it)


@dataclass(frozen=True)
class _Compiled:
    p: dict[str, re.Pattern[str]]
    requires: dict[str, re.Pattern[str] | None]  # finds one of the pattern's `requires` literals
    prefilter: dict[str, re.Pattern[str] | None]
    cue: re.Pattern[str]
    cue_literals: tuple[str, ...]
    cue_gate: re.Pattern[str]  # finds any of cue_literals
    ctx: dict[str, _Context]
    modifier: re.Pattern[str]
    modifier_ends: tuple[str, ...] | None  # each modifier's last word, case-folded (None: no such pre-check)
    units: dict[str, str]
    numbers: dict[str, int]


@lru_cache(maxsize=1)
def compiled() -> _Compiled:
    """All regexes compiled once, with {NUM}, {UNIT}, {NUMWORD}, {COUNT_NOUN} filled in."""
    r = rules()
    fill = {"{NUM}": r.num, "{UNIT}": "(?i:" + _alternation(list(r.units)) + ")",
            "{NUMWORD}": _numword_regex(r.number_words), "{COUNT_NOUN}": _alternation(r.count_nouns)}
    out: dict[str, re.Pattern[str]] = {}
    pre: dict[str, re.Pattern[str] | None] = {}
    for name, rule in r.patterns.items():
        src = rule.regex
        for k, v in fill.items():
            src = src.replace(k, v)
        try:
            out[name] = re.compile(src)
            pre[name] = re.compile(rule.prefilter) if rule.prefilter else None
        except re.error as e:
            raise RuleError(f"rules/patterns.json: pattern {name}: {e}") from e
    cue_src = "(?=[" + re.escape(r.ratio_cue_starts) + "])(?:" + "|".join(
        f"(?P<{kind}>" + "|".join(alts) + ")" for kind, alts in r.ratio_cues.items()) + ")"  # 2.7x faster than at every character
    mod_src = r"(?i:(?:" + _alternation(r.cue_modifiers) + r")[\s-]+)$"
    try:
        cue, modifier = re.compile(cue_src), re.compile(mod_src)
    except re.error as e:
        raise RuleError(f"rules/patterns.json: ratio_cues: {e}") from e
    ctx = {k: _Context(v.window, frozenset(w.lower() for w in v.last_words), frozenset(w.lower() for w in v.any_words),
                       v.symbols, v.stop_chars, max((len(w.split()) for w in v.last_words), default=0),
                       frozenset(w.lower().rsplit(" ", 1)[-1] for w in v.last_words), _any_hint(v.any_words))
           for k, v in r.context.items()}
    requires = {k: re.compile("|".join(map(re.escape, v.requires))) if v.requires else None
                for k, v in r.patterns.items()}
    cue_gate = re.compile("|".join(map(re.escape, r.ratio_cue_literals)))
    ends = tuple(sorted({w.split()[-1].lower() for w in r.cue_modifiers}))
    plain = all(w.isascii() and w.strip() and w.rstrip()[-1] not in "-" for w in r.cue_modifiers)
    return _Compiled(out, requires, pre, cue, tuple(r.ratio_cue_literals), cue_gate, ctx,
                     modifier, ends if plain else None, {k.lower(): v for k, v in r.units.items()},
                     {k.lower(): v for k, v in r.number_words.items()})


# ---------------------------------------------------------------- small helpers


def _num(s: str) -> float:
    return float(s.replace(",", ""))


# precompiled: a module-level re.sub/split with a pattern string looks it up in re's cache each call
_OP_FILLER = re.compile(r"\s+|=|was|of")
_CLAUSE_AFTER = re.compile(r"[)\]]*[^.;()\[\]\d]{0,100}")
_BRACKETED = re.compile(r"\s*\(([^()]*)\)")


def _int(s: str) -> int | None:
    s = s.strip()
    if s[:1].isdigit():
        return int(s.replace(",", ""))
    words = compiled().numbers
    total = 0
    for part in WORD_GAP.split(s.lower()):
        if part == "and":
            continue
        if part == "hundred":
            total = max(total, 1) * 100
        elif part in words:
            total += words[part]
        else:
            return None
    return total


def _level(s: str | None) -> float | None:
    return float(s) if s else None


_CI = tuple[float, float | None, float | None]  # low, high (None: "to not reached"), level


def _ci_kw(ci: _CI | None) -> dict[str, float | None]:
    return {"ci_low": ci[0], "ci_high": ci[1], "ci_level": ci[2]} if ci else {}


@dataclass
class _Tail:
    end: int
    ci: _CI | None = None
    p: str | None = None


def _p_text(m: re.Match[str]) -> str:
    op = _OP_FILLER.sub("", m.group("op"))
    return op + WHITESPACE.sub("", m.group("val"))


def _ci_at(t: str, pos: int, bare: bool) -> tuple[re.Match[str], bool] | None:
    """A CI starting at pos (after optional punctuation and an opening bracket)."""
    c = compiled().p
    ci = c["ci"].match(t, _SKIP_OTHER.match(t, pos).end())  # type: ignore[union-attr]
    if ci:
        return ci, True
    if bare:
        b = c["bare_interval"].match(t, _SPACE_PUNCT.match(t, pos).end())  # type: ignore[union-attr]
        if b:
            return b, False
        b = c["comma_interval"].match(t, pos)
        if b:
            return b, False
    return None


# what ends the text between a cue and its value but is no part of the cue: "HR was (", "odds ratio ="
_CUE_TRAIL = re.compile(r"(?i)(?:[\s,:;=(\[]+|(?<![a-z])(?:was|were|is|of|at|to\s+be|estimated|reached|equal(?:led)?\s+to)"
                        r"(?![a-z]))*$")
_LEVEL_AFTER = re.compile(r"\s*[,;]\s*(?P<level>\d{2}(?:\.\d+)?)\s?%\s?(?:CI|CrI|(?i:confidence\s+interval))")
_PER_UNIT = re.compile(r"\s?(?:/|per\s)\s?[A-Za-z][A-Za-z0-9-]{0,9}(?![A-Za-z])")
_SPACE_PUNCT = re.compile(r"[\s,;:]*")
_SKIP_TO_P = re.compile(r"[\s,;:)\]]*(?:(?i:respectively)[\s,;:]*)?[(\[]?\s*")
_SKIP_OTHER = re.compile(r"[\s,;:]*[(\[]?\s*")


def _ci_after(t: str, pos: int, bare: bool) -> tuple[tuple[re.Match[str], bool] | None, int]:
    """The CI that follows a value ending at pos (as _ci_at gives it), and where it was looked for."""
    c = compiled().p
    o = c["other_interval"].match(t, _SKIP_OTHER.match(t, pos).end())  # type: ignore[union-attr]
    if o:  # an IQR/range between the value and its CI: step over it
        pos = o.end()
    hit = _ci_at(t, pos, bare)
    if not hit:
        ph = c["tail_phrase"].match(t, pos)
        if ph:
            hit = _ci_at(t, ph.end(), False)
    return hit, pos


def _tail(t: str, pos: int, used: bytearray, bare: bool = True) -> _Tail:
    """CI and p-value that directly follow a value ending at pos."""
    c = compiled().p
    out = _Tail(pos)
    hit, pos = _ci_after(t, pos, bare)
    if hit and _claimable(used, hit[0].start(), hit[0].end()):
        m, marked = hit
        low, high = _num(m.group("low")), (_num(m.group("high")) if m.group("high") else None)
        level = _level(m.groupdict().get("level") or m.groupdict().get("level2")) if marked else None
        out.end = pos = m.end()
        if not marked:
            lm = _LEVEL_AFTER.match(t, pos)  # "(0.30-0.80, 95% CI)"
            if lm:
                level, out.end, pos = float(lm.group("level")), lm.end(), lm.end()
        out.ci = (low, high, level)
        _mark(used, m.start(), pos)
        per = _PER_UNIT.match(t, pos)
        if per:
            pos = per.end()
    pm = c["p_value"].match(t, _SKIP_TO_P.match(t, pos).end())  # type: ignore[union-attr]
    if not pm:
        ph = c["p_phrase"].match(t, pos)
        if ph:
            pm = c["p_value"].match(t, _SKIP_TO_P.match(t, ph.end()).end())  # type: ignore[union-attr]
    if pm and _claimable(used, pm.start(), pm.end()):
        out.p = _p_text(pm)
        out.end = pm.end()
        _mark(used, pm.start(), pm.end())
    return out


_SYMBOLS = "<>≤≥="
_LAST_STOP = re.compile(r"(?s:.*)[0-9;.]")  # up to the last digit, ';' or '.'
_strip_any = methodcaller("strip", "()[],;:")


def _any_hint(words: list[str]) -> re.Pattern[str] | None:
    """A search for any of `words` in a lower-cased window: where it fails, none of them is a
    word of the window. None (no such test) unless all are ASCII (lower() keeps them in place)."""
    low = sorted({w.lower() for w in words})
    if not low or not all(w.isascii() for w in low):
        return None
    return re.compile("|".join(re.escape(w) for w in low))


def in_context(name: str, before: str) -> bool:
    """Whether the text `before` a number puts it in context `name` (label, age, timepoint...)."""
    c = compiled().ctx[name]
    return _holds(c, before[-c.window:])


def _at(name: str, t: str, pos: int) -> bool:
    """in_context(name, t[:pos]), slicing only the window."""
    c = compiled().ctx[name]
    return _holds(c, t[max(0, pos - c.window):pos])


def _holds(c: _Context, win: str) -> bool:
    """in_context on its window. Asked for nearly every number (~8 times a sentence): the
    common answers (no phrase ends in the last word, no listed word in the window) come
    without splitting the window."""
    end = win.rstrip()
    if not end:
        return False
    if end[-1] in c.symbols:
        return True
    if c.last and end[-1] not in c.stop_chars:  # "group (44.8%)" is no label, "group 1" is
        last = end.rsplit(None, 1)[-1].strip("()[],;:'\"").lower()
        if not last.strip(_SYMBOLS) or last in c.finals:
            need = min(4, c.longest)  # only the last `need` words that are not bare symbols can match
            toks: list[str] = []
            for x in reversed(win.split()[-5:]):
                w = x.strip("()[],;:'\"").lower()
                if w.strip(_SYMBOLS):
                    toks.append(w)
                    if len(toks) == need:
                        break
            toks.reverse()
            for k in range(1, len(toks) + 1):
                if " ".join(toks[-k:]) in c.last:
                    return True
    if c.any:
        if c.any_hint is not None and not c.any_hint.search(win.lower()):
            return False
        stop = _LAST_STOP.match(win)  # only the words after the last digit, ';' or '.' count
        return not c.any.isdisjoint(map(_strip_any, win[stop.end() if stop else 0:].lower().split()))
    return False


def _scan(name: str, t: str) -> Iterator[re.Match[str]]:
    """finditer of pattern `name`, skipped when the text lacks all of its required literals
    or its prefilter."""
    c = compiled()
    req, pre = c.requires[name], c.prefilter[name]
    if (req is not None and not req.search(t)) or (pre is not None and not pre.search(t)):
        return iter(())
    return c.p[name].finditer(t)


def _mark(used: bytearray, a: int, b: int) -> None:
    used[a:b] = b"\x01" * (b - a)


def _free(used: bytearray, a: int, b: int) -> bool:
    return not used[a:b].strip(b"\0")


def _claimable(used: bytearray, a: int, b: int) -> bool:
    return 1 not in used[a:b]


def _before(t: str, pos: int, width: int = 40) -> str:
    return t[max(0, pos - width):pos]


# ---------------------------------------------------------------- finders


def _modifier_before(t: str, pos: int) -> re.Match[str] | None:
    """The cue modifier ending the 60 characters before pos ("adjusted " HR). The pattern is
    searched (at every one of them) only when they end, but for spaces and hyphens, in a
    modifier's last word: its match ends there, as a modifier ends in neither."""
    c = compiled()
    win = _before(t, pos, 60)
    if c.modifier_ends is not None:
        core = len(win)
        while core and (win[core - 1].isspace() or win[core - 1] == "-"):
            core -= 1
        if core == len(win) or not fold_case(win[:core]).endswith(c.modifier_ends):
            return None
    return c.modifier.search(win)


def _ratios(t: str, used: bytearray, text: str) -> list[Mention]:
    c = compiled()
    out: list[Mention] = []
    if not c.cue_gate.search(t):
        return out
    for cue in c.cue.finditer(t):
        if not _free(used, cue.start(), cue.end()):
            continue
        vm = c.p["ratio_value"].match(t, cue.end())
        if not vm or not _free(used, vm.start("value"), vm.end("value")):
            continue
        vs, ve = vm.span("value")
        kind = cue.lastgroup or "hazard_ratio"
        start = cue.start()
        mod = _modifier_before(t, start)
        while mod:
            start -= len(mod.group(0))
            mod = _modifier_before(t, start)
        cue_text = _CUE_TRAIL.sub("", text[start:vs])
        per = _PER_UNIT.match(t, ve)  # "HR, 1.07/Gy; 95% CI ..."
        tail = _tail(t, per.end() if per else ve, used)
        if tail.ci and tail.ci[2] is None and (vm.group("blevel") or vm.group("blevel2")):
            tail.ci = (tail.ci[0], tail.ci[1], float(vm.group("blevel") or vm.group("blevel2")))
        _mark(used, cue.start(), ve)
        out.append(Mention("ratio", _num(vm.group("value")), vs, max(ve, tail.end), vs, ve, ratio_kind=kind,
                           cue=cue_text, cue_start=start,
                           p_value=tail.p, **_ci_kw(tail.ci)))
        pos = max(ve, tail.end)
        while True:  # "HRs were 0.60 (95% CI ...) and 0.72 (95% CI ...)": the list's next values
            nm = c.p["ratio_list_next"].match(t, pos)
            if not nm or not _free(used, nm.start("value"), nm.end("value")):
                break
            vs, ve = nm.span("value")
            tail = _tail(t, ve, used)
            if tail.ci is None and not cue_text.lower().rstrip().endswith("s"):
                break  # a singular cue with a bare number after: not a list of ratios
            _mark(used, vs, ve)
            out.append(Mention("ratio", _num(nm.group("value")), vs, max(ve, tail.end), vs, ve, ratio_kind=kind,
                               cue=cue_text, cue_start=start,
                               p_value=tail.p, **_ci_kw(tail.ci)))
            pos = max(ve, tail.end)
    return out


def _counts(t: str, used: bytearray) -> list[Mention]:
    out: list[Mention] = []
    for m in _scan("word_percent", t):
        value = _int(m.group("n"))
        if value is not None and _free(used, m.start(), m.end()):
            _mark(used, m.start(), m.end())
            tail = _tail(t, m.end(), used, bare=False)
            out.append(Mention("percent", float(value), m.start(), max(m.end(), tail.end), m.start(), m.end("n"),
                               unit="%", p_value=tail.p))
    for name in ("count_of_then_pct", "count_pct_of", "pct_then_counts", "count_only", "count_only_elided"):
        for m in _scan(name, t):
            if not _free(used, m.start(), m.end()):
                continue
            if name == "count_only_elided" and not any(
                    "counts_only" in o.flags and 0 <= m.start() - o.end <= 120 for o in out):
                continue  # the noun is left out only after a count that named it
            if m.start() > 0 and (t[m.start() - 1].isalnum() or t[m.start() - 1] == "."):
                continue
            n, total = _int(m.group("n")), _int(m.group("N"))
            if n is None or total is None:
                continue
            if name in ("count_only", "count_only_elided"):
                if total <= 0 or n > total:
                    continue
                value, vs, ve = round(100.0 * n / total, 1), m.start(), m.end("N")
            else:
                value, (vs, ve) = _num(m.group("pct")), m.span("pct")
            end = m.end()
            tail = _tail(t, end if t[end - 1:end] not in ",;" else end - 1, used, bare=False)
            _mark(used, m.start(), m.end())
            out.append(Mention("percent", value, m.start(), max(end, tail.end), vs, ve, unit="%", n=n, n_total=total,
                               p_value=tail.p, flags=("counts_only",) if name.startswith("count_only") else (),
                               **_ci_kw(tail.ci)))
    return out


@dataclass
class _Item:
    start: int
    end: int          # end of value + unit/% (before any CI)
    value: float
    type: str | None  # None: a bare number, typed later by its list
    unit: str | None = None
    mid_ci: _CI | None = None
    flags: tuple[str, ...] = ()
    not_reached: bool = False
    vend: int = -1    # end of the number itself
    hyphen: bool = False  # "12-month": an adjective, a time point


def _items(t: str, used: bytearray) -> list[_Item]:
    c = compiled()
    p = c.p
    items: list[_Item] = []
    age_end = -1  # end of a bare number read as an age: the number closing its window is one too
    for m in p["number"].finditer(t):
        s, e = m.span()
        if not _free(used, s, e):
            continue
        if _at("label", t, s):
            continue
        pm = p["percent"].match(t, s)
        if pm and pm.end("value") == e:
            if p["ci_level_after"].match(t, pm.end()):
                continue
            if _at("threshold", t, s):
                continue
            diff = ("difference",) if _at("difference", t, s) else ()
            items.append(_Item(s, pm.end(), _num(m.group(0)), "percent", "%", flags=diff, vend=e))
            continue
        um = p["value_unit"].match(t, s)
        if um and um.end("value") == e:
            if _at("age", t, s) or p["after_age"].match(t, um.end()) \
                    or t[age_end:s].strip() in ("and", "to", "-", "\u2013"):  # "ages 1.0 and 6.0 years"
                continue
            if _at("threshold", t, s):
                continue
            flags: tuple[str, ...] = ()
            if um.group("hyphen"):
                flags = ("timepoint", "adjective")
            elif _at("timepoint", t, s) or p["timepoint_after"].match(t, um.end()):
                flags = ("timepoint",)
            if _at("follow_up", t, s):
                flags += ("follow_up",)
            if _at("difference", t, s):
                flags += ("difference",)  # "a difference of 9 weeks", "prolonged by 2.1 months"
            mid = None
            if um.group("mid"):
                hit = _ci_at(t, um.start("mid"), True)
                if hit and hit[0].end() <= um.end("mid"):
                    h = hit[0]
                    mid = (_num(h.group("low")), _num(h.group("high")) if h.group("high") else None,
                           _level(h.groupdict().get("level") or h.groupdict().get("level2")) if hit[1] else None)
                elif not p["other_interval"].search(um.group("mid")):
                    continue  # e.g. "12 (n = 40) months": not a clean duration
            unit = c.units.get(um.group("unit").lower(), um.group("unit").lower())
            items.append(_Item(s, um.end(), _num(m.group(0)), "duration", unit, mid, flags, vend=e,
                               hyphen=bool(um.group("hyphen"))))
            continue
        if _at("threshold", t, s):
            continue  # "less than 4 and 19 months": the 4 is a cut-off, not a list member
        if _at("age", t, s):
            age_end = e
            continue  # "death between ages 1.0 and 6.0 years": an age window, no list of durations
        items.append(_Item(s, e, _num(m.group(0)), None, vend=e))
    for m in _scan("not_reached", t):
        if _free(used, m.start(), m.end()):
            items.append(_Item(m.start(), m.end(), math.nan, None, not_reached=True, vend=m.end()))
    items.sort(key=lambda i: i.start)
    return items


def _gap_ok(gap: str, name: str) -> bool:
    return compiled().p[name].fullmatch(gap.lstrip(")]")) is not None


def _is_year(t: str, it: _Item) -> bool:
    return it.vend - it.start == 4 and 1900 <= it.value <= 2100 and t[it.start:it.vend].isdigit()


_LEADING_INTERVAL = re.compile(r"\s*(?:\[[^\[\]]*\]|\([^()]*\))")


def _drop_interval(gap: str) -> str:
    """A gap without the value's own bracketed interval: "13.1 [95% CI 10.6-16.5] vs 4.6 [4.2-5.4]
    months" is a list of two durations."""
    m = _LEADING_INTERVAL.match(gap)
    return gap[m.end():] if m and compiled().p["ci"].search(m.group()) else gap


def _type_lists(t: str, items: list[_Item]) -> list[_Item]:
    """Give bare numbers the type of the list they end in ('8.8 vs 4.9 months'); drop ranges."""
    drop: set[int] = set()
    for i in range(len(items) - 2, -1, -1):
        a, b = items[i], items[i + 1]
        gap = t[a.end:b.start]
        if b.type and (a.type is None or a.type == b.type) and not a.not_reached and (
                _gap_ok(gap, "range_sep") or (gap.strip() == "and" and _at("range_start", t, a.start))):
            drop.update((i, i + 1))  # "62 to 65%", "3-5 months", "between 11 and 20 days": a range
        elif a.type is None and b.type and (_gap_ok(gap, "list_gap") or _gap_ok(_drop_interval(gap), "list_gap")) \
                and not _is_year(t, a) and (not b.hyphen or gap.startswith("-")):  # "1-, 2- and 3-year" but not "2010, 5-year"
            a.type, a.unit = b.type, b.unit
            if b.type == "duration" and _at("timepoint", t, a.start):
                a.flags = ("timepoint",)  # "at 1 and 3 years"
            if a.not_reached and b.type != "duration":
                a.type = None
    for i in range(1, len(items)):  # "36.9 months (95% CI, 18.1-42.9), 34.0 (95% CI, 16.9-57.1)"
        b, a = items[i - 1], items[i]
        if a.type is None and not a.not_reached and b.type and not b.hyphen and i - 1 not in drop:
            scratch = bytearray(len(t))
            b_end = _tail(t, b.end, scratch).end
            if b_end <= a.start and _gap_ok(t[b_end:a.start], "list_gap") and _tail(t, a.end, scratch).ci:
                a.type, a.unit, a.flags = b.type, b.unit, tuple(f for f in b.flags if f == "timepoint")
    for i in range(1, len(items)):  # "12.1 months vs not reached"
        a, b = items[i - 1], items[i]
        if b.not_reached and b.type is None and a.type == "duration" and _gap_ok(t[a.end:b.start], "list_gap"):
            b.type, b.unit = "duration", a.unit
    for i, it in enumerate(items):
        if it.not_reached and it.type is None and "median" in _before(t, it.start, 100).lower() and \
                len(t[it.start:it.end]) > 2:
            it.type = "duration"
    return [it for i, it in enumerate(items) if i not in drop]


def _typed(t: str, items: list[_Item], used: bytearray) -> list[Mention]:
    """Mentions of typed items with their CI and p; bare numbers with a CI become cue-less ratios."""
    out: list[Mention] = []
    for it in items:
        if it.type is None:
            if it.not_reached or not 0 < it.value < 50 or _ci_after(t, it.end, True)[0] is None:
                continue  # no cue-less ratio: the test below needs 0 < CI low <= value < 50
            tail = _tail(t, it.end, bytearray(len(t)))
            if tail.ci and tail.ci[1] is not None and 0 < tail.ci[0] <= it.value <= tail.ci[1] and it.value < 50 \
                    and not _at("difference", t, it.start) \
                    and not _at("not_ratio", t, it.start):
                kind = None
                if compiled().cue_gate.search(t, 0, it.start):  # a cue holds one of the literals
                    for cm in compiled().cue.finditer(t, 0, it.start):
                        kind = cm.lastgroup
                if kind is None and ("." not in t[it.start:it.vend] or
                                     log_asymmetry(it.value, tail.ci[0], tail.ci[1]) > _BARE_ASYMMETRY):
                    continue  # "40 (24-63)": with no cue, only a decimal with a log-symmetric CI looks like a ratio
                _tail(t, it.end, used)
                out.append(Mention("ratio", it.value, it.start, tail.end, it.start, it.end, ratio_kind=kind,
                                   p_value=tail.p, flags=("bare",), **_ci_kw(tail.ci)))
            continue
        tail = _tail(t, it.end, used)
        ci = it.mid_ci or tail.ci
        out.append(Mention(it.type, it.value, it.start, max(it.end, tail.end), it.start, it.vend, unit=it.unit,
                           p_value=tail.p, not_reached=it.not_reached, flags=it.flags, **_ci_kw(ci)))
    return out


_CLAUSE_BREAK = re.compile(r";|\.(?!\d)")


def _closed_by_respectively(t: str, ms: list[Mention], g: list[int], resp: re.Pattern[str]) -> bool:
    first, last = ms[g[0]], ms[g[-1]]
    after = _CLAUSE_AFTER.match(t, last.end)
    return bool(resp.search(after.group(0) if after else "")) or bool(resp.search(t[first.start:last.end])) or \
        bool(resp.search(_before(t, first.start, 20)))


def _drop_ranges(gap: str) -> str:
    """A gap without its bracketed ranges: "18 months (range 2-40) versus 12 months" is a pair."""
    if "(" not in gap:
        return gap
    iv = compiled().p["other_interval"]
    return _BRACKETED.sub(lambda b: "" if iv.fullmatch(b.group(1).strip()) else b.group(0), gap)


def _group(t: str, ms: list[Mention]) -> list[Mention]:
    """Same `group` id for coordinated values; `respectively` when the list is closed by it."""
    ms = sorted(ms, key=lambda m: m.value_start)
    groups: list[list[int]] = []
    resp = compiled().p["respectively"]
    for i, m in enumerate(ms):
        if i and groups and groups[-1][-1] == i - 1:
            a = ms[i - 1]
            same = a.type == m.type and (a.type != "ratio" or a.ratio_kind == m.ratio_kind) and \
                ("adjective" in a.flags) == ("adjective" in m.flags)  # "15.8 months, and 5-year OS"
            if same and m.start >= a.end:
                gap = _drop_ranges(t[a.end:m.start])
                if not resp.search(gap) and (_gap_ok(gap, "list_gap") or _gap_ok(gap, "comparison_gap")):
                    groups[-1].append(i)
                    continue
        groups.append([i])
    out = list(ms)
    lists = [g for g in groups if len(g) > 1]
    closed = [_closed_by_respectively(t, out, g, resp) for g in lists]
    # "diarrhoea 7% vs. 6%, neutropenia 5% vs. 13%, ..., respectively": the word closes
    # every list of the same length in its clause, not only the last one
    for k in range(len(lists) - 2, -1, -1):
        if not closed[k] and closed[k + 1] and len(lists[k]) == len(lists[k + 1]) and \
                not _CLAUSE_BREAK.search(t[out[lists[k][-1]].end:out[lists[k + 1][0]].start]):
            closed[k] = True
    gid = 0
    for g, respectively in zip(lists, closed):
        last = out[g[-1]]
        p_shared = last.p_value
        # "at 3 years and 5 years": a time point makes the whole list time points
        shared_flags = tuple(f for f in ("timepoint",) if any(f in out[i].flags for i in g))
        for k, idx in enumerate(g):
            m = out[idx]
            flags = m.flags + tuple(f for f in shared_flags if f not in m.flags)
            out[idx] = replace(m, group=gid, group_index=k, respectively=respectively, flags=flags,
                               p_value=m.p_value or (p_shared if m.type != "ratio" else None))
        gid += 1
    return out


_DIGIT = re.compile(r"\d")
# a cue-less "1.29 (0.78-2.14)" is taken for a ratio only when its CI is about log-symmetric
_BARE_ASYMMETRY = 0.05


_CI_MARK = re.compile(r"(?:95\s?%\s*)?(?:\bCIs?\b|confidence intervals?)[,:]?\s*")
_PAIR = re.compile(r"(\d+(?:\.\d+)?)\s*%?\s*(?:to|-|\u2013)\s*(\d+(?:\.\d+)?)\s*%?")
_PAIR_SEP = re.compile(r"\s*(?:,\s*and|,|and)\s*")


def _interval_lists(t: str, ms: list[Mention]) -> list[Mention]:
    """A list of values followed by its intervals in one bracket ("4.0 and 2.5 months ...,
    respectively (95% CI, 2.5 to 5.3 and 1.9 to 3.8, respectively)"): the i-th interval is the
    i-th value's, not all of them the last value's."""
    out = list(ms)
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(out):
        if m.group is not None:
            groups.setdefault(m.group, []).append(i)
    for idx in groups.values():
        last = out[idx[-1]]
        if len(idx) < 2 or last.ci_low is None or any(out[i].ci_low is not None for i in idx[:-1]):
            continue
        mark = _CI_MARK.search(t, last.value_end, last.end)
        if mark is None:
            continue
        pairs, pos = [], mark.end()
        while len(pairs) <= len(idx):
            p = _PAIR.match(t, pos)
            if p is None:
                break
            pairs.append((float(p.group(1)), float(p.group(2))))
            sep = _PAIR_SEP.match(t, p.end())
            if sep is None:
                break
            pos = sep.end()
        if len(pairs) != len(idx) or pairs[0] != (last.ci_low, last.ci_high):
            continue
        for i, (lo, hi) in zip(idx, pairs):
            out[i] = replace(out[i], ci_low=lo, ci_high=hi, ci_level=last.ci_level)
    return out


def find_mentions(text: str) -> list[Mention]:
    """All numeric result mentions of `text` (one sentence, or any string), in text order."""
    if not text:
        return []
    if not _DIGIT.search(text) and not any(w in text for w in ("reach", "stimable", "valuable", "ercent", "er cent")):
        return []
    t = normalise(text)
    # 0 free, 2 reserved (inside a CI, range or p-value: never a result itself, but a value may
    # claim it as its tail), 1 claimed
    used = bytearray(len(t))
    for name in ("ci", "other_interval", "p_value"):
        for m in _scan(name, t):
            used[m.start():m.end()] = b"\x02" * (m.end() - m.start())
    mentions = _ratios(t, used, text)
    mentions += _counts(t, used)
    mentions += _typed(t, _type_lists(t, _items(t, used)), used)
    return _interval_lists(t, _group(t, mentions))
